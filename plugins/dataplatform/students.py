"""Airflow-side steps of the student pipeline: publishing its tables."""

from __future__ import annotations

from pathlib import Path

from dataplatform.settings import PlatformSettings

DATASET = "students"
STATISTICS_TABLES = (
    "students_score_summary",
    "students_by_grade",
    "students_by_programa",
    "students_awards_correlation",
)


def publish_students(settings: PlatformSettings, ds: str) -> dict[str, int]:
    import pyarrow.parquet as pq

    from dataplatform.publish import publish_slice
    from dataplatform.quality import quality_tables, read_quality_report

    staging = Path(settings.layout.staging(DATASET, ds))
    tables = {name: pq.read_table(staging / "tables" / name) for name in STATISTICS_TABLES}
    tables.update(quality_tables(read_quality_report(settings, DATASET, ds)))
    return publish_slice(settings.data_dir, settings.warehouse_url,
                         {"ds": ds, "dataset": DATASET}, tables)
