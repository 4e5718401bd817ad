"""infra/k8s/: every object valid offline, and the objects agree with each other.

Schemas: Kubernetes 1.37 (kubernetes-validate, strict), the Spark Operator's
SparkApplication CRD and the Airflow Helm chart's values schema (both under
../shared/schemas/; a test that needs one is skipped where it is absent, and
fails under CI).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import require
from dataplatform.spark_jobs import (
    K8S_DATA_CLAIM,
    K8S_ENV_SECRET,
    K8S_METRICS_CONFIG_MAP,
    K8S_SERVICE_ACCOUNT,
)
from schema_validation import (
    AIRFLOW_HELM_VALUES_SCHEMA,
    SPARK_APPLICATION_CRD,
    InvalidObject,
    validate_helm_values,
    validate_kubernetes_object,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = REPO_ROOT / "infra" / "k8s"
VALUES_FILE = K8S_DIR / "airflow-values.yaml"
NAMESPACE = "data-platform"
DATA_DIR = "/opt/platform/data"
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
                  "StorageClass", "CustomResourceDefinition", "PriorityClass"}


def load_manifests() -> list[tuple[str, dict]]:
    documents = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        if path == VALUES_FILE:
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                documents.append((path.name, document))
    return documents


MANIFESTS = load_manifests()
VALUES = yaml.safe_load(VALUES_FILE.read_text())


def objects(kind: str) -> dict[tuple[str | None, str], dict]:
    """The manifests' objects of one kind, by (namespace, name)."""
    return {(obj["metadata"].get("namespace"), obj["metadata"]["name"]): obj
            for _, obj in MANIFESTS if obj.get("kind") == kind}


def manifest_id(item: tuple[str, dict]) -> str:
    file_name, obj = item
    return f"{file_name}:{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def grants(service_account: str, api_group: str, resource: str, verb: str) -> bool:
    """Whether a RoleBinding in the manifests gives the account this permission."""
    roles = objects("Role")
    for binding in objects("RoleBinding").values():
        namespace = binding["metadata"]["namespace"]
        if not any(s["kind"] == "ServiceAccount" and s["name"] == service_account
                   and s.get("namespace", namespace) == NAMESPACE for s in binding["subjects"]):
            continue
        role = roles.get((namespace, binding["roleRef"]["name"]))
        for rule in (role or {}).get("rules", []):
            if (api_group in rule["apiGroups"] and resource in rule["resources"]
                    and verb in rule["verbs"]):
                return True
    return False


def quantity_bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", quantity).groups()
    return int(number) * 1024 ** ("", "Ki", "Mi", "Gi", "Ti").index(unit or "")


def test_the_platform_manifests_are_there():
    kinds = {(obj["kind"], obj["metadata"]["name"]) for _, obj in MANIFESTS}
    assert {("Namespace", NAMESPACE), ("ServiceAccount", "spark"), ("PersistentVolumeClaim",
            "platform-data"), ("ConfigMap", "spark-metrics-config")} <= kinds


@pytest.mark.parametrize("item", MANIFESTS, ids=manifest_id)
def test_manifest_is_a_valid_kubernetes_object(item):
    _, obj = item
    assert isinstance(obj, dict) and obj.get("kind") != "List", "one object per document"
    if obj.get("kind") == "SparkApplication":
        require(SPARK_APPLICATION_CRD.exists(),
                f"the Spark Operator CRD is not at {SPARK_APPLICATION_CRD} (../shared is absent)")
    validate_kubernetes_object(obj)


@pytest.mark.parametrize("item", MANIFESTS, ids=manifest_id)
def test_manifest_is_in_the_platform_namespace(item):
    _, obj = item
    namespace = obj["metadata"].get("namespace")
    if obj["kind"] in CLUSTER_SCOPED:
        assert namespace is None, f"{obj['kind']} is cluster-scoped"
    else:
        assert namespace == NAMESPACE


