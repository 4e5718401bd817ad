"""
### ZTE_TAD traffic classification: nightly training

Trains a classifier of Android app categories from one date's packets and
publishes its honest, held-out metrics.

1. `resolve_partition`: the partition date `ds` (the `ds` param, else the
   logical date, else `run_after`).
2. `ingest_traffic` (Spark): reads `landing/zte_tad/ds=<ds>/<Category>/*.parquet`;
   the folder is the label, any `CLASS` column is ignored. Files that cannot
   be read or lack a feature column are quarantined with their reason
   (`quarantine/zte_tad/ds=<ds>/files.json`) and the rest of the date goes on.
3. `quality_gate`: fails the run when no packet is clean or more than
   `max_reject_share` were rejected.
4. `train_traffic` (Spark): a Spark ML pipeline, evaluated twice:
   `random` (an 80/20 row split as the seed's, comparable with its figures) and
   `holdout_capture` (whole capture files held out: the honest figure). Each
   evaluation counts one confusion matrix; every metric comes from it.
5. `promote_model`: the new model becomes current only if its held-out F1 is
   not worse than the current model's; the decision is published (`promoted`).
6. `publish`: `traffic_model_metrics`, `traffic_class_metrics`,
   `traffic_confusion_matrix`, `data_quality`, `data_quality_rejections`.

**Why the default features leave out `Send_*`.** Every packet of a capture
file shares one timestamp second, so `Send_Year`..`Send_Second` name the
capture, not the app. On a random row split, rows of one capture land on both
sides and the seed's model scores 1.00. On captures it has never seen, it
fails. The default `flow` set uses direction-aware packet features (server
address and port, upload or download, payload size) and per-flow aggregates.
`packet` (the seed's columns without `Send_*`) and `seed` (all 19) stay
selectable for comparison.

Params (manual runs): `algorithm` (`decision_tree` as the seed, `random_forest`,
`gbt`), `max_depth`, `max_bins`, `feature_set`, `sample_fraction`, and
`executors` (executors of one core each; no effect on the `local` runner, which
is one JVM).
"""

from __future__ import annotations

# Named here so the dag-processor imports the Spark provider once, before it
# forks each parse (parsing_pre_import_modules); see students_nightly.py.
import airflow.providers.apache.spark.operators.spark_submit  # noqa: F401
import pendulum
from airflow.sdk import Param, dag, task
from dataplatform.alerts import run_deadline
from dataplatform.assets import TRAFFIC_ASSETS
from dataplatform.job_specs import DEFAULT_TRAINING, ingest_traffic_job, train_traffic_job
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
    max_active_runs=2,
    tags=["zte_tad", "spark", "ml", "nightly"],
    default_args=nightly_default_args(SETTINGS, "zte_tad"),
    deadline=run_deadline(SETTINGS.run_deadline_seconds),
    params={
        **partition_params(SETTINGS),
        "algorithm": Param(DEFAULT_TRAINING["algorithm"],
                           enum=["decision_tree", "random_forest", "gbt"]),
        "feature_set": Param(DEFAULT_TRAINING["feature_set"], enum=["flow", "packet", "seed"],
                             description="flow: the default; seed: all 19 columns, leaky"),
        "max_depth": Param(DEFAULT_TRAINING["max_depth"], type="integer", minimum=1,
                           maximum=30),
        "max_bins": Param(DEFAULT_TRAINING["max_bins"], type="integer", minimum=2,
                          maximum=1024),
        "sample_fraction": Param(DEFAULT_TRAINING["sample_fraction"], type="number",
                                 exclusiveMinimum=0, maximum=1),
        "executors": Param(1, type="integer", minimum=1, maximum=64),
    },
    doc_md=__doc__,
)
def zte_tad_training():
    @task
    def plan_model_version(partition_ds: str, params=None) -> str:
        from dataplatform.zte_tad import model_version_for

        return model_version_for(partition_ds, params)

    @task
    def promote_model(partition_ds: str, model_version: str) -> dict:
        from dataplatform.zte_tad import promote_if_better

        return promote_if_better(SETTINGS, partition_ds, model_version)

    @task(outlets=TRAFFIC_ASSETS)
    def publish(partition_ds: str, model_version: str, decision: dict,
                outlet_events=None) -> dict:
        from dataplatform.zte_tad import DATASET, publish_traffic

        counts = publish_traffic(SETTINGS, partition_ds, model_version, decision["promoted"])
        announce_published_partition(SETTINGS, outlet_events, TRAFFIC_ASSETS, DATASET,
                                     partition_ds)
        return counts

    partition_ds = resolve_partition()
    ingest = spark_job_task(ingest_traffic_job(partition_ds, SETTINGS.data_dir), SETTINGS)
    model_version = plan_model_version(partition_ds)
    train = spark_job_task(
        train_traffic_job(partition_ds, SETTINGS.data_dir, model_version), SETTINGS)
    ingest >> quality_gate_task(SETTINGS, "zte_tad")(partition_ds) >> model_version >> train
    decision = promote_model(partition_ds, model_version)
    train >> decision
    publish(partition_ds, model_version, decision)


zte_tad_training()
