"""Real servers for the tests, each on 127.0.0.1 on a free port, in a temp folder.

Postgres, Prometheus and the Pushgateway come from Debian packages; the tests
skip (fail under CI) where a binary is missing. Nothing here has a default
password: Postgres gets a random one per start.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from published import free_port


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


# --- Postgres -------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """A throwaway Postgres cluster; as root, it runs as the ``postgres`` user."""

    def __init__(self, root: Path):
        self.bin = postgres_bin_dir()
        self.root = root
        self.port = free_port()
        self.password = secrets.token_urlsafe(24)
        self.user = "platform"
        self.database = "warehouse"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        command = list(args)
        if self._as_root:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        data, sockets = self.root / "data", self.root / "sockets"
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        sockets.mkdir(exist_ok=True)
        if self._as_root:
            entry = pwd.getpwnam("postgres")
            for path in (self.root, sockets, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", self.user,
                  "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8")
        pwfile.unlink()
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"),
                  "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {sockets} -c listen_addresses=127.0.0.1", "start")
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", self.user, self.database, env={**os.environ, "PGPASSWORD": self.password})

    @property
    def url(self) -> str:
        return (f"postgresql+psycopg2://{self.user}:{urllib.parse.quote(self.password)}"
                f"@127.0.0.1:{self.port}/{self.database}")

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                  "-w", "stop")


# --- Prometheus and the Pushgateway ---------------------------------------------------


class Pushgateway:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / "pushgateway.log"
        self.process = subprocess.Popen(
            [shutil.which("prometheus-pushgateway") or "prometheus-pushgateway",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log.open("w"), stderr=subprocess.STDOUT)
        wait_for_http(f"{self.url}/-/ready", process=self.process, log=log)

    def stop(self) -> None:
        if self.process:
            stop(self.process)


class Prometheus:
    """Prometheus scraping the Pushgateway every second, as infra/prometheus does."""

    def __init__(self, root: Path, pushgateway: Pushgateway):
        self.root = root
        self.port = free_port()
        self.pushgateway = pushgateway
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{
                "job_name": "pushgateway", "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{self.pushgateway.port}"]}]}],
        }))
        log = self.root / "prometheus.log"
        self.process = subprocess.Popen(
            [shutil.which("prometheus") or "prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={self.root / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log.open("w"), stderr=subprocess.STDOUT)
        wait_for_http(f"{self.url}/-/ready", process=self.process, log=log)

    def query(self, promql: str) -> list[dict]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def wait_for(self, promql: str, count: int = 1, timeout: float = 30.0) -> list[dict]:
        """The query's result once it has ``count`` series (scrapes are periodic)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if len(result) >= count or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process:
            stop(self.process)
