"""Ingest, validate and clean one date of East High student CSVs.

Reads   landing/students/ds=<ds>/*.csv
Writes  staging/students/ds=<ds>/clean/          clean rows, Parquet, no names
        staging/students/ds=<ds>/quality.json    accounting and reasons
        quarantine/students/ds=<ds>/rows/        rejected rows: file, line, reason, raw line
        quarantine/students/ds=<ds>/files.json   rejected files and why

Files are read as text so that every rejected row keeps its file and line
number; each line is then parsed as CSV against its own file's header. A file
missing a required column stops the job with an error naming the columns.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark_apps.hadoop_fs import list_files, local_path, remove_path, write_text
from spark_apps.layout import DataLayout, validate_ds
from spark_apps.session import build_spark_session
from spark_apps.students.contract import (
    GRADE_RANGE,
    REQUIRED_COLUMNS,
    SCORE_COLUMNS,
    SCORE_RANGE,
    HeaderError,
    extra_columns,
    parse_header,
    required_column_positions,
)

DATASET = "students"
INTEGER_PATTERN = r"^[+-]?[0-9]{1,18}$"
NUMBER_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
# A well-formed quoted field: a whole field between quotes, inner quotes
# doubled. Any quote left once these are removed is malformed. Possessive
# quantifiers keep Java's regex engine from recursing (and overflowing its
# stack) on a huge field.
QUOTED_FIELD_PATTERN = r'(?<=^|,)"(?:[^"]++|"")*+"(?=,|$)'


def _accent_table() -> tuple[str, str]:
    """Accented Latin letters and their bases, for Spark's ``translate``."""
    accented, plain = [], []
    for code in range(0xC0, 0x250):
        char = chr(code)
        base = "".join(c for c in unicodedata.normalize("NFKD", char)
                       if not unicodedata.combining(c))
        if len(base) == 1 and base != char and base.isascii():
            accented.append(char)
            plain.append(base)
    return "".join(accented), "".join(plain)


ACCENTED, UNACCENTED = _accent_table()


# ---------------------------------------------------------------- extract


def extract_lines(spark: SparkSession, files: Sequence[str]) -> DataFrame:
    """Every physical line of ``files`` with its file, split and scan position.

    ``mid`` grows with the position inside a split, so ``file_block_start``
    and ``mid`` together give each line's number (see ``block_line_offsets``).
    """
    return spark.read.text(list(files)).select(
        F.col("_metadata.file_path").alias("file_path"),
        F.col("_metadata.file_block_start").alias("block_start"),
        F.monotonically_increasing_id().alias("mid"),
        F.col("value"),
    )


# ---------------------------------------------------------------- transforms


def block_line_offsets(blocks: Iterable[Mapping]) -> list[tuple[str, int, int, int]]:
    """Line number of the first line of each split of each file.

    ``blocks`` holds ``file_path, block_start, lines, first_mid`` per split.
    Returns ``(file_path, block_start, first_mid, first_line)`` rows.
    """
    by_file: dict[str, list[Mapping]] = {}
    for block in blocks:
        by_file.setdefault(block["file_path"], []).append(block)
    offsets = []
    for file_path, file_blocks in by_file.items():
        first_line = 1
        for block in sorted(file_blocks, key=lambda b: b["block_start"]):
            offsets.append((file_path, block["block_start"], block["first_mid"], first_line))
            first_line += block["lines"]
    return offsets


def transform_block_counts(lines: DataFrame) -> DataFrame:
    """Per split of a file: its lines, first ``mid``, first line, blank lines.

    The first line of a file's first split is its header, so one small
    aggregation gives line numbers, headers and the blank-line count.
    """
    return lines.groupBy("file_path", "block_start").agg(
        F.count(F.lit(1)).alias("lines"),
        F.min("mid").alias("first_mid"),
        F.min_by("value", "mid").alias("first_value"),
        F.sum((F.trim("value") == "").cast("long")).alias("blank_lines"),
    ).select("file_path", "block_start", "lines", "first_mid", "first_value", "blank_lines")


def transform_number_lines(lines: DataFrame, offsets: DataFrame) -> DataFrame:
    """Attach each line's 1-based number within its file."""
    joined = lines.join(F.broadcast(offsets), ["file_path", "block_start"])
    return joined.select(
        "file_path",
        (F.col("first_line") + F.col("mid") - F.col("first_mid")).alias("line_number"),
        "value",
    )


