"""Failure alerts: one actionable message per failed task or missed deadline.

A message names the DAG, the run, the partition date, what went wrong and
where to read the log. It is always logged (one line, ``PLATFORM ALERT ...``),
and when ``PLATFORM_ALERT_WEBHOOK`` is set it is POSTed there as JSON
(Slack-style ``text`` plus the fields). Both paths share ``alert``:

- ``on_task_failure``: the nightly DAGs' ``on_failure_callback``, called by
  the task runner once a task has failed for good (a try that will be retried
  calls ``on_retry_callback`` instead, so a retried crash sends nothing);
- ``on_deadline_missed``: the callback of the DAGs' ``DeadlineAlert``, run by
  the executor when the scheduler finds a run still going past its deadline.

The webhook URL is read when the alert is sent, never stored in a serialized
DAG or a log line: a chat webhook URL is a credential.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Mapping

log = logging.getLogger(__name__)

WEBHOOK_ENV = "PLATFORM_ALERT_WEBHOOK"
WEBHOOK_TIMEOUT_SECONDS = 10
MAX_ERROR_CHARS = 500  # a stack trace is for the log, not the chat message


def alert_text(fields: Mapping) -> str:
    """One line a person can act on."""
    what = ("task failed" if fields["kind"] == "task_failed"
            else "run missed its deadline")
    where = fields["dag_id"] + (f".{fields['task_id']}" if fields.get("task_id") else "")
    return (f"PLATFORM ALERT {what}: {where} ds={fields.get('ds') or '?'} "
            f"run={fields['run_id']}: {fields['error']} (log: {fields['log_url']})")


def alert(fields: Mapping, webhook_url: str | None = None) -> str:
    """Log the alert and, when a webhook is configured, POST it there.

    A webhook that is down is logged, not raised: the alert is in the log
    either way, and a callback must not mask the failure it reports.
    """
    text = alert_text(fields)
    log.error("%s", text)
    webhook_url = webhook_url if webhook_url is not None else os.environ.get(WEBHOOK_ENV)
    if webhook_url:
        _mask(webhook_url)
        body = json.dumps({"text": text, **fields}, default=str).encode()
        request = urllib.request.Request(webhook_url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
                response.read()
        except OSError as error:  # URLError and HTTPError are OSErrors
            log.error("the alert could not be posted to %s: %s", WEBHOOK_ENV, error)
    return text


def _mask(secret: str) -> None:
    """Keep the webhook URL out of task logs, should a library print it."""
    from airflow.sdk.log import mask_secret

    mask_secret(secret)


# SparkSubmitHook's message: the whole command line, then the driver's last
# output, which may quote input values. Neither belongs in a chat message.
_SPARK_SUBMIT_FAILED = re.compile(r"^Cannot execute: .*?Error code is: (-?\d+)", re.DOTALL)


def error_summary(error: object) -> str:
    """The error in one line: its type and first line, with no command line or
    job output (those stay in the task log, which log_url points at)."""
    message = str(error)
    spark_submit = _SPARK_SUBMIT_FAILED.match(message)
    if spark_submit:
        message = (f"spark-submit exited with code {spark_submit.group(1)}; the job's "
                   "error is at the end of the task log")
    first_line = message.strip().splitlines()[0] if message.strip() else "no message"
    text = f"{type(error).__name__}: {first_line}" if isinstance(error, BaseException) else (
        first_line)
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " ..."


def task_failure_fields(context: Mapping) -> dict:
    ti = context["ti"]
    ds = _partition_date(context)
    return {
        "kind": "task_failed",
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "ds": ds,
        "try_number": ti.try_number,
        "error": error_summary(context.get("exception") or "unknown error"),
        "log_url": ti.log_url,
    }


def _partition_date(context: Mapping) -> str | None:
    """The run's ds as resolve_partition computed it, else as it would."""
    from dataplatform.partition import partition_date_from_context

    try:
        return partition_date_from_context(context)
    except (KeyError, ValueError):
        return None


def on_task_failure(context: Mapping) -> None:
    alert(task_failure_fields(context))


def deadline_fields(context: Mapping, deadline: dt.timedelta | None = None) -> dict:
    """From the context the scheduler gives a deadline callback: the run as the
    REST API returns it, and the deadline."""
    from airflow.configuration import conf

    from dataplatform.partition import resolve_partition_date

    run = context["dag_run"]
    moments = [dt.datetime.fromisoformat(run[key]) if run.get(key) else None
               for key in ("logical_date", "run_after")]
    try:
        ds = resolve_partition_date((run.get("conf") or {}).get("ds"), *moments)
    except ValueError:
        ds = None
    base_url = conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")
    limit = f"within {deadline} of being queued" if deadline else "by its deadline"
    return {
        "kind": "deadline_missed",
        "dag_id": run["dag_id"],
        "task_id": None,
        "run_id": run["dag_run_id"],
        "ds": ds,
        "error": (f"still {run.get('state')} at {context['deadline']['deadline_time']}: "
                  f"it should finish {limit}"),
        "log_url": (f"{base_url}/dags/{run['dag_id']}/runs/"
                    f"{urllib.parse.quote(run['dag_run_id'])}"),
    }


def on_deadline_missed(context: Mapping, deadline_seconds: float | None = None) -> None:
    """Alert, unless the run has failed (its failed task has alerted already) or
    is a backfill's (see ``run_deadline``)."""
    run = context["dag_run"]
    if run.get("state") == "failed" or run.get("run_type") == "backfill":
        log.info("deadline of %s passed; no alert for a %s %s run", run.get("dag_run_id"),
                 run.get("state"), run.get("run_type"))
        return
    deadline = dt.timedelta(seconds=deadline_seconds) if deadline_seconds else None
    alert(deadline_fields(context, deadline))


def run_deadline(seconds: float | None):
    """The DeadlineAlert of a nightly DAG: the run must finish ``seconds`` after
    it was queued; None when ``seconds`` is None (no deadline).

    Queued, not ``run_after``: a nightly run is queued as soon as its
    ``run_after`` passes, and a manual run when it is triggered. Backfills are
    not held to it: Airflow queues all of a backfill's runs when the backfill
    is created, so its later dates would be late before they start (their
    deadline is skipped in ``on_deadline_missed``). A run cleared and rerun
    gets no new deadline: Airflow makes deadlines only when it creates a run.
    """
    from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback

    if seconds is None:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=dt.timedelta(seconds=seconds),
        callback=SyncCallback(on_deadline_missed, kwargs={"deadline_seconds": seconds}),
        name="nightly run deadline",
    )
