"""docker-compose.yaml and the monitoring configuration it mounts.

No Docker engine is needed: the file is checked against the Compose
Specification schema (the copy check-jsonschema ships), and the Prometheus,
statsd-exporter and Grafana files against the services it defines.
"""

from __future__ import annotations

import functools
import importlib.resources
import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import require

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES = COMPOSE["services"]
DATA_MOUNT = "/opt/platform/data"

SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN")
# ${VAR} and $VAR, but not the $$ escape compose leaves for the container's shell.
VARIABLE = re.compile(
    r"(?<!\$)\$(?:\{(?P<braced>[A-Za-z_]\w*)(?P<rest>[^}]*)\}|(?P<bare>[A-Za-z_]\w*))")
REQUIRED_REFERENCE = re.compile(r"\$\{[A-Za-z_]\w*:\?[^}]+\}")
URL_CREDENTIALS = re.compile(r"://(?P<user>[^:/@\s]*):(?P<password>[^@\s]*)@")
REFERENCE_MARK = "\x00"


def strings(node) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def env_example() -> dict[str, str]:
    entries = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            entries[name.strip()] = value.strip()
    return entries


def compose_variables() -> dict[str, str]:
    """Every variable the compose file interpolates, with what follows its name."""
    found = {}
    for text in strings(COMPOSE):
        for match in VARIABLE.finditer(text):
            name = match["braced"] or match["bare"]
            found.setdefault(name, match["rest"] or "")
    return found


def airflow_services() -> dict[str, dict]:
    return {name: svc for name, svc in SERVICES.items()
            if isinstance(svc.get("command"), list) and svc["command"][0] == "airflow"}


# --- the Compose file itself ------------------------------------------------

def test_compose_file_follows_the_compose_specification():
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    assert validator_class is jsonschema.Draft202012Validator, schema["$schema"]
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(COMPOSE), key=str)
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    # A misspelt key fails, so this check cannot pass vacuously.
    broken = {"services": {"x": {"image": "a:1", "comand": "true"}}}
    assert not validator.is_valid(broken)


def test_compose_file_has_no_version_key():
    assert "version" not in COMPOSE


def is_pinned(image: str) -> bool:
    """An exact version tag (with a digit, not `latest`) or a digest."""
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and bool(re.search(r"\d", tag))


@pytest.mark.parametrize(("image", "pinned"), [
    ("postgres:16.4-bookworm", True),
    ("prom/prometheus:v3.5.0", True),
    ("registry.local:5000/data-platform:0.1.0", True),
    ("grafana/grafana@sha256:" + "a" * 64, True),
    ("postgres", False),  # no tag means latest
    ("postgres:latest", False),
    ("grafana/grafana:main", False),  # a moving branch tag
    ("registry.local:5000/data-platform", False),  # the port is not a tag
])
def test_is_pinned(image, pinned):
    assert is_pinned(image) is pinned


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_image_is_pinned(name):
    service = SERVICES[name]
    assert "image" in service, "a built service names its image, or compose invents one"
    assert is_pinned(service["image"]), service["image"]


def test_built_services_build_one_image_from_the_dockerfile():
    built = {name: svc for name, svc in SERVICES.items() if "build" in svc}
    assert set(airflow_services()) | {"spark-master", "spark-worker"} <= set(built)
    assert {svc["image"] for svc in built.values()} == {"data-platform:0.1.0"}
    for svc in built.values():
        assert (REPO_ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()


def is_required_reference(value: str) -> bool:
    return REQUIRED_REFERENCE.fullmatch(value) is not None


@pytest.mark.parametrize(("value", "required"), [
    ("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}", True),
    ("hunter2", False),
    ("${POSTGRES_PASSWORD}", False),  # empty when unset, and compose goes on
    ("${POSTGRES_PASSWORD:-airflow}", False),  # a working default
    ("x${POSTGRES_PASSWORD:?set it}", False),
])
def test_is_required_reference(value, required):
    assert is_required_reference(value) is required


def url_passwords(value: str) -> list[str]:
    """The passwords of URLs in value, each required reference replaced by a mark."""
    masked = REQUIRED_REFERENCE.sub(REFERENCE_MARK, value)
    return [match["password"] for match in URL_CREDENTIALS.finditer(masked)]


@pytest.mark.parametrize(("value", "passwords"), [
    ("postgresql://${U:?set U}:${P:?set P in .env}@db:5432/x", [REFERENCE_MARK]),
    ("postgresql://airflow:airflow@db:5432/x", ["airflow"]),
    ("postgresql://${U:?set U}:${P:?set P}x:hunter2@db/x", [REFERENCE_MARK + "x:hunter2"]),
    ("postgresql://${U:?set U}:${P:-airflow}@db/x", ["${P:-airflow}"]),
    ("http://pushgateway:9091", []),
])
def test_url_passwords(value, passwords):
    assert url_passwords(value) == passwords


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_has_no_literal_secret(name):
    for variable, value in environment(SERVICES[name]).items():
        if SECRET_NAME.search(variable):
            assert is_required_reference(value), variable
        for password in url_passwords(value):
            assert password == REFERENCE_MARK, variable


def test_database_urls_take_their_passwords_from_env():
    env = environment(SERVICES["airflow-scheduler"])
    for variable in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "PLATFORM_WAREHOUSE_URL"):
        assert url_passwords(env[variable]) == [REFERENCE_MARK], variable


