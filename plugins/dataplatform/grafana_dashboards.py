"""Render the Grafana dashboards of ``infra/grafana/dashboards/``.

The JSON files there are this module's output (a test keeps them equal), so a
panel is written once, here, in a few lines. Datasources are the ones
``infra/grafana/provisioning/datasources/datasources.yml`` provisions, by uid:

- ``prometheus``: the platform's run metrics (``dataplatform.metrics``, pushed
  by platform_metrics), Airflow's StatsD metrics (named by
  ``infra/statsd/mappings.yml``) and Spark's PrometheusServlet;
- ``serving-db``: the published tables of ``contracts.md`` (Postgres).

Regenerate with ``make grafana-dashboards``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dataplatform.settings import REPO_ROOT

DASHBOARDS_DIR = REPO_ROOT / "infra" / "grafana" / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
# The ds variable in SQL: Grafana quotes and escapes it (a URL can set it).
DS_SQL = "${ds:sqlstring}::date"
SERVING_DB = {"type": "grafana-postgresql-datasource", "uid": "serving-db"}


class Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.x = self.y = self.row_height = 0
        self.next_id = 1

    def place(self, width: int, height: int) -> dict:
        if self.x + width > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        position = {"x": self.x, "y": self.y, "w": width, "h": height}
        self.x += width
        self.row_height = max(self.row_height, height)
        return position


def prom(expr: str, legend: str = "", instant: bool = False) -> dict:
    target = {"datasource": PROMETHEUS, "expr": expr, "legendFormat": legend}
    if instant:
        target.update(instant=True, range=False, format="table")
    return target


def sql(raw: str, fmt: str = "table") -> dict:
    return {"datasource": SERVING_DB, "rawQuery": True, "editorMode": "code",
            "rawSql": " ".join(raw.split()), "format": fmt}


def panel(layout: Layout, kind: str, title: str, targets: list[dict], width: int = 12,
          height: int = 8, unit: str | None = None, description: str = "") -> dict:
    datasource = targets[0]["datasource"]
    result = {
        "id": layout.next_id, "type": kind, "title": title, "description": description,
        "datasource": datasource, "gridPos": layout.place(width, height),
        "targets": [{**t, "refId": chr(ord("A") + i)} for i, t in enumerate(targets)],
        "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
        "options": {},
    }
    layout.next_id += 1
    return result


def ds_variable(datasource: dict, query: str | dict, definition: str) -> dict:
    """The dashboard's date picker ($ds)."""
    return {"name": "ds", "label": "Date", "type": "query", "datasource": datasource,
            "query": query, "definition": definition,
            "refresh": 1, "sort": 2, "current": {}, "includeAll": False, "multi": False}


def ds_variable_prometheus(metric: str) -> dict:
    definition = f"label_values({metric}, ds)"
    return ds_variable(PROMETHEUS, {"query": definition, "refId": "ds"}, definition)


def ds_variable_sql(table: str) -> dict:
    definition = f"SELECT DISTINCT ds::text FROM {table} ORDER BY 1 DESC"
    return ds_variable(SERVING_DB, definition, definition)


def dashboard(uid: str, title: str, description: str, panels: list[dict],
              variables: list[dict], time_from: str = "now-30d") -> dict:
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["data-platform"], "editable": False, "schemaVersion": 41,
        "timezone": "utc", "refresh": "1m", "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables}, "panels": panels, "annotations": {"list": []},
    }


# --- the four dashboards ---------------------------------------------------------------------


