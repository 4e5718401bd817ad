"""A real Spark standalone cluster on 127.0.0.1, from the pip pyspark distribution.

The distribution has ``bin/spark-class`` but not ``sbin/start-master.sh``, so
the master and the worker are started here directly, each as a background
process whose pid is kept in the state folder; ``stop`` ends them by pid.

    python -m dataplatform.local_spark start   # make spark-up
    python -m dataplatform.local_spark stop    # make spark-down
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dataplatform.settings import REPO_ROOT

DEFAULT_STATE_DIR = REPO_ROOT / ".spark-standalone"
HOST = "127.0.0.1"
# Processes started by this interpreter: an exited child stays a zombie, which
# still answers kill(pid, 0), until it is polled.
_CHILDREN: dict[int, subprocess.Popen] = {}


class ClusterError(RuntimeError):
    pass


@dataclass(frozen=True)
class StandaloneCluster:
    state_dir: Path = DEFAULT_STATE_DIR
    master_port: int = 7077
    master_ui_port: int = 8090  # Airflow's UI has 8080
    worker_ui_port: int = 8091
    worker_cores: int = 2
    worker_memory: str = "4g"

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def connection_uri(self) -> str:
        """The Airflow connection for the ``standalone`` runner."""
        return f"spark://{HOST}:{self.master_port}?deploy-mode=client"

    def _pid_file(self, role: str) -> Path:
        return self.state_dir / f"{role}.pid"

    def _running_pid(self, role: str) -> int | None:
        try:
            pid = int(self._pid_file(role).read_text())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        child = _CHILDREN.get(pid)
        return None if child and child.poll() is not None else pid

    def _spawn(self, role: str, main_class: str, args: list[str]) -> None:
        spark_class = Path(sys.executable).parent / "spark-class"
        if not spark_class.exists():
            raise ClusterError(f"{spark_class} is missing: is pyspark installed in this venv?")
        import pyspark

        env = {**os.environ, "SPARK_HOME": str(Path(pyspark.__file__).parent),
               "SPARK_LOCAL_IP": HOST, "SPARK_NO_DAEMONIZE": "1",
               "SPARK_LOG_DIR": str(self.state_dir),
               "SPARK_WORKER_DIR": str(self.state_dir / "work")}
        with open(self.state_dir / f"{role}.log", "ab") as log:
            process = subprocess.Popen([str(spark_class), main_class, *args], env=env,
                                       stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        _CHILDREN[process.pid] = process
        self._pid_file(role).write_text(str(process.pid))

    def status(self) -> dict | None:
        """The master's JSON status, or None when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.master_ui_port}/json/",
                                        timeout=2) as response:
                return json.load(response)
        except OSError:
            return None

    def start(self, timeout: float = 90.0) -> None:
        """Start the master and one worker, and wait until the worker is ALIVE."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self._running_pid("master"):
            self._spawn("master", "org.apache.spark.deploy.master.Master",
                        ["--host", HOST, "--port", str(self.master_port),
                         "--webui-port", str(self.master_ui_port)])
        if not self._running_pid("worker"):
            self._spawn("worker", "org.apache.spark.deploy.worker.Worker",
                        [self.master_url, "--host", HOST, "--cores", str(self.worker_cores),
                         "--memory", self.worker_memory,
                         "--webui-port", str(self.worker_ui_port)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.status()
            if state and state.get("aliveworkers", 0) >= 1:
                return
            for role in ("master", "worker"):
                if not self._running_pid(role):
                    raise ClusterError(f"the Spark {role} exited; see "
                                       f"{self.state_dir / (role + '.log')}")
            time.sleep(0.5)
        self.stop()
        raise ClusterError(f"no worker registered with {self.master_url} within {timeout:.0f}s;"
                           f" see the logs in {self.state_dir}")

    def stop(self) -> None:
        for role in ("worker", "master"):
            pid = self._running_pid(role)
            if pid:
                os.killpg(pid, signal.SIGTERM)
                for _ in range(50):
                    if not self._running_pid(role):
                        break
                    time.sleep(0.1)
                else:
                    os.killpg(pid, signal.SIGKILL)
            self._pid_file(role).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A Spark standalone cluster on 127.0.0.1")
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--memory", default="4g")
    args = parser.parse_args(argv)
    cluster = StandaloneCluster(worker_cores=args.cores, worker_memory=args.memory)
    if args.action == "start":
        cluster.start()
        print(f"Spark master {cluster.master_url} (UI http://{HOST}:{cluster.master_ui_port}),"
              f" one worker with {args.cores} cores / {args.memory}.\n"
              f"Run the DAGs on it: PLATFORM_SPARK_RUNNER=standalone make run")
    elif args.action == "stop":
        cluster.stop()
        print("Spark standalone cluster stopped.")
    else:
        state = cluster.status()
        print(json.dumps(state, indent=2) if state else "not running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
