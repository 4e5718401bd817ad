"""
### ZTE_TAD traffic classification: executor scaling (manual)

Trains the default model on one date's packets with 1, 2, ... `max_executors`
executors of one core each, one run after the other so they never compete
for cores, and publishes `traffic_executor_scaling` (ds, executors,
train_seconds, total_seconds, f1): the seed's scaling table, reproduced.

1. `check_runner`: executor counts mean something only on a cluster runner
   (`standalone`, `yarn`, `k8s_pod`, `spark_operator`); on `local`, one JVM,
   the run fails at once and says so.
2. `ingest_traffic` (Spark) and `quality_gate`, as in `zte_tad_training`.
3. `train_with_<n>_executors` (Spark): the same decision tree, the same
   splits; nothing is saved under `models/`. A job starts only once all its
   executors have registered, and the publisher refuses a run that got fewer
   than it asked for. Runs above `max_executors` are skipped.
4. `publish`: replaces the date's rows.

`train_seconds` is the held-out model's fit; `total_seconds` runs from
spark-submit to the evaluated model (JVM and executor start-up included);
`f1` is the held-out-capture weighted F1, which must not change with the
executor count.

Locally: `make spark-up`, then trigger with `PLATFORM_SPARK_RUNNER=standalone`.
"""

from __future__ import annotations

# Named here so the dag-processor imports the Spark provider once, before it
# forks each parse (parsing_pre_import_modules); see students_nightly.py.
import airflow.providers.apache.spark.operators.spark_submit  # noqa: F401
import pendulum
from airflow.sdk import Param, chain, dag, task
from dataplatform.assets import table_asset
from dataplatform.job_specs import ingest_traffic_job, scaling_train_job
from dataplatform.pipeline_tasks import (
    partition_params,
    platform_default_args,
    quality_gate_task,
    resolve_partition,
)
from dataplatform.settings import PlatformSettings
from dataplatform.spark_jobs import spark_job_task

SETTINGS = PlatformSettings.from_env()
# The task graph is fixed when the file is parsed; the param picks how many run.
MOST_EXECUTORS = SETTINGS.scaling_max_executors


@dag(
    schedule=None,  # a measurement, run by hand; not a daily partition
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two measurements at once would time each other
    tags=["zte_tad", "spark", "benchmark"],
    default_args=platform_default_args(SETTINGS),
    params={
        **partition_params(SETTINGS),
        "max_executors": Param(min(2, MOST_EXECUTORS), type="integer", minimum=1,
                               maximum=MOST_EXECUTORS,
                               description="train with 1..max_executors executors"),
    },
    doc_md=__doc__,
)
def zte_tad_scaling():
    @task
    def check_runner() -> None:
        from dataplatform.zte_tad import check_scaling_runner

        check_scaling_runner(SETTINGS)

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def wanted(executors: int, params=None) -> bool:
        return executors <= int(params["max_executors"])

    @task(outlets=[table_asset("traffic_executor_scaling")],
          trigger_rule="none_failed_min_one_success")
    def publish(partition_ds: str, params=None) -> dict:
        from dataplatform.zte_tad import publish_scaling

        counts = list(range(1, int(params["max_executors"]) + 1))
        return publish_scaling(SETTINGS, partition_ds, counts)

    partition_ds = resolve_partition()
    ingest = spark_job_task(ingest_traffic_job(partition_ds, SETTINGS.data_dir), SETTINGS)
    previous = quality_gate_task(SETTINGS, "zte_tad")(partition_ds)
    chain(check_runner(), ingest, previous)
    trainings = []
    for executors in range(1, MOST_EXECUTORS + 1):
        train = spark_job_task(scaling_train_job(partition_ds, SETTINGS.data_dir, executors),
                               SETTINGS)
        if executors > 1:
            gate = wanted.override(task_id=f"wanted_{executors}_executors")(executors)
            chain(previous, gate, train)
        else:
            chain(previous, train)
        trainings.append(train)
        previous = train
    trainings >> publish(partition_ds)


zte_tad_scaling()