def test_every_compose_variable_is_in_env_example():
    used, example = compose_variables(), env_example()
    assert used, "the compose file takes its credentials from .env"
    assert set(used) - set(example) == set()
    assert set(example) - set(used) == set(), "unused entries in .env.example"


def test_env_example_leaves_every_credential_empty():
    example = env_example()
    for name, rest in compose_variables().items():
        if SECRET_NAME.search(name) or rest.startswith(":?"):
            assert example[name] == "", f"{name} must be filled in by the user"
            assert rest.startswith(":?"), f"{name} must be required (${{{name}:?...}})"


def mounts(service: dict) -> Iterator[tuple[str, str]]:
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            yield volume["source"], volume["target"]
        else:
            source, target = volume.split(":")[:2]
            yield source, target


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_mounts_exist(name):
    for source, _ in mounts(SERVICES[name]):
        if source.startswith("."):
            assert (REPO_ROOT / source).exists(), source
        else:
            assert source in (COMPOSE.get("volumes") or {}), f"undeclared volume {source}"


def test_spark_workers_can_be_scaled():
    worker = SERVICES["spark-worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "spark://spark-master:7077" in worker["command"]


def test_airflow_runs_as_separate_services_on_the_local_executor():
    commands = {" ".join(svc["command"]) for svc in airflow_services().values()}
    assert {"airflow api-server", "airflow scheduler", "airflow dag-processor",
            "airflow triggerer"} <= commands
    for name, svc in airflow_services().items():
        env = environment(svc)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert env["PLATFORM_SPARK_RUNNER"] == "standalone", name
        assert svc["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy", name
    assert "airflow db migrate" in " ".join(SERVICES["airflow-init"]["command"])


def test_airflow_services_carry_the_platforms_scheduler_settings():
    from dataplatform.local_airflow import SCHEDULER_SETTINGS

    for name, svc in airflow_services().items():
        env = environment(svc)
        assert {key: env.get(key) for key in SCHEDULER_SETTINGS} == SCHEDULER_SETTINGS, name


def test_spark_driver_and_executors_see_the_data_at_one_path():
    for name in [*airflow_services(), "spark-worker"]:
        assert ("./data", DATA_MOUNT) in set(mounts(SERVICES[name])), name
        if name in airflow_services():
            assert environment(SERVICES[name])["PLATFORM_DATA_DIR"] == DATA_MOUNT


def test_databases_and_api_server_have_health_checks():
    for name in ("postgres", "serving-db"):
        assert "pg_isready" in " ".join(SERVICES[name]["healthcheck"]["test"]), name
    api_check = " ".join(SERVICES["airflow-api-server"]["healthcheck"]["test"])
    assert "/api/v2/monitor/health" in api_check


# --- Prometheus -------------------------------------------------------------

PROMETHEUS = yaml.safe_load((REPO_ROOT / "infra/prometheus/prometheus.yml").read_text())
METRICS_PROPERTIES = dict(
    line.split("=", 1) for line in
    (REPO_ROOT / "infra/spark/metrics.properties").read_text().splitlines()
    if line.strip() and not line.startswith("#"))


def scrape_job(name: str) -> dict:
    (job,) = [job for job in PROMETHEUS["scrape_configs"] if job["job_name"] == name]
    return job


def test_prometheus_is_mounted_where_its_image_reads_it():
    assert ("./infra/prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml") in set(
        mounts(SERVICES["prometheus"]))


def test_prometheus_scrapes_compose_services():
    for job in PROMETHEUS["scrape_configs"]:
        for config in job.get("static_configs", []):
            for target in config["targets"]:
                host = target.rsplit(":", 1)[0]
                assert host == "localhost" or host in SERVICES, (job["job_name"], target)
        for config in job.get("dns_sd_configs", []):
            assert set(config["names"]) <= set(SERVICES), job["job_name"]


def test_prometheus_reads_spark_where_metrics_properties_serves():
    def path(job: str) -> str:
        # Spark redirects the servlet's path to the same path with a slash.
        metrics_path = scrape_job(job)["metrics_path"]
        assert metrics_path.endswith("/"), job
        return metrics_path.rstrip("/")

    assert path("spark-master") == METRICS_PROPERTIES["master.sink.prometheusServlet.path"]
    assert (path("spark-applications")
            == METRICS_PROPERTIES["applications.sink.prometheusServlet.path"])
    assert path("spark-workers") == METRICS_PROPERTIES["*.sink.prometheusServlet.path"]
    assert scrape_job("spark-workers")["dns_sd_configs"][0]["port"] == 8081  # worker UI
    assert path("spark-driver") == METRICS_PROPERTIES["*.sink.prometheusServlet.path"]


def test_prometheus_keeps_the_labels_jobs_push():
    assert scrape_job("pushgateway")["honor_labels"] is True
    assert environment(SERVICES["airflow-scheduler"])["PLATFORM_PUSHGATEWAY_URL"] == (
        "http://" + scrape_job("pushgateway")["static_configs"][0]["targets"][0])


def test_airflow_sends_statsd_to_the_scraped_exporter():
    env = environment(SERVICES["airflow-scheduler"])
    assert env["AIRFLOW__METRICS__STATSD_ON"] == "True"
    assert env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter"
    assert scrape_job("airflow")["static_configs"][0]["targets"] == ["statsd-exporter:9102"]


# --- statsd-exporter mappings ------------------------------------------------

MAPPINGS = yaml.safe_load((REPO_ROOT / "infra/statsd/mappings.yml").read_text())
# statsd_exporter's own checks (pkg/mapper/mapper.go).
GLOB_LINE = re.compile(r"^(\*\.|[a-zA-Z_](-?[a-zA-Z0-9_])*\.)+(\*|[a-zA-Z_](-?[a-zA-Z0-9_])*)$")
METRIC_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]+$")
SAMPLE_VALUES = {"dag_id": "students_nightly", "task_id": "clean_and_compute_statistics",
                 "state": "success",
                 "queue": "default", "pool_name": "default_pool", "job_id": "7",
                 "executor_class_name": "LocalExecutor", "operator_name": "SparkSubmitOperator",
                 "task_type": "SparkSubmitOperator", "return_code": "0",
                 "bundle_name": "dags-folder", "file_name": "students_nightly.py",
                 "hostname": "triggerer-1", "job_name": "SchedulerJob"}


def map_metric(name: str, mappings: list[dict]) -> tuple[str, dict[str, str]] | None:
    """What statsd_exporter makes of a metric: globs first in file order, then regexes."""
    def expand(template: str, groups: tuple[str, ...]) -> str:
        return re.sub(r"\$\{?(\d+)\}?", lambda m: groups[int(m[1]) - 1], template)

    ordered = ([m for m in mappings if m.get("match_type", "glob") == "glob"]
               + [m for m in mappings if m.get("match_type") == "regex"])
    for mapping in ordered:
        if mapping.get("match_type") == "regex":
            match = re.search(mapping["match"], name)
        else:
            pattern = r"\.".join("([^.]+)" if part == "*" else re.escape(part)
                                 for part in mapping["match"].split("."))
            match = re.fullmatch(pattern, name)
        if match:
            if mapping.get("action") == "drop":
                return None
            labels = {key: expand(str(value), match.groups())
                      for key, value in (mapping.get("labels") or {}).items()}
            return expand(mapping["name"], match.groups()), labels
    return re.sub(r"[^a-zA-Z0-9_]", "_", name), {}


@functools.cache
def airflow_metrics_registry() -> list[dict]:
    # Found without importing Airflow (seconds of start-up for one YAML file).
    spec = importlib.util.find_spec("airflow")
    registry = (Path(spec.submodule_search_locations[0])
                / "_shared" / "observability" / "metrics" / "metrics_template.yaml")
    require(registry.exists(), f"Airflow's metrics registry is not at {registry}: "
                               "did the Airflow version change?")
    return yaml.safe_load(registry.read_text())["metrics"]


def emitted(metric: dict) -> Iterator[tuple[str, dict[str, str]]]:
    """The StatsD names Airflow sends for a registry entry: plain, then legacy."""
    values = {var: SAMPLE_VALUES.get(var, f"{var}1") for var in metric["name_variables"]}
    yield "airflow." + metric["name"].format(**values), values
    if metric["legacy_name"] != "-":
        # Airflow replaces dots in the values so that they stay one path component.
        legacy = {var: value.replace(".", "__") for var, value in values.items()}
        yield "airflow." + metric["legacy_name"].format(**legacy), legacy


def label_set_clashes(mappings: list[dict], registry: list[dict]) -> list[str]:
    """Prometheus names that would be exported with two label sets or types."""
    seen: dict[str, tuple[str, frozenset]] = {}
    clashes = []
    for metric in registry:
        for statsd_name, _ in emitted(metric):
            mapped = map_metric(statsd_name, mappings)
            if mapped is None:
                continue
            name, labels = mapped
            signature = (metric["type"], frozenset(labels))
            if seen.setdefault(name, signature) != signature:
                clashes.append(f"{name}: {seen[name]} vs {signature} ({statsd_name})")
    return clashes


def test_statsd_mappings_pass_the_exporters_checks():
    assert MAPPINGS["defaults"]["observer_type"] == "histogram"
    for mapping in MAPPINGS["mappings"]:
        if mapping.get("match_type") == "regex":
            re.compile(mapping["match"])
            assert mapping["match"].startswith("^") and mapping["match"].endswith("$")
        else:
            assert GLOB_LINE.match(mapping["match"]), mapping["match"]
        assert METRIC_NAME.match(mapping["name"]), mapping["name"]
        assert all(LABEL_NAME.match(key) for key in mapping.get("labels", {})), mapping


# Metrics of providers requirements.lock does not install (Edge, OpenLineage).
NOT_INSTALLED = ("edge_worker.", "ol.")


def test_statsd_mappings_label_every_dag_and_task_metric_airflow_sends():
    registry = airflow_metrics_registry()
    checked = 0
    for metric in registry:
        if metric["legacy_name"] == "-" or metric["name"].startswith(NOT_INSTALLED):
            continue
        _, (statsd_name, values) = list(emitted(metric))
        mapped = map_metric(statsd_name, MAPPINGS["mappings"])
        assert mapped is not None, statsd_name
        name, labels = mapped
        for variable in ("dag_id", "task_id", "state", "pool_name", "operator_name"):
            if variable in values:
                assert values[variable] in labels.values(), (statsd_name, name, labels)
                checked += 1
        assert name in {m["name"] for m in MAPPINGS["mappings"]}, f"{statsd_name} is not mapped"
    assert checked >= 20


def test_statsd_mappings_never_export_a_name_with_two_label_sets():
    registry = airflow_metrics_registry()
    assert label_set_clashes(MAPPINGS["mappings"], registry) == []
    # The check does see a clash: the legacy name mapped onto the plain one's name.
    clashing = [{"match": "airflow.ti.finish.*.*.*", "name": "airflow_ti_finish",
                 "labels": {"dag_id": "$1", "task_id": "$2", "state": "$3"}}]
    assert label_set_clashes(clashing, registry)


def test_statsd_exporter_reads_the_mappings():
    exporter = SERVICES["statsd-exporter"]
    (target,) = [t for s, t in mounts(exporter) if s == "./infra/statsd/mappings.yml"]
    assert f"--statsd.mapping-config={target}" in exporter["command"]


# --- Grafana ------------------------------------------------------------------

DATASOURCES = yaml.safe_load(
    (REPO_ROOT / "infra/grafana/provisioning/datasources/datasources.yml").read_text())
DASHBOARDS = yaml.safe_load(
    (REPO_ROOT / "infra/grafana/provisioning/dashboards/dashboards.yml").read_text())


def test_grafana_datasources_point_at_compose_services():
    by_uid = {source["uid"]: source for source in DATASOURCES["datasources"]}
    assert set(by_uid) == {"prometheus", "serving-db"}
    assert by_uid["prometheus"]["url"] == "http://prometheus:9090"
    assert by_uid["serving-db"]["url"].split(":")[0] == "serving-db"
    assert by_uid["serving-db"]["jsonData"]["database"] == environment(
        SERVICES["serving-db"])["POSTGRES_DB"]


def test_grafana_credentials_come_from_its_environment():
    (serving_db,) = [s for s in DATASOURCES["datasources"] if s["uid"] == "serving-db"]
    password = serving_db["secureJsonData"]["password"]
    match = re.fullmatch(r"\$\{(\w+)\}", password)
    assert match, "the password is a ${VAR} of Grafana's environment"
    variable = match[1]
    grafana_env = environment(SERVICES["grafana"])
    assert is_required_reference(grafana_env[variable])
    for text in strings(DATASOURCES):
        for match in VARIABLE.finditer(text):
            assert (match["braced"] or match["bare"]) in grafana_env


def test_grafana_loads_dashboards_from_the_mounted_folder():
    (provider,) = DASHBOARDS["providers"]
    targets = dict(mounts(SERVICES["grafana"]))
    assert targets["./infra/grafana/dashboards"] == provider["options"]["path"]
    assert targets["./infra/grafana/provisioning"] == "/etc/grafana/provisioning"
