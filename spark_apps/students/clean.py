"""Ingest, validate and clean one date of East High student CSVs, then
compute its statistics in the same Spark session.

Reads   landing/students/ds=<ds>/*.csv
Writes  staging/students/ds=<ds>/clean/          clean rows, Parquet, no names
        staging/students/ds=<ds>/quality.json    accounting and reasons
        staging/students/ds=<ds>/tables/         the statistics (``statistics.py``)
        quarantine/students/ds=<ds>/rows/        rejected rows: file, line, reason, raw line
        quarantine/students/ds=<ds>/files.json   rejected files and why

Files are read as text so that every rejected row keeps its file and line
number; each line is then parsed as CSV against its own file's header, read
first by the driver. A file missing a required column stops the job with an
error naming the columns.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F

from spark_apps.hadoop_fs import (
    list_files,
    local_path,
    read_first_line,
    remove_path,
    scan_uri,
    write_text,
)
from spark_apps.layout import DataLayout, validate_ds
from spark_apps.session import build_spark_session
from spark_apps.students.contract import (
    CLEAN_TYPES,
    GRADE_RANGE,
    MAX_AWARDS,
    REQUIRED_COLUMNS,
    SCORE_COLUMNS,
    SCORE_RANGE,
    HeaderError,
    extra_columns,
    parse_header,
    required_column_positions,
)
from spark_apps.students.statistics import run_statistics

DATASET = "students"
# A line's key: its file (its position among the date's non-empty files, in
# listing order), its split and its position in the scan. A number, not the
# path: the path is the widest column of the cached lines and the line
# counts' group key.
LINE_KEYS = ("file_index", "block_start", "mid")
# Up to this many files, a line finds its file's index by comparing paths in
# turn; beyond, by a broadcast join on the path (one hash a line).
FILE_INDEX_COMPARES_MAX = 8
# \z, not $: Java's $ also matches before a final line terminator (U+2028...).
INTEGER_PATTERN = r"^[+-]?[0-9]{1,18}\z"
NUMBER_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\z"
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

    ``file_index`` is the file's position in ``files``; NULL for a line of a
    file the scan names otherwise (``run_clean`` refuses those), except that
    a single file is index 0 without a lookup. ``mid`` grows with the
    position inside a split and is unique, so it keys a line; with
    ``block_start`` it also gives the line's number (see
    ``block_line_offsets``). Scanning the same files again with the same split
    sizes (``run_clean`` pins them) gives every line the same ``mid``.
    """
    # The scan names files by URI ("a%20b.csv"), not as they were listed.
    scanned_paths = [scan_uri(spark, path) for path in files]
    scanned = spark.read.text(list(files)).select(
        F.col("_metadata.file_path").alias("scanned_path"),
        F.col("_metadata.file_block_start").alias("block_start"),
        F.monotonically_increasing_id().alias("mid"),
        F.col("value"),
    )
    if len(files) == 1:
        return scanned.select(F.lit(0).alias("file_index"), "block_start", "mid", "value")
    if len(files) <= FILE_INDEX_COMPARES_MAX:
        index = F.lit(None).cast("int")
        for position, path in reversed(list(enumerate(scanned_paths))):
            index = F.when(F.col("scanned_path") == path, F.lit(position)).otherwise(index)
        return scanned.select(index.alias("file_index"), "block_start", "mid", "value")
    indices = spark.createDataFrame(list(enumerate(scanned_paths)),
                                    "file_index INT, scanned_path STRING")
    return scanned.join(F.broadcast(indices), "scanned_path", "left").select(
        "file_index", "block_start", "mid", "value")


def read_headers(spark: SparkSession, files: Sequence[str]) -> list[list[str]]:
    """Each file's normalised header, in the order of ``files``, read by the
    driver from its first line.

    Reading the headers first lets one scan parse every file by its own
    header, instead of a pass over all lines just to find them.
    """
    headers = [parse_header(read_first_line(spark, path)) for path in files]
    for path, header in sorted(zip(files, headers, strict=True)):
        required_column_positions(header, local_path(path))
    return headers


