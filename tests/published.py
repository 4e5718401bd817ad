"""Reading what a test run published, to compare runs with each other."""

from __future__ import annotations

import socket
from pathlib import Path

import sqlalchemy as sa

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
