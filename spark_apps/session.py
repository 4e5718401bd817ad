"""The one SparkSession factory, shared by every job and by the tests."""

from __future__ import annotations

from collections.abc import Mapping

# Settings every job relies on, whatever the runner: UTC dates, task logs
# without console progress bars or warnings about wide plans being truncated,
# and upper()/lower() by the JVM's case mappings instead of ICU's. ICU's
# tables load on the first row that needs them, about 0.9 s of a task
# (bench/README.md). On ASCII text, as the programme names are once their
# accents are stripped, the two are the same; on other text the JVM's
# follow its default locale.
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