# ---------------------------------------------------------------- transforms


def block_line_offsets(blocks: Iterable[Mapping]) -> list[tuple[int, int, int, int]]:
    """Line number of the first line of each split of each file.

    ``blocks`` holds ``file_index, block_start, lines, first_mid`` per split.
    Returns ``(file_index, block_start, first_mid, first_line)`` rows.
    """
    by_file: dict[int, list[Mapping]] = {}
    for block in blocks:
        by_file.setdefault(block["file_index"], []).append(block)
    offsets = []
    for index, file_blocks in by_file.items():
        first_line = 1
        for block in sorted(file_blocks, key=lambda b: b["block_start"]):
            offsets.append((index, block["block_start"], block["first_mid"], first_line))
            first_line += block["lines"]
    return offsets


def transform_line_counts(checked: DataFrame) -> DataFrame:
    """Lines per split of a file and kind: ``lines`` and the first ``mid``.

    Grouped by ``file_index, block_start, blank, reject_reason``: this one small
    aggregation, the first action on the cached lines, gives line numbers,
    the header lines, the blank lines and the reasons before duplicates (see
    ``summarise_line_counts``).
    """
    keys = ("file_index", "block_start", "blank", "reject_reason")
    return checked.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("lines"),
        F.min("mid").alias("first_mid"),
    ).select(*keys, "lines", "first_mid")


@dataclass
class LineSummary:
    """What ``transform_line_counts`` tells, worked out by the driver."""

    blocks: list[dict]  # file_index, block_start, lines, first_mid per split
    header_mids: list[int]
    blank_lines: int
    reason_counts: dict[str | None, int]  # data rows by reason, None for clean


def summarise_line_counts(groups: Iterable[Mapping]) -> LineSummary:
    """Fold the line-count groups into splits, headers, blanks and reasons.

    A file's header is the first line of its first split: it is taken out of
    the reason it was given, since it is not a data row.
    """
    groups = list(groups)
    blocks: dict[tuple[int, int], dict] = {}
    for group in groups:
        key = (group["file_index"], group["block_start"])
        block = blocks.setdefault(key, {"file_index": key[0], "block_start": key[1],
                                        "lines": 0, "first_mid": group["first_mid"]})
        block["lines"] += group["lines"]
        block["first_mid"] = min(block["first_mid"], group["first_mid"])
    header_mids = [block["first_mid"] for block in blocks.values()
                   if block["block_start"] == 0]
    headers = set(header_mids)  # a group holds its file's header if it starts with it
    reason_counts: dict[str | None, int] = {}
    for group in groups:
        if group["blank"]:
            continue
        lines = group["lines"] - int(group["first_mid"] in headers)
        if lines:
            reason_counts[group["reject_reason"]] = (
                reason_counts.get(group["reject_reason"], 0) + lines)
    return LineSummary(
        blocks=list(blocks.values()),
        header_mids=header_mids,
        blank_lines=sum(group["lines"] for group in groups if group["blank"]),
        reason_counts=reason_counts,
    )


def transform_number_lines(keyed: DataFrame, offsets: DataFrame) -> DataFrame:
    """Replace a line's keys by its file (``source_file``) and 1-based line number.

    ``offsets``: ``file_index, block_start, first_mid, first_line, source_file``.
    """
    joined = keyed.join(F.broadcast(offsets), ["file_index", "block_start"])
    numbered = (F.col("first_line") + F.col("mid") - F.col("first_mid")).alias("line_number")
    rest = [c for c in keyed.columns if c not in LINE_KEYS]
    return joined.select("source_file", numbered, *rest)


