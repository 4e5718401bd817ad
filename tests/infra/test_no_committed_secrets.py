"""No working credential in any committed file.

Every secret comes from the environment (``.env`` for compose, a Kubernetes
Secret, ``AIRFLOW_CONN_*``) or is generated; this scans what git holds for the
shapes secrets take. A match that is not a secret is listed below with why.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from dataplatform.settings import REPO_ROOT

SECRET_SHAPES = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"AKIA[0-9A-Z]{16}"),
    # user:password@ in a URL, unless the password is a ${...} or {...} reference
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@${}'\"<>]+:[^/\s@${}'\"<>]+@"),
    "literal secret": re.compile(r"(?i)(password|passwd|secret|token|api_key|fernet_key)"
                                 r"[\"']?\s*[:=]\s*[\"']([^\"'\s]{6,})[\"']"),
    "default login": re.compile(r"(?i)\b(airflow:airflow|admin:admin|postgres:postgres)\b"),
    # KEY: value / KEY=value with a bare value, as in YAML, .env and shell files;
    # not a ${...} reference, and not a key naming a secret ("...SecretName").
    "bare secret in a config file": re.compile(
        r"(?im)^[ \t-]*[\w.]*(password|passwd|secret|token|api_key)(?!\w*name\b)[\w.]*"
        r"[ \t]*[:=][ \t]*(?![\"'$({<\[]|none\b|null\b|$)([^\s#]{6,})"),
    "Fernet key": re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}=(?![A-Za-z0-9=])"),
}

# (file, matched text): why it is not a credential.
NOT_SECRETS = {
    ("docker-compose.yaml", "admin:admin"):
        "simple auth manager users are user:role; the password is generated at start",
    ("infra/k8s/airflow-values.yaml", "admin:admin"): "user:role, as above",
    ("infra/k8s/README.md", "postgresql://USER:PASSWORD@"): "a placeholder in prose",
    ("plugins/dataplatform/spark_jobs.py", 'SECRET = "platform-spark-env"'):
        "the name of the Kubernetes Secret, not its content",
    ("tests/plugins/test_spark_runners.py", 'PASSWORD = "s3cret-serving-pw"'):
        "a marker the runner tests look for on command lines; it opens nothing",
    ("tests/infra/test_compose.py", "postgresql://airflow:airflow@"):
        "a bad example the compose test must catch",
    ("tests/infra/test_compose.py", "airflow:airflow"): "the same example",
}


# This file: its examples of each shape are the point.
THIS_FILE = "tests/infra/test_no_committed_secrets.py"


def committed_text_files() -> dict[str, str]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    texts = {}
    for name in filter(None, names):
        if name == THIS_FILE:
            continue
        try:
            texts[name] = (REPO_ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue  # parquet samples and other binaries
    return texts


# Code assigns variables named like secrets all the time (token = server.token()).
CONFIG_ONLY_SHAPES = {"bare secret in a config file"}
CODE_SUFFIXES = (".py", ".md")


def secret_shaped(texts: dict[str, str]) -> list[tuple[str, int, str, str]]:
    found = []
    for name, text in texts.items():
        for shape, pattern in SECRET_SHAPES.items():
            if shape in CONFIG_ONLY_SHAPES and name.endswith(CODE_SUFFIXES):
                continue
            for match in pattern.finditer(text):
                if (name, match.group(0)) not in NOT_SECRETS:
                    found.append((name, text.count("\n", 0, match.start()) + 1, shape,
                                  match.group(0)))
    return found


def test_no_committed_file_holds_a_credential():
    texts = committed_text_files()
    assert len(texts) > 50
    assert secret_shaped(texts) == []


@pytest.mark.parametrize("text", [
    "url: postgresql+psycopg2://platform:hunter2pw@db:5432/warehouse",
    'AIRFLOW__CORE__FERNET_KEY: "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5X="',
    "password = 'correct-horse'",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "aws_access_key_id = AKIAABCDEFGHIJKLMNOP",
    "login with postgres:postgres",
    "    POSTGRES_PASSWORD: hunter22pw",  # compose/YAML, unquoted
    "SERVING_DB_PASSWORD=hunter22pw",  # .env or shell
])
def test_each_shape_is_caught(text):
    assert secret_shaped({"example.yaml": text})


def test_references_to_the_environment_are_not_secrets():
    text = ('PLATFORM_WAREHOUSE_URL: "postgresql+psycopg2://${SERVING_DB_USER:?set it}:'
            '${SERVING_DB_PASSWORD:?set it}@serving-db:5432/warehouse"\n'
            'url = f"postgresql+psycopg2://{user}:{password}@127.0.0.1/{database}"')
    assert secret_shaped({"example.yaml": text}) == []
    assert secret_shaped({"infra/k8s/values.yaml": "jwtSecretName: airflow-jwt-secret\n"
                          "SERVING_DB_PASSWORD=\n"}) == []
