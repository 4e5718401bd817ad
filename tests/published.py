"""Reading what a test run published, to compare runs with each other."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import sqlalchemy as sa
from dataplatform.tables import TABLES

# Measured, not derived from the data: they differ from run to run.
TIMING_COLUMNS = {"train_seconds"}


def published_rows(data_dir: Path, ds: str) -> dict[str, list[dict]]:
    """Every serving-database row of ``ds``, timings aside, table by table."""
    engine = sa.create_engine(f"sqlite:///{data_dir}/warehouse.db")
    tables = {}
    with engine.connect() as connection:
        for table in sa.inspect(engine).get_table_names():
            rows = connection.execute(sa.text(f"SELECT * FROM {table} WHERE ds = :ds"),
                                      {"ds": ds})
            tables[table] = sorted(({k: v for k, v in row._mapping.items()
                                     if k not in TIMING_COLUMNS} for row in rows), key=repr)
    engine.dispose()
    return tables


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def contract_rows(url: str, ds: str | None = None,
                  measured: tuple[str, ...] = ("train_seconds", "value")) -> dict[str, list]:
    """Every published table's rows (of ``ds``, or all), typed by the contract and
    sorted; the ``measured`` columns (timings, metric values) left out."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    found = {}
    with engine.connect() as connection:
        for name, definition in TABLES.items():
            if not sa.inspect(engine).has_table(name):
                continue
            table = definition.sql_table(metadata)
            query = sa.select(*(table.c[c] for c in definition.column_names
                                if c not in measured))
            if ds is not None:
                query = query.where(table.c.ds == dt.date.fromisoformat(ds))
            found[name] = sorted(tuple(row) for row in connection.execute(query))
    engine.dispose()
    return found
