"""Grafana dashboards: they parse, their datasources are provisioned, and every
metric, table and query they use exists - checked against what the platform,
Airflow and a real Spark driver export, a real Prometheus and a real Postgres."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dataplatform.grafana_dashboards import DASHBOARDS, DASHBOARDS_DIR, render
from dataplatform.metrics import METRICS
from dataplatform.settings import REPO_ROOT, PlatformSettings
from sample_tables import DS, publish_both, publish_traffic_date

DATASOURCES = REPO_ROOT / "infra" / "grafana" / "provisioning" / "datasources" / "datasources.yml"
STATSD_MAPPINGS = REPO_ROOT / "infra" / "statsd" / "mappings.yml"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "inf", "nan"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def load_dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in
            sorted(DASHBOARDS_DIR.glob("*.json"))}


def targets(board: dict):
    """(panel, target) of every query, the template variables' included."""
    for item in board["panels"]:
        for target in item["targets"]:
            yield item, target
    for var in board["templating"]["list"]:
        query = var["query"]
        yield var, query if isinstance(query, dict) else {"rawSql": query}


def with_variables(text: str) -> str:
    """A query as Grafana sends it for DS over a wide time range."""
    text = text.replace("${ds:sqlstring}", f"'{DS}'").replace("$ds", DS)
    return re.sub(r"\$__timeFilter\(([^()]*(?:\([^()]*\))?[^()]*)\)",
                  r"\1 BETWEEN '2020-01-01' AND '2030-01-01'", text)


