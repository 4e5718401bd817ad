"""The scheduled-runs suite's arithmetic: a run's figures from the REST API's
records, its overhead against the bare spark-submits, and its table."""

from __future__ import annotations

import datetime as dt

import pytest

from bench.run import median_run
from bench.scheduled import RunFailed, busy_seconds, run_figures, with_overhead
from bench.tables import render

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def task(task_id: str, start: float, end: float) -> dict:
    return {"task_id": task_id, "start_date": at(start), "end_date": at(end)}


def test_parallel_tasks_count_once_and_gaps_not_at_all():
    def span(start, end):
        return (T0 + dt.timedelta(seconds=start), T0 + dt.timedelta(seconds=end))

    assert busy_seconds([span(0, 4), span(1, 2), span(3, 6), span(8, 9)]) == 7.0
    assert busy_seconds([]) == 0.0


def test_run_figures_split_the_wall_into_spark_other_tasks_and_turns_between():
    dag_run = {"dag_id": "zte_tad_training", "dag_run_id": "r", "state": "success",
               "queued_at": at(0), "end_date": at(21)}
    tis = [task("resolve_partition", 0.5, 1.0),
           task("ingest_traffic", 1.5, 8.5),
           task("quality_gate", 9.0, 9.2),
           task("plan_model_version", 9.5, 9.6),
           task("train_traffic", 10.0, 19.0),
           task("promote_model", 19.5, 19.7),
           task("publish", 20.0, 20.6)]
    figures = run_figures(dag_run, tis, ("ingest_traffic", "train_traffic"))
    assert figures["wall_seconds"] == 21.0
    assert figures["spark_tasks_seconds"] == 16.0
    assert figures["other_tasks_seconds"] == 1.6
    assert figures["between_tasks_seconds"] == 3.4  # 21 - 16 - 1.6
    assert list(figures["task_seconds"]) == [
        "resolve_partition", "ingest_traffic", "quality_gate", "plan_model_version",
        "train_traffic", "promote_model", "publish"]


def test_a_failed_run_is_an_error_naming_each_tasks_state():
    dag_run = {"dag_id": "zte_tad_training", "dag_run_id": "bench__2026-01-01",
               "state": "failed", "queued_at": at(0), "end_date": at(9)}
    tis = [{**task("ingest_traffic", 1.0, 8.0), "state": "failed"},
           {"task_id": "train_traffic", "start_date": None, "end_date": None,
            "state": "upstream_failed"}]
    with pytest.raises(RunFailed, match="bench__2026-01-01 ended failed.*"
                                        "'train_traffic': 'upstream_failed'"):
        run_figures(dag_run, tis, ("ingest_traffic", "train_traffic"))


def test_overhead_is_what_the_run_took_beyond_the_bare_submits():
    run = with_overhead({"wall_seconds": 20.0}, bare_wall=15.0)
    assert (run["overhead_seconds"], run["overhead_share"]) == (5.0, 0.25)


def test_scheduled_table_has_a_row_per_run_and_names_the_median():
    def run(round_number, wall):
        return with_overhead({"round": round_number, "wall_seconds": wall,
                              "spark_tasks_seconds": 15.5, "other_tasks_seconds": 2.0,
                              "between_tasks_seconds": wall - 17.5}, 15.0)

    runs = [run(1, 22.0), run(2, 19.5), run(3, 20.0)]
    report = {"name": "t", "date": "2026-11-25", "bench_seconds": 1.0,
              "machine": {"cpus": 2, "memory_gib": 24, "python": "3.11.7", "java": "17"},
              "suites": {"scheduled": {"students_nightly": {
                  "bare_spark_submits": {"wall_seconds": 15.0}, "runs": runs,
                  "median_run": median_run(runs)}}}}
    table = render(report)
    assert "| students_nightly | 1 | 22.0 | 15.5 | 2.0 | 4.5 | 15.0 | 7.0 | 0.318 |" in table
    assert "| students_nightly | 2 | 19.5 | 15.5 | 2.0 | 2.0 | 15.0 | 4.5 | 0.231 |" in table
    assert "Median run: students_nightly 25.0% (5.0 s of 20.0 s)." in table
