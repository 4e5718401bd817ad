"""zte_tad_training end to end: ``airflow dags test`` through real Spark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from conftest import completed_applications, on_cluster
from dataplatform.settings import REPO_ROOT
from published import published_rows

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "data" / "samples" / "zte_tad"
TRAFFIC_TABLES = ("traffic_model_metrics", "traffic_class_metrics", "traffic_confusion_matrix")


def land(data_dir: Path, ds: str, source: Path) -> Path:
    landing = data_dir / "landing" / "zte_tad" / f"ds={ds}"
    shutil.copytree(source, landing, ignore=shutil.ignore_patterns("*.manifest.json"))
    for path in landing.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the shared seeds are read-only
    return landing


def run_dag(airflow_cli, data_dir: Path, ds: str, name: str, conf: dict | None = None,
            env: dict | None = None):
    args = ["dags", "test", "zte_tad_training", ds]
    if conf:
        args += ["--conf", json.dumps(conf)]
    return airflow_cli(args, env or {"PLATFORM_DATA_DIR": str(data_dir)},
                       f"zte_tad_training-{name}")


def rows(data_dir: Path, sql: str, **params) -> list[dict]:
    engine = sa.create_engine(f"sqlite:///{data_dir}/warehouse.db")
    with engine.connect() as connection:
        found = [dict(row._mapping) for row in connection.execute(sa.text(sql), params)]
    engine.dispose()
    return found


def assert_both_splits_published(data_dir: Path, ds: str, version: str) -> dict[str, dict]:
    (quality,) = rows(data_dir, "SELECT * FROM data_quality WHERE ds = :ds AND "
                      "dataset = 'zte_tad'", ds=ds)
    metrics = {m["split"]: m for m in rows(
        data_dir, "SELECT * FROM traffic_model_metrics WHERE ds = :ds AND model_version = :v",
        ds=ds, v=version)}
    assert sorted(metrics) == ["holdout_capture", "random"]
    for split, metric in metrics.items():
        # Training counts its side; the test side is the confusion matrix's total.
        assert metric["train_rows"] + metric["test_rows"] == quality["rows_clean"], split
        confusion = rows(data_dir, "SELECT SUM(count) AS n FROM traffic_confusion_matrix "
                         "WHERE ds = :ds AND model_version = :v AND split = :s",
                         ds=ds, v=version, s=split)
        assert confusion[0]["n"] == metric["test_rows"], split
        support = rows(data_dir, "SELECT SUM(support) AS n FROM traffic_class_metrics "
                       "WHERE ds = :ds AND model_version = :v AND split = :s",
                       ds=ds, v=version, s=split)
        assert support[0]["n"] == metric["test_rows"], split
        assert 0.0 <= metric["f1"] <= 1.0
    for table in TRAFFIC_TABLES:
        partition = data_dir / "warehouse" / table / f"ds={ds}" / f"model_version={version}"
        assert pq.read_table(partition).num_rows > 0, table
    return metrics


@pytest.fixture(scope="module")
def broken_sample_run(airflow_cli, tmp_path_factory) -> tuple[Path, str, Path]:
    """The committed sample plus two broken files, once through the local runner."""
    data_dir, ds = tmp_path_factory.mktemp("zte-tad-sample"), "2026-04-10"
    landing = land(data_dir, ds, SAMPLE)
    # A capture cut short in transfer, and one exported without LEN_RAW.
    video = sorted((landing / "Video").glob("*.parquet"))[0]
    (landing / "Video" / "truncated.parquet").write_bytes(video.read_bytes()[:2000])
    music = sorted((landing / "Music").glob("*.parquet"))[0]
    pq.write_table(pq.read_table(music).drop(["LEN_RAW"]),
                   landing / "Music" / "no_len_raw.parquet")
    first = run_dag(airflow_cli, data_dir, ds, "sample")
    assert first.returncode == 0, first.stdout[-3000:]
    return data_dir, ds, landing


def test_sample_with_broken_files_trains_and_its_model_becomes_current(broken_sample_run):
    data_dir, ds, _ = broken_sample_run
    manifest = json.loads((SAMPLE / "captures.manifest.json").read_text())
    (quality,) = rows(data_dir, "SELECT * FROM data_quality WHERE ds = :ds AND "
                      "dataset = 'zte_tad'", ds=ds)
    assert (quality["files_in"], quality["files_rejected"]) == (manifest["files"] + 2, 2)
    assert quality["rows_in"] == quality["rows_clean"] == manifest["rows"]
    quarantined = json.loads((data_dir / "quarantine/zte_tad" / f"ds={ds}" / "files.json")
                             .read_text())
    reasons = {Path(q["file"]).name: q["reason"] for q in quarantined}
    assert reasons["no_len_raw.parquet"] == "missing feature column(s) LEN_RAW"
    assert reasons["truncated.parquet"].startswith("unreadable parquet: ")

    champion = json.loads((data_dir / "models/zte_tad/current.json").read_text())
    version = champion["model_version"]
    metrics = assert_both_splits_published(data_dir, ds, version)
    assert metrics["holdout_capture"]["promoted"] == 1
    assert champion["f1"] == metrics["holdout_capture"]["f1"]
    metadata = json.loads((data_dir / "models/zte_tad" / version / "metadata.json").read_text())
    assert metadata["feature_set"] == "flow"
    assert not any(f.startswith("Send_") for f in metadata["features"])
    # A worse challenger leaving current.json alone: test_zte_tad_promotion.py.


def test_standalone_cluster_publishes_the_same_rows_as_local(airflow_cli, broken_sample_run,
                                                              spark_cluster, tmp_path):
    local_dir, ds, local_landing = broken_sample_run
    data_dir = tmp_path / "data"
    shutil.copytree(local_landing, data_dir / "landing" / "zte_tad" / f"ds={ds}")
    result = run_dag(airflow_cli, data_dir, ds, "standalone",
                     env=on_cluster(spark_cluster, data_dir))
    assert result.returncode == 0, result.stdout[-3000:]
    assert {f"zte-tad-ingest-{ds}", f"zte-tad-train-{ds}"} <= set(
        completed_applications(spark_cluster))
    on_standalone = published_rows(data_dir, ds)
    assert all(on_standalone[t] for t in (*TRAFFIC_TABLES, "data_quality"))
    assert on_standalone == published_rows(local_dir, ds)


def test_real_sample_publishes_both_splits(airflow_cli, data_dir, seed_zte_tad_sample):
    ds = "2026-04-12"
    land(data_dir, ds, seed_zte_tad_sample)
    result = run_dag(airflow_cli, data_dir, ds, "real")
    assert result.returncode == 0, result.stdout[-3000:]
    version = json.loads((data_dir / "models/zte_tad/current.json").read_text())[
        "model_version"]
    metrics = assert_both_splits_published(data_dir, ds, version)
    (quality,) = rows(data_dir, "SELECT * FROM data_quality WHERE ds = :ds AND "
                      "dataset = 'zte_tad'", ds=ds)
    assert (quality["files_in"], quality["rows_clean"]) == (17, 112_553)
    classes = rows(data_dir, "SELECT DISTINCT category FROM traffic_class_metrics "
                   "WHERE ds = :ds ORDER BY 1", ds=ds)
    assert [c["category"] for c in classes] == ["0", "1", "2"]
    print({split: round(m["f1"], 4) for split, m in metrics.items()})
