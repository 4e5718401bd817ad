"""Nightly runs as a deployment runs them: the orchestration overhead of a
scheduled run, against the bare spark-submits of the same jobs.

A scheduler (LocalExecutor), a dag-processor and an api-server run on
127.0.0.1 with SQLite metadata, the embedded default. Each round triggers
each nightly DAG for a new date with its sample landed; a run's wall time is
Airflow's own, from its ``queued_at`` to its ``end_date``. The reference is
the same Spark jobs submitted by hand on the same sample, run before the
deployment starts so that nothing else competes for the cores. What a run
takes beyond them is the orchestration's: its other tasks, the scheduler's
turns between tasks, and anything the deployment slows the Spark jobs by.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path

from dataplatform.local_deployment import AirflowDeployment

from bench.run import (
    DS,
    LOG_DIR,
    NIGHTLY_DAGS,
    SPARK_TASKS,
    bench_airflow_env,
    land,
    log,
    median_run,
    nightly_spark_jobs,
    run_platform_jobs,
    sample,
)

RUN_TIMEOUT = 600
POLL_SECONDS = 1.0  # the run's end is Airflow's record: polling sooner measures nothing


def round_date(round_number: int) -> str:
    return (dt.date.fromisoformat(DS) + dt.timedelta(days=round_number - 1)).isoformat()


def bare_submits(dag_id: str, rounds: int) -> dict:
    """The DAG's Spark jobs by spark-submit alone, on a fresh landing each round."""
    runs = []
    for round_number in range(1, rounds + 1):
        with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
            data_dir, ds = Path(tmp), round_date(round_number)
            land(sample(NIGHTLY_DAGS[dag_id]),
                 data_dir / "landing" / NIGHTLY_DAGS[dag_id] / f"ds={ds}")
            log(f"scheduled: bare spark-submits of {dag_id}, round {round_number}")
            runs.append(run_platform_jobs(nightly_spark_jobs(dag_id, ds, data_dir),
                                          f"scheduled-bare-{dag_id}-r{round_number}"))
    return median_run(runs)


def busy_seconds(intervals: list[tuple[dt.datetime, dt.datetime]]) -> float:
    """Seconds during which at least one task ran (parallel tasks count once)."""
    total, reached = 0.0, None
    for start, end in sorted(intervals):
        if reached is None or start > reached:
            total += (end - start).total_seconds()
            reached = end
        elif end > reached:
            total += (end - reached).total_seconds()
            reached = end
    return total


def stamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class RunFailed(RuntimeError):
    pass


def run_figures(dag_run: dict, task_instances: list[dict], spark_tasks: tuple[str, ...]) -> dict:
    """A finished run's wall and where it went, from the REST API's records."""
    if dag_run["state"] != "success":
        states = {ti["task_id"]: ti["state"] for ti in task_instances}
        raise RunFailed(f"{dag_run['dag_id']} {dag_run['dag_run_id']} ended "
                        f"{dag_run['state']}; its tasks: {states}")
    wall = (stamp(dag_run["end_date"]) - stamp(dag_run["queued_at"])).total_seconds()
    tasks = {ti["task_id"]: (stamp(ti["start_date"]), stamp(ti["end_date"]))
             for ti in task_instances if ti["start_date"] and ti["end_date"]}
    seconds = {task: (end - start).total_seconds() for task, (start, end) in tasks.items()}
    return {"wall_seconds": round(wall, 2),
            "spark_tasks_seconds": round(sum(seconds[t] for t in spark_tasks), 2),
            "other_tasks_seconds": round(sum(s for t, s in seconds.items()
                                             if t not in spark_tasks), 2),
            # Queueing, the scheduler's turns and the run's own start and end.
            "between_tasks_seconds": round(wall - busy_seconds(list(tasks.values())), 2),
            "task_seconds": {task: round(s, 2) for task, s in sorted(
                seconds.items(), key=lambda item: tasks[item[0]][0])}}