def transform_parse_rows(numbered: DataFrame,
                         headers: Mapping[str, Sequence[str]]) -> DataFrame:
    """Split each data line into the required columns, by its file's header.

    Returns ``file_path, line_number, value, field_count, expected_fields,
    stray_quote`` and the required columns as trimmed strings. Header lines
    (line 1) and blank lines are left out: they are not rows.
    """
    files_by_header: dict[tuple[str, ...], list[str]] = {}
    for file_path, header in headers.items():
        files_by_header.setdefault(tuple(header), []).append(file_path)

    unquoted = F.regexp_replace("value", QUOTED_FIELD_PATTERN, "")
    parsed_groups = []
    for header, files in sorted(files_by_header.items()):
        positions = required_column_positions(list(header), files[0])
        schema = ", ".join(f"c{i} STRING" for i in range(len(header)))
        fields = F.from_csv("value", schema, {"escape": '"', "mode": "PERMISSIVE"})
        rows = numbered.where(
            F.col("file_path").isin(files)
            & (F.col("line_number") > 1)
            & (F.trim("value") != "")
        ).withColumn("fields", fields)
        parsed_groups.append(rows.select(
            "file_path", "line_number", "value",
            F.size(F.split(unquoted, ",", -1)).alias("field_count"),
            F.lit(len(header)).alias("expected_fields"),
            F.instr(unquoted, '"').__gt__(0).alias("stray_quote"),
            *(F.trim(F.col(f"fields.c{positions[col]}")).alias(col)
              for col in REQUIRED_COLUMNS),
        ))
    parsed = parsed_groups[0]
    for group in parsed_groups[1:]:
        parsed = parsed.unionByName(group)
    return parsed


def _missing(column: str):
    return F.col(column).isNull() | (F.col(column) == "")


def _integer_checks(column: str, low: int | None, high: int | None,
                    range_reason: str) -> list[tuple]:
    value = F.col(column).try_cast("long")
    out_of_range = F.lit(False)
    if low is not None:
        out_of_range = out_of_range | (value < low)
    if high is not None:
        out_of_range = out_of_range | (value > high)
    return [
        (_missing(column), f"{column}_missing"),
        (~F.col(column).rlike(INTEGER_PATTERN), f"{column}_not_integer"),
        (out_of_range, range_reason),
    ]


def rejection_checks() -> list[tuple]:
    """(condition, reason) in the order of ``contract.REJECTION_REASONS``."""
    low_grade, high_grade = GRADE_RANGE
    low_score, high_score = SCORE_RANGE
    checks = [
        (~F.is_valid_utf8("value"), "invalid_utf8"),
        (F.col("stray_quote"), "malformed_quotes"),
        (F.col("field_count") != F.col("expected_fields"), "wrong_field_count"),
        *_integer_checks("id", 1, None, "id_not_positive"),
        *_integer_checks("grado", low_grade, high_grade, "grado_out_of_range"),
        *_integer_checks("num_premios", 0, None, "num_premios_negative"),
    ]
    for score in SCORE_COLUMNS:
        value = F.col(score).try_cast("double")
        checks += [
            (_missing(score), f"{score}_missing"),
            (~F.col(score).rlike(NUMBER_PATTERN), f"{score}_not_number"),
            ((value < low_score) | (value > high_score), f"{score}_out_of_range"),
        ]
    return checks


def transform_validate(parsed: DataFrame) -> DataFrame:
    """Add ``reject_reason``: the first check a row fails, NULL when clean."""
    reason = F.lit(None).cast("string")
    for condition, name in reversed(rejection_checks()):
        reason = F.when(condition, F.lit(name)).otherwise(reason)
    return parsed.select("*", reason.alias("reject_reason"))


def transform_mark_duplicates(validated: DataFrame) -> DataFrame:
    """Reject repeated ids among otherwise clean rows; the first one stays.

    "First" is file order, then line order. Only clean rows compete, so a
    valid row is never dropped in favour of an earlier row that was rejected.
    """
    is_clean = F.col("reject_reason").isNull()
    first_seen = Window.partitionBy(is_clean, F.col("id").try_cast("long")).orderBy(
        "file_path", "line_number")
    duplicate = is_clean & (F.row_number().over(first_seen) > 1)
    return validated.withColumn(
        "reject_reason",
        F.when(duplicate, F.lit("id_duplicate")).otherwise(F.col("reject_reason")),
    )


def normalise_programa(column: str):
    """Trim, strip accents, capitalise: `` académico `` -> ``Academico``."""
    plain = F.translate(F.trim(F.col(column)), ACCENTED, UNACCENTED)
    capitalised = F.concat(F.upper(F.substring(plain, 1, 1)),
                           F.lower(F.substring(plain, 2, 1 << 30)))
    return F.when(plain == "", F.lit(None)).otherwise(capitalised)


def transform_clean_rows(validated: DataFrame) -> DataFrame:
    """Typed clean rows. ``nombre`` is dropped here: names are never published."""
    return validated.where(F.col("reject_reason").isNull()).select(
        F.col("id").cast("long").alias("id"),
        F.col("grado").cast("int").alias("grado"),
        F.col("num_premios").cast("int").alias("num_premios"),
        normalise_programa("programa").alias("programa"),
        *(F.col(score).cast("double").alias(score) for score in SCORE_COLUMNS),
    )


def transform_rejected_rows(validated: DataFrame) -> DataFrame:
    return validated.where(F.col("reject_reason").isNotNull()).select(
        F.col("file_path").alias("source_file"),
        "line_number",
        F.col("reject_reason").alias("reason"),
        F.col("value").alias("raw_line"),
    )


