"""Score statistics of one date's clean student rows.

Run by the clean job (``students/clean.py``) on the rows it has just cleaned.

Writes  staging/students/ds=<ds>/tables/<table>/ for the four published
        student tables of ``contracts.md`` (without ``ds``: the publisher adds
        it to database rows; in the warehouse it is the partition folder).

Every statistic of a table comes from one aggregation pass; ``stddev`` is the
sample standard deviation and correlations are Pearson.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_apps.students.contract import SCORE_COLUMNS, SUMMARY_SUBJECTS

AVERAGED = (*SCORE_COLUMNS, "num_premios")


def transform_score_summary(clean: DataFrame) -> DataFrame:
    """One row per subject: n, mean, stddev (n - 1), min, max."""
    aggregates = []
    for subject in SUMMARY_SUBJECTS:
        value = F.col(subject).cast("double")
        aggregates += [
            F.count(value).alias(f"{subject}__n"),
            F.avg(value).alias(f"{subject}__mean"),
            F.stddev_samp(value).alias(f"{subject}__stddev"),
            F.min(value).alias(f"{subject}__min"),
            F.max(value).alias(f"{subject}__max"),
        ]
    wide = clean.agg(*aggregates)
    rows = F.array(*(
        F.struct(
            F.lit(subject).alias("subject"),
            *(F.col(f"{subject}__{stat}").alias(stat)
              for stat in ("n", "mean", "stddev", "min", "max")),
        )
        for subject in SUMMARY_SUBJECTS
    ))
    return wide.select(F.inline(rows)).select(
        "subject", F.col("n").cast("long").alias("n"), "mean", "stddev", "min", "max")


def _group_averages(clean: DataFrame, key: str) -> DataFrame:
    return clean.groupBy(key).agg(
        F.count(F.lit(1)).alias("n_students"),
        *(F.avg(F.col(column).cast("double")).alias(f"avg_{column}") for column in AVERAGED),
    ).select(key, "n_students", *(f"avg_{column}" for column in AVERAGED)).orderBy(key)


def transform_by_grade(clean: DataFrame) -> DataFrame:
    return _group_averages(clean, "grado")


def transform_by_programa(clean: DataFrame) -> DataFrame:
    return _group_averages(clean, "programa")


def transform_awards_correlation(clean: DataFrame) -> DataFrame:
    """Pearson r of num_premios with each score; NULL where a side is constant."""
    awards = F.col("num_premios").cast("double")
    wide = clean.agg(
        F.count(F.lit(1)).alias("n"),
        *(F.corr(awards, F.col(score)).alias(score) for score in SCORE_COLUMNS),
    )
    rows = F.array(*(
        F.struct(F.lit(score).alias("subject"), F.col("n").alias("n"),
                 F.col(score).alias("pearson_r"))
        for score in SCORE_COLUMNS
    ))
    return wide.select(F.inline(rows)).select(
        "subject", F.col("n").cast("long").alias("n"), "pearson_r")


STUDENT_TABLES = {
    "students_score_summary": transform_score_summary,
    "students_by_grade": transform_by_grade,
    "students_by_programa": transform_by_programa,
    "students_awards_correlation": transform_awards_correlation,
}


def load_table(table: DataFrame, path: str) -> None:
    table.coalesce(1).write.mode("overwrite").parquet(path)


def run_statistics(clean: DataFrame, staging: str) -> None:
    """Write the four tables of ``clean`` to ``staging/tables/``."""
    for name, transform in STUDENT_TABLES.items():
        load_table(transform(clean), f"{staging}/tables/{name}")
    print(f"students: wrote {', '.join(STUDENT_TABLES)} to {staging}/tables", flush=True)
