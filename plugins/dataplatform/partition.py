"""The partition date (``ds``) of a DAG run.

Airflow 3 manual and asset-triggered runs may have no logical date, so
``{{ ds }}`` cannot be trusted there: the date comes from an explicit ``ds``
param, else the logical date, else ``run_after`` (contracts.md).
"""

from __future__ import annotations

import datetime as dt

from spark_apps.layout import validate_ds


def resolve_partition_date(param_ds: str | None, logical_date: dt.datetime | None,
                           run_after: dt.datetime | None) -> str:
    if param_ds:
        return validate_ds(param_ds.strip())
    moment = logical_date or run_after
    if moment is None:
        raise ValueError("the run has neither a logical date nor run_after: pass the ds param")
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.date().isoformat()


def partition_date_from_context(context) -> str:
    dag_run = context["dag_run"]
    return resolve_partition_date(context["params"].get("ds"), dag_run.logical_date,
                                  dag_run.run_after)
