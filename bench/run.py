"""``make bench``: the platform against what its users would otherwise run.

Every contender runs in a process of its own, on the same generated input,
one after the other in this run; wall time and peak memory (RSS: the whole process
tree, JVMs included) are measured from outside. Results go to
``bench/results/<name>.json`` and the table between the markers of
``bench/README.md``. Ratios compare contenders of the same run only.
Student and traffic contenders run in rounds (``--students-rounds``,
``--traffic-rounds``, three by default), each round all of them in turn;
each one's median round is reported. A traffic round at 10M packets takes
about 7 minutes.

    python -m bench.run [--students-rows 1000000,10000000] [--students-rounds 3]
        [--traffic-rows 1000000,10000000] [--traffic-rounds 3]
        [--orchestration-rows 10000000] [--scheduled-rounds 3]
        [--suites students,traffic,orchestration,scheduled,scaling]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from dataplatform import job_specs
from dataplatform.dag_parse import measure_in_fresh_interpreter
from dataplatform.local_airflow import local_airflow_env, migrate_metadata_db
from dataplatform.local_deployment import free_port
from dataplatform.settings import REPO_ROOT
from dataplatform.spark_class_archive import existing_archive
from dataplatform.spark_jobs import (
    LOCAL_JOB_ENV,
    SparkJob,
    conf_arguments,
    spark_submit_conf,
)

from bench.measure import measure

BENCH_DIR = REPO_ROOT / "bench"
DATA_DIR = BENCH_DIR / "data"  # generated inputs, reused between runs; git-ignored
RESULTS_DIR = BENCH_DIR / "results"
LOG_DIR = RESULTS_DIR / "logs"
DS = "2026-01-01"
PY = sys.executable
SPARK_SUBMIT = str(Path(PY).parent / "spark-submit")


def log(message: str) -> None:
    print(f"[bench {dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def platform_submit(job: SparkJob, master: str = "local[*]", runner: str = "local") -> list[str]:
    """The spark-submit line the platform's SparkSubmit runners run for ``job``."""
    command = [SPARK_SUBMIT, "--master", master, "--deploy-mode", "client",
               *conf_arguments(spark_submit_conf(job, runner))]
    return command + ["--driver-memory", job.driver_memory,
                      str(REPO_ROOT / "spark_apps" / job.application), *job.arguments]


def job_env() -> dict[str, str]:
    return {**os.environ, **LOCAL_JOB_ENV}


def generated(kind: str, rows: int) -> Path:
    """A generated input of ``rows`` rows, made once and kept in bench/data/."""
    target = DATA_DIR / (f"students_{rows}.csv" if kind == "students" else f"zte_tad_{rows}")
    done = target.with_name(target.name + ".done")
    if done.exists():
        return target
    log(f"generating {rows:,} {kind} rows in {target}")
    shutil.rmtree(target, ignore_errors=True)
    module = f"dataplatform.generators.{'students' if kind == 'students' else 'zte_tad'}"
    subprocess.run([PY, "-m", module, "--rows", str(rows), "--out", str(target)], check=True,
                   stdout=subprocess.DEVNULL)
    done.touch()
    return target


def land(source: Path, landing: Path) -> None:
    """Hard links: landing a 10M-row input costs nothing and copies nothing."""
    landing.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, landing, copy_function=os.link)
    else:
        landing.mkdir()
        os.link(source, landing / source.name)


# Each nightly DAG and the dataset it reads; its committed sample is data/samples/<dataset>.
NIGHTLY_DAGS = {"students_nightly": "students", "zte_tad_training": "zte_tad"}


def sample(dataset: str) -> Path:
    return REPO_ROOT / "data" / "samples" / dataset


def nightly_spark_jobs(dag_id: str, ds: str, data_dir: Path) -> list[SparkJob]:
    """The Spark jobs of one run of a nightly DAG, with its default params."""
    if dag_id == "students_nightly":
        return [job_specs.clean_and_compute_statistics_job(ds, data_dir)]
    if dag_id == "zte_tad_training":
        return [job_specs.ingest_traffic_job(ds, data_dir),
                job_specs.train_traffic_job(ds, data_dir, "bench", executors=1,
                                            **job_specs.DEFAULT_TRAINING)]
    raise ValueError(f"not a nightly DAG: {dag_id}")


