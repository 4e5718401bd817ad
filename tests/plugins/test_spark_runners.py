"""One job spec, every runner: what each operator would submit, checked offline.

Nothing here talks to a cluster. SparkSubmit runners are rendered to the
spark-submit command line the provider's hook would run; the Kubernetes pod and
the SparkApplication are rendered by the provider's own code, as they would be
sent, and validated against the Kubernetes and Spark Operator schemas.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import require
from dataplatform import job_specs
from dataplatform.k8s_manifests import SPARK_APPLICATIONS_FILE, render_spark_applications
from dataplatform.settings import SPARK_RUNNERS, PlatformSettings
from dataplatform.spark_jobs import (
    IMAGE_REPO_ROOT,
    K8S_DATA_CLAIM,
    K8S_ENV_SECRET,
    _kubernetes_memory,
    _times,
    container_spark_submit,
    spark_job_task,
)
from schema_validation import SPARK_APPLICATION_CRD, validate_kubernetes_object

DS = "2026-11-20"
DATA_DIR = "/srv/platform-data"
# A secret the runners must never copy onto a command line or into an object.
SERVING_DB_PASSWORD = "s3cret-serving-pw"
PARAMS = {"algorithm": "decision_tree", "feature_set": "flow", "max_depth": 5,
          "max_bins": 32, "sample_fraction": 1.0, "executors": 3}
EXPECTED_ARGS = ["--ds", DS, "--data-dir", DATA_DIR, "--model-version", "v-test",
                 "--algorithm", "decision_tree", "--feature-set", "flow", "--max-depth", "5",
                 "--max-bins", "32", "--sample-fraction", "1.0"]


def settings_for(runner: str) -> PlatformSettings:
    return PlatformSettings.from_env({
        "PLATFORM_SPARK_RUNNER": runner, "PLATFORM_DATA_DIR": DATA_DIR,
        "PLATFORM_WAREHOUSE_URL": f"postgresql://platform:{SERVING_DB_PASSWORD}@db/serving",
    })


def rendered(runner: str):
    """The training job's operator on ``runner``, its templates rendered."""
    job = job_specs.train_traffic_job(DS, DATA_DIR, "v-test")
    operator = spark_job_task(job, settings_for(runner))
    operator.render_template_fields({"params": PARAMS, "ds": DS})
    return operator


def conf_of(command: list[str]) -> dict[str, str]:
    pairs = [command[i + 1] for i, arg in enumerate(command) if arg == "--conf"]
    return dict(pair.split("=", 1) for pair in pairs)


def spark_submit_command(runner: str) -> list[str]:
    operator = rendered(runner)
    hook = operator._get_hook()
    return hook._build_spark_submit_command(operator.application)


def test_every_configured_runner_has_an_operator():
    expected = {
        "local": "SparkSubmitOperator", "standalone": "SparkSubmitOperator",
        "yarn": "SparkSubmitOperator", "k8s_pod": "KubernetesPodOperator",
        "spark_operator": "SparkKubernetesOperator", "docker": "DockerOperator",
    }
    assert set(expected) == set(SPARK_RUNNERS)
    for runner, operator_class in expected.items():
        assert type(rendered(runner)).__name__ == operator_class, runner


@pytest.mark.parametrize(("runner", "master", "sizing"), [
    # local mode is one JVM: executor sizing would be ignored, so none is sent
    ("local", "local[*]", {}),
    # standalone starts cores.max / executor.cores executors
    ("standalone", "spark://127.0.0.1:7077",
     {"spark.cores.max": "3", "spark.executor.cores": "1", "spark.executor.memory": "1g"}),
    ("yarn", "yarn",
     {"spark.executor.instances": "3", "spark.executor.cores": "1",
      "spark.executor.memory": "1g"}),
])
def test_spark_submit_runners_share_one_command_but_master_and_sizing(runner, master, sizing):
    command = spark_submit_command(runner)
    assert command[command.index("--master") + 1] == master
    assert command[command.index("--deploy-mode") + 1] == "client"
    conf = conf_of(command)
    for key in ("spark.cores.max", "spark.executor.instances", "spark.executor.cores",
                "spark.executor.memory"):
        assert conf.get(key) == sizing.get(key), key
    assert conf["spark.sql.shuffle.partitions"] == "8"
    application = command.index(str(rendered(runner).application))
    assert command[application + 1:] == EXPECTED_ARGS
    assert SERVING_DB_PASSWORD not in " ".join(command)


