"""students_nightly end to end: ``airflow dags test`` through real Spark.

Published numbers are compared with an independent computation: the contract's
rules written again with the csv module, the statistics with pandas.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.dataset as pads
import pytest
from conftest import completed_applications, on_cluster
from dataplatform.settings import REPO_ROOT
from published import STUDENT_TABLES, published_rows, table_dicts
from students_reference import (
    assert_matches_reference,
    reference_clean_rows,
    reference_tables,
)

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "data" / "samples" / "students" / "students_sample.csv"


# ----------------------------------------------------------- helpers


def land(data_dir: Path, ds: str, files: dict[str, Path | str]) -> None:
    landing = data_dir / "landing" / "students" / f"ds={ds}"
    landing.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, Path):
            shutil.copy(content, landing / name)
        else:
            (landing / name).write_text(content, encoding="utf-8")


def run_dag(airflow_cli, data_dir: Path, ds: str, name: str, env: dict | None = None):
    return airflow_cli(["dags", "test", "students_nightly", ds],
                       env or {"PLATFORM_DATA_DIR": str(data_dir)}, f"students_nightly-{name}")


def published(data_dir: Path, ds: str) -> dict[str, list[dict]]:
    """Every student table's rows for ``ds`` in the run's serving database."""
    return table_dicts(f"sqlite:///{data_dir}/warehouse.db", ds, STUDENT_TABLES)


def warehouse(data_dir: Path, table: str, ds: str) -> pd.DataFrame:
    return pads.dataset(data_dir / "warehouse" / table / f"ds={ds}").to_table().to_pandas()


# ----------------------------------------------------------- scenarios


def publish_and_compare(airflow_cli, data_dir: Path, ds: str, source: Path, name: str):
    """Land ``source``, run the DAG, check its statistics against the reference."""
    land(data_dir, ds, {source.name: source})
    result = run_dag(airflow_cli, data_dir, ds, name)
    assert result.returncode == 0, result.stdout[-3000:]
    tables = published(data_dir, ds)
    clean, rows_in = reference_clean_rows(source)
    assert_matches_reference(tables, reference_tables(clean))
    return result, tables, clean, rows_in


@dataclass(frozen=True)
class SampleRun:
    data_dir: Path
    ds: str
    tables: dict
    clean: pd.DataFrame
    rows_in: int


@pytest.fixture(scope="module")
def sample_run(airflow_cli, tmp_path_factory) -> SampleRun:
    """The committed sample through the local runner, once for the tests that need it."""
    data_dir, ds = tmp_path_factory.mktemp("students-sample"), "2026-03-10"
    _, tables, clean, rows_in = publish_and_compare(airflow_cli, data_dir, ds, SAMPLE,
                                                    "sample-1")
    return SampleRun(data_dir, ds, tables, clean, rows_in)


def test_committed_sample_publishes_exact_statistics(sample_run):
    data_dir, ds, tables = sample_run.data_dir, sample_run.ds, sample_run.tables
    clean, rows_in = sample_run.clean, sample_run.rows_in
    manifest = json.loads(SAMPLE.with_name(SAMPLE.name + ".manifest.json").read_text())
    (quality,) = tables["data_quality"]
    assert quality["rows_in"] == rows_in == manifest["rows"]
    assert quality["rows_clean"] == len(clean) == rows_in - manifest["rows_rejected"]
    assert quality["rows_rejected"] == manifest["rows_rejected"]
    assert {r["reason"]: r["rows"] for r in tables["data_quality_rejections"]} == manifest[
        "rejections"]
    # The warehouse partition holds the same numbers as the database.
    by_grade = warehouse(data_dir, "students_by_grade", ds)
    assert sorted(by_grade["n_students"]) == sorted(
        r["n_students"] for r in tables["students_by_grade"])
    # Every rejected row is in quarantine with its line and reason.
    rows = pd.read_csv(next((data_dir / "quarantine/students" / f"ds={ds}" / "rows").glob(
        "*.csv")))
    assert len(rows) == manifest["rows_rejected"]
    assert rows["line_number"].between(2, rows_in + 1).all()
    # Reruns leaving the same rows: test_scheduler_runs.py (a backfill reprocessing
    # five dates) and test_published_results.py (publish cleared and rerun).


def test_standalone_cluster_publishes_the_same_rows_as_local(airflow_cli, sample_run,
                                                              spark_cluster, tmp_path):
    data_dir, ds = tmp_path / "data", sample_run.ds
    land(data_dir, ds, {SAMPLE.name: SAMPLE})
    result = run_dag(airflow_cli, data_dir, ds, "standalone", on_cluster(spark_cluster, data_dir))
    assert result.returncode == 0, result.stdout[-3000:]
    # The job really ran there: the master lists it as a completed application.
    assert f"students-{ds}" in completed_applications(spark_cluster)
    assert published_rows(data_dir, ds) == published_rows(sample_run.data_dir, ds)


def test_real_seed_file_matches_pandas(airflow_cli, data_dir, seed_students_csv):
    ds = "2026-03-11"
    result, tables, clean, rows_in = publish_and_compare(airflow_cli, data_dir, ds,
                                                         seed_students_csv, "seed")
    (quality,) = tables["data_quality"]
    assert (quality["rows_in"], quality["rows_clean"]) == (rows_in, len(clean)) == (400, 400)
    # No student name reaches a published table, the warehouse or a log line.
    names = set(pd.read_csv(seed_students_csv)["nombre"])
    for table in STUDENT_TABLES:
        text = json.dumps(tables[table], default=str)
        text += warehouse(data_dir, table, ds).to_json() if table.startswith("students") else ""
        assert not any(name in text for name in names), table
    logs = result.stdout + result.stderr
    assert not [name for name in names if name in logs]


def _assert_nothing_published(data_dir: Path, ds: str) -> None:
    assert all(not rows for rows in published(data_dir, ds).values())
    assert list(data_dir.glob(f"warehouse/*/ds={ds}")) == []


def test_file_missing_a_column_fails_naming_it(airflow_cli, data_dir):
    ds = "2026-03-13"
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    land(data_dir, ds, {"students.csv": frame.drop(columns=["grado"]).to_csv(index=False)})
    result = run_dag(airflow_cli, data_dir, ds, "missing-column")
    assert result.returncode != 0
    assert "missing required column(s) grado;" in result.stdout + result.stderr
    _assert_nothing_published(data_dir, ds)


# A date over the reject threshold (the gate refuses it, publishes nothing and
# alerts): test_scheduler_runs.py.