def quality_report(ds: str, files_in: int, rejected_files: Sequence[Mapping],
                   reason_counts: Mapping[str | None, int], blank_lines: int,
                   extra: Mapping[str, Sequence[str]]) -> dict:
    """The date's accounting: rows_in = rows_clean + rows_rejected, always."""
    rejections = {reason: n for reason, n in sorted(
        (reason, n) for reason, n in reason_counts.items() if reason)}
    rows_clean = reason_counts.get(None, 0)
    rows_rejected = sum(rejections.values())
    return {
        "dataset": DATASET,
        "ds": ds,
        "files_in": files_in,
        "files_rejected": len(rejected_files),
        "rows_in": rows_clean + rows_rejected,
        "rows_clean": rows_clean,
        "rows_rejected": rows_rejected,
        "blank_lines": blank_lines,
        "rejections": rejections,
        "rejected_files": list(rejected_files),
        "extra_columns": {path: list(cols) for path, cols in extra.items() if cols},
    }


# ---------------------------------------------------------------- load


def load_clean_rows(clean: DataFrame, path: str) -> None:
    clean.write.mode("overwrite").parquet(path)


def load_rejected_rows(rejected: DataFrame, path: str) -> None:
    # One small CSV a person can open; rejected rows are few by the gate.
    rejected.orderBy("source_file", "line_number").coalesce(1).write.mode(
        "overwrite").option("header", True).option("escape", '"').csv(path)


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, type=validate_ds, help="partition date")
    parser.add_argument("--data-dir", required=True, help="data root (PLATFORM_DATA_DIR)")
    return parser.parse_args(argv)


class LandingError(ValueError):
    """The date's landing cannot be processed at all; nothing is published."""


def run_clean(spark: SparkSession, ds: str, data_dir: str) -> dict:
    """Clean one date: write clean rows, quarantine and report; return the report."""
    layout = DataLayout(data_dir)
    landing = layout.landing(DATASET, ds)
    staging = layout.staging(DATASET, ds)
    quarantine = layout.quarantine(DATASET, ds)
    # A failed run must not leave an earlier run's outputs for the next steps.
    remove_path(spark, staging)
    remove_path(spark, quarantine)

    listed = [(path, size) for path, size in list_files(spark, landing)
              if path.lower().endswith(".csv")]
    if not listed:
        raise LandingError(f"no student CSV files (*.csv) in {landing}")
    rejected_files = [{"file": path, "reason": "empty file: no header, no rows"}
                      for path, size in listed if size == 0]
    readable = [path for path, size in listed if size > 0]
    if not readable:
        raise LandingError(f"every student CSV in {landing} is empty")

    lines = extract_lines(spark, readable).cache()
    blocks = [row.asDict() for row in transform_block_counts(lines).collect()]
    headers = {block["file_path"]: parse_header(block["first_value"])
               for block in blocks if block["block_start"] == 0}
    for path, header in sorted(headers.items()):
        required_column_positions(header, local_path(path))
    # A blank first line is a missing header, caught above: these are data lines.
    blank_lines = sum(block["blank_lines"] for block in blocks)

    offsets = spark.createDataFrame(
        block_line_offsets(blocks),
        "file_path STRING, block_start LONG, first_mid LONG, first_line LONG")
    numbered = transform_number_lines(lines, offsets)
    validated = transform_mark_duplicates(
        transform_validate(transform_parse_rows(numbered, headers))).cache()
    reason_counts = {row.reject_reason: row["count"]
                     for row in validated.groupBy("reject_reason").count().collect()}
    report = quality_report(ds, len(listed), rejected_files, reason_counts, blank_lines,
                            {path: extra_columns(h) for path, h in headers.items()})

    load_clean_rows(transform_clean_rows(validated), f"{staging}/clean")
    if report["rows_rejected"]:
        load_rejected_rows(transform_rejected_rows(validated), f"{quarantine}/rows")
    if rejected_files:
        write_text(spark, f"{quarantine}/files.json", json.dumps(rejected_files, indent=2))
    write_text(spark, f"{staging}/quality.json", json.dumps(report, indent=2))
    validated.unpersist()
    lines.unpersist()
    return report


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    spark = build_spark_session(f"students-clean-{args.ds}")
    try:
        report = run_clean(spark, args.ds, args.data_dir)
    except (LandingError, HeaderError) as error:
        raise SystemExit(f"student landing rejected, nothing published: {error}") from None
    finally:
        spark.stop()
    summary = {k: report[k] for k in ("files_in", "files_rejected", "rows_in",
                                      "rows_clean", "rows_rejected")}
    print(f"students {args.ds}: {summary}; rejections {report['rejections']}", flush=True)
    for path, cols in report["extra_columns"].items():
        print(f"{local_path(path)}: extra columns ignored: {', '.join(cols)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
