"""students_nightly under a real scheduler: backfills, a crash, two dates at once,
alerts, and what reaches the logs.

One deployment, as in production but on 127.0.0.1: a scheduler with the
LocalExecutor, a dag-processor and an api-server, on a Postgres metadata
database; the serving database is Postgres too. The scenario runs once (module
fixture) and each test checks one property of what it left:

1. ``airflow backfill create`` over five dates (two runs at a time) and a sixth
   whose rows are nearly all bad;
2. a second backfill reprocessing the five dates, during which the Spark job of
   one date is killed (SIGKILL) while it writes; Airflow retries the task.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import signal
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pyarrow.dataset as pads
import pytest
import sqlalchemy as sa
from dataplatform.generators.students import write_csv
from published import STUDENT_TABLES, contract_rows, table_dicts
from services import AirflowDeployment, Webhook
from students_reference import assert_matches_reference, reference_clean_rows, reference_tables

pytestmark = pytest.mark.slow

DAG_ID = "students_nightly"
DATES = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]
BAD_DATE = "2026-01-06"  # every row but the first is bad: the gate refuses it (a manual run)
CRASH_DATE = DATES[2]  # the largest input, so that its write lasts long enough to kill
DEADLINE_SECONDS = 15  # shorter than any run: every run misses it
RUN_TIMEOUT = 900


@dataclass
class Scenario:
    deployment: AirflowDeployment
    data_dir: Path
    serving_url: str
    metadata: sa.Engine
    webhook: Webhook
    secrets: dict[str, str]
    student_names: set[str]
    first: dict[str, dict] = field(default_factory=dict)  # published rows after backfill 1
    second: dict[str, dict] = field(default_factory=dict)  # ... after backfill 2
    crash: dict = field(default_factory=dict)


def land_inputs(data_dir: Path) -> dict[str, Path]:
    """Each date its own file, sized differently, so a date reading another's
    input shows in its counts."""
    files = {}
    for index, ds in enumerate([*DATES, BAD_DATE]):
        rows = 150_000 if ds == CRASH_DATE else 300 + 37 * index
        dirty = 1.0 if ds == BAD_DATE else 0.05
        path = data_dir / "landing" / "students" / f"ds={ds}" / f"students_{ds}.csv"
        write_csv(path, rows, seed=100 + index, dirty_fraction=dirty)
        files[ds] = path
    return files


def published(serving_url: str, data_dir: Path, ds: str) -> dict:
    """The date's rows in the serving database and in the warehouse."""
    serving = {table: rows for table, rows in contract_rows(serving_url, ds).items()
               if table in STUDENT_TABLES}
    warehouse = {}
    for table in STUDENT_TABLES:
        folder = data_dir / "warehouse" / table / f"ds={ds}"
        if folder.exists():
            rows = pads.dataset(folder).to_table().to_pylist()
            warehouse[table] = sorted((tuple(row.items()) for row in rows), key=repr)
    return {"serving": serving, "warehouse": warehouse}


def backfill_running(metadata: sa.Engine) -> list[tuple]:
    """The DAG's backfill not yet marked complete by the scheduler, with its runs."""
    query = sa.text("SELECT b.id, r.run_id, r.state FROM backfill b "
                    "LEFT JOIN dag_run r ON r.backfill_id = b.id WHERE b.dag_id = :dag "
                    "AND b.completed_at IS NULL")
    with metadata.connect() as connection:
        return [tuple(row) for row in connection.execute(query, {"dag": DAG_ID})]


def wait_for_backfill(metadata: sa.Engine, timeout: float = RUN_TIMEOUT) -> None:
    """Until the scheduler has marked the DAG's backfill complete (every run
    finished): Airflow refuses a second backfill of a DAG while one runs."""
    deadline = time.monotonic() + timeout
    while running := backfill_running(metadata):
        if time.monotonic() > deadline:
            raise TimeoutError(f"backfill still running after {timeout:.0f}s: {running}")
        time.sleep(2)


def wait_for_manual_run(metadata: sa.Engine, timeout: float = RUN_TIMEOUT) -> dict:
    deadline = time.monotonic() + timeout
    query = sa.text("SELECT run_id, state, conf FROM dag_run WHERE dag_id = :dag "
                    "AND run_type = 'manual'")
    while True:
        with metadata.connect() as connection:
            runs = [dict(row._mapping) for row in connection.execute(query, {"dag": DAG_ID})]
        if runs and all(run["state"] in ("success", "failed") for run in runs):
            (run,) = runs
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"manual run not finished after {timeout:.0f}s: {runs}")
        time.sleep(2)


