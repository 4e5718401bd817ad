"""Score statistics of one date's clean student rows.

Run by the clean job (``students/clean.py``) on the rows it has just cleaned.

Writes  staging/students/ds=<ds>/tables/<table>/ for the four published
        student tables of ``contracts.md`` (without ``ds``: the publisher adds
        it to database rows; in the warehouse it is the partition folder).

The four tables come from two passes over the rows: one global aggregation
(the score summary and the correlations) and one over the grouping sets
(grado) and (programa) (the per-grade and per-programme averages). Each
table is then a reshaping of a few aggregated rows. ``stddev`` is the sample
standard deviation and correlations are Pearson.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_apps.students.contract import SCORE_COLUMNS, SUMMARY_SUBJECTS

AVERAGED = (*SCORE_COLUMNS, "num_premios")
SUMMARY_STATISTICS = ("n", "mean", "stddev", "min", "max")


def _double(column: str):
    return F.col(column).cast("double")


def transform_overall(clean: DataFrame) -> DataFrame:
    """One wide row: every global statistic of both global tables.

    ``<subject>__<statistic>`` for the score summary, ``r__<score>`` for the
    correlations with ``num_premios``, and ``n``.
    """
    aggregates = [F.count(F.lit(1)).alias("n")]
    for subject in SUMMARY_SUBJECTS:
        value = _double(subject)
        aggregates += [
            F.count(value).alias(f"{subject}__n"),
            F.avg(value).alias(f"{subject}__mean"),
            F.stddev_samp(value).alias(f"{subject}__stddev"),
            F.min(value).alias(f"{subject}__min"),
            F.max(value).alias(f"{subject}__max"),
        ]
    aggregates += [F.corr(_double("num_premios"), F.col(score)).alias(f"r__{score}")
                   for score in SCORE_COLUMNS]
    return clean.agg(*aggregates)


def transform_group_averages(clean: DataFrame) -> DataFrame:
    """Students and averages per grade and per programme, in one pass.

    One row per group of the grouping sets (grado) and (programa); the key
    not grouped on is NULL, and ``by`` names the one that is.
    """
    grouped = clean.groupingSets([("grado",), ("programa",)], "grado", "programa")
    return grouped.agg(
        F.when(F.grouping("grado") == 0, F.lit("grado")).otherwise(F.lit("programa"))
         .alias("by"),
        F.count(F.lit(1)).alias("n_students"),
        *(F.avg(_double(column)).alias(f"avg_{column}") for column in AVERAGED),
    )


def summary_from_overall(overall: DataFrame) -> DataFrame:
    """students_score_summary: one row per subject."""
    rows = F.array(*(
        F.struct(F.lit(subject).alias("subject"),
                 *(F.col(f"{subject}__{stat}").alias(stat) for stat in SUMMARY_STATISTICS))
        for subject in SUMMARY_SUBJECTS
    ))
    return overall.select(F.inline(rows)).select(
        "subject", F.col("n").cast("long").alias("n"), "mean", "stddev", "min", "max")


def correlation_from_overall(overall: DataFrame) -> DataFrame:
    """students_awards_correlation: Pearson r of num_premios with each score."""
    rows = F.array(*(
        F.struct(F.lit(score).alias("subject"), F.col("n").alias("n"),
                 F.col(f"r__{score}").alias("pearson_r"))
        for score in SCORE_COLUMNS
    ))
    return overall.select(F.inline(rows)).select(
        "subject", F.col("n").cast("long").alias("n"), "pearson_r")


def averages_by(group_averages: DataFrame, key: str) -> DataFrame:
    """students_by_grade (``key="grado"``) or students_by_programa."""
    return (group_averages.where(F.col("by") == key)
            .select(key, "n_students", *(f"avg_{column}" for column in AVERAGED))
            .orderBy(key))


def transform_score_summary(clean: DataFrame) -> DataFrame:
    """One row per subject: n, mean, stddev (n - 1), min, max."""
    return summary_from_overall(transform_overall(clean))


def transform_awards_correlation(clean: DataFrame) -> DataFrame:
    """Pearson r of num_premios with each score; NULL where a side is constant."""
    return correlation_from_overall(transform_overall(clean))


def transform_by_grade(clean: DataFrame) -> DataFrame:
    return averages_by(transform_group_averages(clean), "grado")


def transform_by_programa(clean: DataFrame) -> DataFrame:
    return averages_by(transform_group_averages(clean), "programa")


def load_table(table: DataFrame, path: str) -> None:
    table.coalesce(1).write.mode("overwrite").parquet(path)


def run_statistics(clean: DataFrame, staging: str) -> None:
    """Write the four tables of ``clean`` to ``staging/tables/``."""
    # The two aggregates are a handful of rows, kept so that the four writes
    # reshape them instead of aggregating the date again each.
    overall = transform_overall(clean).cache()
    group_averages = transform_group_averages(clean).cache()
    try:
        tables = {
            "students_score_summary": summary_from_overall(overall),
            "students_by_grade": averages_by(group_averages, "grado"),
            "students_by_programa": averages_by(group_averages, "programa"),
            "students_awards_correlation": correlation_from_overall(overall),
        }
        for name, table in tables.items():
            load_table(table, f"{staging}/tables/{name}")
    finally:
        overall.unpersist()
        group_averages.unpersist()
    print(f"students: wrote {', '.join(tables)} to {staging}/tables", flush=True)
