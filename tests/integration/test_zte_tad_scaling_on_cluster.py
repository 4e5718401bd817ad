"""zte_tad_scaling end to end on a real Spark standalone master and worker (127.0.0.1)."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa
from conftest import completed_applications, on_cluster
from dataplatform.settings import REPO_ROOT

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "data" / "samples" / "zte_tad"


def test_scaling_dag_times_one_and_two_executors_with_the_same_model(
        spark_cluster, airflow_cli, tmp_path):
    ds = "2026-05-03"
    data_dir = tmp_path / "data"
    shutil.copytree(SAMPLE, data_dir / "landing" / "zte_tad" / f"ds={ds}",
                    ignore=shutil.ignore_patterns("*.manifest.json"))
    result = airflow_cli(["dags", "test", "zte_tad_scaling", ds, "--conf",
                          '{"max_executors": 2}'], on_cluster(spark_cluster, data_dir),
                         "zte_tad_scaling-standalone")
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
    # Two trainings ran on the cluster; those above max_executors were skipped.
    assert completed_applications(spark_cluster).count(f"zte-tad-train-{ds}") == 2
