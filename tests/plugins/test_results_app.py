"""The results page and its JSON API, on a serving database filled by the publisher."""

from __future__ import annotations

import html
import re

import pytest
from dataplatform.results_app import create_app
from dataplatform.settings import PlatformSettings
from dataplatform.tables import TABLES
from fastapi.testclient import TestClient
from sample_tables import DS, VERSION, publish_both, publish_traffic_date


@pytest.fixture
def settings(tmp_path) -> PlatformSettings:
    settings = PlatformSettings.from_env({"PLATFORM_DATA_DIR": str(tmp_path)})
    publish_both(settings, rows_in=50)
    publish_traffic_date(settings, "2026-03-01")
    return settings


@pytest.fixture
def client(settings) -> TestClient:
    # Signing in is Airflow's job (tested against a running api-server).
    return TestClient(create_app(settings.warehouse_url, authorize=lambda: None))


def test_every_table_pages_by_ds(client):
    listing = client.get("/api/tables").json()["tables"]
    assert [t["name"] for t in listing] == list(TABLES)
    first = client.get("/api/tables/students_by_grade", params={"ds": DS, "limit": 1}).json()
    second = client.get("/api/tables/students_by_grade",
                        params={"ds": DS, "limit": 1, "offset": 1}).json()
    assert first["total"] == second["total"] == 2
    assert [r["grado"] for r in first["rows"] + second["rows"]] == [9, 10]
    assert first["rows"][0]["ds"] == DS
    history = client.get("/api/tables/traffic_model_metrics").json()
    assert {r["ds"] for r in history["rows"]} == {DS, "2026-03-01"}
    assert client.get("/api/tables/students_by_grade", params={"ds": "2026-01-01"}).json()[
        "rows"] == []


def test_bad_requests_are_refused(client):
    assert client.get("/api/tables/users").status_code == 404
    assert client.get("/api/tables/data_quality", params={"ds": "yesterday"}).status_code == 422
    assert client.get("/api/tables/data_quality", params={"limit": 100_000}).status_code == 422
    assert client.get("/", params={"split": "<script>"}).status_code == 422


def test_page_shows_the_published_numbers(client):
    page = client.get("/", params={"ds": DS})
    assert page.status_code == 200
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.text))
    assert f"Showing {DS}" in " ".join(text.split())
    for figure in ("Academico", "Tecnico", "-0.866", "70.5", "50.25", VERSION, "493"):
        assert figure in text, figure
    assert page.text.count("<svg") == 4  # grades, programmes, correlations, F1 over time
    assert 'id="confusion-matrix"' in page.text


def test_page_without_data_says_so(tmp_path):
    empty = PlatformSettings.from_env({"PLATFORM_DATA_DIR": str(tmp_path / "none")})
    client = TestClient(create_app(empty.warehouse_url, authorize=lambda: None))
    assert "Nothing has been published yet" in client.get("/").text
    assert client.get("/api/tables/data_quality").json()["total"] == 0


def test_authorization_guards_every_route(settings):
    from fastapi import HTTPException

    def refuse():
        raise HTTPException(status_code=401, detail="Not authenticated")

    client = TestClient(create_app(settings.warehouse_url, authorize=refuse))
    for path in ("/", "/api/tables", "/api/tables/data_quality"):
        assert client.get(path).status_code == 401, path
    # FastAPI's own schema routes would skip the app's dependencies: there are none.
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert client.get(path).status_code == 404, path


def test_published_text_is_escaped_everywhere(tmp_path):
    import pyarrow as pa
    from dataplatform.publish import publish_slice

    hostile = """<script>alert(1)</script>"' & <b>"""
    settings = PlatformSettings.from_env({"PLATFORM_DATA_DIR": str(tmp_path)})
    publish_both(settings, rows_in=50)
    publish_slice(settings.data_dir, settings.warehouse_url, {"ds": DS}, {
        "students_by_programa": pa.table({
            "programa": [hostile], "n_students": [3], "avg_puntaje_mat": [1.0],
            "avg_puntaje_ing": [2.0], "avg_puntaje_ciencias": [3.0],
            "avg_num_premios": [0.5]})})
    client = TestClient(create_app(settings.warehouse_url, authorize=lambda: None))
    page = client.get("/", params={"ds": DS}).text
    assert "<script>" not in page and "<b>" not in page
    escaped = html.escape(hostile, quote=True)
    assert page.count(escaped) >= 2  # the table cell and the chart's axis and tooltips


def test_f1_history_keeps_the_latest_dates(settings):
    from dataplatform.results_app import ServingDatabase

    database = ServingDatabase(settings.warehouse_url)
    assert {str(r["ds"]) for r in database.model_history(2)} == {DS, "2026-03-01"}
    assert {str(r["ds"]) for r in database.model_history(1)} == {DS}  # the newer one
    database.engine.dispose()
