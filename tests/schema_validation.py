"""Offline validation of what the platform would send to Kubernetes.

Core objects go through ``kubernetes-validate`` (the Kubernetes OpenAPI
schemas, strict: unknown fields fail). SparkApplications go through the Spark
Operator's own CRD schema, a verbatim copy under ``../shared/schemas/``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.37.0"
SHARED_SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "schemas"
SPARK_APPLICATION_CRD = (SHARED_SCHEMAS / "spark-operator"
                         / "sparkoperator.k8s.io_sparkapplications.yaml")
AIRFLOW_HELM_VALUES_SCHEMA = SHARED_SCHEMAS / "airflow-helm" / "values.schema.json"


class InvalidObject(AssertionError):
    pass


@cache
def _spark_application_validator() -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(SPARK_APPLICATION_CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta2"]
    return jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"])


def validate_kubernetes_object(obj: dict) -> None:
    """Raise InvalidObject naming the object and the first schema violation."""
    name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    if obj.get("kind") == "SparkApplication":
        if obj.get("apiVersion") != "sparkoperator.k8s.io/v1beta2":
            raise InvalidObject(f"{name}: apiVersion {obj.get('apiVersion')!r}")
        errors = sorted(_spark_application_validator().iter_errors(obj), key=str)
        if errors:
            path = "/".join(str(p) for p in errors[0].absolute_path)
            raise InvalidObject(f"{name}: {path}: {errors[0].message}")
        # Its pod templates are core objects too: their metadata must be valid.
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]},
            KUBERNETES_VERSION, strict=True)
        return
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = "/".join(str(p) for p in error.path)
        raise InvalidObject(f"{name}: {path}: {error.message}") from None


def validate_helm_values(values: dict) -> None:
    schema = yaml.safe_load(AIRFLOW_HELM_VALUES_SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(values), key=str)
    if errors:
        path = "/".join(str(p) for p in errors[0].absolute_path)
        raise InvalidObject(f"Airflow Helm values: {path}: {errors[0].message}")
