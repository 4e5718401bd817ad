"""A class-data-sharing archive of what a platform job's driver JVM loads.

A JVM that maps the archive skips reading and verifying the thousands of
Spark classes a job loads from their jars. On this machine (2 cores), a
spark-submit of the student job on 20,000 rows took 11.4 s with it against
14.8 s without, in three pairs (bench/README.md): every spark-submit pays
that start-up.

``make setup`` makes the archive once per install (``python -m
dataplatform.spark_class_archive``, about half a minute): one spark-submit runs
the platform's own jobs on the committed samples with
``-XX:ArchiveClassesAtExit``. The archive is written under another name and
renamed when whole: a JVM that maps a truncated archive crashes (SIGBUS). A
JVM that finds the archive stale (another JDK build, another classpath) says
so in one warning line and starts as it would have without it.

Only drivers that spark-submit starts on this machine map it: the
SparkSubmitOperator runners run in client mode. Containers and executors
have classpaths of their own.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dataplatform.settings import REPO_ROOT

DRIVER_OPTIONS = "spark.driver.extraJavaOptions"
WORKLOAD = Path(__file__).with_name("spark_class_archive_workload.py")
SAMPLES = REPO_ROOT / "data" / "samples"
SAMPLE_DS = "2000-01-01"


@functools.cache
def archive_path() -> Path:
    """Where this install keeps its archive: the environment's own prefix,
    named by the pyspark release whose jars it holds."""
    return Path(sys.prefix) / "spark-class-archive" / (
        f"pyspark-{importlib.metadata.version('pyspark')}.jsa")


def with_class_archive(conf: dict[str, str]) -> dict[str, str]:
    """``conf`` with the driver mapping this install's archive, if it has one."""
    archive = archive_path()
    if not archive.is_file():
        return conf
    options = conf.get(DRIVER_OPTIONS, "")
    return {**conf, DRIVER_OPTIONS: f"{options} -XX:SharedArchiveFile={archive}".strip()}


def build(archive: Path) -> None:
    """Run the workload once with ``-XX:ArchiveClassesAtExit``; rename when whole."""
    from dataplatform import job_specs
    from dataplatform.spark_jobs import spark_conf

    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f".{archive.name}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory(prefix="spark-class-archive-") as tmp:
        for dataset in ("students", "zte_tad"):
            shutil.copytree(SAMPLES / dataset, Path(tmp) / "landing" / dataset / f"ds={SAMPLE_DS}")
        # The conf of the jobs themselves: the archive is checked against the
        # classpath and JVM options it is used with.
        conf = spark_conf(job_specs.ingest_traffic_job(SAMPLE_DS, tmp), "local")
        conf[DRIVER_OPTIONS] += f" -XX:ArchiveClassesAtExit={partial}"
        command = [str(Path(sys.executable).with_name("spark-submit")),
                   "--master", "local[*]", "--driver-memory", "2g"]
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        command += [str(WORKLOAD), SAMPLE_DS, tmp]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYSPARK_PYTHON": sys.executable,
               "PYSPARK_DRIVER_PYTHON": sys.executable}
        try:
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            if not partial.is_file():
                raise RuntimeError(f"the JVM wrote no class archive at {partial}")
            partial.replace(archive)
        finally:
            partial.unlink(missing_ok=True)


def main() -> None:
    from dataplatform.local_airflow import JavaNotFound, check_java

    archive = archive_path()
    if archive.is_file():
        return
    try:
        check_java(dict(os.environ))
    except JavaNotFound as error:  # setup goes on: the Spark tests say why they skip
        print(f"no Spark class archive made: {error}")
        return
    print(f"making the Spark class archive (once per install): {archive}", flush=True)
    build(archive)
    print(f"Spark class archive: {archive} ({archive.stat().st_size >> 20} MiB)")


if __name__ == "__main__":
    main()
