"""
### East High student analytics, nightly

Turns one date's student CSVs into score statistics.

1. `resolve_partition`: the partition date `ds`: the `ds` param, else the
   logical date, else `run_after` (manual runs in Airflow 3 may have no
   logical date).
2. `clean_and_compute_statistics` (one Spark job): reads
   `landing/students/ds=<ds>/*.csv` and checks each file's header; a missing
   required column fails the run, naming the columns. Bad rows go to
   `quarantine/students/ds=<ds>/` with file, line and reason. Student names
   are dropped here. From the clean rows, still in memory, it stages the score
   summary, per-grade and per-programme averages and award/score
   correlations, one aggregation pass per table.
3. `quality_gate`: fails the run, publishing nothing, when no row is clean or
   more than `max_reject_share` of the rows were rejected.
4. `publish`: replaces the date in the warehouse (`warehouse/<table>/ds=<ds>/`)
   and in the serving database, atomically.

Published tables (see `contracts.md`): `students_score_summary`,
`students_by_grade`, `students_by_programa`, `students_awards_correlation`,
`data_quality`, `data_quality_rejections`. Re-running a date replaces it.

Backfill with `airflow backfill create --dag-id students_nightly --from-date ... --to-date ...`;
trigger by hand with a `ds` to (re)process a given date.
"""

from __future__ import annotations

# Named here so the dag-processor imports the Spark provider once, before it
# forks each parse (parsing_pre_import_modules): with the Kubernetes provider
# installed that import takes ~0.6 s, the parse itself ~50 ms.
import airflow.providers.apache.spark.operators.spark_submit  # noqa: F401
import pendulum
from airflow.sdk import dag, task
from dataplatform.alerts import run_deadline
from dataplatform.assets import STUDENT_ASSETS
from dataplatform.job_specs import clean_and_compute_statistics_job
from dataplatform.pipeline_tasks import (
    announce_published_partition,
    nightly_default_args,
    partition_params,
    quality_gate_task,
    resolve_partition,
)
from dataplatform.settings import PlatformSettings
from dataplatform.spark_jobs import spark_job_task

SETTINGS = PlatformSettings.from_env()


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    tags=["students", "spark", "nightly"],
    default_args=nightly_default_args(SETTINGS, "students"),
    deadline=run_deadline(SETTINGS.run_deadline_seconds),
    params=partition_params(SETTINGS),
    doc_md=__doc__,
)
def students_nightly():
    @task(outlets=STUDENT_ASSETS)
    def publish(partition_ds: str, outlet_events=None) -> dict:
        from dataplatform.students import DATASET, publish_students

        counts = publish_students(SETTINGS, partition_ds)
        announce_published_partition(SETTINGS, outlet_events, STUDENT_ASSETS, DATASET,
                                     partition_ds)
        return counts

    partition_ds = resolve_partition()
    clean_and_statistics = spark_job_task(
        clean_and_compute_statistics_job(partition_ds, SETTINGS.data_dir), SETTINGS)
    gate = quality_gate_task(SETTINGS, "students")(partition_ds)
    clean_and_statistics >> gate >> publish(partition_ds)


students_nightly()
