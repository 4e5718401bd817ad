"""Airflow as deployed, on one machine: a scheduler (LocalExecutor), a
dag-processor and an api-server, each a process of its own on 127.0.0.1.

Used by the scheduler tests and by ``make bench``'s scheduled runs, so both
measure the DAGs the way a deployment runs them. Nothing here has a default
secret: each deployment draws its own JWT secret, API key and password.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from dataplatform.local_airflow import SCHEDULER_SETTINGS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None,
                  log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status < 500:
                    return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class HttpServer:
    """A server process of its own on a free port, its output in ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, command: list[str], ready_path: str, env: dict[str, str] | None = None,
              timeout: float = 60.0, name: str | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = self.root / f"{name or Path(command[0]).name}.log"
        with self.log.open("w") as output:  # the child keeps its own descriptor
            self.process = subprocess.Popen(command, env=env, stdout=output,
                                            stderr=subprocess.STDOUT)
        try:
            wait_for_http(f"{self.url}{ready_path}", timeout=timeout, process=self.process,
                          log=self.log)
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise

    def stop(self) -> None:
        if self.process:
            stop(self.process)


class ApiServer(HttpServer):
    """``airflow api-server`` on a free port, with one user whose password is
    random: a viewer unless another role is asked for (``user`` may trigger)."""

    def __init__(self, root: Path, env: dict[str, str], role: str = "viewer"):
        super().__init__(root)
        self.user = role
        self.role = role
        self.password = secrets.token_urlsafe(24)
        self.env = env

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        passwords = self.root / "passwords.json"
        passwords.touch(mode=0o600)
        passwords.write_text(json.dumps({self.user: self.password}))
        env = {**self.env,
               "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.user}:{self.role}",
               "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
               "AIRFLOW__API__BASE_URL": self.url}
        self.spawn([sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1",
                    "--port", str(self.port), "--workers", "1"],
                   "/api/v2/monitor/health", env=env, timeout=180, name="api-server")

    def token(self) -> str:
        request = urllib.request.Request(
            f"{self.url}/auth/token", method="POST",
            data=json.dumps({"username": self.user, "password": self.password}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["access_token"]

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        return self.request("GET", path, token)

    def request(self, method: str, path: str, token: str | None = None,
                body: dict | None = None) -> tuple[int, bytes]:
        """The status and body of one call; an HTTP error is an answer, not an exception."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", method=method, headers=headers,
                                         data=data)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


class AirflowDeployment:
    """A scheduler (LocalExecutor), a dag-processor and an api-server sharing one
    metadata database and one random JWT secret, each a process of its own.

    Task processes reach the api-server's execution API, as in production.
    Every process logs under ``root``; task logs go to ``root/home/logs``.
    """

    def __init__(self, root: Path, env: dict[str, str], metadata_url: str,
                 api_role: str = "viewer"):
        self.root = root
        self.home = root / "home"
        api_port = free_port()
        self.env = {
            **SCHEDULER_SETTINGS,  # the platform's, unless ``env`` says otherwise
            **env,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            # Seconds, not minutes, between the scheduler's and processor's rounds.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # The DAG files do not change while a deployment runs here: parse them rarely.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
        }
        self.api = ApiServer(root, self.env, api_role)
        self.api.port = api_port
        self.processes: list[subprocess.Popen] = []

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        migrated = self.airflow("db", "migrate", timeout=600)
        if migrated.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrated.stderr[-3000:]}")
        self.api.start()
        for component in ("scheduler", "dag-processor"):
            with (self.root / f"{component}.log").open("w") as output:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "airflow", component], env=self.env,
                    stdout=output, stderr=subprocess.STDOUT, start_new_session=True))

    def check_running(self) -> None:
        """Raise, with its log's end, if a component has exited."""
        for process in [*self.processes, self.api.process]:
            if process is not None and process.poll() is not None:
                name = " ".join(process.args[2:4])
                log = self.root / f"{process.args[3]}.log"
                tail = log.read_text()[-3000:] if log.exists() else ""
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def logs(self) -> list[Path]:
        """Every log this deployment wrote: its processes', every task try's and
        every executor callback's (those files have no extension)."""
        task_logs = (path for path in (self.home / "logs").rglob("*") if path.is_file())
        return sorted({*self.root.glob("*.log"), *task_logs})

    def stop(self) -> None:
        # Each component leads a process group of its own: its executor workers,
        # their task processes and Spark JVMs go with it, even after it exited.
        for process in self.processes:
            _signal_group(process, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)
            process.wait()
        self.api.stop()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:  # the whole group has gone
        pass
