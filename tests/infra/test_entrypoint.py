"""The image's entrypoint, run for real: Spark-on-Kubernetes driver and executor modes.

Spark starts its pods with `driver ...` or `executor` and the settings in
environment variables; the entrypoint must turn those into the right JVM.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from dataplatform.settings import REPO_ROOT

ENTRYPOINT = REPO_ROOT / "infra" / "docker" / "entrypoint.sh"


def image_like_env(**extra: str) -> dict[str, str]:
    """The variables the image sets (infra/docker/Dockerfile), for this machine's venv."""
    import pyspark

    venv_bin = str(Path(sys.executable).parent)
    env = {"PATH": f"{venv_bin}:/usr/bin:/bin", "SPARK_HOME": str(Path(pyspark.__file__).parent),
           "PYSPARK_PYTHON": sys.executable}
    if os.environ.get("JAVA_HOME"):
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    return {**env, **extra}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ENTRYPOINT), *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_other_commands_run_as_given():
    result = run(["python", "-c", "import sys; print('passed', sys.argv[1:])", "a b"],
                 image_like_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "passed ['a b']"


@pytest.mark.slow
def test_driver_mode_runs_spark_submit_bound_where_spark_says(java, tmp_path):
    app = tmp_path / "app.py"
    out = tmp_path / "bound.txt"
    app.write_text(
        "import sys\nfrom pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "conf = spark.sparkContext.getConf()\n"
        "open(sys.argv[1], 'w').write(conf.get('spark.driver.bindAddress') + ' '"
        " + conf.get('spark.submit.deployMode') + ' ' + str(spark.range(5).count()))\n"
        "spark.stop()\n")
    result = run(["driver", "--master", "local[1]", "--conf", "spark.ui.enabled=false",
                  str(app), str(out)],
                 image_like_env(SPARK_DRIVER_BIND_ADDRESS="127.0.0.1"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.read_text() == "127.0.0.1 client 5"


def test_executor_mode_starts_the_kubernetes_executor_backend_with_sparks_settings(java):
    with socket.socket() as probe:  # a port nobody listens on: the "driver"
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(["executor"], image_like_env(
        JAVA_HOME=str(Path(java).resolve().parents[1]),
        SPARK_JAVA_OPT_0="-XX:+PrintCommandLineFlags",
        SPARK_JAVA_OPT_1="-Dspark.platform.test=1",
        SPARK_EXECUTOR_MEMORY="512m",
        SPARK_DRIVER_URL=f"spark://CoarseGrainedScheduler@127.0.0.1:{port}",
        SPARK_EXECUTOR_ID="1", SPARK_EXECUTOR_CORES="1", SPARK_APPLICATION_ID="app-test",
        SPARK_EXECUTOR_POD_IP="127.0.0.1", SPARK_RESOURCE_PROFILE_ID="0",
        SPARK_EXECUTOR_POD_NAME="exec-1"))
    output = result.stdout + result.stderr
    # The JVM got the memory and the options Spark passed, in order...
    assert "-XX:MaxHeapSize=536870912" in output
    # ...and the executor backend ran and went for the driver it was given.
    assert f"Failed to connect to /127.0.0.1:{port}" in output
    assert result.returncode != 0
