"""Run a ``spark_apps`` job as an Airflow task.

A DAG names the job and its arguments; how it is submitted is configuration
(``PLATFORM_SPARK_RUNNER``), so DAG files do not change between runners.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from dataplatform.settings import REPO_ROOT, SPARK_APPS_DIR, PlatformSettings

LOG4J_CONFIG = REPO_ROOT / "infra" / "spark" / "log4j2.properties"

# runner -> Airflow connection holding its master URL and deploy mode.
RUNNER_CONNECTIONS = {"local": "spark_local"}


@dataclass(frozen=True)
class SparkJob:
    """What to run: a file under spark_apps/, its arguments and its size."""

    task_id: str
    application: str  # relative to spark_apps/, e.g. "students/clean.py"
    arguments: Sequence = ()  # may hold templates or XComArgs
    driver_memory: str = "2g"
    conf: dict[str, str] = field(default_factory=dict)


def spark_conf(job: SparkJob) -> dict[str, str]:
    return {
        # Spark's INFO chatter would bury the job's own lines in the task log.
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG4J_CONFIG}",
        # Sample-sized data on a few cores: 200 shuffle partitions is all overhead.
        "spark.sql.shuffle.partitions": "8",
        **job.conf,
    }


def spark_job_task(job: SparkJob, settings: PlatformSettings | None = None):
    """The operator that runs ``job`` on the configured runner."""
    settings = settings or PlatformSettings.from_env()
    runner = settings.spark_runner
    if runner not in RUNNER_CONNECTIONS:
        raise ValueError(f"PLATFORM_SPARK_RUNNER={runner!r} is not one of "
                         f"{', '.join(sorted(RUNNER_CONNECTIONS))}")
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    return SparkSubmitOperator(
        task_id=job.task_id,
        conn_id=RUNNER_CONNECTIONS[runner],
        application=str(SPARK_APPS_DIR / job.application),
        application_args=list(job.arguments),
        name=job.task_id,
        conf=spark_conf(job),
        driver_memory=job.driver_memory,
        env_vars={
            # The job imports spark_apps.*; run it with this environment's Python.
            "PYTHONPATH": str(REPO_ROOT),
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
        },
    )
