"""The serving database on a real Postgres: the same rows as SQLite, replaced on rerun."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from dataplatform.metrics import refresh_metrics
from dataplatform.settings import PlatformSettings
from dataplatform.tables import TABLES
from published import contract_rows
from sample_tables import DS, publish_both


@pytest.fixture
def postgres_settings(postgres, tmp_path) -> PlatformSettings:
    engine = sa.create_engine(postgres.url)
    with engine.begin() as connection:  # each test starts from an empty database
        for name in TABLES:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    engine.dispose()
    return PlatformSettings.from_env({"PLATFORM_DATA_DIR": str(tmp_path / "pg"),
                                      "PLATFORM_WAREHOUSE_URL": postgres.url})


def test_postgres_holds_what_sqlite_holds_and_a_rerun_replaces_it(postgres_settings, tmp_path):
    sqlite_settings = PlatformSettings.from_env({"PLATFORM_DATA_DIR": str(tmp_path / "lite")})
    for settings in (postgres_settings, sqlite_settings):
        publish_both(settings, rows_in=50)
        refresh_metrics(settings, [("students", DS), ("zte_tad", DS)], gateway_url=None)
    # Every column, fit times included (the samples' are fixed numbers).
    first = contract_rows(postgres_settings.warehouse_url, measured=())
    assert first == contract_rows(sqlite_settings.warehouse_url, measured=())
    assert len(first["students_by_grade"]) == 2
    day = dt.date.fromisoformat(DS)
    assert first["data_quality"] == [(day, "students", 50, 49, 1, 3, 1),
                                     (day, "zte_tad", 500, 493, 7, 3, 1)]

    publish_both(postgres_settings, rows_in=50)  # the rerun of the same date
    refresh_metrics(postgres_settings, [("students", DS), ("zte_tad", DS)], gateway_url=None)
    assert contract_rows(postgres_settings.warehouse_url, measured=()) == first

    publish_both(postgres_settings, rows_in=60)  # a rerun on new input replaces the date
    rows = contract_rows(postgres_settings.warehouse_url)["data_quality"]
    assert [(row[1], row[2]) for row in rows] == [("students", 60), ("zte_tad", 600)]


def test_types_survive_postgres(postgres_settings):
    publish_both(postgres_settings, rows_in=50)
    engine = sa.create_engine(postgres_settings.warehouse_url)
    with engine.connect() as connection:
        (stddev,) = connection.execute(sa.text(
            "SELECT stddev FROM students_score_summary WHERE subject = 'num_premios'")).one()
        (promoted,) = connection.execute(sa.text(
            "SELECT DISTINCT promoted FROM traffic_model_metrics")).one()
    engine.dispose()
    assert stddev == 0.5773502691896257  # double precision, not a rounded float4
    assert promoted is False
