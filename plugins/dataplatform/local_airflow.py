"""The embedded default Airflow: a home inside the repo, SQLite, local Spark.

Shared by ``make run``, ``make airflow`` and the end-to-end tests, so all three
run the DAGs the same way. Connections are code (``AIRFLOW_CONN_*``); no
secret is written here: Airflow generates its own keys in the home folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from dataplatform.settings import REPO_ROOT

DEFAULT_AIRFLOW_HOME = REPO_ROOT / ".airflow"
MIN_JAVA = 17
SPARK_LOCAL_CONNECTION = {"conn_type": "spark", "host": "local[*]",
                          "extra": {"deploy-mode": "client"}}
# The cluster `make spark-up` starts (dataplatform.local_spark).
SPARK_STANDALONE_CONNECTION = {"conn_type": "spark", "host": "spark://127.0.0.1", "port": 7077,
                               "extra": {"deploy-mode": "client"}}


# The scheduler's settings on every deployment of the platform: the embedded
# defaults here, docker-compose.yaml, the Helm values and the deployments of
# the tests and the bench (tests check compose and Helm carry them). Measured
# on the samples (bench/README.md, Scheduled runs):
# - Each task process is forked from a LocalExecutor worker and imports its
#   DAG file. With the default start method (fork from the scheduler) that
#   import is the Spark provider's, which pulls in the Kubernetes clients:
#   about 0.4 s of every task (a `quality_gate` took 0.5 s, now 0.15 s).
#   Workers forked from a forkserver that imported it once start each task
#   with it loaded. The price: the forkserver, a process holding Airflow and
#   the providers, and workers started one at a time as tasks come.
# - The scheduler sleeps when a loop found nothing to do, and a task's end
#   waits for the next loop to queue its successor: 0.5 s, not 1 s, between
#   loops took 1-3 s off each sample run, and the Spark tasks were no slower.
SCHEDULER_SETTINGS = {
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": ",".join([
        "airflow.executors.local_executor",
        "airflow.sdk.execution_time.supervisor",
        "airflow.sdk.execution_time.task_runner",
        "airflow.dag_processing.dagbag",
        # Each runner's operator (dataplatform.spark_jobs). The forkserver skips
        # a module whose import raises ImportError: a test imports every one.
        "airflow.providers.apache.spark.operators.spark_submit",
        "airflow.providers.cncf.kubernetes.operators.pod",
        "airflow.providers.cncf.kubernetes.operators.spark_kubernetes",
        "airflow.providers.docker.operators.docker",
    ]),
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
}


class JavaNotFound(RuntimeError):
    pass


def java_major_version(java: str) -> int | None:
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8" is Java 8


def java_path(env: dict[str, str]) -> str | None:
    """The java spark-submit starts: JAVA_HOME's, else the first on PATH."""
    java_home = env.get("JAVA_HOME")
    return str(Path(java_home) / "bin" / "java") if java_home else shutil.which(
        "java", path=env.get("PATH"))


def check_java(env: dict[str, str]) -> str:
    """Path of a Java >= 17 that Spark will use; raises JavaNotFound otherwise."""
    java = java_path(env)
    version = java_major_version(java) if java else None
    if version is None or version < MIN_JAVA:
        found = f"found Java {version} at {java}" if version else "found no java"
        raise JavaNotFound(
            f"Spark 4 needs Java {MIN_JAVA}+ and {found}. Install one (Debian/Ubuntu: "
            f"`apt-get install openjdk-17-jre-headless`) or point JAVA_HOME at it.")
    return java


def local_airflow_env(airflow_home: Path = DEFAULT_AIRFLOW_HOME,
                      base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for running Airflow commands against the embedded defaults."""
    env = dict(os.environ if base is None else base)
    venv_bin = str(Path(sys.executable).parent)  # spark-submit is found on PATH
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "")])
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
    })
    for name, value in SCHEDULER_SETTINGS.items():
        env.setdefault(name, value)
    env.setdefault("AIRFLOW_CONN_SPARK_LOCAL", json.dumps(SPARK_LOCAL_CONNECTION))
    env.setdefault("AIRFLOW_CONN_SPARK_STANDALONE", json.dumps(SPARK_STANDALONE_CONNECTION))
    # `airflow dags test` waits out retry_delay before a retry: a one-shot run
    # should report its failure at once.
    env.setdefault("PLATFORM_TASK_RETRIES", "0")
    # ...and Airflow 3.3.2's `dags test` fails at the end of a run of a DAG with
    # a deadline (apache/airflow#73428): none here, unless asked for.
    env.setdefault("PLATFORM_RUN_DEADLINE_SECONDS", "0")
    return env


def migrate_metadata_db(env: dict[str, str]) -> None:
    """Create or upgrade the metadata database (idempotent, a few seconds)."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout}\n{result.stderr}")


def standalone(airflow_home: Path = DEFAULT_AIRFLOW_HOME) -> int:
    """``make airflow``: the UI, scheduler and friends on the embedded defaults."""
    env = local_airflow_env(airflow_home)
    # A developer's UI, with a generated password shown in clear: this machine only.
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    check_java(env)
    migrate_metadata_db(env)
    passwords = airflow_home / "simple_auth_manager_passwords.json.generated"
    print(
        "Airflow UI: http://127.0.0.1:8080 (the DAGs in dags/ are loaded; they start paused)\n"
        f"Log in as 'admin'; Airflow prints the password below at first start and keeps it "
        f"in {passwords}.\nStop with Ctrl-C.", flush=True)
    return subprocess.call([sys.executable, "-m", "airflow", "standalone"], env=env)


if __name__ == "__main__":
    if sys.argv[1:] != ["standalone"]:
        sys.exit("usage: python -m dataplatform.local_airflow standalone")
    try:
        sys.exit(standalone())
    except JavaNotFound as error:
        sys.exit(f"make airflow: {error}")
