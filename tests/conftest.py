"""Shared fixtures: one local SparkSession, a throwaway Airflow home, real data.

Airflow reads its configuration when first imported, so the environment for
the embedded defaults is set here, at import time, before any test imports it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from dataplatform.local_airflow import JavaNotFound, check_java, local_airflow_env
from dataplatform.settings import REPO_ROOT

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.update(local_airflow_env(AIRFLOW_HOME))
# A YARN connection to render the `yarn` runner's command against (never run).
os.environ["AIRFLOW_CONN_SPARK_YARN"] = json.dumps(
    {"conn_type": "spark", "host": "yarn", "extra": {"deploy-mode": "client"}})
# Tests must never write into the repo's own data folder.
os.environ["PLATFORM_DATA_DIR"] = tempfile.mkdtemp(prefix="platform-data-")

SHARED_DIR = (REPO_ROOT.parent / "shared").resolve()
SHARED_SEEDS = SHARED_DIR / "data" / "seeds"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(available: bool, reason: str) -> None:
    """Skip when a real component is missing; under CI that is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def java() -> str:
    try:
        return check_java(dict(os.environ))
    except JavaNotFound as error:
        require(False, str(error))


@pytest.fixture(scope="session")
def spark(java):
    """The one SparkSession of the unit tests: one core, few shuffle partitions."""
    from spark_apps.session import build_spark_session

    session = build_spark_session("platform-tests", master="local[1]", conf={
        "spark.sql.shuffle.partitions": "2",
        "spark.ui.enabled": "false",
        "spark.driver.extraJavaOptions":
            f"-Dlog4j2.configurationFile=file:{REPO_ROOT}/infra/spark/log4j2.properties",
    })
    yield session
    session.stop()
    # py4j logs its socket closing from __del__ at interpreter exit, after
    # pytest has closed the streams it captured: a "Logging error" otherwise.
    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def seed_students_csv() -> Path:
    path = SHARED_SEEDS / "students" / "students_2024.csv"
    require(path.exists(), f"the real student file is not at {path} (../shared is absent)")
    return path


@pytest.fixture(scope="session")
def seed_zte_tad_sample() -> Path:
    path = SHARED_SEEDS / "zte_tad_sample"
    require(path.exists(), f"the real ZTE_TAD sample is not at {path} (../shared is absent)")
    return path


@pytest.fixture(scope="session")
def airflow_home(java) -> Path:
    """The tests' Airflow home with its metadata database migrated once."""
    from dataplatform.local_airflow import migrate_metadata_db

    migrate_metadata_db(dict(os.environ))
    return AIRFLOW_HOME


@pytest.fixture
def data_dir(tmp_path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def airflow_cli(airflow_home):
    """Run an ``airflow`` command; its output is kept under tests/artifacts/."""

    def run(args: list[str], env_overrides: dict[str, str],
            log_name: str) -> subprocess.CompletedProcess:
        env = {**os.environ, **env_overrides}
        result = subprocess.run([sys.executable, "-m", "airflow", *args], env=env,
                                capture_output=True, text=True, timeout=900)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{log_name}.log").write_text(result.stdout + result.stderr)
        return result

    return run


@pytest.fixture(scope="session")
def spark_cluster(java, tmp_path_factory):
    """A real Spark standalone master and worker on 127.0.0.1, on free ports."""
    from dataplatform.local_spark import StandaloneCluster
    from services import free_port

    cluster = StandaloneCluster(state_dir=tmp_path_factory.mktemp("spark-standalone"),
                                master_port=free_port(), master_ui_port=free_port(),
                                worker_ui_port=free_port(), worker_cores=2,
                                worker_memory="2g")
    cluster.start()
    yield cluster
    cluster.stop()


def on_cluster(cluster, data_dir: Path) -> dict[str, str]:
    """Environment for `airflow dags test` on the `standalone` runner."""
    return {"PLATFORM_DATA_DIR": str(data_dir), "PLATFORM_SPARK_RUNNER": "standalone",
            "AIRFLOW_CONN_SPARK_STANDALONE": cluster.connection_uri}


def completed_applications(cluster) -> list[str]:
    """Names of the applications the master has finished, one per run."""
    return [app["name"] for app in cluster.status()["completedapps"]]


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real Postgres on 127.0.0.1 (Debian `postgresql`), with a random password."""
    from services import PostgresServer, postgres_bin_dir

    require(postgres_bin_dir() is not None,
            "Postgres is not installed (Debian: apt-get install postgresql)")
    # Not under pytest's temp root: as root, Postgres runs as `postgres`, which
    # must be able to reach its folder.
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="platform-postgres-")))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory):
    """A real Pushgateway and a Prometheus scraping it (Debian packages)."""
    from services import Prometheus, Pushgateway

    for binary, package in (("prometheus", "prometheus"),
                            ("prometheus-pushgateway", "prometheus-pushgateway")):
        require(shutil.which(binary) is not None,
                f"{binary} is not installed (Debian: apt-get install {package})")
    root = tmp_path_factory.mktemp("prometheus")
    gateway = Pushgateway(root / "pushgateway")
    server = Prometheus(root / "prometheus", gateway)
    try:
        gateway.start()
        server.start()
        yield server
    finally:
        server.stop()
        gateway.stop()


@pytest.fixture
def chromium(tmp_path):
    """A headless Chromium (Debian `chromium`) driven over the DevTools protocol."""
    from services import Chromium, chromium_binary

    require(chromium_binary() is not None,
            "Chromium is not installed (Debian: apt-get install chromium)")
    browser = Chromium(tmp_path / "chromium")
    browser.start()
    yield browser
    browser.stop()
