"""The student CSV contract (``contracts.md``): columns, header rules, reasons."""

from __future__ import annotations

import csv
import re
import unicodedata

REQUIRED_COLUMNS = (
    "id", "nombre", "grado", "num_premios", "programa",
    "puntaje_mat", "puntaje_ing", "puntaje_ciencias",
)
SCORE_COLUMNS = ("puntaje_mat", "puntaje_ing", "puntaje_ciencias")
# The staged clean rows, in order: no name, typed.
CLEAN_TYPES = {"id": "bigint", "grado": "int", "num_premios": "int", "programa": "string",
               **{score: "double" for score in SCORE_COLUMNS}}
CLEAN_SCHEMA = ", ".join(f"{column} {kind}" for column, kind in CLEAN_TYPES.items())
# Subjects of students_score_summary: the three scores and the award count.
SUMMARY_SUBJECTS = (*SCORE_COLUMNS, "num_premios")
GRADE_RANGE = (1, 12)
# num_premios is stored as a 32-bit integer.
MAX_AWARDS = 2**31 - 1
SCORE_RANGE = (0.0, 100.0)

# Every reason a row can be rejected for, in the order the checks run: a row
# carries the first one that holds, so reasons add up to rows_rejected.
REJECTION_REASONS = (
    "invalid_utf8",
    "malformed_quotes",
    "wrong_field_count",
    "id_missing", "id_not_integer", "id_not_positive",
    "grado_missing", "grado_not_integer", "grado_out_of_range",
    "num_premios_missing", "num_premios_not_integer", "num_premios_negative",
    "num_premios_too_large",
    *(f"{score}_{fault}" for score in SCORE_COLUMNS
      for fault in ("missing", "not_number", "out_of_range")),
    "id_duplicate",
)


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalise_column_name(name: str) -> str:
    """Trim, lower-case, strip accents, runs of non-alphanumerics to ``_``."""
    folded = strip_accents(name.strip().lower())
    return re.sub(r"[^a-z0-9]+", "_", folded).strip("_")


def parse_header(line: str) -> list[str]:
    """Normalised column names of a header line (a UTF-8 BOM is allowed)."""
    fields = next(csv.reader([line.lstrip("\ufeff")]), [])
    return [normalise_column_name(field) for field in fields]


class HeaderError(ValueError):
    """A landing file whose header does not meet the contract."""


def required_column_positions(header: list[str], source: str) -> dict[str, int]:
    """Map each required column to its position in ``header``.

    Raises HeaderError naming the file and the missing (or repeated) columns.
    """
    missing = [col for col in REQUIRED_COLUMNS if col not in header]
    if missing:
        raise HeaderError(
            f"{source}: line 1: missing required column(s) {', '.join(missing)}; "
            f"header has {', '.join(header) or '(nothing)'}"
        )
    repeated = sorted({col for col in REQUIRED_COLUMNS if header.count(col) > 1})
    if repeated:
        raise HeaderError(f"{source}: line 1: column(s) {', '.join(repeated)} appear twice")
    return {col: header.index(col) for col in REQUIRED_COLUMNS}


def extra_columns(header: list[str]) -> list[str]:
    return [col for col in header if col not in REQUIRED_COLUMNS]