def test_validator_rejects_a_misspelt_field():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": NAMESPACE},
           "spec": {"containers": [{"name": "c", "imagee": "data-platform:0.1.0"}]}}
    with pytest.raises(InvalidObject, match="imagee"):
        validate_kubernetes_object(pod)


def test_validator_rejects_a_spark_application_without_its_required_fields():
    require(SPARK_APPLICATION_CRD.exists(),
            f"the Spark Operator CRD is not at {SPARK_APPLICATION_CRD} (../shared is absent)")
    app = {"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
           "metadata": {"name": "a", "namespace": NAMESPACE},
           "spec": {"type": "Python", "mode": "cluster", "driver": {}, "executor": {}}}
    with pytest.raises(InvalidObject, match="mainApplicationFile|sparkVersion"):
        validate_kubernetes_object(app)


def test_spark_metrics_config_map_is_infra_spark_metrics_properties():
    config_map = objects("ConfigMap")[(NAMESPACE, K8S_METRICS_CONFIG_MAP)]
    expected = (REPO_ROOT / "infra" / "spark" / "metrics.properties").read_text()
    assert config_map["data"]["metrics.properties"] == expected


def test_role_bindings_bind_roles_and_accounts_of_the_manifests():
    roles, accounts = objects("Role"), objects("ServiceAccount")
    bindings = objects("RoleBinding")
    assert bindings
    for (namespace, name), binding in bindings.items():
        ref = binding["roleRef"]
        assert ref["kind"] == "Role" and (namespace, ref["name"]) in roles, name
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount", name
            assert (subject.get("namespace", namespace), subject["name"]) in accounts, name


def test_spark_drivers_may_manage_their_executors():
    assert (NAMESPACE, K8S_SERVICE_ACCOUNT) in objects("ServiceAccount")
    for resource in ("pods", "services", "configmaps"):
        for verb in ("create", "get", "watch", "delete"):
            assert grants(K8S_SERVICE_ACCOUNT, "", resource, verb), (resource, verb)


def test_airflow_tasks_may_start_spark_jobs():
    account = VALUES["scheduler"]["serviceAccount"]
    assert account["create"] is False, "the account is the manifests', not the chart's"
    assert (NAMESPACE, account["name"]) in objects("ServiceAccount")
    assert VALUES["workers"]["serviceAccount"]["name"] == account["name"]
    assert grants(account["name"], "sparkoperator.k8s.io", "sparkapplications", "create")
    assert grants(account["name"], "sparkoperator.k8s.io", "sparkapplications", "delete")
    assert grants(account["name"], "", "pods", "create")
    assert grants(account["name"], "", "pods/log", "get")
    assert not grants(account["name"], "", "secrets", "get")


def test_the_data_claim_binds_to_the_data_volume():
    claim = objects("PersistentVolumeClaim")[(NAMESPACE, K8S_DATA_CLAIM)]["spec"]
    volume = objects("PersistentVolume")[(None, claim["volumeName"])]["spec"]
    assert volume["claimRef"] == {"namespace": NAMESPACE, "name": K8S_DATA_CLAIM}
    assert claim["storageClassName"] == volume["storageClassName"]
    # Airflow and every Spark pod mount it at once.
    assert "ReadWriteMany" in claim["accessModes"] and "ReadWriteMany" in volume["accessModes"]
    assert (quantity_bytes(claim["resources"]["requests"]["storage"])
            <= quantity_bytes(volume["capacity"]["storage"]))


SPARK_APPLICATIONS = [item for item in MANIFESTS if item[1]["kind"] == "SparkApplication"]


@pytest.mark.parametrize("item", SPARK_APPLICATIONS, ids=manifest_id)
def test_spark_application_refers_to_objects_that_exist(item):
    _, app = item
    spec = app["spec"]
    accounts = objects("ServiceAccount")
    for role in ("driver", "executor"):
        assert (NAMESPACE, spec[role]["serviceAccount"]) in accounts, role
    for volume in spec.get("volumes", []):
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            assert (NAMESPACE, claim) in objects("PersistentVolumeClaim"), claim
        if "configMap" in volume:
            assert (NAMESPACE, volume["configMap"]["name"]) in objects("ConfigMap")


