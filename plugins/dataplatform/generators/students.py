"""Generate East High-like student CSVs, streaming, with optional defects.

Distributions follow the real 400-student file described in
``shared/docs/seeds.md``: grades 6-12 weighted as there, awards 0-10 skewed to
0 and rising with grade, three programmes, scores around 50 (sd ~23) with the
maths mean varying by grade and science falling slightly with awards.

``--dirty-fraction`` turns that share of rows into defective ones, cycling
through every rejection reason of ``contracts.md``; a JSON manifest beside
the CSV says how many rows of each reason were written, so tests can check
the pipeline's accounting exactly.

    python -m dataplatform.generators.students --rows 10000000 --out big.csv
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

HEADER = ["id", "nombre", "grado", "num_premios", "programa",
          "puntaje_mat", "puntaje_ing", "puntaje_ciencias"]
GRADES = np.array([6, 7, 8, 9, 10, 11, 12])
GRADE_WEIGHTS = np.array([86, 76, 52, 48, 61, 47, 30], dtype=float)
PROGRAMAS = np.array(["Academico", "Vocacional", "General"])
PROGRAMA_WEIGHTS = np.array([162, 120, 118], dtype=float)
AWARD_WEIGHTS = np.array([154, 63, 37, 29, 17, 21, 16, 19, 19, 9, 16], dtype=float)
MATH_MEAN_BY_GRADE = {6: 44.5, 7: 48.6, 8: 53.0, 9: 53.4, 10: 51.7, 11: 58.3, 12: 46.5}
SCORE_SD = 23.0
FIRST_NAMES = np.array([
    "Adan", "Eva", "Alejandro", "Lucia", "Mateo", "Valentina", "Santiago", "Isabela",
    "Sebastian", "Camila", "Samuel", "Mariana", "Nicolas", "Gabriela", "Daniel", "Sofia",
    "Tomas", "Juliana", "Emanuel", "Sara", "Martin", "Daniela", "Andres", "Paula",
])
LAST_NAMES = np.array([
    "Sanchez", "Gutierrez", "Gomez", "Ramos", "Rojas", "Garcia", "Lopez", "Castro",
    "Restrepo", "Quintero", "Martinez", "Rodriguez", "Hernandez", "Torres", "Vargas",
    "Moreno", "Jimenez", "Munoz", "Ortiz", "Alvarez", "Ruiz", "Diaz", "Herrera", "Mendoza",
])

# Defect kind -> (the contract's rejection reason, how the row is damaged).
DEFECTS = {
    "wrong_field_count": lambda row: row[:-1],
    "id_missing": lambda row: ["", *row[1:]],
    "id_not_integer": lambda row: [f"{row[0]}a", *row[1:]],
    "id_not_positive": lambda row: ["0", *row[1:]],
    "id_duplicate": lambda row: ["1", *row[1:]],
    "grado_missing": lambda row: [*row[:2], "", *row[3:]],
    "grado_not_integer": lambda row: [*row[:2], "NULL", *row[3:]],
    "grado_out_of_range": lambda row: [*row[:2], "13", *row[3:]],
    "num_premios_missing": lambda row: [*row[:3], "", *row[4:]],
    "num_premios_not_integer": lambda row: [*row[:3], "dos", *row[4:]],
    "num_premios_negative": lambda row: [*row[:3], "-1", *row[4:]],
    "num_premios_too_large": lambda row: [*row[:3], "2147483648", *row[4:]],
    "puntaje_mat_missing": lambda row: [*row[:5], "", *row[6:]],
    "puntaje_mat_not_number": lambda row: [*row[:5], "n/a", *row[6:]],
    "puntaje_mat_out_of_range": lambda row: [*row[:5], "104", *row[6:]],
    "puntaje_ing_missing": lambda row: [*row[:6], "", row[7]],
    "puntaje_ing_not_number": lambda row: [*row[:6], "cincuenta", row[7]],
    "puntaje_ing_out_of_range": lambda row: [*row[:6], "-3", row[7]],
    "puntaje_ciencias_missing": lambda row: [*row[:7], ""],
    # The seed's SQL dump left a ")" on the last field.
    "puntaje_ciencias_not_number": lambda row: [*row[:7], f"{row[7]})"],
    "puntaje_ciencias_out_of_range": lambda row: [*row[:7], "100.5"],
}
DEFECT_KINDS = tuple(DEFECTS)


def _scores(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rng.normal(mean, SCORE_SD)), 0, 100).astype(int)


def generate_rows(rows: int, seed: int = 7, dirty_fraction: float = 0.0,
                  chunk_rows: int = 100_000) -> Iterator[tuple[list[str], str | None]]:
    """Yield ``(fields, defect kind or None)`` for ``rows`` students, chunk by chunk."""
    if not 0.0 <= dirty_fraction <= 1.0:
        raise ValueError(f"dirty fraction must be within 0..1, got {dirty_fraction}")
    rng = np.random.default_rng(seed)
    math_mean = np.vectorize(MATH_MEAN_BY_GRADE.get)
    next_defect = 0
    for start in range(0, rows, chunk_rows):
        n = min(chunk_rows, rows - start)
        grades = rng.choice(GRADES, n, p=GRADE_WEIGHTS / GRADE_WEIGHTS.sum())
        awards = rng.choice(11, n, p=AWARD_WEIGHTS / AWARD_WEIGHTS.sum())
        # Older students have had longer to win awards: take the better of two
        # draws with a chance that grows with the grade.
        second = rng.choice(11, n, p=AWARD_WEIGHTS / AWARD_WEIGHTS.sum())
        awards = np.where(rng.random(n) < (grades - 6) / 10, np.maximum(awards, second), awards)
        programas = rng.choice(PROGRAMAS, n, p=PROGRAMA_WEIGHTS / PROGRAMA_WEIGHTS.sum())
        mat = _scores(rng, math_mean(grades))
        ing = _scores(rng, np.full(n, 53.0))
        ciencias = _scores(rng, 51.0 - 1.5 * (awards - 2.6))
        names = np.char.add(np.char.add(rng.choice(FIRST_NAMES, n), " "),
                            rng.choice(LAST_NAMES, n))
        dirty = rng.random(n) < dirty_fraction
        for i in range(n):
            row_id = start + i + 1
            fields = [str(row_id), str(names[i]), str(grades[i]), str(awards[i]),
                      str(programas[i]), str(mat[i]), str(ing[i]), str(ciencias[i])]
            # Row 1 stays clean: duplicates point at it.
            if dirty[i] and row_id > 1:
                kind = DEFECT_KINDS[next_defect % len(DEFECT_KINDS)]
                next_defect += 1
                yield DEFECTS[kind](fields), kind
            else:
                yield fields, None


def write_csv(path: Path, rows: int, seed: int = 7, dirty_fraction: float = 0.0) -> dict:
    """Write the CSV and its manifest (``<path>.manifest.json``); return the manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    defects: Counter[str] = Counter()
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for fields, kind in generate_rows(rows, seed, dirty_fraction):
            writer.writerow(fields)
            if kind:
                defects[kind] += 1
    manifest = {
        "rows": rows,
        "seed": seed,
        "dirty_fraction": dirty_fraction,
        "rows_rejected": sum(defects.values()),
        "rejections": dict(sorted(defects.items())),
    }
    manifest_path = path.with_name(path.name + ".manifest.json")
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400, help="students to write")
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dirty-fraction", type=float, default=0.0,
                        help="share of rows given a defect (0..1)")
    args = parser.parse_args(argv)
    manifest = write_csv(args.out, args.rows, args.seed, args.dirty_fraction)
    print(f"wrote {args.rows} rows to {args.out} ({manifest['rows_rejected']} defective)")


if __name__ == "__main__":
    main()
