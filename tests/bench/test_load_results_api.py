"""The load test's arithmetic and error accounting, and the results API under load
on a running api-server: every response right, none refused. No timing is asserted."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dataplatform.tables import TABLES
from published import contract_rows
from sample_tables import DS, STUDENT_TABLES
from services import free_port

from bench.load_results_api import (
    bench_paths,
    latency_summary,
    percentile,
    publish_samples,
    run_load,
    summarize,
    update_readme,
)


@pytest.mark.parametrize(("values", "q", "expected"), [
    (list(range(1, 101)), 50, 50),  # 50 of the 100 values are at or below 50
    (list(range(1, 101)), 95, 95),
    (list(range(1, 101)), 99, 99),
    ([1, 2, 3, 4], 50, 2),  # nearest rank, not the mean of the middle two
    ([1, 2, 3, 4], 99, 4),
    ([7.5], 1, 7.5),  # a single value is every percentile
    ([], 50, None),
])
def test_percentile_is_the_nearest_rank(values, q, expected):
    assert percentile(values, q) == expected


def test_latencies_are_summarised_in_milliseconds_from_any_order():
    seconds = [i / 1000 for i in range(100, 0, -1)]  # 1..100 ms, newest first
    assert latency_summary(seconds) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert latency_summary([]) == {"p50": None, "p95": None, "p99": None, "max": None}


def test_summary_counts_errors_by_kind_and_path():
    samples = [("/a", 0.010, None), ("/b", 0.020, "HTTP 500"), ("/a", 0.030, None),
               ("/b", 0.040, None), ("/b", 0.100, "ReadTimeout: timed out")]
    summary = summarize(samples, wall_seconds=2.0, clients=3)
    assert (summary["requests"], summary["throughput_rps"], summary["errors"],
            summary["error_rate"]) == (5, 2.5, 2, 0.4)
    assert summary["error_kinds"] == {"HTTP 500": 1, "ReadTimeout: timed out": 1}
    assert summary["latency_ms"] == {"p50": 30.0, "p95": 100.0, "p99": 100.0, "max": 100.0}
    assert summary["paths"]["/a"] == {"requests": 2, "errors": 0, "error_kinds": {},
                                      "latency_ms": {"p50": 10.0, "p95": 30.0, "p99": 30.0,
                                                     "max": 30.0}}
    assert (summary["paths"]["/b"]["requests"], summary["paths"]["/b"]["errors"]) == (3, 2)


class Answers(BaseHTTPRequestHandler):
    """/ok: 200 "same"; /other: 200 but another body; /missing: 404; /boom: 500."""

    def do_GET(self):
        status, body = {"/ok": (200, b"same"), "/other": (200, b"other"),
                        "/missing": (404, b"no")}.get(self.path, (500, b"boom"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_every_kind_of_failure_is_an_error():
    """What makes the zero-error assertion below mean something."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_load(f"http://127.0.0.1:{server.server_port}", "t",
                          ["/ok", "/other", "/missing", "/boom"], clients=2, requests=8,
                          expect={"/ok": b"same", "/other": b"expected"})
    finally:
        server.shutdown()
        server.server_close()
    assert result["requests"] == 8
    assert {p: r["requests"] for p, r in result["paths"].items()} == {
        "/ok": 2, "/other": 2, "/missing": 2, "/boom": 2}
    assert result["error_kinds"] == {"200 with another body": 2, "HTTP 404": 2, "HTTP 500": 2}
    assert result["paths"]["/ok"]["errors"] == 0

    refused = run_load(f"http://127.0.0.1:{free_port()}", None, ["/"], clients=1, requests=2)
    assert refused["errors"] == 2
    assert [kind.split(":")[0] for kind in refused["error_kinds"]] == ["ConnectError"]


def test_bound_is_a_duration_or_a_count():
    with pytest.raises(ValueError):
        run_load("http://127.0.0.1:1", None, ["/"], clients=1)
    with pytest.raises(ValueError):
        run_load("http://127.0.0.1:1", None, ["/"], clients=1, duration_s=1, requests=1)


def test_readme_section_is_rewritten_between_its_own_markers(tmp_path):
    level = summarize([("/a", 0.010, None), ("/a", 0.020, None)], wall_seconds=1.0, clients=4)
    report = {"name": "t", "date": "2026-11-24", "bench_seconds": 9.0, "seconds_per_level": 1.0,
              "machine": {"cpus": 2, "memory_gib": 24, "python": "3.11.7", "airflow": "3.3.2",
                          "load_average_1m_before": 0.5},
              "levels": {"4": {**level, "server_cpu": 0.9}}}
    readme = tmp_path / "README.md"
    results = "<!-- results:start -->\nthe Spark tables\n<!-- results:end -->\n"
    readme.write_text(f"{results}\n<!-- load:start -->\nold\n<!-- load:end -->\ntail\n")
    update_readme(report, readme)
    update_readme(report, readme)  # a second run replaces, never appends
    text = readme.read_text()
    assert text.startswith(results) and text.endswith("<!-- load:end -->\ntail\n")
    assert "old" not in text and text.count("Run `t`") == 1
    assert "| 4 | 2 | 2.0 | 0 | 0.0 | 10.0 | 20.0 | 20.0 | 20.0 | 0.9 |" in text
    assert "| 4 | `/a` | 2 | 0 | 10.0 | 20.0 | 20.0 | 20.0 |" in text


@pytest.mark.slow
def test_results_api_under_concurrent_clients_answers_every_request(airflow_home, tmp_path):
    from services import ApiServer

    warehouse_url, ds = publish_samples(tmp_path / "data")
    assert ds == DS
    server = ApiServer(tmp_path / "api-server", {
        **os.environ, "PLATFORM_DATA_DIR": str(tmp_path / "data"),
        "PLATFORM_WAREHOUSE_URL": warehouse_url})
    server.start()
    try:
        token = server.token()
        page, listing, by_grade, history = paths = bench_paths(DS)
        reference = {}
        for path in paths:
            status, reference[path] = server.get(path, token)
            assert status == 200, (path, reference[path][:300])
        result = run_load(server.url, token, paths, clients=8, duration_s=5, expect=reference)
    finally:
        server.stop()

    # The reference answers are the published data; under load every answer equalled them.
    published = contract_rows(warehouse_url)
    assert {t["name"]: t["rows"] for t in json.loads(reference[listing])["tables"]} == {
        name: len(published.get(name, [])) for name in TABLES}
    grade = json.loads(reference[by_grade])
    assert grade["total"] == 2
    assert grade["rows"] == [{"ds": DS, **row}
                             for row in STUDENT_TABLES["students_by_grade"].to_pylist()]
    dates = sorted({str(row[0]) for row in published["traffic_model_metrics"]})
    assert len(dates) == 60
    second_page = json.loads(reference[history])
    assert second_page["total"] == 120
    assert [(r["ds"], r["split"], r["f1"]) for r in second_page["rows"]] == [
        (d, split, f1) for d in dates[25:50]
        for split, f1 in (("holdout_capture", 0.6), ("random", 0.9))]
    html = reference[page].decode()
    assert f'<strong id="shown-ds">{DS}</strong>' in html
    assert html.count("<option") == 60 and "Academico" in html

    assert result["errors"] == 0, result["error_kinds"]
    assert result["error_kinds"] == {}
    assert result["requests"] > 0
    assert set(result["paths"]) == set(paths)
    assert all(p["requests"] > 0 for p in result["paths"].values())
    assert sum(p["requests"] for p in result["paths"].values()) == result["requests"]
