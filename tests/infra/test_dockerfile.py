"""infra/docker/Dockerfile, read as text (no Docker engine here).

The image must hold exactly the locked dependencies, copy only what exists
and what the build context lets through, and run as a non-root user at the
paths the Spark runners assume.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path, PurePosixPath

import pyspark
import pytest
from dataplatform.spark_jobs import IMAGE_PYTHON, IMAGE_REPO_ROOT

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "infra" / "docker" / "Dockerfile"
VENV = PurePosixPath("/opt/venv")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuations joined."""
    result, pending = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1].strip() + " "
            continue
        line, pending = pending + line.strip(), ""
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            result.append((keyword.upper(), arguments.strip()))
    return result


INSTRUCTIONS = instructions(DOCKERFILE.read_text())


def arguments_of(keyword: str) -> list[str]:
    return [args for kw, args in INSTRUCTIONS if kw == keyword]


def env() -> dict[str, str]:
    values = {}
    for args in arguments_of("ENV"):
        for pair in shlex.split(args):
            name, _, value = pair.partition("=")
            values[name] = value
    return values


def base_image_is_pinned(image: str) -> bool:
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and bool(re.search(r"\d", tag))


def runs_as_root(user: str | None) -> bool:
    return user is None or user.split(":")[0] in ("root", "0")