def transform_parse_rows(lines: DataFrame, headers: Sequence[Sequence[str]]) -> DataFrame:
    """Split every line into the required columns, by its file's header.

    ``headers[i]`` is the header of the file of ``file_index`` i. Returns the
    line's keys (``file_index, block_start, mid``), ``value``,
    ``blank``, ``field_count``, ``expected_fields``, ``stray_quote`` and the
    required columns as trimmed strings. Header and blank lines are parsed
    too, and left out of the rows later (see ``transform_rows``).
    """
    files_by_header: dict[tuple[str, ...], list[int]] = {}
    for index, header in enumerate(headers):
        files_by_header.setdefault(tuple(header), []).append(index)

    # Most lines hold no quote: a plain split parses them at a fraction of the
    # cost of the CSV parser, which only quoted lines need. Whether a line
    # holds one is worked out once, as a column, not in each of its uses.
    has_quote = F.col("has_quote")
    unquoted = F.regexp_replace("value", QUOTED_FIELD_PATTERN, "")
    parsed_groups = []
    for header, files in sorted(files_by_header.items()):
        positions = required_column_positions(list(header), f"file_index {files[0]}")
        schema = ", ".join(f"c{i} STRING" for i in range(len(header)))
        csv_fields = F.from_csv("value", schema, {"escape": '"', "mode": "PERMISSIVE"})
        # Usually every file of a date shares one header: no filter then.
        of_header = lines if len(files_by_header) == 1 else lines.where(
            F.col("file_index").isin(files))
        rows = of_header.select(
            "*", F.contains("value", F.lit('"')).alias("has_quote"),
        ).select(
            "*",
            F.split("value", ",", -1).alias("parts"),
            F.when(has_quote, csv_fields).alias("quoted_fields"),
        )
        parsed_groups.append(rows.select(
            *LINE_KEYS, "value",
            (F.trim("value") == "").alias("blank"),
            F.when(has_quote, F.size(F.split(unquoted, ",", -1)))
             .otherwise(F.size("parts")).alias("field_count"),
            F.lit(len(header)).alias("expected_fields"),
            (has_quote & F.contains(unquoted, F.lit('"'))).alias("stray_quote"),
            *(F.trim(F.when(has_quote, F.col(f"quoted_fields.c{positions[col]}"))
                     .otherwise(F.get("parts", positions[col]))).alias(col)
              for col in REQUIRED_COLUMNS),
        ))
    parsed = parsed_groups[0]
    for group in parsed_groups[1:]:
        parsed = parsed.unionByName(group)
    return parsed


def _missing(column: str):
    return F.col(column).isNull() | (F.col(column) == "")


# The typed value of each checked field, parsed once: NULL where it does not
# parse. The checks read it, and so do the clean rows.
TYPED_FIELDS = {column: "double" if kind == "double" else "long"
                for column, kind in CLEAN_TYPES.items() if column != "programa"}


def _typed(column: str):
    return F.col(f"{column}__typed")


def _integer_checks(column: str, low: int | None, high: int | None,
                    range_reason: str) -> list[tuple]:
    value = _typed(column)
    out_of_range = F.lit(False)
    if low is not None:
        out_of_range = out_of_range | (value < low)
    if high is not None:
        out_of_range = out_of_range | (value > high)
    # A field written the way Spark writes its own parsed value, in at most
    # 18 characters, is one the pattern accepts: the pattern runs only on
    # the rest (a sign, leading zeros, garbage).
    as_written = (F.length(column) <= 18) & (value.cast("string") == F.col(column))
    return [
        (_missing(column), f"{column}_missing"),
        # A value the pattern accepts but the cast does not is not an integer
        # either: a clean row never holds a NULL.
        (~(as_written | F.col(column).rlike(INTEGER_PATTERN)) | value.isNull(),
         f"{column}_not_integer"),
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
        # Above what the INT column holds: under ANSI casts, a crash otherwise.
        (_typed("num_premios") > MAX_AWARDS, "num_premios_too_large"),
    ]
    for score in SCORE_COLUMNS:
        value = _typed(score)
        # A whole score written as Spark writes a long ("85") is one the
        # pattern accepts. try_cast, as 1e300 holds no long; null-safe, as
        # NaN and Infinity give none and a NULL would let them through.
        as_written = value.try_cast("long").cast("string").eqNullSafe(F.col(score))
        checks += [
            (_missing(score), f"{score}_missing"),
            (~(as_written | F.col(score).rlike(NUMBER_PATTERN)) | value.isNull(),
             f"{score}_not_number"),
            ((value < low_score) | (value > high_score), f"{score}_out_of_range"),
        ]
    return checks


