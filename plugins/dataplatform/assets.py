"""One Asset per published table, so downstream DAGs can schedule on them."""

from __future__ import annotations

from airflow.sdk import Asset


def table_asset(table: str) -> Asset:
    # "x-" schemes are ours by convention: the table, wherever PLATFORM_DATA_DIR
    # and the serving database are configured.
    return Asset(name=table, uri=f"x-warehouse://{table}", group="published_tables")


STUDENT_ASSETS = [table_asset(name) for name in (
    "students_score_summary",
    "students_by_grade",
    "students_by_programa",
    "students_awards_correlation",
    "data_quality",
    "data_quality_rejections",
)]

TRAFFIC_ASSETS = [table_asset(name) for name in (
    "traffic_model_metrics",
    "traffic_class_metrics",
    "traffic_confusion_matrix",
    "data_quality",
    "data_quality_rejections",
)]

# Written by platform_metrics whenever a pipeline publishes.
METRICS_ASSET = table_asset("pipeline_metrics")
