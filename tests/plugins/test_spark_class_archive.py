"""The Spark class archive: who maps it, and that a real driver JVM does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require
from dataplatform import job_specs, spark_class_archive
from dataplatform.settings import REPO_ROOT, PlatformSettings
from dataplatform.spark_class_archive import DRIVER_OPTIONS, with_class_archive
from dataplatform.spark_jobs import container_spark_submit, spark_job_task

DS = "2026-11-20"


@pytest.fixture
def archive(tmp_path, monkeypatch) -> Path:
    """A stand-in archive file; only its presence is read by the code under test."""
    path = tmp_path / "pyspark-test.jsa"
    path.write_bytes(b"\0")
    monkeypatch.setattr(spark_class_archive, "archive_path", lambda: path)
    return path


def test_the_driver_maps_the_archive_after_its_own_options(archive):
    conf = with_class_archive({DRIVER_OPTIONS: "-Dlog4j2.configurationFile=x",
                               "spark.sql.shuffle.partitions": "8"})
    assert conf == {DRIVER_OPTIONS: f"-Dlog4j2.configurationFile=x "
                                    f"-XX:SharedArchiveFile={archive}",
                    "spark.sql.shuffle.partitions": "8"}


def test_without_an_archive_the_conf_is_left_as_it_is(tmp_path, monkeypatch):
    monkeypatch.setattr(spark_class_archive, "archive_path", lambda: tmp_path / "none.jsa")
    assert with_class_archive({DRIVER_OPTIONS: "-Da"}) == {DRIVER_OPTIONS: "-Da"}


@pytest.mark.parametrize("runner", ["local", "standalone", "yarn"])
def test_spark_submit_runners_start_their_driver_with_the_archive(archive, runner):
    job = job_specs.clean_and_compute_statistics_job(DS, "/srv/data")
    operator = spark_job_task(job, PlatformSettings.from_env({"PLATFORM_SPARK_RUNNER": runner}))
    assert operator.conf[DRIVER_OPTIONS].endswith(f"-XX:SharedArchiveFile={archive}")
    # Executors start elsewhere, with a classpath of their own.
    assert "SharedArchiveFile" not in operator.conf["spark.executor.extraJavaOptions"]


def test_containers_never_name_this_machines_archive(archive):
    job = job_specs.clean_and_compute_statistics_job(DS, "/srv/data")
    for master in ("local[*]", "spark://m:7077", "k8s://https://k8s:443"):
        assert str(archive) not in " ".join(container_spark_submit(job, master, {}))


@pytest.mark.slow
def test_a_platform_driver_loads_spark_from_the_archive(java, tmp_path):
    """A real spark-submit with the conf the jobs get: Spark's own classes
    come from the archive ``make setup`` made, not from their jars."""
    archive = spark_class_archive.archive_path()
    require(archive.is_file(), f"no Spark class archive at {archive} (made by `make setup`)")
    job = job_specs.clean_and_compute_statistics_job(DS, str(tmp_path))
    operator = spark_job_task(job, PlatformSettings.from_env({"PLATFORM_SPARK_RUNNER": "local"}))
    loaded = tmp_path / "classes.log"
    options = f"{operator.conf[DRIVER_OPTIONS]} -Xlog:class+load=info:file={loaded}"
    script = tmp_path / "count.py"
    script.write_text("from pyspark.sql import SparkSession\n"
                      "spark = SparkSession.builder.getOrCreate()\n"
                      "assert spark.range(1000).count() == 1000\n"
                      "spark.stop()\n")
    command = [str(Path(sys.executable).with_name("spark-submit")), "--master", "local[1]"]
    for key, value in {**operator.conf, DRIVER_OPTIONS: options}.items():
        command += ["--conf", f"{key}={value}"]
    result = subprocess.run(command + [str(script)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT),
                                 "PYSPARK_PYTHON": sys.executable}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Unable to use shared archive" not in result.stdout + result.stderr
    sources = {line.split(" source: ")[0].split()[-1]: line.split(" source: ")[1]
               for line in loaded.read_text().splitlines() if " source: " in line}
    assert sources["org.apache.spark.SparkContext"] == "shared objects file (top)"
    assert sources["org.apache.spark.sql.SparkSession"] == "shared objects file (top)"
