"""``make run``: run the platform's DAGs for one date on the embedded defaults.

For each DAG: land the committed sample when the date's landing partition is
absent, run ``airflow dags test``, then print what was published and where.
A failed run exits non-zero and ends with the failing task's error.

    python -m dataplatform.local_run [--ds YYYY-MM-DD] [--dag students_nightly]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dataplatform.local_airflow import (
    DEFAULT_AIRFLOW_HOME,
    JavaNotFound,
    check_java,
    local_airflow_env,
    migrate_metadata_db,
)
from dataplatform.settings import REPO_ROOT, PlatformSettings
from spark_apps.layout import validate_ds

SAMPLES_DIR = REPO_ROOT / "data" / "samples"


@dataclass(frozen=True)
class PlatformDag:
    dag_id: str
    dataset: str | None  # whose sample it lands; None: it reads what others published
    summary: Callable[[PlatformSettings, str], list[str]]
    nightly: bool = True  # run by default; the others only when named


def land_sample(settings: PlatformSettings, dataset: str, ds: str) -> str:
    """Copy the committed sample into the date's landing partition if it is absent."""
    landing = Path(settings.layout.landing(dataset, ds))
    if landing.exists() and any(landing.iterdir()):
        return f"landing {landing} already has data: using it"
    sample = SAMPLES_DIR / dataset
    # Copy file by file: only the data, not generator manifests.
    landing.mkdir(parents=True, exist_ok=True)
    for source in sorted(sample.rglob("*")):
        if source.is_file() and not source.name.endswith(".manifest.json"):
            target = landing / source.relative_to(sample)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return f"landed the committed sample {sample} in {landing}"