class ScheduledRuns:
    """One deployment for the whole suite, driven through the REST API as a
    user would: its first run pays a cold start, as a deployment's first
    night does; the median round is reported."""

    def __init__(self, root: Path):
        self.data_dir = root / "data"
        env = {**bench_airflow_env(root / "airflow" / "home", self.data_dir),
               # Only the runs triggered here: no run of today's date, which has no input.
               "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
        self.deployment = AirflowDeployment(root / "airflow", env,
                                            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
                                            api_role="user")

    def start(self) -> None:
        self.deployment.start()
        self.token = self.deployment.api.token()
        for dag_id in NIGHTLY_DAGS:
            self.wait_until_parsed(dag_id)
            self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def api(self, method: str, path: str, body: dict | None = None,
            expected: tuple[int, ...] = (200,)) -> dict:
        status, answer = self.deployment.api.request(method, f"/api/v2{path}", self.token, body)
        if status not in expected:
            raise RuntimeError(f"{method} {path} answered {status}: {answer[:2000]!r}")
        return json.loads(answer) if status == 200 else {}

    def wait_until_parsed(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not self.api("GET", f"/dags/{dag_id}", expected=(200, 404)):
            self.deployment.check_running()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the dag-processor did not parse {dag_id} in {timeout:.0f}s")
            time.sleep(POLL_SECONDS)

    def run(self, dag_id: str, ds: str) -> dict:
        """Trigger ``dag_id`` for ``ds`` with its sample landed; its figures once it ends."""
        dataset = NIGHTLY_DAGS[dag_id]
        land(sample(dataset), self.data_dir / "landing" / dataset / f"ds={ds}")
        run_id = f"bench__{ds}"
        self.api("POST", f"/dags/{dag_id}/dagRuns",
                 {"dag_run_id": run_id, "logical_date": f"{ds}T00:00:00Z"})
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            dag_run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if dag_run["state"] in ("success", "failed"):
                break
            self.deployment.check_running()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} {run_id} did not end in {RUN_TIMEOUT}s")
            time.sleep(POLL_SECONDS)
        listing = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return run_figures(dag_run, listing["task_instances"], SPARK_TASKS[dag_id])

    def stop(self, keep_logs_in: Path) -> None:
        """Stop every component, then keep what each logged (the folder goes)."""
        try:
            self.deployment.stop()
        finally:
            shutil.rmtree(keep_logs_in, ignore_errors=True)
            for path in self.deployment.logs():
                copy = keep_logs_in / path.relative_to(self.deployment.root)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, copy)


def with_overhead(run: dict, bare_wall: float) -> dict:
    overhead = run["wall_seconds"] - bare_wall
    return {**run, "overhead_seconds": round(overhead, 2),
            "overhead_share": round(overhead / run["wall_seconds"], 3)}


def scheduled_suite(rounds: int) -> dict:
    """Per nightly DAG: the bare spark-submits' median round, then every
    scheduled run against it, and the median scheduled run."""
    bare = {dag_id: bare_submits(dag_id, rounds) for dag_id in NIGHTLY_DAGS}
    runs: dict[str, list[dict]] = {dag_id: [] for dag_id in NIGHTLY_DAGS}
    with tempfile.TemporaryDirectory(prefix="bench-scheduled-") as tmp:
        scheduled = ScheduledRuns(Path(tmp))
        log("scheduled: starting a scheduler, a dag-processor and an api-server")
        try:
            scheduled.start()
            for round_number in range(1, rounds + 1):
                for dag_id in NIGHTLY_DAGS:
                    ds = round_date(round_number)
                    log(f"scheduled: {dag_id} {ds}, round {round_number}")
                    run = scheduled.run(dag_id, ds)
                    runs[dag_id].append(with_overhead(
                        {"round": round_number, "ds": ds, **run},
                        bare[dag_id]["wall_seconds"]))
        finally:
            scheduled.stop(keep_logs_in=LOG_DIR / "scheduled")
    return {dag_id: {"bare_spark_submits": bare[dag_id], "runs": runs[dag_id],
                     "median_run": median_run(runs[dag_id])} for dag_id in NIGHTLY_DAGS}