def wait_for_dag(deployment: AirflowDeployment, metadata: sa.Engine) -> None:
    deadline = time.monotonic() + 180
    while True:
        with metadata.connect() as connection:
            if connection.execute(sa.text("SELECT 1 FROM serialized_dag WHERE dag_id = :dag"),
                                  {"dag": DAG_ID}).first():
                return
        if time.monotonic() > deadline:
            tail = (deployment.root / "dag-processor.log").read_text()[-3000:]
            raise TimeoutError(f"{DAG_ID} was not parsed within 180s:\n{tail}")
        time.sleep(1)


def backfill(deployment: AirflowDeployment, start: str, end: str, *extra: str) -> None:
    result = deployment.airflow("backfill", "create", "--dag-id", DAG_ID, "--from-date", start,
                                "--to-date", end, "--max-active-runs", "2", *extra)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def spark_job_processes(ds: str) -> list[psutil.Process]:
    """The date's spark-submit, its JVM and the Python driver the JVM started."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "students/clean.py" in cmdline and ds in cmdline:
            found.append(process)
    return found


def kill_while_writing(data_dir: Path, ds: str, outcome: dict, stop: threading.Event,
                       snapshot) -> None:
    """SIGKILL the date's Spark job once it is writing (a ``_temporary`` folder is
    Hadoop's committer at work under the date's staging or quarantine folder),
    then take ``snapshot()``: what readers see while the killed job's files lie there."""
    watched = [data_dir / "staging" / "students" / f"ds={ds}",
               data_dir / "quarantine" / "students" / f"ds={ds}"]
    while not stop.is_set():
        writing = [str(path.relative_to(data_dir)) for folder in watched if folder.exists()
                   for path in folder.rglob("_temporary")]
        victims = spark_job_processes(ds) if writing else []
        if victims:
            killed, command_lines = [], []
            for process in victims:
                try:
                    command_lines.append(" ".join(process.cmdline()))
                    process.send_signal(signal.SIGKILL)
                    killed.append(process.pid)
                except psutil.Error:  # it ended between the listing and the kill
                    continue
            if killed:
                outcome.update(writing=writing, killed=killed, command_lines=command_lines,
                               at=dt.datetime.now(dt.UTC))
                outcome["seen"] = snapshot()
                return
        time.sleep(0.02)


@pytest.fixture(scope="module")
def scenario(postgres, java, tmp_path_factory) -> Scenario:
    root = tmp_path_factory.mktemp("scheduler")
    data_dir = root / "data"
    inputs = land_inputs(data_dir)
    names = set()
    for path in inputs.values():
        with path.open(encoding="utf-8", newline="") as handle:
            names |= {row["nombre"] for row in csv.DictReader(handle)
                      if row["nombre"] and " " in row["nombre"]}
    serving_url = postgres.create_database("serving_scheduled")
    metadata_url = postgres.create_database("airflow_scheduled")
    webhook = Webhook()
    env = {**os.environ,
           "PLATFORM_DATA_DIR": str(data_dir),
           "PLATFORM_WAREHOUSE_URL": serving_url,
           "PLATFORM_ALERT_WEBHOOK": webhook.url,
           "PLATFORM_RUN_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
           "PLATFORM_TASK_RETRIES": "1",
           "PLATFORM_TASK_RETRY_DELAY_SECONDS": "2",
           # Backfills only: no nightly run of today's date, which has no input.
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
    deployment = AirflowDeployment(root / "airflow", env, metadata_url)
    metadata = sa.create_engine(metadata_url)
    scenario = Scenario(deployment, data_dir, serving_url, metadata, webhook,
                        secrets={"database password": postgres.password,
                                 "JWT secret": deployment.env["AIRFLOW__API_AUTH__JWT_SECRET"],
                                 "API secret key": deployment.env["AIRFLOW__API__SECRET_KEY"],
                                 "alert webhook": webhook.url},
                        student_names=names)
    try:
        deployment.start()
        wait_for_dag(deployment, metadata)
        unpaused = deployment.airflow("dags", "unpause", DAG_ID)  # backfills run unpaused DAGs
        assert unpaused.returncode == 0, unpaused.stderr[-2000:]

        # Five dates, two at a time; beside them, a manual run of a bad date.
        backfill(deployment, DATES[0], DATES[-1])
        triggered = deployment.airflow("dags", "trigger", DAG_ID,
                                       "--conf", json.dumps({"ds": BAD_DATE}))
        assert triggered.returncode == 0, triggered.stderr[-2000:]
        wait_for_backfill(metadata)
        wait_for_manual_run(metadata)
        scenario.first = {ds: published(serving_url, data_dir, ds) for ds in [*DATES, BAD_DATE]}

        # The same five dates again; one date's Spark job is killed as it writes.
        stop = threading.Event()
        killer = threading.Thread(
            target=kill_while_writing, daemon=True,
            args=(data_dir, CRASH_DATE, scenario.crash, stop,
                  lambda: published(serving_url, data_dir, CRASH_DATE)))
        killer.start()
        try:
            backfill(deployment, DATES[0], DATES[-1], "--reprocess-behavior", "completed")
            wait_for_backfill(metadata)
        finally:
            stop.set()
            killer.join(timeout=60)
        scenario.second = {ds: published(serving_url, data_dir, ds) for ds in DATES}
        yield scenario
    finally:
        deployment.stop()
        webhook.close()
        metadata.dispose()


def task_tries(metadata: sa.Engine, task_id: str) -> list[dict]:
    """Every try of ``task_id``: earlier tries (history) and the latest."""
    query = ("SELECT run_id, try_number, state, start_date, end_date FROM {table} "
             "WHERE dag_id = :dag AND task_id = :task")
    with metadata.connect() as connection:
        return [dict(row._mapping) for table in ("task_instance_history", "task_instance")
                for row in connection.execute(sa.text(query.format(table=table)),
                                              {"dag": DAG_ID, "task": task_id})]


def backfill_runs(metadata: sa.Engine) -> list[dict]:
    with metadata.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.text(
            "SELECT run_id, state, logical_date FROM dag_run WHERE dag_id = :dag "
            "AND run_type = 'backfill' ORDER BY logical_date"), {"dag": DAG_ID})]