def pipeline_health() -> dict:
    lay = Layout()
    day = '{ds="$ds"}'
    panels = [
        panel(lay, "stat", "Rows in, clean, rejected ($ds)", [
            prom(f"dataplatform_rows_in{day}", "{{dataset}} in", instant=True),
            prom(f"dataplatform_rows_clean{day}", "{{dataset}} clean", instant=True),
            prom(f"dataplatform_rows_rejected{day}", "{{dataset}} rejected", instant=True)],
            width=12, height=6, description="From the published data_quality row of the date."),
        panel(lay, "stat", "Files rejected whole ($ds)", [
            prom(f"dataplatform_files_rejected{day}", "{{dataset}}", instant=True)],
            width=6, height=6),
        panel(lay, "stat", "Since the metrics were last refreshed", [
            prom("time() - max(dataplatform_metrics_refreshed_timestamp_seconds)",
                 instant=True)], width=6, height=6, unit="s",
            description="platform_metrics runs whenever a pipeline publishes."),
        panel(lay, "barchart", "Rejected rows by reason ($ds)", [
            prom(f"dataplatform_rows_rejected_by_reason{day}", "{{dataset}} {{reason}}",
                 instant=True)], width=12, height=9),
        panel(lay, "barchart", "Task durations ($ds)", [
            prom(f"dataplatform_task_duration_seconds{day}", "{{dag_id}}.{{task_id}}",
                 instant=True)], width=12, height=9, unit="s"),
        panel(lay, "timeseries", "Rejected share by date", [sql(
            """SELECT ds::timestamp AS time, dataset AS metric,
                      rows_rejected::float / NULLIF(rows_in, 0) AS value
               FROM data_quality WHERE $__timeFilter(ds::timestamp) ORDER BY 1""",
            "time_series")],
            width=12, unit="percentunit"),
        panel(lay, "timeseries", "DAG run duration (p95, by DAG)", [prom(
            "histogram_quantile(0.95, sum by (le, dag_id) "
            "(rate(airflow_dagrun_duration_seconds_bucket[1h])))", "{{dag_id}}")],
            width=12, unit="s", description="Airflow's StatsD timers via statsd-exporter."),
        panel(lay, "timeseries", "Failed task tries per day", [prom(
            'sum by (dag_id, task_id) (increase(airflow_task_finishes_total{state="failed"}[1d]))',
            "{{dag_id}}.{{task_id}}")], width=12),
        panel(lay, "timeseries", "Task instances running or queued", [prom(
            'sum by (state) (airflow_task_instances{state=~"running|queued"})', "{{state}}")],
            width=12),
    ]
    return dashboard("dp-pipeline-health", "Pipeline health",
                     "What each nightly run took in, kept and rejected, and how Airflow ran it.",
                     panels, [ds_variable_prometheus("dataplatform_rows_in")])


def student_statistics() -> dict:
    lay = Layout()
    where = f"WHERE ds = {DS_SQL}"
    panels = [
        panel(lay, "table", "Score summary ($ds)", [sql(
            f"""SELECT subject, n, mean, stddev, min, max FROM students_score_summary {where}
                ORDER BY subject""")], width=12),
        panel(lay, "table", "Awards and scores: Pearson r ($ds)", [sql(
            f"""SELECT subject, n, pearson_r FROM students_awards_correlation {where}
                ORDER BY subject""")], width=12),
        panel(lay, "barchart", "Average scores per grade ($ds)", [sql(
            f"""SELECT grado::text AS grade, avg_puntaje_mat, avg_puntaje_ing,
                       avg_puntaje_ciencias FROM students_by_grade {where} ORDER BY grado""")],
            width=12, height=9),
        panel(lay, "barchart", "Average scores per programme ($ds)", [sql(
            f"""SELECT programa, avg_puntaje_mat, avg_puntaje_ing, avg_puntaje_ciencias
                FROM students_by_programa {where} ORDER BY programa""")], width=12, height=9),
        panel(lay, "table", "Students per grade and programme ($ds)", [sql(
            f"""SELECT 'grade ' || grado::text AS "group", n_students, avg_num_premios
                FROM students_by_grade {where}
                UNION ALL SELECT programa, n_students, avg_num_premios
                FROM students_by_programa {where} ORDER BY 1""")], width=12),
        panel(lay, "timeseries", "Mean score by date", [sql(
            """SELECT ds::timestamp AS time, subject AS metric, mean AS value
               FROM students_score_summary
               WHERE subject <> 'num_premios' AND $__timeFilter(ds::timestamp) ORDER BY 1""",
            "time_series")], width=12),
    ]
    return dashboard("dp-student-statistics", "Student statistics",
                     "East High: the published statistics of a date, and their history.",
                     panels, [ds_variable_sql("students_score_summary")], "now-90d")