def _query(settings: PlatformSettings, sql: str, **params) -> list[tuple]:
    import sqlalchemy as sa

    engine = sa.create_engine(settings.warehouse_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def students_summary(settings: PlatformSettings, ds: str) -> list[str]:
    quality = _query(settings, "SELECT rows_in, rows_clean, rows_rejected, files_in, "
                     "files_rejected FROM data_quality WHERE ds = :ds AND dataset = 'students'",
                     ds=ds)
    lines = []
    if quality:
        rows_in, clean, rejected, files_in, files_rejected = quality[0]
        lines.append(f"rows in {rows_in}, clean {clean}, rejected {rejected} "
                     f"(files in {files_in}, rejected {files_rejected})")
    for subject, n, mean, stddev, low, high in _query(
            settings, "SELECT subject, n, mean, stddev, min, max FROM students_score_summary "
            "WHERE ds = :ds ORDER BY subject", ds=ds):
        lines.append(f"{subject:<17} n={n} mean={mean:.2f} sd={stddev:.2f} "
                     f"min={low:g} max={high:g}")
    return lines


def traffic_summary(settings: PlatformSettings, ds: str) -> list[str]:
    lines = [f"packets in {rows_in}, clean {clean}, rejected {rejected} "
             f"(capture files in {files_in}, quarantined {files_rejected})"
             for rows_in, clean, rejected, files_in, files_rejected in _query(
                 settings, "SELECT rows_in, rows_clean, rows_rejected, files_in, "
                 "files_rejected FROM data_quality WHERE ds = :ds AND dataset = 'zte_tad'",
                 ds=ds)]
    for version, split, accuracy, f1, train, test, promoted in _query(
            settings, "SELECT model_version, split, accuracy, f1, train_rows, test_rows, "
            "promoted FROM traffic_model_metrics WHERE ds = :ds ORDER BY model_version, split",
            ds=ds):
        lines.append(f"{version} {split:<15} f1={f1:.3f} accuracy={accuracy:.3f} "
                     f"train={train} test={test} promoted={bool(promoted)}")
    return lines


def scaling_summary(settings: PlatformSettings, ds: str) -> list[str]:
    return [f"{executors} executor(s): train {train:.2f}s, total {total:.2f}s, f1={f1:.4f}"
            for executors, train, total, f1 in _query(
                settings, "SELECT executors, train_seconds, total_seconds, f1 FROM "
                "traffic_executor_scaling WHERE ds = :ds ORDER BY executors", ds=ds)]


def metrics_summary(settings: PlatformSettings, ds: str) -> list[str]:
    pushed = (f"pushed to {settings.pushgateway_url}" if settings.pushgateway_url
              else "not pushed (PLATFORM_PUSHGATEWAY_URL is unset)")
    return [f"{dataset}: {n} metrics in pipeline_metrics, {pushed}"
            for dataset, n in _query(settings, "SELECT dataset, COUNT(*) FROM pipeline_metrics "
                                     "WHERE ds = :ds GROUP BY dataset ORDER BY dataset", ds=ds)]


PLATFORM_DAGS = {dag.dag_id: dag for dag in (
    PlatformDag("students_nightly", "students", students_summary),
    PlatformDag("zte_tad_training", "zte_tad", traffic_summary),
    # After the pipelines, as the scheduler would start it on their asset events.
    PlatformDag("platform_metrics", None, metrics_summary),
    # Needs a cluster runner: PLATFORM_SPARK_RUNNER=standalone after `make spark-up`.
    PlatformDag("zte_tad_scaling", "zte_tad", scaling_summary, nightly=False),
)}

ERROR_LINE = re.compile(
    r"(Error|Exception|exit code|returncode|missing required|rejected|Traceback)", re.I)


def failure_digest(output: str, limit: int = 12) -> list[str]:
    """The lines of a failed run that say what went wrong, last ones first to go."""
    lines = [line.rstrip() for line in output.splitlines() if ERROR_LINE.search(line)]
    return lines[-limit:]


def run_dag(dag: PlatformDag, ds: str, env: dict[str, str], log_dir: Path) -> tuple[bool, str]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{dag.dag_id}_{ds}.log"
    command = [sys.executable, "-m", "airflow", "dags", "test", dag.dag_id, ds]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            sys.stdout.write(line)
            log.write(line)
        returncode = process.wait()
    return returncode == 0, str(log_path)


def main(argv: list[str] | None = None) -> int:
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", default=yesterday, type=validate_ds)
    parser.add_argument("--dag", choices=sorted(PLATFORM_DAGS),
                        help="one DAG (default: the nightly DAGs)")
    parser.add_argument("--airflow-home", type=Path, default=DEFAULT_AIRFLOW_HOME)
    args = parser.parse_args(argv)

    env = local_airflow_env(args.airflow_home)
    try:
        check_java(env)
    except JavaNotFound as error:
        print(f"make run: {error}", file=sys.stderr)
        return 2
    settings = PlatformSettings.from_env(env)
    if not (args.airflow_home / "airflow.db").exists():
        print(f"creating the Airflow metadata database in {args.airflow_home}")
    migrate_metadata_db(env)

    dags = ([PLATFORM_DAGS[args.dag]] if args.dag
            else [dag for dag in PLATFORM_DAGS.values() if dag.nightly])
    report, failed = [], []
    for dag in dags:
        if dag.dataset is None and not report and not args.dag:
            continue  # the pipelines failed: nothing new to measure
        landed = land_sample(settings, dag.dataset, args.ds) if dag.dataset else "no landing"
        print(f"== {dag.dag_id} {args.ds}: {landed}", flush=True)
        started = time.monotonic()
        ok, log_path = run_dag(dag, args.ds, env, args.airflow_home / "make-run-logs")
        seconds = time.monotonic() - started
        if ok:
            report.append((dag, seconds, dag.summary(settings, args.ds)))
        else:
            failed.append((dag, seconds, log_path))

    print("\n================ make run summary ================")
    for dag, seconds, lines in report:
        print(f"{dag.dag_id} {args.ds}: success in {seconds:.1f}s")
        for line in lines:
            print(f"  {line}")
    if report:
        print(f"warehouse (Parquet): {settings.data_dir / 'warehouse'}/<table>/ds={args.ds}/")
        print(f"serving database:    {settings.warehouse_url}")
        print(f"quarantine:          {settings.data_dir / 'quarantine'}/<dataset>/ds={args.ds}/")
        print(f"models:              {settings.data_dir / 'models'}/zte_tad/ (current.json)")
        print("results page:        `make airflow`, then http://127.0.0.1:8080/platform-results/"
              " (or Results in the UI's navigation)")
    for dag, seconds, log_path in failed:
        print(f"{dag.dag_id} {args.ds}: FAILED after {seconds:.1f}s; full log {log_path}")
        for line in failure_digest(Path(log_path).read_text()):
            print(f"  {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
