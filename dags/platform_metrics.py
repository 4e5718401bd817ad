"""
### Run metrics, refreshed whenever a pipeline publishes

Scheduled on the `data_quality` table's Asset, which both pipelines' `publish`
tasks update, each event naming its `dataset` and `ds`. So a nightly run, a
manual rerun and every date of a backfill refresh their own metrics.

`store_and_push` reads what was published for each (dataset, ds) - row
counts, rejections per reason, model accuracy and F1 per split, promotion -
and the pipeline's task durations, then:

- replaces that slice of the `pipeline_metrics` table (serving database and
  warehouse);
- when `PLATFORM_PUSHGATEWAY_URL` is set, replaces the (dataset, ds) group on
  the Prometheus Pushgateway (metric names: `dataplatform.metrics.METRICS`).

Trigger by hand with `ds` (and optionally `dataset`) to refresh a date.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task
from dataplatform.assets import METRICS_ASSET, table_asset
from dataplatform.metrics import DATASETS
from dataplatform.pipeline_tasks import ds_param

PUBLISHED = table_asset("data_quality")


@dag(
    schedule=[PUBLISHED],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # refreshes of one date must not interleave
    tags=["metrics", "prometheus"],
    default_args={"owner": "data-platform", "retries": 2},
    params={
        "ds": ds_param("Manual runs: the date to refresh (empty: the run's date)"),
        "dataset": Param(None, type=["null", "string"], enum=[None, *DATASETS],
                         description="Manual runs: one dataset (empty: every dataset "
                         "published for that date)"),
    },
    doc_md=__doc__,
)
def platform_metrics():
    @task
    def partitions_to_refresh(params=None, triggering_asset_events=None, **context) -> list:
        from airflow.sdk.exceptions import AirflowFailException
        from dataplatform import metrics
        from dataplatform.partition import partition_date_from_context
        from dataplatform.settings import PlatformSettings

        events = triggering_asset_events.get(PUBLISHED, []) if triggering_asset_events else []
        manual_ds = None if events else partition_date_from_context({**context,
                                                                     "params": params})
        try:
            return metrics.partitions_to_refresh(
                PlatformSettings.from_env(), [event.extra for event in events], manual_ds,
                params["dataset"])
        except metrics.NothingPublished as error:
            raise AirflowFailException(str(error)) from None  # retrying cannot help

    @task(outlets=[METRICS_ASSET])
    def store_and_push(partitions: list) -> dict:
        from dataplatform.metrics import refresh_metrics
        from dataplatform.settings import PlatformSettings

        settings = PlatformSettings.from_env()
        return refresh_metrics(settings, [tuple(pair) for pair in partitions],
                               settings.pushgateway_url)

    store_and_push(partitions_to_refresh())


platform_metrics()