def run_platform_jobs(jobs: list[SparkJob], name: str, **submit) -> dict:
    """The platform's jobs one after the other, as its DAG runs them."""
    walls, peaks = {}, []
    for job in jobs:
        result = measure(platform_submit(job, **submit), LOG_DIR / f"{name}-{job.task_id}.log",
                         env=job_env())
        walls[job.task_id] = result["wall_seconds"]
        peaks.append(result["peak_memory_mib"])
    return {"wall_seconds": round(sum(walls.values()), 2), "peak_memory_mib": max(peaks),
            "jobs_wall_seconds": walls}


def with_ratios(results: dict[str, dict], reference: str) -> dict[str, dict]:
    """Each contender's wall and memory as a multiple of ``reference``'s."""
    base = results[reference]
    for result in results.values():
        result["wall_vs_platform"] = round(result["wall_seconds"] / base["wall_seconds"], 2)
        result["memory_vs_platform"] = round(result["peak_memory_mib"] / base["peak_memory_mib"], 2)
    return results


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time (the lower of the two middle ones for an
    even count), with every run's wall in the order they ran. Its other
    figures (peak memory) are that run's own, not medians."""
    middle = dict(sorted(runs, key=lambda run: run["wall_seconds"])[(len(runs) - 1) // 2])
    middle["walls_seconds"] = [run["wall_seconds"] for run in runs]
    return middle


def students_suite(rows: int, rounds: int) -> dict:
    """Every contender once per round, the rounds one after the other: a drift
    of the machine's speed reaches all contenders alike, and the median
    round of each is reported."""
    csv = generated("students", rows)
    runs: dict[str, list[dict]] = {}
    for round_number in range(1, rounds + 1):
        label = f"students-{rows}-r{round_number}"
        with tempfile.TemporaryDirectory(prefix="bench-students-") as tmp:
            data_dir = Path(tmp)
            land(csv, data_dir / "landing" / "students" / f"ds={DS}")
            log(f"{label}: platform (clean + statistics)")
            runs.setdefault("platform", []).append(run_platform_jobs(
                nightly_spark_jobs("students_nightly", DS, data_dir), label))
            log(f"{label}: seed approach")
            runs.setdefault("seed_approach", []).append(measure(
                [PY, "-m", "bench.contenders.students_seed", str(csv),
                 str(data_dir / "seed-out")],
                LOG_DIR / f"{label}-seed.log", env=job_env()))
        for contender in ("pandas", "duckdb"):
            log(f"{label}: {contender}")
            runs.setdefault(contender, []).append(measure(
                [PY, "-m", f"bench.contenders.students_{contender}", str(csv)],
                LOG_DIR / f"{label}-{contender}.log"))
    return with_ratios({name: median_run(each) for name, each in runs.items()}, "platform")


def traffic_suite(rows: int, rounds: int) -> dict:
    """Every contender once per round, as in the student suite: at 10M packets
    the seed-style pipeline's wall alone varies by about 3 % run to run."""
    captures = generated("zte_tad", rows)
    runs: dict[str, list[dict]] = {}
    for round_number in range(1, rounds + 1):
        label = f"traffic-{rows}-r{round_number}"
        log(f"{label}: platform (ingest + train)")
        runs.setdefault("platform", []).append(traffic_platform_run(captures, label))
        log(f"{label}: seed-style pipeline")
        runs.setdefault("seed_pipeline", []).append(measure(
            [PY, "-m", "bench.contenders.traffic_seed", str(captures)],
            LOG_DIR / f"{label}-seed.log", env=job_env()))
        log(f"{label}: scikit-learn")
        runs.setdefault("scikit_learn", []).append(measure(
            [PY, "-m", "bench.contenders.traffic_sklearn", str(captures)],
            LOG_DIR / f"{label}-sklearn.log"))
    return with_ratios({name: median_run(each) for name, each in runs.items()}, "platform")


def traffic_platform_run(captures: Path, label: str) -> dict:
    """The ingest and the training on a fresh landing, with the training's
    own time and F1 from its evaluation."""
    with tempfile.TemporaryDirectory(prefix="bench-traffic-") as tmp:
        data_dir = Path(tmp)
        land(captures, data_dir / "landing" / "zte_tad" / f"ds={DS}")
        result = run_platform_jobs(nightly_spark_jobs("zte_tad_training", DS, data_dir), label)
        evaluation = json.loads((data_dir / "staging" / "zte_tad" / f"ds={DS}"
                                 / "bench.evaluation.json").read_text())
    splits = evaluation["splits"]
    return {**result, "train_seconds": splits["holdout_capture"]["train_seconds"],
            "f1_random": round(splits["random"]["f1"], 4),
            "f1_holdout_capture": round(splits["holdout_capture"]["f1"], 4)}


TASK_EDGE = re.compile(r"^(\S+)Z .*\[DAG TEST\] (starting|end task) task_id=(\w+)")
SPARK_TASKS = {dag_id: tuple(job.task_id for job in nightly_spark_jobs(dag_id, DS, DATA_DIR))
               for dag_id in NIGHTLY_DAGS}


def bench_airflow_env(airflow_home: Path, data_dir: Path) -> dict[str, str]:
    """The embedded defaults, whatever the shell sets: a PLATFORM_* variable
    could point the runs at another warehouse, webhook or Spark runner."""
    base = {name: value for name, value in os.environ.items()
            if not name.startswith("PLATFORM_")}
    return {**local_airflow_env(airflow_home, base), "PLATFORM_DATA_DIR": str(data_dir)}


def task_seconds(log_text: str) -> dict[str, float]:
    """Each task's wall time, from `airflow dags test`'s start and end lines."""
    started, seconds = {}, {}
    for line in log_text.splitlines():
        match = TASK_EDGE.match(line)
        if not match:
            continue
        stamp = dt.datetime.fromisoformat(match.group(1))
        if match.group(2) == "starting":
            started[match.group(3)] = stamp
        else:
            seconds[match.group(3)] = (stamp - started[match.group(3)]).total_seconds()
    return seconds


def dags_test(dag_id: str, ds: str, env: dict[str, str], label: str) -> dict:
    """One `airflow dags test` run: its wall time against its Spark tasks' own."""
    log_path = LOG_DIR / f"orchestration-{label}.log"
    run = measure([PY, "-m", "airflow", "dags", "test", dag_id, ds], log_path, env=env)
    tasks = task_seconds(log_path.read_text())
    spark = sum(tasks[t] for t in SPARK_TASKS[dag_id])
    return {"wall_seconds": run["wall_seconds"], "spark_jobs_seconds": round(spark, 2),
            "overhead_seconds": round(run["wall_seconds"] - spark, 2),
            "overhead_share": round(1 - spark / run["wall_seconds"], 3),
            "task_seconds": {t: round(s, 2) for t, s in tasks.items()}}


def orchestration_suite(rows: list[int]) -> dict:
    """Each nightly DAG on its committed sample, then on a generated date of
    each size in ``rows``: Airflow's cost per run is fixed, its share is not."""
    parse = measure_in_fresh_interpreter(REPO_ROOT / "dags")
    results = {"dags_folder_parse_seconds": round(parse["wall"], 3),
               "parse_seconds_per_file": {Path(f).name: round(s, 3)
                                          for f, s in parse["files"].items()},
               "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-airflow-") as tmp:
        env = bench_airflow_env(Path(tmp) / "airflow", Path(tmp) / "data")
        migrate_metadata_db(env)
        for dag_id, dataset in NIGHTLY_DAGS.items():
            inputs = [("sample", sample(dataset))]
            inputs += [(n, generated(dataset, n)) for n in rows]
            # One date per input: a run never replaces another's partition.
            for day, (size, source) in enumerate(inputs):
                ds = (dt.date.fromisoformat(DS) + dt.timedelta(days=day)).isoformat()
                land(source, Path(tmp) / "data" / "landing" / dataset / f"ds={ds}")
                described = "the sample" if size == "sample" else f"{size:,} rows"
                log(f"orchestration: airflow dags test {dag_id} {ds} ({described})")
                results["runs"].append({"dag_id": dag_id, "rows": size, "ds": ds, **dags_test(
                    dag_id, ds, env, f"{dag_id}-{size}")})
    return results


def scaling_suite(rows: int) -> dict:
    """Training with 1 and 2 executors of one core on a real standalone cluster."""
    from dataplatform.local_spark import StandaloneCluster

    captures = generated("zte_tad", rows)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        data_dir = Path(tmp) / "data"
        land(captures, data_dir / "landing" / "zte_tad" / f"ds={DS}")
        run_platform_jobs([job_specs.ingest_traffic_job(DS, data_dir)], f"scaling-{rows}")
        cluster = StandaloneCluster(state_dir=Path(tmp) / "cluster", master_port=free_port(),
                                    master_ui_port=free_port(), worker_ui_port=free_port(),
                                    worker_cores=2, worker_memory="6g")
        cluster.start()
        try:
            for executors in (1, 2):
                log(f"scaling-{rows}: {executors} executor(s)")
                job = job_specs.scaling_train_job(DS, data_dir, executors)
                job = SparkJob(job.task_id, job.application, job.arguments,
                               executor_memory="2g", executors=executors, conf=job.conf)
                run = measure(platform_submit(job, master=cluster.master_url,
                                              runner="standalone"),
                              LOG_DIR / f"scaling-{rows}-{executors}.log", env=job_env())
                evaluation = json.loads((data_dir / "staging" / "zte_tad" / f"ds={DS}" /
                                         f"{job_specs.scaling_model_version(executors)}"
                                         ".evaluation.json").read_text())
                results[str(executors)] = {
                    "wall_seconds": run["wall_seconds"],
                    "train_seconds": evaluation["splits"]["holdout_capture"]["train_seconds"],
                    "executors_registered": evaluation["executors"],
                    "f1_holdout_capture": round(evaluation["splits"]["holdout_capture"]["f1"], 4)}
        finally:
            cluster.stop()
    results["speedup_wall"] = round(results["1"]["wall_seconds"] / results["2"]["wall_seconds"], 2)
    results["speedup_train"] = round(results["1"]["train_seconds"]
                                     / results["2"]["train_seconds"], 2)
    return results


def machine() -> dict:
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    archive = existing_archive()
    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(), "java": java.splitlines()[0] if java else None,
            # Without it every platform job starts about 3 s slower.
            "spark_class_archive": str(archive) if archive else None}


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def rounds(text: str) -> int:
    if int(text) < 1:
        raise argparse.ArgumentTypeError("at least one round")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="latest")
    parser.add_argument("--suites", default="students,traffic,orchestration,scheduled,scaling")
    parser.add_argument("--students-rows", type=sizes, default=[1_000_000, 10_000_000])
    parser.add_argument("--students-rounds", type=rounds, default=3,
                        help="student runs per contender and size, interleaved; the "
                             "median is reported")
    parser.add_argument("--traffic-rows", type=sizes, default=[1_000_000, 10_000_000])
    parser.add_argument("--traffic-rounds", type=rounds, default=3,
                        help="traffic runs per contender and size, interleaved; the "
                             "median is reported")
    parser.add_argument("--orchestration-rows", type=sizes, default=[10_000_000],
                        help="generated date sizes run under dags test besides the sample")
    parser.add_argument("--scheduled-rounds", type=rounds, default=3,
                        help="dates each nightly DAG runs under the scheduler; the "
                             "median is reported")
    parser.add_argument("--scaling-rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    suites = args.suites.split(",")

    started = time.perf_counter()
    report = {"name": args.name, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "machine": machine(), "suites": {}}
    if "students" in suites:
        report["suites"]["students"] = {str(n): students_suite(n, args.students_rounds)
                                       for n in args.students_rows}
    if "traffic" in suites:
        report["suites"]["traffic"] = {
            str(n): traffic_suite(n, args.traffic_rounds) for n in args.traffic_rows}
    if "orchestration" in suites:
        report["suites"]["orchestration"] = orchestration_suite(args.orchestration_rows)
    if "scheduled" in suites:
        # Imported here: bench.scheduled imports this module.
        from bench.scheduled import scheduled_suite

        report["suites"]["scheduled"] = scheduled_suite(args.scheduled_rounds)
    if "scaling" in suites:
        report["suites"]["scaling"] = {str(args.scaling_rows): scaling_suite(args.scaling_rows)}
    report["bench_seconds"] = round(time.perf_counter() - started, 1)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{args.name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    from bench.tables import update_readme

    update_readme(report)
    log(f"wrote {out} and the table in {BENCH_DIR / 'README.md'} "
        f"({report['bench_seconds']}s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
