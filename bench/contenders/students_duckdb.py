"""The platform's student statistics with DuckDB: the single-machine speed reference.

    python -m bench.contenders.students_duckdb INPUT.csv
"""

from __future__ import annotations

import sys

import duckdb

from bench.contenders import report

SCORES = ["puntaje_mat", "puntaje_ing", "puntaje_ciencias"]
COLUMNS = {"id": "BIGINT", "nombre": "VARCHAR", "grado": "INTEGER", "num_premios": "INTEGER",
           "programa": "VARCHAR", **{s: "DOUBLE" for s in SCORES}}


def main(path: str) -> None:
    con = duckdb.connect()
    quoted = path.replace("'", "''")  # a view's definition takes no parameters
    con.execute(f"CREATE VIEW students AS SELECT * FROM read_csv('{quoted}', header=true, "
                f"columns={COLUMNS!r})")
    averaged = [*SCORES, "num_premios"]
    summary = con.execute("SELECT " + ", ".join(
        f"count({c}), avg({c}), stddev_samp({c}), min({c}), max({c})" for c in averaged)
        + " FROM students").fetchall()
    per_group = {key: con.execute(
        f"SELECT {key}, count(*), " + ", ".join(f"avg({c})" for c in averaged)
        + f" FROM students GROUP BY {key}").fetchall() for key in ("grado", "programa")}
    correlation = con.execute("SELECT " + ", ".join(
        f"corr(num_premios, {s})" for s in SCORES) + " FROM students").fetchall()
    report(tables=[len(summary[0]), len(per_group["grado"]), len(per_group["programa"]),
                   len(correlation[0])])


if __name__ == "__main__":
    main(sys.argv[1])
