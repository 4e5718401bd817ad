"""A class-data-sharing archive of what a platform job's driver JVM loads.

A JVM that maps the archive skips reading and verifying the thousands of
Spark classes a job loads from their jars. On this machine (2 cores), the
student job on 20,000 rows took 11.4 and 11.3 s with it against 14.4 and
15.0 s without, two spark-submits each (bench/README.md): every
spark-submit pays that start-up.

``make setup`` makes the archive once per install (``python -m
dataplatform.spark_class_archive``, about 40 s): one spark-submit runs the
platform's own jobs on the committed samples with
``-XX:ArchiveClassesAtExit``. The archive is written under another name and
renamed when whole: a JVM that maps a truncated archive crashes (SIGBUS).
Its name holds the pyspark release and the JVM it was made with, so a JDK
update or another JAVA_HOME names another archive, which the next setup
makes. A JVM that still finds an archive unusable says so in one warning
line and starts without it. Making it is a speed-up, not a step the
platform needs: when it fails, setup says why and goes on.

Only drivers that this install's spark-submit starts on this machine map it:
the SparkSubmitOperator runners (local, standalone, YARN) run in client
mode. Containers and executors have classpaths of their own.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dataplatform.local_airflow import JavaNotFound, check_java, java_path
from dataplatform.settings import REPO_ROOT

DRIVER_OPTIONS = "spark.driver.extraJavaOptions"
WORKLOAD = Path(__file__).with_name("spark_class_archive_workload.py")
SAMPLES = REPO_ROOT / "data" / "samples"
SAMPLE_DS = "2000-01-01"
BUILD_TIMEOUT_SECONDS = 900


def _jvm_identity() -> str | None:
    """Path, size and time of the JVM that spark-submit starts: its library
    if found, else its launcher."""
    found = java_path(dict(os.environ))
    if not found or not Path(found).is_file():
        return None
    java = Path(found).resolve()
    libjvm = java.parent.parent / "lib" / "server" / "libjvm.so"
    binary = libjvm if libjvm.is_file() else java
    stat = binary.stat()
    return f"{binary}:{stat.st_size}:{stat.st_mtime_ns}"


@functools.cache
def archive_path() -> Path | None:
    """This install's archive for the JVM and pyspark it runs with (None
    without a java or without the pyspark distribution, e.g. a Spark from a
    tarball: its classpath is not the one archived)."""
    jvm = _jvm_identity()
    try:
        release = importlib.metadata.version("pyspark")
    except importlib.metadata.PackageNotFoundError:
        return None
    if jvm is None:
        return None
    jvm_key = hashlib.sha256(jvm.encode()).hexdigest()[:12]
    return Path(sys.prefix) / "spark-class-archive" / f"pyspark-{release}-jvm-{jvm_key}.jsa"


def existing_archive() -> Path | None:
    """This install's archive if it has been made."""
    archive = archive_path()
    return archive if archive is not None and archive.is_file() else None


def with_class_archive(conf: dict[str, str]) -> dict[str, str]:
    """``conf`` with the driver mapping this install's archive, if it has one."""
    archive = existing_archive()
    if archive is None:
        return conf
    options = conf.get(DRIVER_OPTIONS, "")
    return {**conf, DRIVER_OPTIONS: f"{options} -XX:SharedArchiveFile={archive}".strip()}


def build(archive: Path) -> None:
    """Run the workload once with ``-XX:ArchiveClassesAtExit``; rename when whole."""
    # Here, not at the top: spark_jobs imports this module.
    from dataplatform import job_specs
    from dataplatform.spark_jobs import LOCAL_JOB_ENV, conf_arguments, spark_conf

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
                   "--master", "local[*]", "--driver-memory", "2g", *conf_arguments(conf),
                   str(WORKLOAD), SAMPLE_DS, tmp]
        try:
            subprocess.run(command, env={**os.environ, **LOCAL_JOB_ENV}, check=True,
                           stdout=subprocess.DEVNULL, timeout=BUILD_TIMEOUT_SECONDS)
            if not partial.is_file():
                raise RuntimeError(f"the JVM wrote no class archive at {partial}")
            partial.replace(archive)
        finally:
            partial.unlink(missing_ok=True)


def main() -> None:
    try:
        check_java(dict(os.environ))
    except JavaNotFound as error:  # the Spark tests say why they skip
        print(f"no Spark class archive made: {error}")
        return
    archive = archive_path()
    if archive is None or archive.is_file():
        return
    print(f"making the Spark class archive (once per install and JVM): {archive}", flush=True)
    try:
        build(archive)
    except (subprocess.SubprocessError, RuntimeError, OSError) as error:
        print(f"no Spark class archive made (jobs start without one): {error}")
        return
    for stale in archive.parent.glob("*.jsa"):  # other JVMs' or releases'
        if stale != archive:
            stale.unlink()
    print(f"Spark class archive: {archive} ({archive.stat().st_size >> 20} MiB)")


if __name__ == "__main__":
    main()
