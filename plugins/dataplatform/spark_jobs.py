"""Run a ``spark_apps`` job as an Airflow task, on the configured runner.

A DAG names the job, its arguments and its size (``SparkJob``); which operator
submits it is configuration (``PLATFORM_SPARK_RUNNER``), so DAG files do not
change between runners:

- ``local``, ``standalone``, ``yarn``: SparkSubmitOperator, client deploy mode,
  one Airflow connection per runner (``spark_local``, ``spark_standalone``,
  ``spark_yarn``);
- ``k8s_pod``: KubernetesPodOperator running ``spark-submit --master k8s://...``
  in the platform image; the pod is the driver, executors are pods too;
- ``spark_operator``: SparkKubernetesOperator with a SparkApplication;
- ``docker``: DockerOperator running the same ``spark-submit`` in the image.

Every runner gets the same application file, arguments and Spark settings.
Nothing secret goes on a command line: containers take credentials from a
Kubernetes Secret (``envFrom``), never from ``--conf``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from dataplatform.settings import REPO_ROOT, PlatformSettings
from dataplatform.spark_class_archive import with_class_archive

# Where the platform image holds the repo (infra/docker/Dockerfile).
IMAGE_REPO_ROOT = PurePosixPath("/opt/platform")
IMAGE_PYTHON = "/opt/venv/bin/python"
SPARK_VERSION = "4.3.0"

SPARK_SUBMIT_CONNECTIONS = {"local": "spark_local", "standalone": "spark_standalone",
                            "yarn": "spark_yarn"}

# Kubernetes objects the runners refer to; they are defined in infra/k8s/.
K8S_SERVICE_ACCOUNT = "spark"
K8S_DATA_CLAIM = "platform-data"
K8S_ENV_SECRET = "platform-spark-env"  # made by the user: kubectl create secret ...
K8S_METRICS_CONFIG_MAP = "spark-metrics-config"
K8S_METRICS_DIR = "/etc/metrics/conf"
K8S_LABELS = {"app.kubernetes.io/part-of": "data-platform",
              "app.kubernetes.io/managed-by": "airflow"}


@dataclass(frozen=True)
class SparkJob:
    """What to run: a file under spark_apps/, its arguments and its size."""

    task_id: str
    application: str  # relative to spark_apps/, e.g. "students/clean.py"
    arguments: Sequence = ()  # may hold templates or XComArgs
    driver_memory: str = "2g"
    executor_memory: str = "1g"
    executor_cores: int = 1
    executors: int | str = 1  # may be a template, e.g. "{{ params.executors }}"
    conf: dict[str, str] = field(default_factory=dict)
    local_driver_java_options: str = ""  # in local mode, where the driver holds the data


# A job imports spark_apps.*: spark-submit on this machine runs it with this
# environment's Python and the repo on its path.
LOCAL_JOB_ENV = {"PYTHONPATH": str(REPO_ROOT), "PYSPARK_PYTHON": sys.executable,
                 "PYSPARK_DRIVER_PYTHON": sys.executable}

# The jobs are batches: throughput counts, pauses do not. In local mode (one
# JVM, the driver) the parallel collector ran the 10M-row student job 7 %
# and the 1M-packet traffic jobs 5 % faster than the default G1
# (bench/README.md). Executors keep the cluster's own options: unmeasured.
BATCH_GC = "-XX:+UseParallelGC"
# A JIT that inlines less. In local mode, where the driver runs the tasks,
# its C2 compiler took 17.5-19.5 s of CPU in a 10M-row student run of about
# 33 s on 2 cores. Not inlining callees already compiled to over 1,000
# bytes, nor hot ones of over 150 bytes of bytecode, cut that by about 30 %
# and the runs' CPU by 8-14 % at the same output (bench/README.md): here
# the larger compiles did not repay their cost.
BATCH_JIT = "-XX:InlineSmallCode=1000 -XX:FreqInlineSize=150"


def spark_conf(job: SparkJob, runner: str, repo_root: PurePosixPath | None = None) -> dict:
    """Spark settings for ``job`` on ``runner``: the same on every runner but for sizing."""
    repo_root = repo_root or PurePosixPath(REPO_ROOT)
    conf = {
        # Spark's INFO chatter would bury the job's own lines in the task log.
        "spark.driver.extraJavaOptions":
            f"-Dlog4j2.configurationFile=file:{repo_root}/infra/spark/log4j2.properties "
            f"{BATCH_GC} {BATCH_JIT}",
        # Sample-sized data on a few cores: 200 shuffle partitions is all overhead.
        "spark.sql.shuffle.partitions": "8",
        # Prometheus (infra/prometheus): the driver UI serves its metrics and every
        # executor's, as the seed did. A fixed namespace instead of the app id
        # keeps the driver's metric names stable for dashboards
        # (metrics_platform_driver_...); process-tree metrics give each
        # executor's RSS.
        "spark.metrics.conf": f"{repo_root}/infra/spark/metrics.properties",
        "spark.metrics.namespace": "platform",
        "spark.ui.prometheus.enabled": "true",
        "spark.executor.processTreeMetrics.enabled": "true",
    }
    if runner == "local":  # one JVM, the driver: only its memory and heap count
        if job.local_driver_java_options:
            conf["spark.driver.extraJavaOptions"] += " " + job.local_driver_java_options
    else:
        conf["spark.executor.memory"] = job.executor_memory
        conf["spark.executor.cores"] = str(job.executor_cores)
        if runner == "standalone":
            # A standalone master ignores executor.instances; it starts
            # cores.max / executor.cores executors.
            conf["spark.cores.max"] = _times(job.executors, job.executor_cores)
        else:
            conf["spark.executor.instances"] = str(job.executors)
    return {**conf, **job.conf}


def spark_submit_conf(job: SparkJob, runner: str) -> dict:
    """``spark_conf`` as the SparkSubmit runners (local, standalone, YARN) send
    it from this machine, where they start the driver (client mode)."""
    conf = with_class_archive(spark_conf(job, runner))
    if runner == "local":
        return conf
    # Executors run the job's Python too: the same interpreter and code,
    # found at the same paths (a shared install or the platform image).
    return {"spark.pyspark.python": sys.executable,
            "spark.executorEnv.PYTHONPATH": str(REPO_ROOT), **conf}


def conf_arguments(conf: dict[str, str]) -> list[str]:
    """``--conf key=value`` for each setting, as spark-submit takes them."""
    return [part for key, value in conf.items() for part in ("--conf", f"{key}={value}")]


def spark_job_task(job: SparkJob, settings: PlatformSettings | None = None):
    """The operator that runs ``job`` on the configured runner."""
    settings = settings or PlatformSettings.from_env()
    build = _OPERATOR_BUILDERS[settings.spark_runner]
    return build(job, settings)


def _spark_submit_operator(job: SparkJob, settings: PlatformSettings):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    runner = settings.spark_runner
    return SparkSubmitOperator(
        task_id=job.task_id,
        conn_id=SPARK_SUBMIT_CONNECTIONS[runner],
        deploy_mode="client",
        application=str(REPO_ROOT / "spark_apps" / job.application),
        application_args=list(job.arguments),
        name=job.task_id,
        conf=spark_submit_conf(job, runner),
        driver_memory=job.driver_memory,
        env_vars=dict(LOCAL_JOB_ENV),
    )


def container_spark_submit(job: SparkJob, master: str, extra_conf: dict[str, str]) -> list:
    """The spark-submit command line a container runs (k8s_pod, docker)."""
    sizing = ("local" if master.startswith("local")
              else "standalone" if master.startswith("spark://") else "k8s")
    conf = {**spark_conf(job, sizing, IMAGE_REPO_ROOT), **extra_conf}
    command = ["spark-submit", "--master", master, "--deploy-mode", "client",
               "--name", job.task_id, *conf_arguments(conf)]
    command += ["--driver-memory", job.driver_memory,
                str(IMAGE_REPO_ROOT / "spark_apps" / job.application)]
    return command + list(job.arguments)


def _kubernetes_pod_operator(job: SparkJob, settings: PlatformSettings):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    data_dir = str(settings.data_dir)
    executor_conf = {
        "spark.kubernetes.namespace": settings.k8s_namespace,
        "spark.kubernetes.container.image": settings.image,
        "spark.kubernetes.authenticate.driver.serviceAccountName": K8S_SERVICE_ACCOUNT,
        # Client mode: executors call back to this pod, and it owns them, so
        # they go when it goes. $(VAR) is expanded by Kubernetes from the env.
        "spark.driver.host": "$(SPARK_DRIVER_HOST)",
        "spark.driver.bindAddress": "0.0.0.0",
        "spark.kubernetes.driver.pod.name": "$(SPARK_DRIVER_POD_NAME)",
        "spark.kubernetes.executor.podNamePrefix": job.task_id.replace("_", "-"),
        "spark.kubernetes.executor.volumes.persistentVolumeClaim.data.options.claimName":
            K8S_DATA_CLAIM,
        "spark.kubernetes.executor.volumes.persistentVolumeClaim.data.mount.path": data_dir,
    }
    for key, value in K8S_LABELS.items():
        executor_conf[f"spark.kubernetes.executor.label.{key}"] = value

    def field_env(name: str, path: str) -> k8s.V1EnvVar:
        return k8s.V1EnvVar(name=name, value_from=k8s.V1EnvVarSource(
            field_ref=k8s.V1ObjectFieldSelector(field_path=path)))

    memory = _kubernetes_memory(job.driver_memory)
    command = container_spark_submit(job, settings.k8s_master, executor_conf)
    return KubernetesPodOperator(
        task_id=job.task_id,
        name=job.task_id.replace("_", "-"),
        namespace=settings.k8s_namespace,
        image=settings.image,
        cmds=command[:1],
        arguments=command[1:],
        labels=K8S_LABELS,
        service_account_name=K8S_SERVICE_ACCOUNT,
        env_vars=[field_env("SPARK_DRIVER_HOST", "status.podIP"),
                  field_env("SPARK_DRIVER_POD_NAME", "metadata.name")],
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=K8S_ENV_SECRET))],
        volumes=[k8s.V1Volume(name="data", persistent_volume_claim=(
            k8s.V1PersistentVolumeClaimVolumeSource(claim_name=K8S_DATA_CLAIM)))],
        volume_mounts=[k8s.V1VolumeMount(name="data", mount_path=data_dir)],
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": "1", "memory": memory}, limits={"memory": memory}),
        get_logs=True,
        on_finish_action="delete_pod",
    )


def spark_application(job: SparkJob, settings: PlatformSettings) -> dict:
    """The SparkApplication (sparkoperator.k8s.io/v1beta2) that runs ``job``."""
    data_dir = str(settings.data_dir)
    name = job.task_id.replace("_", "-")
    conf = spark_conf(job, "spark_operator", IMAGE_REPO_ROOT)
    # The operator sizes pods from driver/executor below; keep one source.
    for key in ("spark.executor.memory", "spark.executor.cores", "spark.executor.instances"):
        conf.pop(key, None)
    conf["spark.metrics.conf"] = f"{K8S_METRICS_DIR}/metrics.properties"

    def pod(cores: int, memory: str) -> dict:
        return {
            "labels": dict(K8S_LABELS),
            "serviceAccount": K8S_SERVICE_ACCOUNT,
            "envFrom": [{"secretRef": {"name": K8S_ENV_SECRET}}],
            "volumeMounts": [{"name": "data", "mountPath": data_dir},
                             {"name": "spark-metrics", "mountPath": K8S_METRICS_DIR}],
            "cores": cores,
            "memory": memory,
        }

    spec = {
        "type": "Python",
        "pythonVersion": "3",
        "mode": "cluster",
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "mainApplicationFile": f"local://{IMAGE_REPO_ROOT}/spark_apps/{job.application}",
        "arguments": list(job.arguments),
        "sparkVersion": SPARK_VERSION,
        "sparkConf": conf,
        "restartPolicy": {"type": "Never"},
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": K8S_DATA_CLAIM}},
            {"name": "spark-metrics", "configMap": {"name": K8S_METRICS_CONFIG_MAP}},
        ],
        "driver": pod(1, job.driver_memory),
        "executor": pod(job.executor_cores, job.executor_memory),
        # As the seed did: Spark's own PrometheusServlet on the driver UI.
        "monitoring": {"exposeDriverMetrics": True, "exposeExecutorMetrics": True,
                       "metricsPropertiesFile": f"{K8S_METRICS_DIR}/metrics.properties"},
    }
    if isinstance(job.executors, int):
        spec["executor"]["instances"] = job.executors
    else:
        # A template renders to a string, which the CRD's integer field
        # refuses; sparkConf takes strings.
        conf["spark.executor.instances"] = job.executors
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": settings.k8s_namespace,
                     "labels": dict(K8S_LABELS)},
        "spec": spec,
    }


def _spark_kubernetes_operator(job: SparkJob, settings: PlatformSettings):
    from airflow.providers.cncf.kubernetes.operators.spark_kubernetes import (
        SparkKubernetesOperator,
    )

    return SparkKubernetesOperator(
        task_id=job.task_id,
        namespace=settings.k8s_namespace,
        template_spec={"spark": spark_application(job, settings)},
        get_logs=True,
        delete_on_termination=True,
    )


def _docker_operator(job: SparkJob, settings: PlatformSettings):
    from airflow.providers.docker.operators.docker import DockerOperator
    from docker.types import Mount

    data_dir = str(settings.data_dir)
    return DockerOperator(
        task_id=job.task_id,
        image=settings.image,
        command=container_spark_submit(job, settings.docker_spark_master, {}),
        # The data directory appears at the same path inside, so the job's
        # --data-dir argument means the same thing on both sides.
        mounts=[Mount(target=data_dir, source=data_dir, type="bind")],
        network_mode=settings.docker_network,
        mount_tmp_dir=False,
        auto_remove="success",
    )


_OPERATOR_BUILDERS = {
    "local": _spark_submit_operator,
    "standalone": _spark_submit_operator,
    "yarn": _spark_submit_operator,
    "k8s_pod": _kubernetes_pod_operator,
    "spark_operator": _spark_kubernetes_operator,
    "docker": _docker_operator,
}


def _times(count: int | str, factor: int) -> str:
    """``count * factor`` as a string, where ``count`` may be a Jinja template."""
    if isinstance(count, int):
        return str(count * factor)
    if factor == 1:
        return count
    inner = re.fullmatch(r"\{\{(.*)\}\}", count.strip())
    if not inner:
        raise ValueError(f"executors must be an int or one Jinja expression, got {count!r}")
    return f"{{{{ (({inner.group(1).strip()}) | int) * {factor} }}}}"


def _kubernetes_memory(spark_memory: str) -> str:
    """A pod memory size for a JVM of ``spark_memory``, plus Spark's overhead."""
    match = re.fullmatch(r"(\d+)([mgMG])", spark_memory)
    if not match:
        raise ValueError(f"memory must look like 512m or 2g, got {spark_memory!r}")
    mib = int(match.group(1)) * (1024 if match.group(2).lower() == "g" else 1)
    # Spark's default memory overhead: 10 %, at least 384 MiB.
    return f"{mib + max(384, mib // 10)}Mi"