def test_the_installed_jvm_takes_the_drivers_options(java):
    """This JVM applies each collector, JIT and heap option the training
    driver gets. Spark's launcher adds -XX:+IgnoreUnrecognizedVMOptions, so an
    option the JVM did not know would silently do nothing; here java runs
    without it, and with the -Xmx that --driver-memory becomes."""
    command = spark_submit_command("local")
    options = conf_of(command)["spark.driver.extraJavaOptions"].split()
    memory = command[command.index("--driver-memory") + 1]
    result = subprocess.run([java, f"-Xmx{memory}", *options, "-XX:+PrintFlagsFinal", "-version"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    set_here = {line.split()[1]: line.split()[3] for line in result.stdout.splitlines()
                if "{command line}" in line}
    sent = dict(_xx_flag(option) for option in options if option.startswith("-XX:"))
    assert {"UseParallelGC", "InlineSmallCode", "FreqInlineSize"} <= sent.keys()
    assert {name: set_here.get(name) for name in sent} == sent
    # A heap of fixed size, whose young generation is 1 GiB.
    assert "-Xms" + memory in options
    assert set_here["InitialHeapSize"] == set_here["MaxHeapSize"]
    assert set_here["NewSize"] == str(2 ** 30)


@pytest.mark.parametrize("runner, fixed_heap", [("local", True), ("standalone", False),
                                                 ("yarn", False)])
def test_only_a_local_training_driver_gets_a_fixed_heap(runner, fixed_heap):
    """Only in local mode does the driver hold the cached rows; a cluster's
    driver keeps the JVM's own heap sizing."""
    options = conf_of(spark_submit_command(runner))["spark.driver.extraJavaOptions"].split()
    local_only = {"-Xms5g", "-Xmn1g", f"-XX:MetaspaceSize={256 * 2 ** 20}"}
    assert local_only & set(options) == (local_only if fixed_heap else set())


def test_the_scaling_runs_train_with_the_training_jobs_spark_conf():
    train = job_specs.train_traffic_job("2026-01-01", "/data", "v", executors=1,
                                        **job_specs.DEFAULT_TRAINING)
    scaling = job_specs.scaling_train_job("2026-01-01", "/data", executors=2)
    assert train.conf.items() <= scaling.conf.items()
    assert scaling.conf["spark.scheduler.minRegisteredResourcesRatio"] == "1.0"


def _xx_flag(option: str) -> tuple[str, str]:
    """``-XX:+Name`` -> (Name, "true"); ``-XX:Name=value`` -> (Name, value)."""
    flag = option.removeprefix("-XX:")
    if flag[0] in "+-":
        return flag[1:], "true" if flag[0] == "+" else "false"
    name, _, value = flag.partition("=")
    return name, value


def test_kubernetes_pod_is_a_valid_pod_running_the_same_spark_submit():
    from kubernetes.client import ApiClient

    operator = rendered("k8s_pod")
    pod = ApiClient().sanitize_for_serialization(
        operator.build_pod_request_obj(None, dry_run=True))
    validate_kubernetes_object(pod)

    (container,) = pod["spec"]["containers"]
    command = container["command"] + container["args"]
    assert command[:3] == ["spark-submit", "--master", "k8s://https://kubernetes.default.svc"]
    assert command[-len(EXPECTED_ARGS) - 1:] == [
        f"{IMAGE_REPO_ROOT}/spark_apps/zte_tad/train.py", *EXPECTED_ARGS]
    conf = conf_of(command)
    assert conf["spark.executor.instances"] == "3"
    assert conf["spark.kubernetes.container.image"] == "data-platform:0.1.0"
    # $(VAR) is expanded by Kubernetes from the container's env, so it must be there.
    env_names = {env["name"] for env in container["env"]}
    assert {"SPARK_DRIVER_HOST", "SPARK_DRIVER_POD_NAME"} <= env_names
    assert container["envFrom"] == [{"secretRef": {"name": K8S_ENV_SECRET}}]
    assert {"name": "data", "mountPath": DATA_DIR} in container["volumeMounts"]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == K8S_DATA_CLAIM
    # The training job's 5g driver and its overhead.
    assert container["resources"]["limits"]["memory"] == "5632Mi"
    assert SERVING_DB_PASSWORD not in json.dumps(pod)


def test_spark_application_is_what_the_provider_would_send_and_matches_the_crd():
    require(SPARK_APPLICATION_CRD.exists(),
            f"the Spark Operator CRD is not at {SPARK_APPLICATION_CRD} (../shared is absent)")
    from airflow.providers.cncf.kubernetes.operators.custom_object_launcher import (
        CustomObjectLauncher,
    )

    operator = rendered("spark_operator")
    # The provider's own rendering, as SparkKubernetesOperator.execute builds it.
    body = CustomObjectLauncher(name="train-traffic-x1", namespace=operator.namespace,
                                kube_client=None, custom_obj_api=None,
                                template_body=operator.template_body).body
    validate_kubernetes_object(body)
    spec = body["spec"]
    assert spec["mainApplicationFile"] == f"local://{IMAGE_REPO_ROOT}/spark_apps/zte_tad/train.py"
    assert spec["arguments"] == EXPECTED_ARGS
    assert spec["sparkConf"]["spark.executor.instances"] == "3"
    assert spec["monitoring"]["exposeDriverMetrics"] is True
    assert {"name": "data", "mountPath": DATA_DIR} in spec["executor"]["volumeMounts"]
    assert SERVING_DB_PASSWORD not in json.dumps(body)


def test_an_invalid_spark_application_is_refused():
    require(SPARK_APPLICATION_CRD.exists(), "the Spark Operator CRD is absent (../shared)")
    body = rendered("spark_operator").template_body["spark"]
    body["spec"]["driver"]["cores"] = "one"
    with pytest.raises(AssertionError, match="driver/cores"):
        validate_kubernetes_object(body)


def test_docker_runs_the_same_spark_submit_with_the_data_at_the_same_path():
    operator = rendered("docker")
    assert operator.image == "data-platform:0.1.0"
    command = operator.command
    assert command[command.index("--master") + 1] == "local[*]"
    assert command[-len(EXPECTED_ARGS):] == EXPECTED_ARGS
    (mount,) = operator.mounts
    assert (mount["Source"], mount["Target"], mount["Type"]) == (DATA_DIR, DATA_DIR, "bind")
    assert SERVING_DB_PASSWORD not in " ".join(command)


def test_container_command_sizes_executors_for_its_master():
    job = job_specs.ingest_traffic_job(DS, DATA_DIR)
    assert "spark.executor.instances" not in conf_of(container_spark_submit(job, "local[*]", {}))
    assert conf_of(container_spark_submit(job, "spark://m:7077", {}))["spark.cores.max"] == "1"


@pytest.mark.parametrize("runner", SPARK_RUNNERS)
def test_dag_files_do_not_change_between_runners(runner, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from dataplatform.settings import REPO_ROOT

    monkeypatch.setenv("PLATFORM_SPARK_RUNNER", runner)
    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    assert bag.import_errors == {}
    expected = type(rendered(runner)).__name__
    for dag_id, spark_tasks in {"students_nightly": ["clean_and_compute_statistics"],
                                "zte_tad_training": ["ingest_traffic", "train_traffic"]}.items():
        for task_id in spark_tasks:
            assert type(bag.dags[dag_id].get_task(task_id)).__name__ == expected


def test_runner_from_an_airflow_variable_and_unknown_runners_refused():
    from_variable = PlatformSettings.from_env({"AIRFLOW_VAR_PLATFORM_SPARK_RUNNER": "yarn"})
    assert from_variable.spark_runner == "yarn"
    with pytest.raises(ValueError, match="PLATFORM_SPARK_RUNNER='mesos'"):
        PlatformSettings.from_env({"PLATFORM_SPARK_RUNNER": "mesos"})


def test_committed_spark_application_templates_are_current_and_valid():
    require(SPARK_APPLICATION_CRD.exists(), "the Spark Operator CRD is absent (../shared)")
    import yaml

    assert SPARK_APPLICATIONS_FILE.read_text() == render_spark_applications(), \
        "infra/k8s/spark-applications.yaml is stale: run `make k8s-manifests`"
    for document in yaml.safe_load_all(SPARK_APPLICATIONS_FILE.read_text()):
        validate_kubernetes_object(document)


@pytest.mark.parametrize(("count", "factor", "expected"), [
    (3, 2, "6"),
    ("{{ params.executors }}", 1, "{{ params.executors }}"),  # one core each: unchanged
    ("{{ params.executors }}", 2, "{{ ((params.executors) | int) * 2 }}"),
])
def test_executor_cores_total(count, factor, expected):
    assert _times(count, factor) == expected


@pytest.mark.parametrize(("spark_memory", "pod_memory"), [
    ("512m", "896Mi"),  # the 384 MiB floor
    ("2g", "2432Mi"),
    ("8g", "9011Mi"),  # 10 % above the floor
])
def test_pod_memory_adds_sparks_overhead(spark_memory, pod_memory):
    assert _kubernetes_memory(spark_memory) == pod_memory
