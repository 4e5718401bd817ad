"""Score statistics of one date's clean student rows.

Reads   staging/students/ds=<ds>/clean/
Writes  staging/students/ds=<ds>/tables/<table>/ for the four published
        student tables of ``contracts.md`` (without ``ds``: the publisher adds
        it to database rows; in the warehouse it is the partition folder).

Every statistic of a table comes from one aggregation pass; ``stddev`` is the
sample standard deviation and correlations are Pearson.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_apps.layout import DataLayout, validate_ds
from spark_apps.session import build_spark_session
from spark_apps.students.contract import SCORE_COLUMNS, SUMMARY_SUBJECTS

DATASET = "students"
CLEAN_SCHEMA = (
    "id BIGINT, grado INT, num_premios INT, programa STRING, "
    "puntaje_mat DOUBLE, puntaje_ing DOUBLE, puntaje_ciencias DOUBLE"
)
AVERAGED = (*SCORE_COLUMNS, "num_premios")


def extract_clean_rows(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.schema(CLEAN_SCHEMA).parquet(path)


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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, type=validate_ds, help="partition date")
    parser.add_argument("--data-dir", required=True, help="data root (PLATFORM_DATA_DIR)")
    return parser.parse_args(argv)


def run_statistics(spark: SparkSession, ds: str, data_dir: str) -> None:
    staging = DataLayout(data_dir).staging(DATASET, ds)
    clean = extract_clean_rows(spark, f"{staging}/clean").cache()
    for name, transform in STUDENT_TABLES.items():
        load_table(transform(clean), f"{staging}/tables/{name}")
    clean.unpersist()
    print(f"students {ds}: wrote {', '.join(STUDENT_TABLES)} to {staging}/tables", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    spark = build_spark_session(f"students-statistics-{args.ds}")
    try:
        run_statistics(spark, args.ds, args.data_dir)
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