def transform_validate(parsed: DataFrame) -> DataFrame:
    """Add the typed values (``<field>__typed``) and ``reject_reason``.

    ``reject_reason`` is the first check a row fails, NULL when clean.
    """
    typed = parsed.select("*", *(F.col(column).try_cast(kind).alias(f"{column}__typed")
                                 for column, kind in TYPED_FIELDS.items()))
    reason = F.lit(None).cast("string")
    for condition, name in reversed(rejection_checks()):
        reason = F.when(condition, F.lit(name)).otherwise(reason)
    return typed.select("*", reason.alias("reject_reason"))


def normalise_programa(column: str):
    """Trim, strip accents, capitalise: `` académico `` -> ``Academico``."""
    trimmed = F.trim(F.col(column))
    # translate() is slow per character; only non-ASCII values need it.
    ascii_only = F.length(trimmed) == F.octet_length(trimmed)
    plain = F.when(ascii_only, trimmed).otherwise(F.translate(trimmed, ACCENTED, UNACCENTED))
    capitalised = F.concat(F.upper(F.substring(plain, 1, 1)),
                           F.lower(F.substring(plain, 2, 1 << 30)))
    return F.when(plain == "", F.lit(None)).otherwise(capitalised)


def transform_checked(validated: DataFrame) -> DataFrame:
    """Every line, narrowed to what the later steps need: the kept dataset.

    Keys, ``blank``, ``reject_reason`` and the typed values of clean rows.
    The raw line and ``nombre`` are dropped here: names are never published,
    and the few rejected lines are read again for the quarantine.
    """
    clean = F.col("reject_reason").isNull()
    return validated.select(
        *LINE_KEYS, "blank", "reject_reason",
        *(F.when(clean, _typed(column).cast(kind)).alias(column)
          for column, kind in CLEAN_TYPES.items() if column != "programa"),
        F.when(clean, normalise_programa("programa")).alias("programa"),
    )


def transform_rows(checked: DataFrame, header_mids: Sequence[int]) -> DataFrame:
    """The data rows: every line but the files' headers and blank lines."""
    return checked.where(~F.col("blank") & ~F.col("mid").isin(list(header_mids)))


def transform_id_counts(rows: DataFrame) -> DataFrame:
    """One row: the clean rows' ``distinct_ids``, exactly.

    Each id sets one bit of a 64-bit word, its group: the words' bits are
    OR-ed and counted. A dense date's 10M ids are 156,250 words, so this
    shuffles a word per 64 ids instead of every id. It holds for any ids:
    sparse ones make a word each, no worse than grouping by id.
    """
    per_word = rows.where(F.col("reject_reason").isNull()).groupBy(
        F.shiftright("id", 6).alias("word"),
    ).agg(
        # The bit of the id in its word; a long aggregation buffer, so the
        # hash aggregation stays on fixed-width rows.
        F.bit_or(F.expr("shiftleft(1L, cast(pmod(id, 64) AS INT))")).alias("bits"),
    )
    # The clean rows are counted once, by the line counts.
    return per_word.agg(
        F.coalesce(F.sum(F.bit_count("bits")), F.lit(0)).alias("distinct_ids"))


def transform_repeated_ids(rows: DataFrame) -> DataFrame:
    """Ids held by more than one clean row."""
    return (rows.where(F.col("reject_reason").isNull())
            .groupBy("id").count().where(F.col("count") > 1).select("id"))


def transform_duplicate_keys(rows: DataFrame, repeated_ids: DataFrame) -> DataFrame:
    """Keys of the clean rows whose id an earlier clean row already has.

    "Earlier" is file order (``file_index``: the listing's order), then line
    order: a file's splits in order, lines in scan order. Only clean rows
    compete, so a valid row is never dropped in favour of an earlier row that
    was rejected. Only repeated ids are ordered, not the whole date.
    """
    first_seen = Window.partitionBy("id").orderBy(*LINE_KEYS)
    candidates = rows.where(F.col("reject_reason").isNull()).join(repeated_ids, "id", "left_semi")
    return (candidates.select(*LINE_KEYS, F.row_number().over(first_seen).alias("seen"))
            .where(F.col("seen") > 1).select(*LINE_KEYS))


