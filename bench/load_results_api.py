"""``make bench-load``: the results API under concurrent clients, on 127.0.0.1.

A real ``airflow api-server`` (one worker, the platform's plugin loaded) serves
sample tables published to a SQLite serving database; client threads, each
with its own keep-alive ``httpx`` connection and the viewer's bearer token,
request a mix of paths as fast as the server answers, at each level of
concurrency in turn. Every response is compared with the one the server gave
before the load: a response that is not 200, or not the same bytes, or a
client-side exception (a timeout, a refused connection) is an error, counted
by kind. The clients run on the same machine as the server and share its cores.

Results go to ``bench/results/load-<name>.json`` and the section between the
``load`` markers of ``bench/README.md``.

    python -m bench.load_results_api [--name latest] [--clients 1,4,16,32] [--seconds 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
LOG_DIR = RESULTS_DIR / "logs"  # git-ignored
README = BENCH_DIR / "README.md"
START, END = "<!-- load:start -->", "<!-- load:end -->"
PERCENTILES = (50, 95, 99)
HISTORY_DATES = 60  # traffic dates published: the page's F1 chart shows this many


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least ``q`` % of the values at or below it."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/max of latencies in seconds, as milliseconds."""
    ordered = sorted(seconds)
    summary = {f"p{q}": percentile(ordered, q) for q in PERCENTILES}
    summary["max"] = ordered[-1] if ordered else None
    return {k: None if v is None else round(v * 1000, 2) for k, v in summary.items()}


def summarize(samples: Sequence[tuple[str, float, str | None]], wall_seconds: float,
              clients: int) -> dict:
    """One level's figures from its samples: (path, latency s, error kind or None).

    Failed requests count in the latencies too: a client waited for them."""
    errors = Counter(error for _, _, error in samples if error)
    paths = {}
    for path in dict.fromkeys(p for p, _, _ in samples):
        mine = [s for s in samples if s[0] == path]
        path_errors = Counter(error for _, _, error in mine if error)
        paths[path] = {"requests": len(mine), "errors": sum(path_errors.values()),
                       "error_kinds": dict(path_errors),
                       "latency_ms": latency_summary([s for _, s, _ in mine])}
    total = len(samples)
    return {"clients": clients, "wall_seconds": round(wall_seconds, 3), "requests": total,
            "throughput_rps": round(total / wall_seconds, 1) if wall_seconds > 0 else None,
            "errors": sum(errors.values()),
            "error_rate": round(sum(errors.values()) / total, 4) if total else None,
            "error_kinds": dict(errors),
            "latency_ms": latency_summary([s for _, s, _ in samples]), "paths": paths}