def model_quality() -> dict:
    lay = Layout()
    panels = [
        panel(lay, "timeseries", "Weighted F1 by training date", [sql(
            """SELECT ds::timestamp AS time, split AS metric, MAX(f1) AS value
               FROM traffic_model_metrics WHERE $__timeFilter(ds::timestamp)
               GROUP BY ds, split ORDER BY 1""", "time_series")],
            width=12, unit="percentunit",
            description="holdout_capture holds out whole captures: the honest figure."),
        panel(lay, "timeseries", "Accuracy by training date", [sql(
            """SELECT ds::timestamp AS time, split AS metric, MAX(accuracy) AS value
               FROM traffic_model_metrics WHERE $__timeFilter(ds::timestamp)
               GROUP BY ds, split ORDER BY 1""", "time_series")],
            width=12, unit="percentunit"),
        panel(lay, "table", "Models of $ds", [prom(
            'dataplatform_model_f1{ds="$ds"}', instant=True)], width=12,
            description="Pushed by platform_metrics; one row per model version and split."),
        panel(lay, "stat", "Promoted ($ds)", [prom(
            'dataplatform_model_promoted{ds="$ds"}', "{{model_version}}", instant=True)],
            width=6),
        panel(lay, "barchart", "Fit time per split ($ds)", [prom(
            'dataplatform_model_train_seconds{ds="$ds"}', "{{split}} {{model_version}}",
            instant=True)], width=6, unit="s"),
        panel(lay, "table", "Per-class F1 ($ds, held-out captures)", [sql(
            f"""SELECT model_version, category, precision, recall, f1, support
               FROM traffic_class_metrics
               WHERE ds = {DS_SQL} AND split = 'holdout_capture'
               ORDER BY model_version, category""")], width=12),
        panel(lay, "table", "Confusion matrix ($ds, held-out captures)", [sql(
            f"""SELECT model_version, actual, predicted, count FROM traffic_confusion_matrix
               WHERE ds = {DS_SQL} AND split = 'holdout_capture' AND count > 0
               ORDER BY model_version, actual, predicted""")], width=12),
    ]
    return dashboard("dp-model-quality", "Traffic model quality",
                     "ZTE_TAD classifier: F1 and accuracy per split over time.",
                     panels, [ds_variable_prometheus("dataplatform_model_f1")], "now-90d")


def spark_executors() -> dict:
    lay = Layout()
    by = "{{application_name}} {{executor_id}}"
    panels = [
        panel(lay, "timeseries", "Completed tasks per second", [prom(
            "sum by (application_name, executor_id) "
            "(rate(metrics_executor_completedTasks_total[1m]))", by)], width=12),
        panel(lay, "timeseries", "JVM heap", [prom(
            "metrics_executor_JVMHeapMemory_bytes", by)], width=12, unit="bytes"),
        panel(lay, "timeseries", "GC share of task time", [prom(
            "rate(metrics_executor_totalGCTime_seconds_total[1m]) / "
            "rate(metrics_executor_totalDuration_seconds_total[1m])", by)],
            width=12, unit="percentunit"),
        panel(lay, "timeseries", "Memory (RSS) per executor pod", [prom(
            "metrics_executor_ProcessTreeJVMRSSMemory_bytes + "
            "metrics_executor_ProcessTreePythonRSSMemory_bytes", by)], width=12, unit="bytes",
            description="JVM and Python workers of each executor (process-tree metrics)."),
        panel(lay, "timeseries", "Busy cores per executor pod", [prom(
            "rate(metrics_executor_totalDuration_seconds_total[1m])", by)], width=12,
            description="Task seconds per second: how many of its cores ran tasks."),
        panel(lay, "timeseries", "Driver JVM CPU", [prom(
            "rate(metrics_platform_driver_JVMCPU_jvmCpuTime_Value[1m]) / 1e9",
            "{{instance}}")], width=12, description="Cores the driver JVM used."),
        panel(lay, "stat", "Failed tasks (last hour)", [prom(
            "sum(increase(metrics_executor_failedTasks_total[1h]))", instant=True)], width=12),
    ]
    return dashboard("dp-spark-executors", "Spark executors",
                     "The seed's Spark panels, from Spark's PrometheusServlet.", panels, [],
                     "now-6h")


DASHBOARDS = {"pipeline-health.json": pipeline_health,
              "student-statistics.json": student_statistics,
              "model-quality.json": model_quality,
              "spark-executors.json": spark_executors}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DASHBOARDS_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in DASHBOARDS:
        (args.out / name).write_text(render(name))
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
