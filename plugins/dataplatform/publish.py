"""Publish one slice of tables to the warehouse (Parquet) and the serving database.

A slice is what one run owns: a ``ds`` (and, for shared tables, a ``dataset``).
Readers see the old slice or the new one, never a mix:

- each warehouse partition is written beside its folder under a hidden name
  (Spark and Arrow skip ``.``-prefixed folders), then swapped in with one
  ``renameat2(RENAME_EXCHANGE)`` where the kernel has it, else two renames;
- the database rows of the slice are deleted and inserted in one transaction,
  which commits only after every warehouse partition is in place.

Publishing the same slice again gives the same rows, never duplicates.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from dataplatform.tables import TABLES, PublishedTable
from spark_apps.layout import DataLayout

log = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class ContractError(ValueError):
    """Rows that do not have a published table's columns."""


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically; False where the kernel or libc cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                       _RENAME_EXCHANGE)
    return result == 0


def replace_directory(staged: Path, target: Path) -> None:
    """Put ``staged`` at ``target``; the old ``target`` is deleted afterwards."""
    if not target.exists():
        os.rename(staged, target)
        return
    if _exchange(staged, target):
        shutil.rmtree(staged)  # now holds the old partition
        return
    retired = target.with_name(f".{target.name}.retired-{uuid.uuid4().hex}")
    os.rename(target, retired)
    os.rename(staged, target)
    shutil.rmtree(retired)


def partition_path(warehouse_table: Path, table: PublishedTable,
                   keys: Mapping[str, str]) -> Path:
    path = warehouse_table
    for key in table.partition_keys:
        path = path / f"{key}={keys[key]}"
    return path


def conform(table: PublishedTable, rows: pa.Table) -> pa.Table:
    """``rows`` with exactly the table's data columns, in order, typed."""
    expected = table.data_columns
    missing = [c for c in expected if c not in rows.column_names]
    unexpected = [c for c in rows.column_names if c not in expected]
    if missing or unexpected:
        raise ContractError(
            f"{table.name}: rows do not match the contract "
            f"(missing {missing or 'none'}, unexpected {unexpected or 'none'})")
    return rows.select(expected).cast(table.arrow_schema(expected))


def _stage_partition(target: Path, rows: pa.Table) -> Path:
    staged = target.parent / f".{target.name}.staged-{uuid.uuid4().hex}"
    staged.mkdir(parents=True)
    part = staged / "part-00000.parquet"
    pq.write_table(rows, part)
    with open(part, "rb") as handle:
        os.fsync(handle.fileno())
    return staged


def _sql_key_values(keys: Mapping[str, str]) -> dict:
    return {k: dt.date.fromisoformat(v) if k == "ds" else v for k, v in keys.items()}


def serving_engine(url: str) -> sa.engine.Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(url)


def publish_slice(data_dir: Path, warehouse_url: str, keys: Mapping[str, str],
                  tables: Mapping[str, pa.Table]) -> dict[str, int]:
    """Replace the slice ``keys`` of every table in ``tables``; returns row counts."""
    definitions = {name: TABLES[name] for name in tables}
    for definition in definitions.values():
        absent = [k for k in definition.partition_keys if k not in keys]
        if absent:
            raise ContractError(f"{definition.name}: no value for partition key(s) {absent}")
    conformed = {name: conform(definitions[name], rows) for name, rows in tables.items()}
    layout = DataLayout(str(data_dir))

    staged: dict[Path, Path] = {}
    engine = serving_engine(warehouse_url)
    metadata = sa.MetaData()
    sql_tables = {name: definition.sql_table(metadata) for name, definition in definitions.items()}
    metadata.create_all(engine, checkfirst=True)
    try:
        for name, rows in conformed.items():
            target = partition_path(Path(layout.warehouse_table(name)), definitions[name], keys)
            target.parent.mkdir(parents=True, exist_ok=True)
            staged[target] = _stage_partition(target, rows)
        with engine.begin() as connection:
            for name, rows in conformed.items():
                sql_table = sql_tables[name]
                key_values = _sql_key_values(
                    {k: keys[k] for k in definitions[name].partition_keys})
                connection.execute(sql_table.delete().where(
                    sa.and_(*(sql_table.c[k] == v for k, v in key_values.items()))))
                sql_rows = [{**row, **key_values} for row in rows.to_pylist()]
                if sql_rows:
                    connection.execute(sql_table.insert(), sql_rows)
            for target, staged_dir in staged.items():
                replace_directory(staged_dir, target)
    finally:
        for staged_dir in staged.values():
            if staged_dir.exists():
                shutil.rmtree(staged_dir)
        engine.dispose()
    counts = {name: rows.num_rows for name, rows in conformed.items()}
    log.info("published %s for %s", counts, dict(keys))
    return counts