def transform_mark_duplicates(rows: DataFrame, duplicate_keys: DataFrame) -> DataFrame:
    """``rows`` with ``reject_reason`` set to ``id_duplicate`` on ``duplicate_keys``."""
    marked = duplicate_keys.select(*LINE_KEYS, F.lit("id_duplicate").alias("duplicate"))
    reason = F.coalesce(F.col("reject_reason"), F.col("duplicate")).alias("reject_reason")
    return rows.join(marked, list(LINE_KEYS), "left").select(
        *(reason if column == "reject_reason" else column for column in rows.columns))


def transform_clean_rows(final: DataFrame) -> DataFrame:
    """Typed clean rows, in the staged clean schema (no names)."""
    return final.where(F.col("reject_reason").isNull()).select(*CLEAN_TYPES)


def transform_rejected_rows(final: DataFrame, lines: DataFrame, offsets: DataFrame) -> DataFrame:
    """Rejected rows with file, line, reason and the raw line, read again from ``lines``."""
    rejected = final.where(F.col("reject_reason").isNotNull()).select(*LINE_KEYS,
                                                                      "reject_reason")
    raw = rejected.join(lines.select(*LINE_KEYS, "value"), list(LINE_KEYS))
    return transform_number_lines(raw, offsets).select(
        "source_file",
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


def load_rejected_rows(rejected: DataFrame, path: str) -> int:
    """Write the quarantined rows; return how many were written."""
    # One small CSV a person can open; rejected rows are few by the gate.
    written = Observation("quarantined")
    rejected.observe(written, F.count(F.lit(1)).alias("rows")).orderBy(
        "source_file", "line_number").coalesce(1).write.mode("overwrite").option(
        "header", True).option("escape", '"').csv(path)
    return written.get["rows"]


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, type=validate_ds, help="partition date")
    parser.add_argument("--data-dir", required=True, help="data root (PLATFORM_DATA_DIR)")
    return parser.parse_args(argv)


class LandingError(ValueError):
    """The date's landing cannot be processed at all; nothing is published."""


def run_clean(spark: SparkSession, ds: str, data_dir: str,
              on_clean_rows: Callable[[DataFrame], None] | None = None) -> dict:
    """Clean one date: write clean rows, quarantine and report; return the report.

    The landing is scanned once; everything after works on a narrow cached
    copy, and only rejected rows' raw lines are read a second time.
    ``on_clean_rows`` is called with the clean rows while they are still in
    memory (when there are any), so the statistics need no re-read.
    """
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
        # Named, since no quarantine is written when the run stops here.
        raise LandingError(f"every student CSV in {landing} is empty (0 bytes): "
                           f"{', '.join(local_path(path) for path, _ in listed)}")
    # A blank first line is a missing header, and fails here.
    headers = read_headers(spark, readable)

    # Split sizes follow the cores Spark has at planning time; pinned, the
    # second scan (rejected lines) splits the files exactly as the first.
    pinned = spark.conf.get("spark.sql.files.minPartitionNum", None)
    spark.conf.set("spark.sql.files.minPartitionNum",
                   pinned or str(spark.sparkContext.defaultParallelism))
    cached: list[DataFrame] = []
    try:
        return _clean_listed(spark, ds, layout, len(listed), rejected_files, readable,
                             headers, on_clean_rows, cached)
    finally:
        for frame in cached:
            frame.unpersist()
        if not pinned:
            spark.conf.unset("spark.sql.files.minPartitionNum")


