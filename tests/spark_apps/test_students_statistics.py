"""Student statistics on a small inline table, against values worked by hand."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from dataplatform.students import STATISTICS_TABLES
from pyspark.testing import assertDataFrameEqual

from spark_apps.students.contract import CLEAN_SCHEMA, CLEAN_TYPES
from spark_apps.students.statistics import (
    averages_by,
    run_statistics,
    transform_awards_correlation,
    transform_by_grade,
    transform_by_programa,
    transform_cells,
    transform_score_summary,
)

# awards 0, 2, 4 against science 100, 60, 80: deviations (-2, 0, 2) and
# (20, -20, 0) give cov = -40, and r = -40 / sqrt(8 * 800) = -0.5.
ROWS = [
    (1, 6, 0, "General", 40.0, 50.0, 100.0),
    (2, 6, 2, "Academico", 60.0, 70.0, 60.0),
    (3, 7, 4, "Academico", 80.0, 90.0, 80.0),
]


@pytest.fixture
def clean(spark):
    return spark.createDataFrame(ROWS, CLEAN_SCHEMA)


def _rows(df, key):
    return {row[key]: row.asDict() for row in df.collect()}


def test_score_summary(clean):
    summary = _rows(transform_score_summary(clean), "subject")
    assert list(transform_score_summary(clean).columns) == [
        "subject", "n", "mean", "stddev", "min", "max"]
    # Sample standard deviation: squared deviations 400 + 0 + 400 over n - 1 = 2.
    assert summary["puntaje_mat"] == {"subject": "puntaje_mat", "n": 3, "mean": 60.0,
                                      "stddev": 20.0, "min": 40.0, "max": 80.0}
    assert summary["puntaje_ing"] == {"subject": "puntaje_ing", "n": 3, "mean": 70.0,
                                      "stddev": 20.0, "min": 50.0, "max": 90.0}
    assert summary["puntaje_ciencias"] == {"subject": "puntaje_ciencias", "n": 3, "mean": 80.0,
                                           "stddev": 20.0, "min": 60.0, "max": 100.0}
    assert summary["num_premios"] == {"subject": "num_premios", "n": 3, "mean": 2.0,
                                      "stddev": 2.0, "min": 0.0, "max": 4.0}


def test_by_grade(clean):
    by_grade = _rows(transform_by_grade(clean), "grado")
    assert by_grade == {
        6: {"grado": 6, "n_students": 2, "avg_puntaje_mat": 50.0, "avg_puntaje_ing": 60.0,
            "avg_puntaje_ciencias": 80.0, "avg_num_premios": 1.0},
        7: {"grado": 7, "n_students": 1, "avg_puntaje_mat": 80.0, "avg_puntaje_ing": 90.0,
            "avg_puntaje_ciencias": 80.0, "avg_num_premios": 4.0},
    }


def test_by_programa(clean):
    by_programa = _rows(transform_by_programa(clean), "programa")
    assert by_programa == {
        "Academico": {"programa": "Academico", "n_students": 2, "avg_puntaje_mat": 70.0,
                      "avg_puntaje_ing": 80.0, "avg_puntaje_ciencias": 70.0,
                      "avg_num_premios": 3.0},
        "General": {"programa": "General", "n_students": 1, "avg_puntaje_mat": 40.0,
                    "avg_puntaje_ing": 50.0, "avg_puntaje_ciencias": 100.0,
                    "avg_num_premios": 0.0},
    }


def test_a_missing_programa_is_its_own_group_and_grades_stay_whole(spark):
    """A NULL programa is a cell and a group of its own; grades stay whole."""
    rows = [*ROWS, (4, 7, 1, None, 20.0, 30.0, 40.0)]
    clean = spark.createDataFrame(rows, CLEAN_SCHEMA)
    by_programa = _rows(transform_by_programa(clean), "programa")
    assert set(by_programa) == {"Academico", "General", None}
    assert by_programa[None]["n_students"] == 1
    assert by_programa[None]["avg_puntaje_mat"] == 20.0
    by_grade = _rows(transform_by_grade(clean), "grado")
    assert {grade: row["n_students"] for grade, row in by_grade.items()} == {6: 2, 7: 2}


def test_run_statistics_writes_the_four_tables(spark, tmp_path):
    # Rows over several partitions and a NULL programa: run_statistics merges
    # the cells read back as one partition, and the two grouped tables keep
    # their key order (NULL first) in the written file.
    clean = spark.createDataFrame([*ROWS, (4, 7, 1, None, 20.0, 30.0, 40.0)],
                                  CLEAN_SCHEMA).repartition(3)
    run_statistics(clean, str(tmp_path))
    written = {table: spark.read.parquet(str(tmp_path / "tables" / table))
               for table in STATISTICS_TABLES}
    assertDataFrameEqual(written["students_score_summary"], transform_score_summary(clean))
    assertDataFrameEqual(written["students_by_grade"], transform_by_grade(clean),
                         checkRowOrder=True)
    assertDataFrameEqual(written["students_by_programa"], transform_by_programa(clean),
                         checkRowOrder=True)
    assertDataFrameEqual(written["students_awards_correlation"],
                         transform_awards_correlation(clean))


def test_awards_correlation(clean):
    correlation = _rows(transform_awards_correlation(clean), "subject")
    assert {k: v["n"] for k, v in correlation.items()} == {
        "puntaje_mat": 3, "puntaje_ing": 3, "puntaje_ciencias": 3}
    # Maths and English rise by 20 for every 2 awards: a perfect line.
    assert correlation["puntaje_mat"]["pearson_r"] == pytest.approx(1.0, abs=1e-12)
    assert correlation["puntaje_ing"]["pearson_r"] == pytest.approx(1.0, abs=1e-12)
    assert correlation["puntaje_ciencias"]["pearson_r"] == pytest.approx(-0.5, abs=1e-12)


def test_undefined_statistics_are_null_not_garbage(spark):
    """One student: no sample deviation; constant awards: no correlation."""
    one = spark.createDataFrame([(1, 6, 0, "General", 40.0, 50.0, 60.0)], CLEAN_SCHEMA)
    assert {row.subject: row.stddev for row in transform_score_summary(one).collect()} == {
        "puntaje_mat": None, "puntaje_ing": None, "puntaje_ciencias": None,
        "num_premios": None}
    assert [row.pearson_r for row in transform_awards_correlation(one).collect()] == [
        None, None, None]


def _exact(values):
    """Mean and sum of squared deviations, in exact arithmetic."""
    exact = [Fraction(v) for v in values]
    mean = sum(exact) / len(exact)
    return mean, sum((v - mean) ** 2 for v in exact)


def test_statistics_merged_from_cells_match_exact_arithmetic(spark):
    """The cells' moments, merged, give the exact statistics to rounding.

    Many cells of different sizes (a NULL programa among them), and maths
    scores near 100 with a tiny spread, where sums of squares would lose it.
    """
    rng = random.Random(7)
    rows = [(i, rng.choice([6, 7, 8, 9]), rng.randrange(0, 9),
             rng.choice(["General", "Academico", "Vocacional", None]),
             99.9 + rng.random() / 1000, rng.uniform(0, 100), float(rng.randrange(0, 101)))
            for i in range(1, 2001)]
    clean = spark.createDataFrame(rows, CLEAN_SCHEMA).repartition(5)
    summary = _rows(transform_score_summary(clean), "subject")
    correlation = _rows(transform_awards_correlation(clean), "subject")
    columns = dict(zip(("grado", "num_premios", "programa", "puntaje_mat", "puntaje_ing",
                        "puntaje_ciencias"), list(zip(*rows, strict=True))[1:], strict=True))
    awards_mean, awards_m2 = _exact(columns["num_premios"])
    for subject in ("puntaje_mat", "puntaje_ing", "puntaje_ciencias", "num_premios"):
        values = columns[subject]
        mean, m2 = _exact(values)
        merged = summary[subject]
        assert merged["n"] == len(values)
        assert merged["mean"] == pytest.approx(float(mean), rel=1e-12)
        assert merged["stddev"] == pytest.approx(math.sqrt(m2 / (len(values) - 1)), rel=1e-9)
        assert (merged["min"], merged["max"]) == (min(values), max(values))
        if subject != "num_premios":
            co = sum((Fraction(a) - awards_mean) * (Fraction(v) - mean)
                     for a, v in zip(columns["num_premios"], values, strict=True))
            r = float(co) / math.sqrt(float(awards_m2) * float(m2))
            assert correlation[subject]["pearson_r"] == pytest.approx(r, rel=1e-9, abs=1e-12)
    for key, position, groups in (("grado", 1, {6, 7, 8, 9}),
                                  ("programa", 3, {"General", "Academico", "Vocacional", None})):
        averages = _rows(averages_by(transform_cells(clean), key), key)
        assert set(averages) == groups
        for group, row in averages.items():
            members = [r for r in rows if r[position] == group]
            assert row["n_students"] == len(members)
            for subject in ("num_premios", "puntaje_mat", "puntaje_ing", "puntaje_ciencias"):
                values = [r[list(CLEAN_TYPES).index(subject)] for r in members]
                assert row[f"avg_{subject}"] == pytest.approx(float(_exact(values)[0]),
                                                              rel=1e-12), (key, group, subject)


def test_a_constant_decimal_score_has_no_spread_and_no_correlation(spark):
    """70.3 is no exact double: the cells' rounded means must not leave a
    spread of rounding errors, nor a correlation made of them."""
    # One partition, so that each cell's mean is its sum in order over its
    # count: for these sizes, 70.29999999999998 (70.29999999999997 at 29),
    # and the cells' means differ from their pooled mean.
    sizes = {(6, "General"): 10, (6, "Academico"): 11, (7, "General"): 13,
             (7, "Academico"): 17, (8, "General"): 20, (8, "Academico"): 29}
    cells = [cell for cell, size in sizes.items() for _ in range(size)]
    rows = [(i, grado, i % 5, programa, 70.3, 50.0 + i, 60.0)
            for i, (grado, programa) in enumerate(cells, start=1)]
    clean = spark.createDataFrame(rows, CLEAN_SCHEMA).coalesce(1)
    summary = _rows(transform_score_summary(clean), "subject")
    correlation = _rows(transform_awards_correlation(clean), "subject")
    assert summary["puntaje_mat"]["stddev"] == 0.0
    assert summary["puntaje_ciencias"]["stddev"] == 0.0
    assert summary["puntaje_mat"]["mean"] == pytest.approx(70.3, rel=1e-14)
    assert correlation["puntaje_mat"]["pearson_r"] is None
    assert correlation["puntaje_ciencias"]["pearson_r"] is None
    assert correlation["puntaje_ing"]["pearson_r"] is not None


def test_no_rows_give_zero_students_not_null(spark):
    empty = spark.createDataFrame([], CLEAN_SCHEMA)
    assert {row.n for row in transform_score_summary(empty).collect()} == {0}
