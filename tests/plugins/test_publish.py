"""Publishing a slice: atomic warehouse partitions and replaced database rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as pads
import pytest
import sqlalchemy as sa
from dataplatform.publish import ContractError, publish_slice, replace_directory


def _quality(rows_in: int) -> dict[str, pa.Table]:
    return {
        "data_quality": pa.table({"rows_in": [rows_in], "rows_clean": [rows_in - 1],
                                  "rows_rejected": [1], "files_in": [1],
                                  "files_rejected": [0]}),
        "data_quality_rejections": pa.table({"reason": ["id_missing"], "rows": [1]}),
    }


def _db_rows(url: str, table: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1, 2")).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_republishing_a_slice_replaces_it(tmp_path):
    url = f"sqlite:///{tmp_path}/serving.db"
    keys = {"ds": "2026-02-01", "dataset": "students"}
    publish_slice(tmp_path, url, keys, _quality(10))
    publish_slice(tmp_path, url, {"ds": "2026-02-01", "dataset": "zte_tad"}, _quality(7))
    publish_slice(tmp_path, url, keys, _quality(12))
    assert _db_rows(url, "data_quality") == [
        ("2026-02-01", "students", 12, 11, 1, 1, 0),
        ("2026-02-01", "zte_tad", 7, 6, 1, 1, 0),
    ]
    partition = tmp_path / "warehouse/data_quality/ds=2026-02-01/dataset=students"
    assert [p.name for p in partition.iterdir()] == ["part-00000.parquet"]
    table = pads.dataset(tmp_path / "warehouse/data_quality", partitioning="hive").to_table()
    assert sorted(zip(table["dataset"].to_pylist(), table["rows_in"].to_pylist(),
                      strict=True)) == [("students", 12), ("zte_tad", 7)]
    # Nothing half-made is left beside the partitions.
    assert [p.name for p in partition.parent.iterdir()] == ["dataset=students", "dataset=zte_tad"]


def test_rows_off_contract_publish_nothing(tmp_path):
    url = f"sqlite:///{tmp_path}/serving.db"
    bad = {**_quality(10), "data_quality_rejections": pa.table({"reason": ["x"]})}
    with pytest.raises(ContractError, match=r"data_quality_rejections: .*missing \['rows'\]"):
        publish_slice(tmp_path, url, {"ds": "2026-02-02", "dataset": "students"}, bad)
    assert not (tmp_path / "warehouse").exists()


def test_a_failing_database_leaves_the_old_partition(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/serving.db"
    keys = {"ds": "2026-02-03", "dataset": "students"}
    publish_slice(tmp_path, url, keys, _quality(10))
    # A table the database rejects mid-transaction: rows_in must be an integer.
    broken = {**_quality(10), "data_quality": pa.table({
        "rows_in": ["x"], "rows_clean": [1], "rows_rejected": [1], "files_in": [1],
        "files_rejected": [0]})}
    with pytest.raises(Exception):  # noqa: B017 - the cast error type is pyarrow's
        publish_slice(tmp_path, url, keys, broken)
    assert _db_rows(url, "data_quality")[0][2] == 10
    table = pads.dataset(tmp_path / "warehouse/data_quality", partitioning="hive").to_table()
    assert table["rows_in"].to_pylist() == [10]
    leftovers = list((tmp_path / "warehouse/data_quality/ds=2026-02-03").glob(".*"))
    assert leftovers == []


def test_replace_directory_swaps_whole_folders(tmp_path):
    target, staged = tmp_path / "ds=1", tmp_path / ".staged"
    target.mkdir()
    (target / "old.parquet").write_text("old")
    staged.mkdir()
    (staged / "new.parquet").write_text("new")
    replace_directory(staged, target)
    assert [p.name for p in target.iterdir()] == ["new.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds=1"]