# --- the Helm values ------------------------------------------------------

def helm_schema_present() -> None:
    require(AIRFLOW_HELM_VALUES_SCHEMA.exists(),
            f"the Airflow chart's values schema is not at {AIRFLOW_HELM_VALUES_SCHEMA} "
            "(../shared is absent)")


def test_helm_values_validate_against_the_chart_schema():
    helm_schema_present()
    validate_helm_values(VALUES)


def test_helm_values_have_only_chart_keys_at_the_top():
    # The schema's root accepts unknown keys, so a misspelt top-level key
    # (`executer:`) would pass validation and be ignored by the chart.
    helm_schema_present()
    schema = json.loads(AIRFLOW_HELM_VALUES_SCHEMA.read_text())
    assert set(VALUES) - set(schema["properties"]) == set()


def test_helm_values_validator_rejects_a_misspelt_key():
    helm_schema_present()
    with pytest.raises(InvalidObject, match="repo"):
        validate_helm_values({**VALUES, "images": {"airflow": {"repo": "data-platform"}}})


def values_env() -> dict[str, str]:
    return {item["name"]: item["value"] for item in VALUES["env"]}


def test_helm_values_run_the_platform_image_on_the_spark_operator():
    image = VALUES["images"]["airflow"]
    assert f"{image['repository']}:{image['tag']}" == values_env()["PLATFORM_IMAGE"]
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())
    assert values_env()["PLATFORM_IMAGE"] == compose["services"]["airflow-scheduler"]["image"]
    assert VALUES["executor"] == "LocalExecutor"
    assert values_env()["PLATFORM_SPARK_RUNNER"] == "spark_operator"
    assert values_env()["PLATFORM_K8S_NAMESPACE"] == NAMESPACE
    assert VALUES["dags"]["persistence"]["enabled"] is False
    assert VALUES["config"]["core"]["dags_folder"] == "/opt/platform/dags"
    assert VALUES["statsd"]["enabled"] is True


def test_helm_values_mount_the_data_claim_at_the_data_dir():
    (volume,) = [v for v in VALUES["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["claimName"] == K8S_DATA_CLAIM
    assert (NAMESPACE, K8S_DATA_CLAIM) in objects("PersistentVolumeClaim")
    (mount,) = [m for m in VALUES["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"] == values_env()["PLATFORM_DATA_DIR"] == DATA_DIR


def test_every_secret_referred_to_has_its_create_command_in_the_readme():
    referred = {VALUES["data"]["metadataSecretName"], VALUES["fernetKeySecretName"],
                VALUES["jwtSecretName"], VALUES["apiSecretKeySecretName"], K8S_ENV_SECRET}
    referred |= {item["secretRef"]["name"] for item in yaml.safe_load(VALUES["extraEnvFrom"])}
    for _, app in SPARK_APPLICATIONS:
        for role in ("driver", "executor"):
            referred |= {item["secretRef"]["name"] for item in app["spec"][role].get("envFrom", [])
                         if "secretRef" in item}
    readme = (K8S_DIR / "README.md").read_text()
    documented = set(re.findall(r"create secret generic ([a-z0-9-]+)", readme))
    assert referred - documented == set()


def test_helm_scheduler_runs_with_the_platforms_scheduler_settings():
    from dataplatform.local_airflow import SCHEDULER_SETTINGS

    def normalised(options: dict) -> dict:  # Airflow strips each preloaded name
        return {name: ",".join(part.strip() for part in str(value).split(","))
                for name, value in options.items()}

    prefix = "AIRFLOW__SCHEDULER__"
    assert all(name.startswith(prefix) for name in SCHEDULER_SETTINGS)
    expected = {name.removeprefix(prefix).lower(): value
                for name, value in SCHEDULER_SETTINGS.items()}
    assert normalised(VALUES["config"]["scheduler"]) == expected