def as_promql(query: str) -> str:
    """A Grafana variable's ``label_values(selector, label)`` as the PromQL it runs."""
    return re.sub(r"^label_values\((.+),\s*\w+\)$", r"\1", query.strip())


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels, keywords)."""
    expr = as_promql(expr)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if match.group() in PROMQL_WORDS or expr[match.end():].lstrip().startswith("("):
            continue
        names.add(match.group())
    return names


def prometheus_exprs() -> list[str]:
    return [t["expr"] for board in load_dashboards().values() for _, t in targets(board)
            if "expr" in t] + [t["query"] for board in load_dashboards().values()
                               for _, t in targets(board) if "query" in t]


def airflow_exported_names() -> set[str]:
    """Names statsd-exporter gives Airflow's metrics, each rule checked against the
    metrics Airflow 3.3 declares (its metrics_template.yaml), timers with their
    histogram series."""
    import airflow

    template_file = (Path(airflow.__file__).parent / "_shared" / "observability" / "metrics"
                     / "metrics_template.yaml")
    template = yaml.safe_load(template_file.read_text())["metrics"]
    declared = []  # (glob of a StatsD name, type)
    for metric in template:
        for name in (metric["name"], metric.get("legacy_name")):
            if name and name != "-":
                declared.append((re.sub(r"\{\w+\}", "*", f"airflow.{name}"), metric["type"]))
    exported = set()
    for rule in yaml.safe_load(STATSD_MAPPINGS.read_text())["mappings"]:
        if rule.get("match_type") == "regex":
            sample = re.sub(r"\^|\$|\\", "", rule["match"]).replace("(w+)", "x")
            kinds = {kind for glob, kind in declared if fnmatch.fnmatchcase(sample, glob)}
        else:
            kinds = {kind for glob, kind in declared if glob == rule["match"]}
        assert kinds, f"mapping {rule['match']} matches no metric Airflow 3.3 declares"
        exported.add(rule["name"])
        if "timer" in kinds:
            exported.update(rule["name"] + suffix for suffix in HISTOGRAM_SUFFIXES)
    return exported


def test_committed_dashboards_are_the_generated_ones():
    assert sorted(load_dashboards()) == sorted(DASHBOARDS)
    for name in DASHBOARDS:
        assert (DASHBOARDS_DIR / name).read_text() == render(name), \
            f"{name} is stale: run `make grafana-dashboards`"


def test_every_datasource_is_provisioned():
    provisioned = {(d["type"], d["uid"]) for d in
                   yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    uids = set()
    for name, board in load_dashboards().items():
        assert board["uid"] not in uids, name
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for item, target in targets(board):
            for source in (item["datasource"], target.get("datasource", item["datasource"])):
                assert (source["type"], source["uid"]) in provisioned, (name, item.get("title"))
        for item in board["panels"]:
            grid = item["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (name, item["title"])


def test_every_metric_is_exported_by_the_platform_airflow_or_spark():
    known = set(METRICS) | airflow_exported_names()
    used = set().union(*(metric_names(expr) for expr in prometheus_exprs()))
    spark = {n for n in used if n.startswith(("metrics_executor_", "metrics_platform_driver_"))}
    assert used - spark <= known, sorted(used - spark - known)
    assert {"dataplatform_model_f1", "dataplatform_rows_in",
            "airflow_dagrun_duration_seconds_bucket"} <= used
    assert spark, "the Spark executors dashboard queries Spark's metrics"


def test_metric_name_extraction():
    assert metric_names('histogram_quantile(0.95, sum by (le, dag_id) '
                        '(rate(airflow_dagrun_duration_seconds_bucket{x="a b"}[1h])))') == {
        "airflow_dagrun_duration_seconds_bucket"}
    assert metric_names("rate(a_total[1m]) / 1e9 + time() - max(b)") == {"a_total", "b"}
    assert metric_names("label_values(dataplatform_rows_in, ds)") == {"dataplatform_rows_in"}


@pytest.mark.slow
def test_spark_metrics_are_served_by_a_real_driver(java, tmp_path):
    """A driver started with the runners' Spark settings serves every Spark name used."""
    from dataplatform.spark_jobs import SparkJob, spark_conf

    conf = spark_conf(SparkJob("metric_names", "none.py"), "local")
    script = tmp_path / "scrape.py"
    script.write_text(SCRAPE_SCRIPT)
    result = subprocess.run([sys.executable, str(script), json.dumps(conf)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    served = set(json.loads(result.stdout.splitlines()[-1]))
    used = set().union(*(metric_names(expr) for expr in prometheus_exprs()))
    spark = {n for n in used if n.startswith("metrics_")}
    assert spark and spark <= served, sorted(spark - served)


SCRAPE_SCRIPT = """
import json, socket, sys, urllib.request
from pyspark.sql import SparkSession

with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
builder = SparkSession.builder.master("local[2]").appName("metric-names")
for key, value in {**json.loads(sys.argv[1]), "spark.ui.port": str(port)}.items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
spark.range(200000).selectExpr("sum(id)").collect()
names = set()
for path in ("/metrics/prometheus/", "/metrics/executors/prometheus/"):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30).read()
    names |= {line.split("{")[0].split(" ")[0] for line in body.decode().splitlines()
              if line and not line.startswith("#")}
spark.stop()
print(json.dumps(sorted(names)))
"""


def test_every_promql_query_is_valid_for_prometheus(prometheus):
    for expr in prometheus_exprs():
        url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode(
            {"query": with_variables(as_promql(expr))})
        with urllib.request.urlopen(url, timeout=10) as response:
            assert json.load(response)["status"] == "success", expr


def test_every_sql_query_runs_on_postgres_and_finds_the_date(postgres, tmp_path):
    url = postgres.create_database("grafana_dashboards")
    settings = PlatformSettings.from_env({"PLATFORM_DATA_DIR": str(tmp_path),
                                          "PLATFORM_WAREHOUSE_URL": url})
    publish_both(settings, rows_in=50)
    publish_traffic_date(settings, "2026-03-01")
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        for name, board in load_dashboards().items():
            for item, target in targets(board):
                if "rawSql" not in target:
                    continue
                rows = connection.execute(sa.text(with_variables(target["rawSql"]))).all()
                assert rows, (name, item.get("title") or item.get("name"))
    engine.dispose()

