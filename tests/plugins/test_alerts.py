"""Alerts: the message, the webhook POST, and the DAGs that send them.

The end-to-end path (a failed task and a missed deadline under a real
scheduler, posted to a webhook) is in tests/integration/test_scheduler_runs.py.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from dataplatform.alerts import (
    alert,
    deadline_fields,
    error_summary,
    on_deadline_missed,
    on_task_failure,
    run_deadline,
)
from dataplatform.settings import PlatformSettings
from services import Webhook


@pytest.fixture
def webhook():
    server = Webhook()
    yield server
    server.close()


FAILED_TASK = {"kind": "task_failed", "dag_id": "students_nightly",
               "task_id": "clean_and_compute_statistics", "run_id": "scheduled__2026-01-02",
               "ds": "2026-01-02", "try_number": 3,
               "error": "AirflowException: Cannot execute: spark-submit ... Error code is: 1.",
               "log_url": "http://localhost:8080/dags/students_nightly/runs/scheduled__2026-01-02"
                          "/tasks/clean_and_compute_statistics?try_number=3"}


def test_an_alert_is_one_log_line_naming_what_to_look_at(caplog):
    with caplog.at_level(logging.ERROR, logger="dataplatform.alerts"):
        text = alert(FAILED_TASK, webhook_url="")
    assert caplog.messages == [text]
    assert text == (
        "PLATFORM ALERT task failed: students_nightly.clean_and_compute_statistics "
        "ds=2026-01-02 run=scheduled__2026-01-02: AirflowException: Cannot execute: "
        "spark-submit ... Error code is: 1. (log: " + FAILED_TASK["log_url"] + ")")


def test_the_webhook_gets_the_text_and_every_field(webhook):
    text = alert(FAILED_TASK, webhook_url=webhook.url)
    assert webhook.received == [{"text": text, **FAILED_TASK}]


def test_the_webhook_is_read_from_the_environment_when_sent(webhook, monkeypatch):
    monkeypatch.setenv("PLATFORM_ALERT_WEBHOOK", webhook.url)
    alert(FAILED_TASK)
    assert [body["run_id"] for body in webhook.received] == ["scheduled__2026-01-02"]


def test_a_webhook_that_is_down_is_logged_not_raised(caplog):
    down = Webhook(status=503)
    try:
        with caplog.at_level(logging.ERROR, logger="dataplatform.alerts"):
            alert(FAILED_TASK, webhook_url=down.url)
    finally:
        down.close()
    assert len(down.received) == 1
    assert caplog.messages[0].startswith("PLATFORM ALERT task failed")
    assert "could not be posted to PLATFORM_ALERT_WEBHOOK: HTTP Error 503" in caplog.messages[1]
    assert down.url not in " ".join(caplog.messages)


def scheduler_context(**run) -> dict:
    """What Deadline.handle_miss hands the callback: the run as the REST API
    shows it, and the deadline."""
    return {"dag_run": {"dag_id": "students_nightly", "dag_run_id": "backfill__2026-01-03",
                        "state": "running", "conf": {}, "logical_date": "2026-01-03T00:00:00Z",
                        "run_after": "2026-01-04T00:00:00Z", **run},
            "deadline": {"id": "0199", "deadline_time": "2026-11-24T05:00:12+00:00"}}


@pytest.mark.parametrize("run, ds", [
    ({}, "2026-01-03"),                                            # the logical date
    ({"conf": {"ds": "2025-12-31"}}, "2025-12-31"),                # a manual run's ds param
    ({"logical_date": None}, "2026-01-04"),                        # no logical date: run_after
])
def test_a_missed_deadline_names_the_run_and_its_date(run, ds):
    fields = deadline_fields(scheduler_context(**run), dt.timedelta(minutes=5))
    assert fields["kind"] == "deadline_missed"
    assert fields["ds"] == ds
    assert fields["error"] == ("still running at 2026-11-24T05:00:12+00:00: it should finish "
                               "within 0:05:00 of being queued")
    assert fields["log_url"].endswith("/dags/students_nightly/runs/backfill__2026-01-03")


def test_run_deadline_is_measured_from_queueing_and_calls_the_alert():
    deadline = run_deadline(90)
    assert type(deadline.reference).__name__ == "DagRunQueuedAtDeadline"
    assert deadline.interval.total_seconds() == 90
    assert deadline.callback.path == "dataplatform.alerts.on_deadline_missed"
    assert deadline.callback.kwargs == {"deadline_seconds": 90}


@pytest.mark.parametrize("run", [{"state": "failed"},  # its failed task has alerted
                                 {"run_type": "backfill"}])  # all queued at its creation
def test_no_deadline_alert_for_a_failed_run_or_a_backfill(run, webhook, monkeypatch):
    monkeypatch.setenv("PLATFORM_ALERT_WEBHOOK", webhook.url)
    on_deadline_missed(scheduler_context(**run), deadline_seconds=60)
    on_deadline_missed(scheduler_context(run_type="scheduled"), deadline_seconds=60)
    assert [body["kind"] for body in webhook.received] == ["deadline_missed"]


class FailedTry:
    """The fields of the task runner's RuntimeTaskInstance an alert reads."""

    dag_id, task_id, run_id, try_number = ("students_nightly", "clean_and_compute_statistics",
                                           "manual__2026-11-24T05:00:00+00:00", 2)
    log_url = ("http://127.0.0.1:8080/dags/students_nightly/runs/manual__2026-11-24T05%3A00"
               "%3A00%2B00%3A00/tasks/clean_and_compute_statistics?try_number=2")


