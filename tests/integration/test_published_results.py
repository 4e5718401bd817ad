"""Both pipelines published to a real Postgres, their metrics in a real Prometheus,
and the results page served by a running api-server, read by headless Chromium."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ARTIFACTS
from dataplatform.results_app import format_number
from dataplatform.settings import REPO_ROOT
from published import contract_rows

pytestmark = pytest.mark.slow

DS = "2026-05-20"
STUDENT_SAMPLE = REPO_ROOT / "data" / "samples" / "students" / "students_sample.csv"
TRAFFIC_SAMPLE = REPO_ROOT / "data" / "samples" / "zte_tad"
RESULTS_PAGE = "/platform-results/"


@dataclass(frozen=True)
class PublishedRun:
    data_dir: Path
    env: dict[str, str]

    @property
    def warehouse_url(self) -> str:
        return self.env["PLATFORM_WAREHOUSE_URL"]


def run(airflow_cli, dag_id: str, published: PublishedRun, name: str,
        conf: dict | None = None):
    args = ["dags", "test", dag_id, DS] + (["--conf", json.dumps(conf)] if conf else [])
    result = airflow_cli(args, published.env, f"{dag_id}-{name}")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


def select(url: str, sql: str, **params) -> list[dict]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(sa.text(sql), params)]
    engine.dispose()
    return rows


@pytest.fixture(scope="module")
def published_run(airflow_cli, postgres, prometheus, tmp_path_factory) -> PublishedRun:
    """Both samples through their nightly DAGs, then platform_metrics, on Postgres."""
    data_dir = tmp_path_factory.mktemp("published-results")
    students = data_dir / "landing" / "students" / f"ds={DS}"
    students.mkdir(parents=True)
    shutil.copy(STUDENT_SAMPLE, students / STUDENT_SAMPLE.name)
    shutil.copytree(TRAFFIC_SAMPLE, data_dir / "landing" / "zte_tad" / f"ds={DS}",
                    ignore=shutil.ignore_patterns("*.manifest.json"))
    published = PublishedRun(data_dir, {
        "PLATFORM_DATA_DIR": str(data_dir),
        "PLATFORM_WAREHOUSE_URL": postgres.create_database("published_results"),
        "PLATFORM_PUSHGATEWAY_URL": prometheus.pushgateway.url,
    })
    run(airflow_cli, "students_nightly", published, "postgres")
    run(airflow_cli, "zte_tad_training", published, "postgres")
    # In a deployment the scheduler starts it on the publish tasks' asset events;
    # `dags test` runs one DAG, so it is triggered here as a manual run for DS.
    run(airflow_cli, "platform_metrics", published, "postgres", conf={"ds": DS})
    return published


def test_promql_returns_the_runs_f1_and_row_counts(published_run, prometheus):
    url = published_run.warehouse_url
    f1 = prometheus.wait_for(f'dataplatform_model_f1{{ds="{DS}"}}', count=2)
    published_f1 = {r["split"]: r["f1"] for r in select(
        url, "SELECT split, f1 FROM traffic_model_metrics WHERE ds = :ds", ds=DS)}
    assert {s["metric"]["split"]: float(s["value"][1]) for s in f1} == pytest.approx(
        published_f1)
    for metric in ("rows_in", "rows_clean", "rows_rejected"):
        series = prometheus.wait_for(f'dataplatform_{metric}{{ds="{DS}"}}', count=2)
        published_counts = {r["dataset"]: r[metric] for r in select(
            url, f"SELECT dataset, {metric} FROM data_quality WHERE ds = :ds", ds=DS)}
        assert {s["metric"]["dataset"]: float(s["value"][1]) for s in series} == \
            published_counts, metric
    # Every task of both runs reported its duration.
    durations = prometheus.wait_for(f'dataplatform_task_duration_seconds{{ds="{DS}"}}',
                                    count=10)
    tasks = {(s["metric"]["dag_id"], s["metric"]["task_id"]) for s in durations}
    for dag_id in ("students_nightly", "zte_tad_training"):
        # the tasks before a Spark job too: its staging clean-up must not drop them
        assert {(dag_id, "resolve_partition"), (dag_id, "quality_gate"),
                (dag_id, "publish")} <= tasks
    assert {("students_nightly", "clean_and_compute_statistics"),
            ("zte_tad_training", "ingest_traffic"), ("zte_tad_training", "train_traffic"),
            ("zte_tad_training", "promote_model")} <= tasks


def test_postgres_rerun_leaves_the_same_rows(airflow_cli, published_run):
    url = published_run.warehouse_url
    before = contract_rows(url, DS)
    assert {"students_by_grade", "traffic_model_metrics", "pipeline_metrics"} <= set(before)
    assert all(before[name] for name in ("students_score_summary", "data_quality",
                                         "traffic_confusion_matrix"))
    # The rerun of a date's publishing, as clearing `publish` in the UI does.
    result = airflow_cli(["tasks", "test", "students_nightly", "publish", DS],
                         published_run.env, "students_nightly-postgres-rerun")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    # pipeline_metrics is only rewritten by platform_metrics (its rerun: tests/plugins).
    assert contract_rows(url, DS) == before


def test_results_page_in_chromium_shows_the_serving_database(published_run, chromium,
                                                              tmp_path):
    from services import ApiServer

    url = published_run.warehouse_url
    server = ApiServer(tmp_path / "api-server", {**os.environ, **published_run.env})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        server.start()
        status, _ = server.get(RESULTS_PAGE)
        assert status == 401, "the page must ask Airflow who is signing in"
        token = server.token()
        status, body = server.get("/api/v2/plugins", token)
        assert status == 200
        (plugin,) = [p for p in json.loads(body)["plugins"] if p["name"] == "platform_results"]
        assert plugin["external_views"][0]["href"] == RESULTS_PAGE
        status, body = server.get(f"/platform-results/api/tables/students_by_grade?ds={DS}",
                                  token)
        assert status == 200 and json.loads(body)["total"] > 0

        page_url = f"{server.url}{RESULTS_PAGE}?ds={DS}"
        chromium.open(page_url, cookies={"_token": token})
        chromium.screenshot(ARTIFACTS / "results-page.png")
        text = chromium.evaluate("document.body.innerText")
    finally:
        server.stop()
        if getattr(server, "log", None) and server.log.exists():
            shutil.copy(server.log, ARTIFACTS / "results-api-server.log")

    assert f"Showing {DS}" in text
    assert (ARTIFACTS / "results-page.png").stat().st_size > 10_000
    cells = set(chromium_cells(text))
    expected = []
    for row in select(url, "SELECT * FROM students_by_grade WHERE ds = :ds", ds=DS):
        expected += [row["n_students"], row["avg_puntaje_mat"], row["avg_num_premios"]]
    for row in select(url, "SELECT * FROM data_quality WHERE ds = :ds", ds=DS):
        expected += [row["rows_in"], row["rows_rejected"]]
    for row in select(url, "SELECT * FROM traffic_model_metrics WHERE ds = :ds", ds=DS):
        expected += [row["f1"], row["accuracy"]]
    for row in select(url, "SELECT * FROM students_awards_correlation WHERE ds = :ds", ds=DS):
        if row["pearson_r"] is not None and math.isfinite(row["pearson_r"]):
            expected.append(row["pearson_r"])
    missing = [value for value in expected if format_number(value) not in cells]
    assert not missing, f"published numbers not on the page: {missing}"
    assert chromium.evaluate("document.querySelectorAll('svg.chart').length") == 4
    assert chromium.evaluate(
        "document.querySelectorAll('#confusion-matrix td.cell').length") > 0
    # No student of the landed sample is named anywhere on the page, nor in its HTML.
    html = chromium.evaluate("document.documentElement.outerHTML")
    with STUDENT_SAMPLE.open(encoding="utf-8", newline="") as handle:
        names = {row["nombre"] for row in csv.DictReader(handle) if " " in row["nombre"]}
    assert len(names) > 100
    assert [name for name in names if name in text or name in html] == []


def as_utc(moment: dt.datetime | str) -> dt.datetime:
    """A metadata-database timestamp (SQLite hands back text, without a zone)."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def chromium_cells(text: str) -> list[str]:
    """The page's table cells, as innerText separates them (tabs and new lines)."""
    return [cell.strip() for line in text.splitlines() for cell in line.split("\t")]


