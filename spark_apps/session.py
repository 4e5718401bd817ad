"""The one SparkSession factory, shared by every job and by the tests."""

from __future__ import annotations

from collections.abc import Mapping

# Settings every job relies on, whatever the runner: UTC dates, task logs
# without console progress bars or warnings about wide plans being truncated,
# and upper()/lower() by the JVM's case mappings instead of ICU's. Spark's
# ICU path builds a title-case table over every code point on its first
# use in a JVM, ASCII input included: about 0.9 s of the student scan's
# first tasks (bench/README.md). Both map ASCII the same and both follow
# the JVM's default locale; elsewhere they differ only where JDK 17's
# Unicode tables lag ICU's.
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.debug.maxToStringFields": "200",
    "spark.sql.icu.caseMappings.enabled": "false",
}


def build_spark_session(app_name: str, master: str | None = None,
                        conf: Mapping[str, str] | None = None):
    """Create (or reuse) the SparkSession for a job.

    ``master`` is left unset under spark-submit, which passes its own.
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in {**BASE_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
