"""Reading what a test run published, to compare runs with each other."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from dataplatform.students import STATISTICS_TABLES
from dataplatform.tables import TABLES

# What students_nightly publishes for a date.
STUDENT_TABLES = (*STATISTICS_TABLES, "data_quality", "data_quality_rejections")
# Measured, not derived from the data: they differ from run to run.
TIMING_COLUMNS = ("train_seconds",)


def published_rows(data_dir: Path, ds: str) -> dict[str, list[tuple]]:
    """Every row of ``ds`` in a run's SQLite serving database, timings aside."""
    return contract_rows(f"sqlite:///{data_dir}/warehouse.db", ds)


# pipeline_metrics rows whose value is a clock reading, not derived from the data.
MEASURED_METRICS = ("dataplatform_metrics_refreshed_timestamp_seconds",
                    "dataplatform_task_duration_seconds", "dataplatform_model_train_seconds")


def table_dicts(url: str, ds: str | None = None, tables: tuple[str, ...] | None = None,
                measured: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    """Rows (of ``ds``, or all) of ``tables`` (default: every published table
    present) as dicts typed by the contract, the ``measured`` columns left out;
    a named table not created yet has no rows."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    found = {}
    with engine.connect() as connection:
        for name in tables or TABLES:
            if not sa.inspect(engine).has_table(name):
                if tables:
                    found[name] = []
                continue
            definition = TABLES[name]
            table = definition.sql_table(metadata)
            query = sa.select(*(table.c[c] for c in definition.column_names
                                if c not in measured))
            if ds is not None:
                query = query.where(table.c.ds == dt.date.fromisoformat(ds))
            found[name] = [dict(row._mapping) for row in connection.execute(query)]
    engine.dispose()
    return found


def contract_rows(url: str, ds: str | None = None,
                  measured: tuple[str, ...] = TIMING_COLUMNS) -> dict[str, list]:
    """Every published table's rows (of ``ds``, or all), typed by the contract and
    sorted; the ``measured`` columns and the values of MEASURED_METRICS left out."""
    found = {}
    for name, rows in table_dicts(url, ds, measured=measured).items():
        for row in rows:
            if row.get("metric") in MEASURED_METRICS:
                row["value"] = None
        found[name] = sorted((tuple(row.values()) for row in rows), key=repr)
    return found