def copy_sources(args: str) -> list[str]:
    parts = [p for p in shlex.split(args) if not p.startswith("--")]
    return parts[:-1]


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or a parent decides."""
    def regex(pattern: str) -> re.Pattern:
        out = ""
        for token in re.split(r"(\*\*/?|\*|\?)", pattern.strip("/")):
            out += {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                token, re.escape(token))
        return re.compile(out)

    parts = PurePosixPath(path).parts
    paths = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        if any(regex(pattern.lstrip("!")).fullmatch(p) for p in paths):
            excluded = not pattern.startswith("!")
    return excluded


def dockerignore() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# --- the checks themselves catch what they should -------------------------

@pytest.mark.parametrize(("image", "pinned"), [
    ("python:3.11.7-slim-bookworm", True),
    ("python", False),
    ("python:latest", False),
    ("python:slim", False),
])
def test_base_image_is_pinned_check(image, pinned):
    assert base_image_is_pinned(image) is pinned


@pytest.mark.parametrize(("user", "root"), [
    ("50000:0", False), ("airflow", False), ("root", True), ("0:0", True), (None, True)])
def test_runs_as_root_check(user, root):
    assert runs_as_root(user) is root


@pytest.mark.parametrize(("path", "excluded"), [
    (".env", True),
    (".venv/bin/python", True),
    ("data/landing/students/ds=2026-01-01/a.csv", True),
    ("data/samples/students/students_sample.csv", False),
    ("dags/students_nightly.py", False),
    ("plugins/dataplatform/__pycache__/settings.cpython-311.pyc", True),
    ("tests/conftest.py", True),
])
def test_dockerignore_lets_through_only_the_image_sources(path, excluded):
    assert dockerignore_excludes(path, dockerignore()) is excluded


def test_instruction_parser_joins_continuations():
    parsed = instructions("FROM a:1\n# note\nRUN x \\\n    && y\nUSER 1:0\n")
    assert parsed == [("FROM", "a:1"), ("RUN", "x && y"), ("USER", "1:0")]


# --- the Dockerfile ----------------------------------------------------------

def test_base_image_is_pinned_to_the_projects_python():
    (base,) = arguments_of("FROM")
    assert base_image_is_pinned(base), base
    assert base.startswith("python:3.11."), "pyproject.toml requires Python 3.11"


def test_dependencies_are_exactly_the_lock():
    (sync,) = [i for i, (kw, args) in enumerate(INSTRUCTIONS)
               if kw == "RUN" and "uv pip sync" in args]
    assert shlex.split(INSTRUCTIONS[sync][1])[-1] == "requirements.lock"
    (copy,) = [i for i, (kw, args) in enumerate(INSTRUCTIONS)
               if kw == "COPY" and "requirements.lock" in copy_sources(args)]
    assert copy < sync, "the lock is copied in before it is synced"
    runs = arguments_of("RUN")
    # Nothing else installs a package: the project goes in without dependencies,
    # and pip installs only uv, at the Makefile's version.
    for run in runs:
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            if "install" not in words:
                continue
            if words[:2] == ["uv", "pip"]:
                assert "--no-deps" in words and "-e" in words, command
            elif words[0] == "pip":
                make_uv = re.search(r"^UV_VERSION := (\S+)$",
                                    (REPO_ROOT / "Makefile").read_text(), re.M)[1]
                assert [w for w in words[2:] if not w.startswith("-")] == [f"uv=={make_uv}"]
            else:
                assert words[0] == "apt-get", command


def test_apt_installs_without_recommends_and_cleans_up():
    (apt,) = [run for run in arguments_of("RUN") if "apt-get install" in run]
    assert "--no-install-recommends" in apt and "rm -rf /var/lib/apt/lists/*" in apt
    for package in ("openjdk-17-jre-headless", "procps", "tini"):
        assert package in apt.split()


@pytest.mark.parametrize("args", [a for kw, a in INSTRUCTIONS if kw == "COPY"])
def test_copied_paths_exist_and_reach_the_build_context(args):
    patterns = dockerignore()
    for source in copy_sources(args):
        path = REPO_ROOT / source
        assert path.exists(), source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        kept = [f for f in files
                if not dockerignore_excludes(str(f.relative_to(REPO_ROOT)), patterns)]
        assert kept, f"{source}: .dockerignore keeps it out of the build context"


def test_the_repo_lands_where_the_spark_runners_expect_it():
    workdirs = [(i, args) for i, (kw, args) in enumerate(INSTRUCTIONS) if kw == "WORKDIR"]
    copies = [i for i, (kw, _) in enumerate(INSTRUCTIONS) if kw == "COPY"]
    for index in copies:
        workdir = [args for i, args in workdirs if i < index][-1]
        assert workdir == str(IMAGE_REPO_ROOT)
    values = env()
    assert values["PYSPARK_PYTHON"] == IMAGE_PYTHON == str(VENV / "bin" / "python")
    assert values["PATH"].startswith(f"{VENV}/bin:")
    assert values["AIRFLOW__CORE__DAGS_FOLDER"] == f"{IMAGE_REPO_ROOT}/dags"
    assert values["AIRFLOW__CORE__PLUGINS_FOLDER"] == f"{IMAGE_REPO_ROOT}/plugins"
    assert values["PLATFORM_DATA_DIR"] == f"{IMAGE_REPO_ROOT}/data"


def test_spark_home_is_the_pip_pyspark_of_the_venv():
    # Where pyspark sits inside a venv, as in .venv: lib/python3.11/site-packages/pyspark.
    in_venv = Path(pyspark.__file__).parent.relative_to(sys.prefix)
    assert env()["SPARK_HOME"] == str(VENV / in_venv.as_posix())
    java_home = env()["JAVA_HOME"]
    assert any(run for run in arguments_of("RUN")
               if re.search(rf"ln -s .*java.* {re.escape(java_home)}( |$)", run)), java_home


def test_runs_as_a_non_root_user():
    users = arguments_of("USER")
    assert not runs_as_root(users[-1] if users else None)
    # The Airflow Helm chart runs its pods as uid 50000, gid 0 by default.
    assert users[-1] == "50000:0"
    assert any("useradd --uid 50000 --gid 0" in run for run in arguments_of("RUN"))


def test_entrypoint_and_default_command():
    assert arguments_of("ENTRYPOINT") == ['["/opt/entrypoint.sh"]']
    assert any(copy.split()[-1] == "/opt/entrypoint.sh" for copy in arguments_of("COPY"))
    assert arguments_of("CMD") == ['["airflow", "version"]']
    labels = " ".join(arguments_of("LABEL"))
    assert 'org.opencontainers.image.version="0.1.0"' in labels
