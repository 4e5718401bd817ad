"""The platform's student statistics with pandas, on one machine, in memory.

Same tables as the platform (score summary, per grade, per programme,
award/score correlations), on a file already known to be clean: no
validation, no line accounting.

    python -m bench.contenders.students_pandas INPUT.csv
"""

from __future__ import annotations

import sys

import pandas as pd

from bench.contenders import report

SCORES = ["puntaje_mat", "puntaje_ing", "puntaje_ciencias"]
DTYPES = {"id": "int64", "nombre": "string", "grado": "int32", "num_premios": "int32",
          "programa": "string", **{s: "float64" for s in SCORES}}


def main(path: str) -> None:
    frame = pd.read_csv(path, dtype=DTYPES, usecols=[c for c in DTYPES if c != "nombre"])
    averaged = [*SCORES, "num_premios"]
    summary = frame[averaged].agg(["count", "mean", "std", "min", "max"])
    by_grade = frame.groupby("grado")[averaged].mean()
    by_programa = frame.groupby("programa")[averaged].mean()
    correlation = {s: frame["num_premios"].corr(frame[s]) for s in SCORES}
    report(rows=len(frame), tables=[len(summary.columns), len(by_grade), len(by_programa),
                                    len(correlation)])


if __name__ == "__main__":
    main(sys.argv[1])