# ----------------------------------------------------------------- backfills


def test_backfill_publishes_each_date_once_with_its_own_statistics(scenario):
    runs = {run["logical_date"].date().isoformat(): run["state"]
            for run in backfill_runs(scenario.metadata)}
    assert runs == dict.fromkeys(DATES, "success")
    for ds in DATES:
        tables = table_dicts(scenario.serving_url, ds, STUDENT_TABLES)
        (quality,) = tables["data_quality"]  # one row per date: published once
        path = scenario.data_dir / "landing" / "students" / f"ds={ds}" / f"students_{ds}.csv"
        clean, rows_in = reference_clean_rows(path)
        assert (quality["rows_in"], quality["rows_clean"], quality["rows_rejected"]) == (
            rows_in, len(clean), rows_in - len(clean)), ds
        assert_matches_reference(tables, reference_tables(clean))
        # The warehouse holds the same rows as the serving database.
        for table in STUDENT_TABLES:
            assert len(scenario.first[ds]["warehouse"].get(table, [])) == len(tables[table])
    quality_folder = scenario.data_dir / "warehouse" / "data_quality"
    partitions = sorted(path.name for path in quality_folder.iterdir())
    assert partitions == [f"ds={ds}" for ds in DATES]


def test_a_second_backfill_reprocessing_the_dates_leaves_the_same_rows(scenario):
    assert scenario.second == {ds: scenario.first[ds] for ds in DATES}
    published_tries = [t for t in task_tries(scenario.metadata, "publish")
                       if t["state"] == "success"]
    assert len(published_tries) == 2 * len(DATES), "each date published once per backfill"


def test_the_refused_date_published_nothing(scenario):
    assert scenario.first[BAD_DATE] == {"serving": dict.fromkeys(STUDENT_TABLES, []),
                                        "warehouse": {}}


# ----------------------------------------------------------------- crash safety


def test_a_job_killed_mid_write_is_invisible_and_its_retry_publishes_the_same_rows(scenario):
    crash = scenario.crash
    assert crash.get("killed"), "the Spark job was never caught writing"
    assert any("_temporary" in path for path in crash["writing"])
    # Readers during the crash: the previous partition, whole.
    assert crash["seen"] == scenario.first[CRASH_DATE]
    tries = [t for t in task_tries(scenario.metadata, "clean_and_compute_statistics")
             if CRASH_DATE in t["run_id"]]
    killed = [t for t in tries if t["start_date"] <= crash["at"] <= (t["end_date"] or crash["at"])]
    assert killed and killed[0]["state"] in ("failed", "up_for_retry"), tries
    assert any(t["state"] == "success" and t["start_date"] > crash["at"] for t in tries), tries
    assert scenario.second[CRASH_DATE] == scenario.first[CRASH_DATE]


# ----------------------------------------------------------------- two dates at once


def test_two_dates_ran_at_once(scenario):
    spans = [(t["start_date"], t["end_date"], t["run_id"])
             for t in task_tries(scenario.metadata, "clean_and_compute_statistics")
             if t["start_date"] and t["end_date"]]
    overlapping = [(a[2], b[2]) for a in spans for b in spans
                   if a[2] < b[2] and a[0] < b[1] and b[0] < a[1]]
    assert overlapping, spans
    # ...and each date's rows are its own input's (checked above per date).