def run_load(base_url: str, token: str | None, paths: Sequence[str], clients: int,
             duration_s: float | None = None, requests: int | None = None,
             expect: Mapping[str, bytes] | None = None, timeout: float = 30.0) -> dict:
    """``clients`` threads request ``paths`` in turn for ``duration_s`` seconds, or
    ``requests`` requests in all; a summary as ``summarize`` makes it.

    Not 200, an exception, or (for a path in ``expect``) a body other than the
    expected bytes: each is an error of its own kind."""
    if (duration_s is None) == (requests is None):
        raise ValueError("give exactly one of duration_s and requests")
    if clients < 1 or not paths:
        raise ValueError("need at least one client and one path")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    expect = expect or {}
    samples: list[list[tuple[str, float, str | None]]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        quota = None if requests is None else (
            requests // clients + (1 if index < requests % clients else 0))
        mine = samples[index]
        try:
            http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)
        except BaseException:
            start.abort()  # the others would wait for this client for ever
            raise
        with http:
            start.wait()
            deadline = None if duration_s is None else time.perf_counter() + duration_s
            turn = index  # clients start on different paths: every path is always in flight
            while (len(mine) < quota) if quota is not None else (
                    time.perf_counter() < deadline):
                path = paths[turn % len(paths)]
                turn += 1
                began = time.perf_counter()
                try:
                    response = http.get(path)
                    body = response.content
                    error = None
                    if response.status_code != 200:
                        error = f"HTTP {response.status_code}"
                    elif path in expect and body != expect[path]:
                        error = "200 with another body"
                except Exception as failure:  # the error itself is the measurement
                    error = f"{type(failure).__name__}: {str(failure)[:80]}"
                mine.append((path, time.perf_counter() - began, error))

    threads = [threading.Thread(target=client, args=(i,), name=f"load-client-{i}")
               for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return summarize([s for mine in samples for s in mine], time.perf_counter() - began,
                     clients)


# --- make bench-load ----------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench-load {dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def bench_paths(ds: str) -> list[str]:
    """What a reader of the results asks for: the page, the listing, a day's table,
    and a page of a table's history."""
    return ["/platform-results/?ds=" + ds,
            "/platform-results/api/tables",
            f"/platform-results/api/tables/students_by_grade?ds={ds}",
            "/platform-results/api/tables/traffic_model_metrics?limit=50&offset=50"]


def publish_samples(data_dir: Path) -> tuple[str, str]:
    """Both pipelines' sample tables for one date, and traffic metrics for the dates
    before it; returns (serving database URL, that date)."""
    from dataplatform.settings import PlatformSettings

    from tests.sample_tables import DS, publish_both, publish_traffic_date

    settings = PlatformSettings.from_env({"PLATFORM_DATA_DIR": str(data_dir)})
    publish_both(settings, rows_in=50)
    day = dt.date.fromisoformat(DS)
    for back in range(1, HISTORY_DATES):
        publish_traffic_date(settings, str(day - dt.timedelta(days=back)))
    return settings.warehouse_url, DS


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the api-server's workers)."""
    import psutil

    process = psutil.Process(pid)
    total = 0.0
    for member in (process, *process.children(recursive=True)):
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def machine() -> dict:
    from importlib.metadata import version

    return {"cpus": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "python": platform.python_version(), "airflow": version("apache-airflow-core"),
            "load_average_1m_before": round(os.getloadavg()[0], 2)}


def render(report: dict) -> str:
    def cell(value) -> str:
        if value is None:
            return "-"
        return f"{value:,}" if isinstance(value, int) else str(value)

    def table(header: list[str], rows: list[list]) -> list[str]:
        return (["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
                + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])

    m = report["machine"]
    levels = report["levels"]
    lines = [f"Run `{report['name']}` of {report['date']} on {m['cpus']} cores, "
             f"{m['memory_gib']} GiB, Python {m['python']}, Airflow {m['airflow']} "
             f"(load average {m['load_average_1m_before']} before the run); "
             f"{report['seconds_per_level']} s per level, {report['bench_seconds']} s in all. "
             "Server CPU: the api-server's CPU seconds per wall second (1.0 is one core).", ""]
    lines += table(
        ["clients", "requests", "req/s", "errors", "error rate", "p50 ms", "p95 ms", "p99 ms",
         "max ms", "server CPU"],
        [[r["clients"], r["requests"], r["throughput_rps"], r["errors"], r["error_rate"],
          *r["latency_ms"].values(), r.get("server_cpu")] for r in levels.values()])
    kinds = {k: n for r in levels.values() for k, n in r["error_kinds"].items()}
    lines += ["", "Errors by kind: " + (", ".join(f"{k} ({n})" for k, n in kinds.items())
                                         if kinds else "none."), "", "Per path:", ""]
    lines += table(
        ["clients", "path", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        [[r["clients"], f"`{path}`", p["requests"], p["errors"], *p["latency_ms"].values()]
         for r in levels.values() for path, p in r["paths"].items()])
    return "\n".join(lines)


def update_readme(report: dict, readme: Path = README) -> None:
    text = readme.read_text()
    if START not in text or END not in text:
        raise RuntimeError(f"{readme} has no {START} ... {END} section")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{render(report)}\n\n{END}{tail}")


def levels(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="latest")
    parser.add_argument("--clients", type=levels, default=[1, 4, 16, 32])
    parser.add_argument("--seconds", type=float, default=5.0, help="per level")
    args = parser.parse_args(argv)

    from dataplatform.local_airflow import local_airflow_env, migrate_metadata_db

    from tests.services import ApiServer

    started = time.perf_counter()
    report = {"name": args.name, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "machine": machine(), "seconds_per_level": args.seconds, "levels": {}}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        root = Path(tmp)
        env = local_airflow_env(root / "airflow")
        warehouse_url, ds = publish_samples(root / "data")
        env.update(PLATFORM_DATA_DIR=str(root / "data"), PLATFORM_WAREHOUSE_URL=warehouse_url)
        log("migrating a fresh metadata database")
        migrate_metadata_db(env)
        server = ApiServer(root / "api-server", env)
        log("starting airflow api-server")
        server.start()
        try:
            token = server.token()
            paths = bench_paths(ds)
            expect = {}
            for path in paths:  # also builds the plugin's app before any level is timed
                status, body = server.get(path, token)
                if status != 200:
                    raise RuntimeError(f"{path} answered {status} before the load: {body[:300]}")
                expect[path] = body
            report["paths"] = paths
            for clients in args.clients:
                log(f"{clients} client(s) for {args.seconds} s")
                cpu_before = cpu_seconds(server.process.pid)
                result = run_load(server.url, token, paths, clients, duration_s=args.seconds,
                                  expect=expect)
                result["server_cpu"] = round(
                    (cpu_seconds(server.process.pid) - cpu_before) / result["wall_seconds"], 2)
                report["levels"][str(clients)] = result
                log(f"  {result['requests']} requests, {result['throughput_rps']} req/s, "
                    f"{result['errors']} errors, p95 {result['latency_ms']['p95']} ms")
        finally:
            server.stop()
            LOG_DIR.mkdir(parents=True, exist_ok=True)
            shutil.copy(server.log, LOG_DIR / f"load-{args.name}-api-server.log")
    report["bench_seconds"] = round(time.perf_counter() - started, 1)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"load-{args.name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    update_readme(report)
    errors = sum(r["errors"] for r in report["levels"].values())
    log(f"wrote {out} and the load section of {README} ({report['bench_seconds']} s in all, "
        f"{errors} errors)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
