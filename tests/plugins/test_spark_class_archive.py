"""The Spark class archive: who maps it, how it is made, and that a real
driver JVM loads Spark's classes from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require
from dataplatform import job_specs, spark_class_archive
from dataplatform.local_airflow import JavaNotFound
from dataplatform.settings import PlatformSettings
from dataplatform.spark_class_archive import DRIVER_OPTIONS, with_class_archive
from dataplatform.spark_jobs import LOCAL_JOB_ENV, conf_arguments, spark_job_task

DS = "2026-11-20"


@pytest.fixture
def archive(tmp_path, monkeypatch) -> Path:
    """Where the code under test finds this install's archive (not made yet)."""
    path = tmp_path / "archives" / "pyspark-test.jsa"
    monkeypatch.setattr(spark_class_archive, "archive_path", lambda: path)
    return path


@pytest.fixture
def made(archive) -> Path:
    """A stand-in archive file: only its presence is read by the conf code."""
    archive.parent.mkdir()
    archive.write_bytes(b"\0")
    return archive


def operator_for(runner: str):
    job = job_specs.clean_and_compute_statistics_job(DS, "/srv/data")
    return spark_job_task(job, PlatformSettings.from_env({
        "PLATFORM_SPARK_RUNNER": runner, "PLATFORM_DATA_DIR": "/srv/data"}))


def test_the_driver_maps_the_archive_after_its_own_options(made):
    conf = with_class_archive({DRIVER_OPTIONS: "-Dlog4j2.configurationFile=x",
                               "spark.sql.shuffle.partitions": "8"})
    assert conf == {DRIVER_OPTIONS: f"-Dlog4j2.configurationFile=x "
                                    f"-XX:SharedArchiveFile={made}",
                    "spark.sql.shuffle.partitions": "8"}


def test_without_an_archive_the_conf_is_left_as_it_is(archive):
    assert with_class_archive({DRIVER_OPTIONS: "-Da"}) == {DRIVER_OPTIONS: "-Da"}


@pytest.mark.parametrize("runner", ["local", "standalone", "yarn"])
def test_spark_submit_runners_start_their_driver_with_the_archive(made, runner):
    conf = operator_for(runner).conf
    assert conf[DRIVER_OPTIONS].endswith(f"-XX:SharedArchiveFile={made}")
    # Executors start elsewhere, with a classpath of their own.
    assert "SharedArchiveFile" not in conf.get("spark.executor.extraJavaOptions", "")


def test_containers_never_name_this_machines_archive(made):
    from kubernetes.client import ApiClient

    sent = {
        "k8s_pod": ApiClient().sanitize_for_serialization(
            operator_for("k8s_pod").build_pod_request_obj(None, dry_run=True)),
        "docker": operator_for("docker").command,
        "spark_operator": operator_for("spark_operator").template_body,
    }
    for runner, what in sent.items():
        text = json.dumps(what)
        assert "spark.sql.shuffle.partitions" in text, runner  # the conf is in there
        assert str(made) not in text and "SharedArchiveFile" not in text, runner


def test_the_archive_is_named_by_the_jvm_it_was_made_with(tmp_path, monkeypatch):
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "lib" / "server").mkdir(parents=True)
    (java_home / "bin" / "java").write_text("")
    libjvm = java_home / "lib" / "server" / "libjvm.so"
    libjvm.write_bytes(b"17.0.15")
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    first = spark_class_archive.archive_path.__wrapped__()
    assert first.parent == Path(sys.prefix) / "spark-class-archive"
    libjvm.write_bytes(b"17.0.16+1")  # a JDK update replaces the library
    assert spark_class_archive.archive_path.__wrapped__() != first
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    assert spark_class_archive.archive_path.__wrapped__() is None


def test_setup_goes_on_without_java(archive, monkeypatch, capsys):
    def no_java(env):
        raise JavaNotFound("Spark 4 needs Java 17+ and found no java")

    monkeypatch.setattr(spark_class_archive, "check_java", no_java)
    spark_class_archive.main()
    assert "no Spark class archive made: Spark 4 needs Java" in capsys.readouterr().out
    assert not archive.exists()


def _jvm_that(writes: bytes | None, exit_code: int = 0):
    """In place of the workload's spark-submit: writes ``writes`` where the
    command asks the JVM to dump its archive, then exits with ``exit_code``."""
    def run(command, **kwargs):
        (option,) = [part for arg in command for part in arg.split()
                     if part.startswith("-XX:ArchiveClassesAtExit=")]
        if writes is not None:
            Path(option.split("=", 1)[1]).write_bytes(writes)
        if exit_code:
            raise subprocess.CalledProcessError(exit_code, command[0])
    return run


@pytest.mark.parametrize(("writes", "exit_code"), [
    (b"half an archive", 1),  # the JVM died while dumping
    (None, 0),  # ran, but dumped nothing (e.g. no base CDS archive)
])
def test_a_failed_build_leaves_no_archive_and_setup_goes_on(archive, monkeypatch, capsys,
                                                            writes, exit_code):
    monkeypatch.setattr(spark_class_archive, "check_java", lambda env: "java")
    monkeypatch.setattr(spark_class_archive.subprocess, "run", _jvm_that(writes, exit_code))
    spark_class_archive.main()
    assert "no Spark class archive made (jobs start without one)" in capsys.readouterr().out
    assert list(archive.parent.iterdir()) == []


def test_a_whole_archive_replaces_other_jvms_archives(archive, monkeypatch):
    archive.parent.mkdir()
    stale = archive.parent / "pyspark-4.0.0-jvm-0123456789ab.jsa"
    stale.write_bytes(b"an older JVM's")
    monkeypatch.setattr(spark_class_archive, "check_java", lambda env: "java")
    monkeypatch.setattr(spark_class_archive.subprocess, "run", _jvm_that(b"whole"))
    spark_class_archive.main()
    assert list(archive.parent.iterdir()) == [archive]
    assert archive.read_bytes() == b"whole"


@pytest.mark.slow
def test_a_platform_driver_loads_spark_from_the_archive(java, tmp_path):
    """A real spark-submit with the conf the jobs get: Spark's own classes
    come from the archive ``make setup`` made, not from their jars."""
    archive = spark_class_archive.archive_path()
    require(archive is not None and archive.is_file(),
            f"no Spark class archive at {archive} (made by `make setup`)")
    conf = operator_for("local").conf
    loaded = tmp_path / "classes.log"
    options = f"{conf[DRIVER_OPTIONS]} -Xlog:class+load=info:file={loaded}"
    script = tmp_path / "count.py"
    script.write_text("from pyspark.sql import SparkSession\n"
                      "spark = SparkSession.builder.getOrCreate()\n"
                      "assert spark.range(1000).count() == 1000\n"
                      "spark.stop()\n")
    command = [str(Path(sys.executable).with_name("spark-submit")), "--master", "local[1]",
               *conf_arguments({**conf, DRIVER_OPTIONS: options}), str(script)]
    result = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ, **LOCAL_JOB_ENV}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Unable to use shared archive" not in result.stdout + result.stderr
    sources = {line.split(" source: ")[0].split()[-1]: line.split(" source: ")[1]
               for line in loaded.read_text().splitlines() if " source: " in line}
    assert sources["org.apache.spark.SparkContext"] == "shared objects file (top)"
    assert sources["org.apache.spark.sql.SparkSession"] == "shared objects file (top)"
