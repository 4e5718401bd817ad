"""The student contract's rules and statistics written again, independently of
the Spark job (csv module and pandas), to check what a run published."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pandas as pd

SCORES = ["puntaje_mat", "puntaje_ing", "puntaje_ciencias"]
INTEGER = re.compile(r"^[+-]?\d+$")
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def reference_clean_rows(path: Path) -> tuple[pd.DataFrame, int]:
    """Clean rows by the contract's rules, written independently; and rows_in."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [row for row in reader if any(field.strip() for field in row)]
    kept, seen = [], set()
    for row in rows:
        if len(row) != len(header):
            continue
        record = {name: value.strip() for name, value in zip(header, row, strict=True)}
        ints = {k: record[k] for k in ("id", "grado", "num_premios")}
        if not all(INTEGER.match(v) for v in ints.values()):
            continue
        # num_premios is published as a 32-bit integer: larger is rejected.
        if int(ints["id"]) <= 0 or not 1 <= int(ints["grado"]) <= 12 or not (
                0 <= int(ints["num_premios"]) < 2**31):
            continue
        if not all(NUMBER.match(record[s]) and 0 <= float(record[s]) <= 100 for s in SCORES):
            continue
        if int(ints["id"]) in seen:
            continue
        seen.add(int(ints["id"]))
        kept.append({"grado": int(ints["grado"]), "num_premios": int(ints["num_premios"]),
                     "programa": record["programa"].strip().capitalize(),
                     **{s: float(record[s]) for s in SCORES}})
    return pd.DataFrame(kept), len(rows)


def reference_tables(clean: pd.DataFrame) -> dict[str, list[dict]]:
    summary = [{"subject": s, "n": int(clean[s].count()), "mean": clean[s].mean(),
                "stddev": clean[s].std(ddof=1), "min": clean[s].min(), "max": clean[s].max()}
               for s in [*SCORES, "num_premios"]]

    def averages(key: str) -> list[dict]:
        grouped = clean.groupby(key)
        frame = grouped[[*SCORES, "num_premios"]].mean().add_prefix("avg_")
        frame.insert(0, "n_students", grouped.size())
        return frame.reset_index().to_dict("records")

    correlation = [{"subject": s, "n": len(clean),
                    "pearson_r": clean["num_premios"].corr(clean[s], method="pearson")}
                   for s in SCORES]
    return {"students_score_summary": summary, "students_by_grade": averages("grado"),
            "students_by_programa": averages("programa"),
            "students_awards_correlation": correlation}


def assert_rows_close(actual: list[dict], expected: list[dict], key: str) -> None:
    actual_by_key = {row[key]: row for row in actual}
    assert sorted(actual_by_key) == sorted(row[key] for row in expected)
    for row in expected:
        for column, value in row.items():
            got = actual_by_key[row[key]][column]
            if isinstance(value, float) and not isinstance(got, str):
                assert math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-12), (column, row)
            else:
                assert got == value, (column, row)


def assert_matches_reference(tables: dict, reference: dict) -> None:
    assert_rows_close(tables["students_score_summary"], reference["students_score_summary"],
                      "subject")
    assert_rows_close(tables["students_by_grade"], reference["students_by_grade"], "grado")
    assert_rows_close(tables["students_by_programa"], reference["students_by_programa"],
                      "programa")
    assert_rows_close(tables["students_awards_correlation"],
                      reference["students_awards_correlation"], "subject")
