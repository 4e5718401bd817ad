"""Score statistics of one date's clean student rows.

Run by the clean job (``students/clean.py``) on the rows it has just cleaned.

Writes  staging/students/ds=<ds>/tables/<table>/ for the four published
        student tables of ``contracts.md`` (without ``ds``: the publisher adds
        it to database rows; in the warehouse it is the partition folder).

The four tables come from one pass over the rows: the moments of each
(grado, programa) cell - count, mean, sum of squared deviations, co-moment
with ``num_premios``, min, max. The per-grade and per-programme averages,
the score summary and the correlations are then merged from those few rows
(Chan et al.: each cell's sums of squares moved to the overall mean before
they are added, which stays exact to rounding, unlike sums of squares).
``stddev`` is the sample standard deviation and correlations are Pearson.
Clean rows hold no NULL grade, award or score (the clean job rejects a row
missing one), so every statistic counts every row; a missing programa is a
cell and a group of its own.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_apps.students.contract import SCORE_COLUMNS, SUMMARY_SUBJECTS

AVERAGED = (*SCORE_COLUMNS, "num_premios")
SUMMARY_STATISTICS = ("n", "mean", "stddev", "min", "max")


def _double(column: str):
    return F.col(column).cast("double")


def _moment_columns(subject: str) -> tuple[str, str, str, str]:
    return (f"{subject}__mean", f"{subject}__m2", f"{subject}__min", f"{subject}__max")


def transform_cells(clean: DataFrame) -> DataFrame:
    """The one pass over the rows: moments per (grado, programa).

    ``n``; per subject ``<subject>__mean``, ``__m2`` (the sum of squared
    deviations from the mean), ``__min`` and ``__max``; per score
    ``c__<score>``, the co-moment of ``num_premios`` and the score.
    """
    aggregates = [F.count(F.lit(1)).alias("n")]
    for subject in SUMMARY_SUBJECTS:
        value = _double(subject)
        mean, m2, low, high = _moment_columns(subject)
        aggregates += [F.avg(value).alias(mean),
                       (F.var_pop(value) * F.count(F.lit(1))).alias(m2),
                       F.min(value).alias(low), F.max(value).alias(high)]
    aggregates += [(F.covar_pop(_double("num_premios"), _double(score))
                    * F.count(F.lit(1))).alias(f"c__{score}")
                   for score in SCORE_COLUMNS]
    return clean.groupBy("grado", "programa").agg(*aggregates)


def _pooled_mean(column: str):
    return F.sum(F.col("n") * F.col(column)) / F.sum("n")


def transform_overall_from_cells(cells: DataFrame) -> DataFrame:
    """One wide row: every global statistic of both global tables.

    ``<subject>__<statistic>`` for the score summary, ``r__<score>`` for the
    correlations with ``num_premios``, and ``n``. Each cell's sums of
    squares are moved to the overall mean (``m2 + n (mean - overall)^2``)
    before they are added.
    """
    means = cells.agg(*(_pooled_mean(f"{subject}__mean").alias(f"{subject}__overall")
                        for subject in SUMMARY_SUBJECTS))

    def shift(subject: str):
        return F.col(f"{subject}__mean") - F.col(f"{subject}__overall")

    sums = [F.coalesce(F.sum("n"), F.lit(0)).alias("n")]
    for subject in SUMMARY_SUBJECTS:
        mean, m2, low, high = _moment_columns(subject)
        sums += [F.max(f"{subject}__overall").alias(mean),  # one value, on every cell
                 F.sum(F.col(m2) + F.col("n") * shift(subject) * shift(subject)).alias(m2),
                 F.min(low).alias(low), F.max(high).alias(high)]
    sums += [F.sum(F.col(f"c__{score}") + F.col("n") * shift("num_premios") * shift(score))
             .alias(f"c__{score}") for score in SCORE_COLUMNS]
    merged = cells.crossJoin(means).agg(*sums)

    def m2(subject: str):
        # A constant column has no spread: exactly 0, as Spark's own
        # updates give. The cells' means are rounded sums, and a constant
        # like 70.3 would otherwise leave a spread of rounding errors (and
        # a correlation made of them).
        low, high = F.col(f"{subject}__min"), F.col(f"{subject}__max")
        return F.when(low == high, F.lit(0.0)).otherwise(F.col(f"{subject}__m2"))

    columns = [F.col("n")]
    for subject in SUMMARY_SUBJECTS:
        mean, _, low, high = _moment_columns(subject)
        columns += [
            F.col("n").alias(f"{subject}__n"),
            F.col(mean),
            # NULL for one row, as Spark's stddev_samp.
            F.when(F.col("n") > 1, F.sqrt(m2(subject) / (F.col("n") - 1)))
             .alias(f"{subject}__stddev"),
            F.col(low).alias(f"{subject}__min"),
            F.col(high).alias(f"{subject}__max"),
        ]
    # NULL where a side is constant (or one row), as Spark's corr.
    columns += [F.when(m2("num_premios") * m2(score) > 0,
                       F.col(f"c__{score}") / F.sqrt(m2("num_premios") * m2(score)))
                 .alias(f"r__{score}") for score in SCORE_COLUMNS]
    return merged.select(*columns)


def transform_overall(clean: DataFrame) -> DataFrame:
    """``transform_overall_from_cells`` of ``clean``'s cells."""
    return transform_overall_from_cells(transform_cells(clean))


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


def averages_by(cells: DataFrame, key: str) -> DataFrame:
    """students_by_grade (``key="grado"``) or students_by_programa, from the cells.

    A missing programa is a group of its own.
    """
    return (cells.groupBy(key)
            .agg(F.sum("n").alias("n_students"),
                 *(_pooled_mean(f"{column}__mean").alias(f"avg_{column}")
                   for column in AVERAGED))
            .orderBy(key))


def transform_score_summary(clean: DataFrame) -> DataFrame:
    """One row per subject: n, mean, stddev (n - 1), min, max."""
    return summary_from_overall(transform_overall(clean))


def transform_awards_correlation(clean: DataFrame) -> DataFrame:
    """Pearson r of num_premios with each score; NULL where a side is constant."""
    return correlation_from_overall(transform_overall(clean))


def transform_by_grade(clean: DataFrame) -> DataFrame:
    return averages_by(transform_cells(clean), "grado")


def transform_by_programa(clean: DataFrame) -> DataFrame:
    return averages_by(transform_cells(clean), "programa")


def load_table(table: DataFrame, path: str) -> None:
    table.coalesce(1).write.mode("overwrite").parquet(path)


def run_statistics(clean: DataFrame, staging: str) -> None:
    """Write the four tables of ``clean`` to ``staging/tables/``."""
    # A few rows, kept so that the four tables are merged from them instead
    # of reading the date again each; the overall row serves two tables.
    # Read back as one partition, which meets every distribution the
    # merges and sorts ask for: each table is then one job, not a shuffle
    # and a sampling pass over a few dozen rows.
    cached_cells = transform_cells(clean).cache()
    cells = cached_cells.coalesce(1)
    overall = transform_overall_from_cells(cells).cache()
    try:
        tables = {
            "students_score_summary": summary_from_overall(overall),
            "students_by_grade": averages_by(cells, "grado"),
            "students_by_programa": averages_by(cells, "programa"),
            "students_awards_correlation": correlation_from_overall(overall),
        }
        for name, table in tables.items():
            load_table(table, f"{staging}/tables/{name}")
    finally:
        overall.unpersist()
        cached_cells.unpersist()
    print(f"students: wrote {', '.join(tables)} to {staging}/tables", flush=True)