def test_publish_events_tell_platform_metrics_which_dates_to_refresh(published_run):
    """The asset events the runs recorded, as the scheduler hands them to platform_metrics."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.api.datamodels._generated import AssetReferenceAssetEventDagRun
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    engine = sa.create_engine(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    with engine.connect() as connection:
        recorded = connection.execute(sa.text(
            "SELECT a.name, a.uri, e.extra, e.source_dag_id, e.source_run_id, "
            "e.source_task_id, e.source_map_index, e.timestamp FROM asset_event e "
            "JOIN asset a ON a.id = e.asset_id WHERE a.name = 'data_quality' "
            "ORDER BY e.timestamp")).all()
    engine.dispose()
    events = [AssetEventDagRunReferenceResult(
        asset=AssetReferenceAssetEventDagRun(name=name, uri=uri, extra={}),
        extra=json.loads(extra) if isinstance(extra, str) else extra,
        source_dag_id=dag_id, source_run_id=run_id, source_task_id=task_id,
        source_map_index=map_index, source_aliases=[],
        timestamp=as_utc(timestamp))
        for name, uri, extra, dag_id, run_id, task_id, map_index, timestamp in recorded
        if (json.loads(extra) if isinstance(extra, str) else extra).get("ds") == DS]
    assert {e.source_dag_id for e in events} == {"students_nightly", "zte_tad_training"}

    dag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "platform_metrics.py")).dags[
        "platform_metrics"]
    choose = dag.get_task("partitions_to_refresh").python_callable
    assert choose(params={"ds": None, "dataset": None},
                  triggering_asset_events=TriggeringAssetEventsAccessor.build(events)) == [
        ("students", DS), ("zte_tad", DS)]
