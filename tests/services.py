"""Real servers for the tests, each on 127.0.0.1 on a free port, in a temp folder.

Postgres, Prometheus and the Pushgateway come from Debian packages; the tests
skip (fail under CI) where a binary is missing. Nothing here has a default
password: Postgres gets a random one per start.
"""

from __future__ import annotations

import contextlib
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

# The servers the bench shares live in the platform package; named here for the tests.
from dataplatform.local_deployment import (  # noqa: F401
    AirflowDeployment,
    ApiServer,
    HttpServer,
    free_port,
    stop,
    wait_for_http,
)

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
        self.create_database(self.database)

    @property
    def url(self) -> str:
        return self.database_url(self.database)

    def database_url(self, database: str) -> str:
        return (f"postgresql+psycopg2://{self.user}:{urllib.parse.quote(self.password)}"
                f"@127.0.0.1:{self.port}/{database}")

    def create_database(self, database: str) -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", self.user, database], check=True, capture_output=True,
                       env={**os.environ, "PGPASSWORD": self.password})
        return self.database_url(database)

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                      "-w", "stop")


# --- Prometheus and the Pushgateway ----------------------------------------------------


class Pushgateway(HttpServer):
    def start(self) -> None:
        self.spawn([shutil.which("prometheus-pushgateway") or "prometheus-pushgateway",
                    f"--web.listen-address=127.0.0.1:{self.port}"], "/-/ready")


class Prometheus(HttpServer):
    """Prometheus scraping the Pushgateway every second, as infra/prometheus does."""

    def __init__(self, root: Path, pushgateway: Pushgateway):
        super().__init__(root)
        self.pushgateway = pushgateway

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{
                "job_name": "pushgateway", "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{self.pushgateway.port}"]}]}],
        }))
        self.spawn([shutil.which("prometheus") or "prometheus", f"--config.file={config}",
                    f"--storage.tsdb.path={self.root / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}"], "/-/ready")

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


# --- a headless Chromium ----------------------------------------------------------------


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """Headless Chromium driven over the DevTools protocol (no driver, no Selenium)."""

    def __init__(self, root: Path):
        self.root = root
        self.process: subprocess.Popen | None = None
        self._connection = contextlib.ExitStack()
        self._socket = None
        self._next_id = 0

    def start(self) -> None:
        from websockets.sync.client import connect

        profile = self.root / "profile"
        profile.mkdir(parents=True, exist_ok=True)
        command = [chromium_binary(), "--headless", "--disable-gpu", "--no-first-run",
                   "--disable-dev-shm-usage", "--remote-debugging-port=0",
                   f"--user-data-dir={profile}", "--window-size=1280,900", "about:blank"]
        if os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # Chromium's sandbox refuses to run as root
        self.log = self.root / "chromium.log"
        with self.log.open("w") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            page = next(t for t in json.load(answer) if t["type"] == "page")
        self._socket = self._connection.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=None))
        self.call("Page.enable")

    def call(self, method: str, **params) -> dict:
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def open(self, url: str, cookies: dict[str, str]) -> None:
        for name, value in cookies.items():
            self.call("Network.setCookie", name=name, value=value, url=url)
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + 60
        loaded = f"location.href === {json.dumps(url)} && document.readyState === 'complete'"
        while not self.evaluate(loaded):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading")
            time.sleep(0.2)

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression,
                         returnByValue=True)["result"].get("value")

    def screenshot(self, path: Path) -> None:
        import base64

        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def stop(self) -> None:
        self._connection.close()
        if self.process:
            stop(self.process)


class Webhook:
    """A local HTTP endpoint keeping every JSON body POSTed to it (alert tests)."""

    def __init__(self, status: int = 200):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[dict] = []
        received, answer = self.received, status

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(answer)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/platform"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