class ManualRun:
    logical_date = None
    run_after = dt.datetime(2026, 11, 24, 5, tzinfo=dt.UTC)


SPARK_SUBMIT_FAILURE = (
    "Cannot execute: spark-submit --master local[*] --conf spark.sql.shuffle.partitions=8 "
    "--name clean_and_compute_statistics /opt/platform/spark_apps/students/clean.py --ds "
    "2026-11-20. Error code is: 1.\nLast spark-submit output:\n[CAST_INVALID_INPUT] The value "
    "'Eva Torres' of the type \"STRING\" cannot be cast to \"INT\"")


def test_a_failed_task_alert_names_the_try_and_keeps_job_output_in_the_log(webhook,
                                                                            monkeypatch):
    from airflow.sdk.exceptions import AirflowException

    monkeypatch.setenv("PLATFORM_ALERT_WEBHOOK", webhook.url)
    on_task_failure({"ti": FailedTry(), "dag_run": ManualRun(), "params": {"ds": "2026-11-20"},
                     "exception": AirflowException(SPARK_SUBMIT_FAILURE)})
    (body,) = webhook.received
    assert body["ds"] == "2026-11-20" and body["try_number"] == 2
    assert body["log_url"] == FailedTry.log_url
    assert body["error"] == ("AirflowException: spark-submit exited with code 1; the job's "
                             "error is at the end of the task log")
    assert "Eva Torres" not in body["text"] and "--conf" not in body["text"]


@pytest.mark.parametrize("error, summary", [
    (ValueError("bad\nsecond line"), "ValueError: bad"),
    (RuntimeError("x" * 600), "RuntimeError: " + "x" * 486 + " ..."),
    ("", "no message"),
])
def test_error_summary_is_one_short_line(error, summary):
    assert error_summary(error) == summary


def test_a_deadline_of_zero_seconds_is_none():
    assert PlatformSettings.from_env({"PLATFORM_RUN_DEADLINE_SECONDS": "0"}).run_deadline_seconds \
        is None
    assert run_deadline(None) is None


@pytest.mark.parametrize("name, value", [("PLATFORM_RUN_DEADLINE_SECONDS", "-1"),
                                         ("PLATFORM_RUN_DEADLINE_SECONDS", "six hours"),
                                         ("PLATFORM_TASK_RETRY_DELAY_SECONDS", "0"),
                                         ("PLATFORM_TASK_RETRY_DELAY_SECONDS", "-5")])
def test_durations_must_be_positive(name, value):
    with pytest.raises(ValueError, match=name):
        PlatformSettings.from_env({name: value})