def test_tasks_ran_from_workers_of_a_forkserver_that_preloaded_the_operators(scenario):
    # Every run above went through these workers (SCHEDULER_SETTINGS).
    log = (scenario.deployment.root / "scheduler.log").read_text()
    assert "Set multiprocessing start method to 'forkserver' for scheduler" in log
    preload = re.search(r"Set forkserver preload modules for scheduler: \[(.*)\]", log)
    assert preload and "'airflow.providers.apache.spark.operators.spark_submit'" in preload[1]


# ----------------------------------------------------------------- alerts and deadlines


def alerts(scenario: Scenario, kind: str) -> list[dict]:
    return [body for body in scenario.webhook.received if body["kind"] == kind]


def test_the_refused_date_sends_one_actionable_alert(scenario):
    (failure,) = alerts(scenario, "task_failed")  # the killed try is retried: no alert
    assert failure["dag_id"] == DAG_ID and failure["task_id"] == "quality_gate"
    assert failure["ds"] == BAD_DATE
    manifest = json.loads(next(scenario.data_dir.glob(
        f"landing/students/ds={BAD_DATE}/*.manifest.json")).read_text())
    share = manifest["rows_rejected"] / manifest["rows"]
    assert (f"{share:.1%} of rows rejected ({manifest['rows_rejected']} of {manifest['rows']}), "
            "above the 20% gate") in failure["error"], failure
    assert failure["run_id"].startswith("manual__")
    assert failure["log_url"] == (f"{scenario.deployment.api.url}/dags/{DAG_ID}/runs/"
                                  f"{urllib.parse.quote(failure['run_id'])}"
                                  "/tasks/quality_gate?try_number=1")
    gate_logs = [path for path in scenario.deployment.logs()
                 if f"run_id={failure['run_id']}/task_id=quality_gate/" in str(path)]
    # Task logs are JSON lines: look for the message's start, not its escaped whole.
    logged = f"PLATFORM ALERT task failed: {DAG_ID}.quality_gate ds={BAD_DATE}"
    assert any(logged in path.read_text() for path in gate_logs), gate_logs


def test_a_run_past_its_deadline_sends_one_alert_and_backfills_none(scenario):
    """The manual run (longer than DEADLINE_SECONDS) was still running when its
    deadline passed; the backfills' runs, all queued at once, are not held to it."""
    missed = alerts(scenario, "deadline_missed")
    (manual,) = [body for body in alerts(scenario, "task_failed")]
    assert Counter(body["run_id"] for body in missed) == {manual["run_id"]: 1}
    (body,) = missed
    assert body["ds"] == BAD_DATE
    assert f"within {dt.timedelta(seconds=DEADLINE_SECONDS)} of being queued" in body["error"]
    assert body["text"].startswith(f"PLATFORM ALERT run missed its deadline: {DAG_ID} ")
    # The scheduler did call the backfills' deadline callbacks, which stood down.
    callbacks = [path.read_text() for path in scenario.deployment.logs()
                 if "executor_callbacks" in str(path)]
    skipped = {run["run_id"] for run in backfill_runs(scenario.metadata)
               if any(f"deadline of {run['run_id']} passed; no alert" in text
                      for text in callbacks)}
    assert skipped, "no backfill run's deadline callback ran"


# ----------------------------------------------------------------- secrets and names


def test_no_secret_in_any_log_or_spark_command_line(scenario):
    logs = scenario.deployment.logs()
    assert any("task_id=clean_and_compute_statistics" in str(path) for path in logs)
    texts = {path: path.read_text(errors="replace") for path in logs}
    assert any("Spark-Submit cmd" in text for text in texts.values())
    for name, secret in scenario.secrets.items():
        leaked = [str(path) for path, text in texts.items() if secret in text]
        assert not leaked, f"the {name} is in {leaked}"
        assert not any(secret in line for line in scenario.crash.get("command_lines", []))


def test_no_student_name_in_a_log_or_a_published_table(scenario):
    assert len(scenario.student_names) > 100
    pattern = re.compile("|".join(re.escape(name) for name in sorted(scenario.student_names)))
    for path in scenario.deployment.logs():
        found = pattern.search(path.read_text(errors="replace"))
        assert not found, f"{found.group()!r} in {path}"
    published_text = json.dumps([scenario.first, scenario.second], default=str)
    found = pattern.search(published_text)
    assert not found, f"{found.group()!r} in a published table"
