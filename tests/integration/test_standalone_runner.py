"""The `standalone` runner on a real Spark master and worker on 127.0.0.1.

Each DAG runs twice on the same input, once on the `local` runner and once on
the cluster; every published row must be the same (timings aside).
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from dataplatform.local_spark import StandaloneCluster
from dataplatform.settings import REPO_ROOT

pytestmark = pytest.mark.slow

SAMPLES = REPO_ROOT / "data" / "samples"
# Measured, not derived from the data: they differ from run to run.
TIMING_COLUMNS = {"train_seconds"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(java, tmp_path_factory):
    cluster = StandaloneCluster(state_dir=tmp_path_factory.mktemp("spark-standalone"),
                                master_port=free_port(), master_ui_port=free_port(),
                                worker_ui_port=free_port(), worker_cores=2,
                                worker_memory="2g")
    cluster.start()
    yield cluster
    cluster.stop()


def published_rows(data_dir: Path) -> dict[str, list[dict]]:
    engine = sa.create_engine(f"sqlite:///{data_dir}/warehouse.db")
    tables = {}
    with engine.connect() as connection:
        for table in sa.inspect(engine).get_table_names():
            found = [{k: v for k, v in row._mapping.items() if k not in TIMING_COLUMNS}
                     for row in connection.execute(sa.text(f"SELECT * FROM {table}"))]
            tables[table] = sorted(found, key=repr)
    engine.dispose()
    return tables


def run_on(runner: str, dag_id: str, sample: Path, landing: str, ds: str, root: Path,
           airflow_cli, cluster: StandaloneCluster) -> dict[str, list[dict]]:
    data_dir = root / runner
    shutil.copytree(sample, data_dir / "landing" / landing / f"ds={ds}",
                    ignore=shutil.ignore_patterns("*.manifest.json"))
    result = airflow_cli(["dags", "test", dag_id, ds], {
        "PLATFORM_DATA_DIR": str(data_dir),
        "PLATFORM_SPARK_RUNNER": runner,
        "AIRFLOW_CONN_SPARK_STANDALONE": cluster.connection_uri,
    }, f"{dag_id}-{runner}")
    assert result.returncode == 0, result.stdout[-3000:]
    return published_rows(data_dir)


@pytest.mark.parametrize(("dag_id", "sample", "landing"), [
    ("students_nightly", SAMPLES / "students", "students"),
    ("zte_tad_training", SAMPLES / "zte_tad", "zte_tad"),
])
def test_standalone_cluster_publishes_the_same_rows_as_local(
        dag_id, sample, landing, cluster, airflow_cli, tmp_path):
    ds = "2026-05-02"
    on_cluster = run_on("standalone", dag_id, sample, landing, ds, tmp_path, airflow_cli,
                        cluster)
    # The jobs really ran there: the master lists them as completed applications.
    names = {app["name"] for app in cluster.status()["completedapps"]}
    expected_jobs = {
        "students_nightly": {f"students-clean-{ds}", f"students-statistics-{ds}"},
        "zte_tad_training": {f"zte-tad-ingest-{ds}", f"zte-tad-train-{ds}"},
    }[dag_id]
    assert expected_jobs <= names

    local = run_on("local", dag_id, sample, landing, ds, tmp_path, airflow_cli, cluster)
    assert on_cluster.keys() == local.keys()
    assert all(local[table] for table in local if table != "data_quality_rejections")
    for table, rows in local.items():
        assert on_cluster[table] == rows, table


def test_scaling_dag_times_one_and_two_executors_with_the_same_model(
        cluster, airflow_cli, tmp_path):
    ds = "2026-05-03"
    data_dir = tmp_path / "scaling"
    shutil.copytree(SAMPLES / "zte_tad", data_dir / "landing" / "zte_tad" / f"ds={ds}",
                    ignore=shutil.ignore_patterns("*.manifest.json"))
    result = airflow_cli(["dags", "test", "zte_tad_scaling", ds, "--conf",
                          '{"max_executors": 2}'], {
        "PLATFORM_DATA_DIR": str(data_dir),
        "PLATFORM_SPARK_RUNNER": "standalone",
        "AIRFLOW_CONN_SPARK_STANDALONE": cluster.connection_uri,
    }, "zte_tad_scaling-standalone")
    assert result.returncode == 0, result.stdout[-3000:]

    engine = sa.create_engine(f"sqlite:///{data_dir}/warehouse.db")
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(sa.text(
            "SELECT * FROM traffic_executor_scaling ORDER BY executors"))]
    engine.dispose()
    assert [(row["ds"], row["executors"]) for row in rows] == [(ds, 1), (ds, 2)]
    for row in rows:
        assert 0 < row["train_seconds"] < row["total_seconds"], row
    # The same data, splits and seed: more executors change the time, not the model.
    assert rows[0]["f1"] == rows[1]["f1"]
    assert not (data_dir / "models").exists(), "scaling runs must not save models"
    # Runs above max_executors were skipped, not run.
    assert "train_with_3_executors" not in {app["name"] for app in
                                            cluster.status()["completedapps"]}
