"""Tasks and params every platform DAG shares: the partition date and the gate.

Imported by DAG files at parse time: task bodies import what they need.
"""

from __future__ import annotations

from airflow.sdk import Param, task

from dataplatform.settings import PlatformSettings


def ds_param(description: str) -> Param:
    return Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}-\d{2}$",
                 description=description)


def partition_params(settings: PlatformSettings) -> dict[str, Param]:
    return {
        "ds": ds_param("Partition date to process (YYYY-MM-DD); empty: the run's date"),
        "max_reject_share": Param(settings.max_reject_share, type="number", minimum=0,
                                  maximum=1, description="Largest share of rejected rows "
                                  "that still publishes"),
    }


def platform_default_args(settings: PlatformSettings) -> dict:
    """Task defaults of every platform DAG: its owner, and retries for a flaky cluster."""
    return {"owner": "data-platform", "retries": settings.task_retries,
            "retry_delay": settings.retry_delay}


def nightly_default_args(settings: PlatformSettings, dataset: str) -> dict:
    """Task defaults of the nightly DAGs: the platform's, each success's duration
    recorded for run metrics, and one alert per failed task."""
    from dataplatform.alerts import on_task_failure
    from dataplatform.metrics import task_duration_callback

    return {
        **platform_default_args(settings),
        "on_success_callback": task_duration_callback(settings.data_dir, dataset),
        "on_failure_callback": on_task_failure,
    }


@task
def resolve_partition(**context) -> str:
    """The run's ``ds``: the ds param, else the logical date, else run_after."""
    from dataplatform.partition import partition_date_from_context

    return partition_date_from_context(context)


def quality_gate_task(settings: PlatformSettings, dataset: str):
    """A task failing the run, without retries, when the date's input is too broken."""

    @task(task_id="quality_gate")
    def quality_gate(partition_ds: str, params=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from dataplatform.quality import QualityGateError, quality_gate

        try:
            return quality_gate(settings, dataset, partition_ds,
                                float(params["max_reject_share"]))
        except QualityGateError as error:
            raise AirflowFailException(str(error)) from None  # retrying cannot help

    return quality_gate


def announce_published_partition(settings: PlatformSettings, outlet_events, assets,
                                 dataset: str, ds: str) -> None:
    """Name the published date in each asset event, for platform_metrics; and record
    this task's duration now, as the metrics run those events start may begin
    before Airflow's success callback has run."""
    from airflow.sdk import get_current_context

    from dataplatform.metrics import record_this_task

    for asset in assets:
        outlet_events[asset].extra = {"dataset": dataset, "ds": ds}
    record_this_task(settings.data_dir, dataset, get_current_context())
