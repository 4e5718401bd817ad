"""The partition date of a run, and the quality gate."""

from __future__ import annotations

import datetime as dt

import pytest
from dataplatform.partition import resolve_partition_date
from dataplatform.quality import QualityGateError, check_quality_gate

UTC = dt.UTC


@pytest.mark.parametrize("param, logical, run_after, expected", [
    ("2026-03-01", dt.datetime(2026, 5, 5, tzinfo=UTC), None, "2026-03-01"),  # param wins
    (None, dt.datetime(2026, 5, 5, 23, 30, tzinfo=UTC), None, "2026-05-05"),  # scheduled
    # Manual runs in Airflow 3 may have no logical date: run_after stands in.
    (None, None, dt.datetime(2026, 5, 6, 8, tzinfo=UTC), "2026-05-06"),
    # An offset moment is taken in UTC, as Airflow stores it.
    (None, dt.datetime(2026, 5, 7, 1, tzinfo=dt.timezone(dt.timedelta(hours=3))), None,
     "2026-05-06"),
    ("", None, dt.datetime(2026, 5, 8, tzinfo=UTC), "2026-05-08"),  # an empty param is unset
])
def test_resolve_partition_date(param, logical, run_after, expected):
    assert resolve_partition_date(param, logical, run_after) == expected


@pytest.mark.parametrize("bad", ["2026-3-1", "yesterday", "2026-02-30"])
def test_a_malformed_ds_param_is_refused(bad):
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        resolve_partition_date(bad, None, None)


def _report(rows_in, rejected, **rejections):
    return {"dataset": "students", "ds": "2026-04-01", "rows_in": rows_in,
            "rows_clean": rows_in - rejected, "rows_rejected": rejected, "files_rejected": 0,
            "rejections": rejections}


def test_gate_passes_at_the_threshold():
    summary = check_quality_gate(_report(100, 20, id_missing=20), 0.2, "q/")
    assert summary == "students 2026-04-01: 80 clean of 100 rows (20.0% rejected, gate 20%)"


def test_gate_fails_above_the_threshold_naming_the_reasons():
    with pytest.raises(QualityGateError) as error:
        check_quality_gate(_report(100, 21, id_missing=5, puntaje_mat_not_number=16), 0.2, "q/")
    assert str(error.value) == (
        "students 2026-04-01: 21.0% of rows rejected (21 of 100), above the 20% gate; "
        "top reasons: puntaje_mat_not_number: 16, id_missing: 5; nothing published; "
        "rejected rows and reasons are in q/")


def test_gate_fails_without_clean_rows_even_when_allowed():
    with pytest.raises(QualityGateError, match="no clean rows out of 3"):
        check_quality_gate(_report(3, 3, wrong_field_count=3), 1.0, "q/")