def _clean_listed(spark: SparkSession, ds: str, layout: DataLayout,
                  files_in: int, rejected_files: Sequence[Mapping],
                  files: Sequence[str], headers: Sequence[Sequence[str]],
                  on_clean_rows: Callable[[DataFrame], None] | None,
                  cached: list[DataFrame]) -> dict:
    """``run_clean`` from the scan on; what it caches goes into ``cached``.

    ``files`` are the readable files as listed, ``headers`` theirs.
    """
    staging, quarantine = layout.staging(DATASET, ds), layout.quarantine(DATASET, ds)
    lines = extract_lines(spark, files)
    checked = transform_checked(transform_validate(transform_parse_rows(lines, headers)))
    checked = checked.persist(StorageLevel.MEMORY_AND_DISK)
    cached.append(checked)
    lines_seen = summarise_line_counts(
        row.asDict() for row in transform_line_counts(checked).collect())
    # A file the scan names otherwise than listed has no index: its lines
    # belong to no listed file, and the listed file is unread.
    if any(block["file_index"] is None for block in lines_seen.blocks):
        raise LandingError("the scan read lines of a file it names otherwise than "
                           f"listed; listed: {', '.join(files[:5])}")
    unread = sorted(set(range(len(files))) - {block["file_index"] for block in lines_seen.blocks})
    if unread:
        raise LandingError(f"{len(unread)} file(s) listed but not read: "
                           f"{', '.join(files[index] for index in unread[:5])}")
    offsets = spark.createDataFrame(
        [(*offset, files[offset[0]]) for offset in block_line_offsets(lines_seen.blocks)],
        "file_index INT, block_start LONG, first_mid LONG, first_line LONG, "
        "source_file STRING")

    rows = final = transform_rows(checked, lines_seen.header_mids)
    reason_counts = dict(lines_seen.reason_counts)
    if ids_may_repeat(rows, reason_counts.get(None, 0)):
        repeated_ids = transform_repeated_ids(rows).cache()
        duplicate_keys = transform_duplicate_keys(rows, repeated_ids).cache()
        cached += [repeated_ids, duplicate_keys]
        # Materialised, so that joins with it are broadcasts.
        duplicates = duplicate_keys.count()
        final = transform_mark_duplicates(rows, duplicate_keys)
        if duplicates:
            reason_counts[None] -= duplicates
            reason_counts["id_duplicate"] = duplicates
    extra = {path: extra_columns(header) for path, header in zip(files, headers, strict=True)}
    report = quality_report(ds, files_in, rejected_files, reason_counts,
                            lines_seen.blank_lines, extra)

    clean = transform_clean_rows(final)
    load_clean_rows(clean, f"{staging}/clean")
    if report["rows_rejected"]:
        quarantined = load_rejected_rows(transform_rejected_rows(final, lines, offsets),
                                         f"{quarantine}/rows")
        # The raw lines come from a second scan: it must find every one.
        if quarantined != report["rows_rejected"]:
            raise RuntimeError(
                f"quarantined {quarantined} rows of {report['rows_rejected']} rejected: "
                f"the second scan of {layout.landing(DATASET, ds)} did not match the first")
    if rejected_files:
        write_text(spark, f"{quarantine}/files.json", json.dumps(rejected_files, indent=2))
    write_text(spark, f"{staging}/quality.json", json.dumps(report, indent=2))
    if on_clean_rows and report["rows_clean"]:
        on_clean_rows(clean)
    return report


def ids_may_repeat(rows: DataFrame, clean_rows: int) -> bool:
    """False when an exact count proves every clean id distinct.

    ``clean_rows``: how many clean rows the line counts found; fewer distinct
    ids than that (for any reason) sends the date to the group-by of
    ``transform_repeated_ids``, which finds the repeats.
    """
    if not clean_rows:
        return False
    (ids,) = transform_id_counts(rows).collect()
    return ids.distinct_ids < clean_rows


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    spark = build_spark_session(f"students-{args.ds}")
    try:
        # Statistics in the same session, from the rows still in memory: one
        # Spark start-up and no re-read. Nothing is published here: the
        # DAG's quality gate decides whether these tables are.
        staging = DataLayout(args.data_dir).staging(DATASET, args.ds)
        report = run_clean(spark, args.ds, args.data_dir,
                           on_clean_rows=lambda clean: run_statistics(clean, staging))
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
