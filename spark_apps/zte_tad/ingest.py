"""Ingest and validate one date of ZTE_TAD packet parquet.

Reads   landing/zte_tad/ds=<ds>/<Category>/*.parquet   (the folder is the label)
Writes  staging/zte_tad/ds=<ds>/packets/        clean packets + capture_id, category and
                                                row_index (0-based) in their file
        staging/zte_tad/ds=<ds>/quality.json    accounting and reasons
        quarantine/zte_tad/ds=<ds>/files.json   files that could not be used, and why
        quarantine/zte_tad/ds=<ds>/rows/        rejected packets with their reason
                                                and row_index (0-based) in their file

A file is one capture session. A file that cannot be read, lacks a feature
column, is not directly in a category folder or repeats another file byte
for byte is quarantined with its reason and the rest of the date goes on.
Any ``CLASS`` column is ignored: the label is the category folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from spark_apps.hadoop_fs import list_file_tree, local_path, remove_path, write_text
from spark_apps.layout import DataLayout, validate_ds
from spark_apps.session import build_spark_session
from spark_apps.zte_tad.contract import (
    FEATURE_COLUMNS,
    PACKET_SCHEMA,
    RANGES,
    REJECTION_REASONS,
    name_clash,
    schema_problem,
)

DATASET = "zte_tad"


class LandingError(ValueError):
    """Nothing usable landed for the date."""


class ReadMismatch(RuntimeError):
    """Two reads of the date's files disagreed: one changed, or a read failed."""


class Capture(NamedTuple):
    path: str
    file_uri: str  # as Spark names the file: its encoded URI ("Health%20Fitness")
    capture_id: str  # <Category>/<file name>
    category: str
    rows: int  # as its footer declares


def inspect_file(path: str) -> tuple[int | None, str | None]:
    """``(rows, None)`` for a usable file, ``(None, reason)`` otherwise.

    Reads only the footer: a truncated file has none, a wrong one says so.
    """
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(local_path(path)).metadata
        schema = metadata.schema.to_arrow_schema()
    except Exception as error:  # noqa: BLE001 - any unreadable file is quarantined
        return None, f"unreadable parquet: {type(error).__name__}: {error}"
    problem = (name_clash(schema.names)
               or schema_problem({field.name: str(field.type) for field in schema}))
    return (None, problem) if problem else (metadata.num_rows, None)


def later_copies(files: Sequence[str]) -> dict[str, str]:
    """``{path: earlier path}`` for each file whose bytes an earlier file has.

    A capture landed twice would count its packets twice, and could sit on both
    sides of the held-out split. Only files of equal size are hashed.
    """
    by_size: dict[int, list[str]] = {}
    for path in files:
        by_size.setdefault(os.path.getsize(local_path(path)), []).append(path)
    copies = {}
    for paths in by_size.values():
        if len(paths) < 2:
            continue
        first_by_digest: dict[str, str] = {}
        for path in paths:
            with open(local_path(path), "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            if digest in first_by_digest:
                copies[path] = first_by_digest[digest]
            else:
                first_by_digest[digest] = path
    return copies


def extract_packets(spark: SparkSession, files: Sequence[str]) -> DataFrame:
    # A file whose footer reads but whose pages do not would otherwise fail the
    # whole date; its scan stops early instead, and the footer's row count
    # (see run_ingest) quarantines it.
    return spark.read.schema(PACKET_SCHEMA).option("ignoreCorruptFiles", "true").parquet(
        *files).select(F.col("_metadata.file_path").alias("file_uri"),
                       F.col("_metadata.row_index").alias("row_index"), *FEATURE_COLUMNS)


def transform_label(packets: DataFrame, captures: DataFrame) -> DataFrame:
    """Attach ``capture_id`` and ``category`` (the folder) to every packet."""
    return packets.join(F.broadcast(captures), "file_uri").select(
        "capture_id", "category", "row_index", *FEATURE_COLUMNS)


def transform_validate(packets: DataFrame) -> DataFrame:
    """Add ``reject_reason``: ``null_feature``, ``out_of_range`` or NULL."""
    any_null = F.lit(False)
    out_of_range = F.lit(False)
    for name in FEATURE_COLUMNS:
        low, high = RANGES[name]
        any_null = any_null | F.col(name).isNull()
        out_of_range = out_of_range | (F.col(name) < low) | (F.col(name) > high)
    reason = (F.when(any_null, F.lit("null_feature"))
              .when(out_of_range, F.lit("out_of_range"))
              .otherwise(F.lit(None).cast("string")))
    return packets.select("*", reason.alias("reject_reason"))


def quality_report(ds: str, files_in: int, rejected_files: Sequence[dict],
                   reason_counts: dict) -> dict:
    rejections = {r: n for r, n in sorted((r, n) for r, n in reason_counts.items() if r)}
    rows_clean = reason_counts.get(None, 0)
    rows_rejected = sum(rejections.values())
    return {"dataset": DATASET, "ds": ds, "files_in": files_in,
            "files_rejected": len(rejected_files), "rows_in": rows_clean + rows_rejected,
            "rows_clean": rows_clean, "rows_rejected": rows_rejected,
            "rejections": rejections, "rejected_files": list(rejected_files)}


def run_ingest(spark: SparkSession, ds: str, data_dir: str) -> dict:
    layout = DataLayout(data_dir)
    landing = layout.landing(DATASET, ds)
    staging, quarantine = layout.staging(DATASET, ds), layout.quarantine(DATASET, ds)
    remove_path(spark, staging)
    remove_path(spark, quarantine)

    root, listed = list_file_tree(spark, landing, "*.parquet")
    if not listed:
        raise LandingError(f"no capture files (<Category>/*.parquet) in {landing}")
    files_in = len(listed)
    rejected_files, usable = [], []
    for file in listed:
        if not file.path.startswith(f"{root}/"):
            raise ValueError(f"{file.path} was listed under {root}, but is not below it")
        *folders, name = file.path[len(root) + 1:].split("/")
        # A capture beside the category folders, or below one, has no label:
        # quarantined, not skipped.
        if len(folders) != 1:
            rejected_files.append({"file": local_path(file.path), "reason": (
                f"in {'/'.join(folders)}/, below its category folder: no label"
                if folders else "not in a <Category>/ folder: no label")})
            continue
        rows, problem = inspect_file(file.path)
        if problem:
            rejected_files.append({"file": local_path(file.path), "reason": problem})
        else:
            usable.append(Capture(file.path, file.file_uri, f"{folders[0]}/{name}",
                                  folders[0], rows))
    copies = later_copies([capture.path for capture in usable])
    rejected_files += [{"file": local_path(path),
                        "reason": f"same bytes as {local_path(first)}: a capture landed twice"}
                       for path, first in copies.items()]
    captures = [capture for capture in usable if capture.path not in copies]
    _check_captures_left(spark, captures, rejected_files, landing, quarantine)

    validated = transform_validate(transform_label(
        extract_packets(spark, [c.path for c in captures]), extract_capture_table(spark, captures)))
    packets_dir = f"{staging}/packets"
    try:
        # One pass over the packets when none is rejected: the clean write
        # counts what it reads. No cache: building one cost more than the scan.
        read = load_clean_packets(validated, packets_dir)
        kept = validated
        # A scan reads at most the rows its footer declares: equal totals
        # mean that every capture was read whole.
        if read["rows"] != sum(c.rows for c in captures):
            captures, corrupt_files, kept = _drop_captures_read_short(
                validated, captures, read["rows"])
            rejected_files += corrupt_files
            _check_captures_left(spark, captures, rejected_files, landing, quarantine)
            read = load_clean_packets(kept, packets_dir)
            _check_same_read("the captures read whole, written again",
                             sum(c.rows for c in captures), read["rows"])
        reason_counts = {None: read["clean"], **{
            reason: read[reason] for reason in REJECTION_REASONS if read[reason]}}
        report = quality_report(ds, files_in, rejected_files, reason_counts)
        if report["rows_rejected"]:
            rejected = load_rejected_packets(kept, f"{quarantine}/rows")
            _check_same_read("the rejected packets, quarantined",
                             report["rows_rejected"], rejected["rows"])
        write_text(spark, f"{staging}/quality.json", json.dumps(report, indent=2))
    except BaseException as error:
        # Nothing half-done stays visible: a refused or failed date stages no packets.
        for path in (packets_dir, f"{quarantine}/rows"):
            try:
                remove_path(spark, path)
            except Exception as cleanup:  # noqa: BLE001 - the first error is the one to see
                error.add_note(f"and {path} could not be removed: {cleanup}")
        raise
    return report


def extract_capture_table(spark: SparkSession, captures: Sequence[Capture]) -> DataFrame:
    """``file_uri, capture_id, category`` of each capture, built from Arrow in
    the JVM: a list of rows would start Python workers to convert it."""
    import pyarrow as pa

    columns = ("file_uri", "capture_id", "category")
    return spark.createDataFrame(pa.table(
        {name: [getattr(capture, name) for capture in captures] for name in columns},
        schema=pa.schema([(name, pa.string()) for name in columns])))


def _counted(packets: DataFrame) -> tuple[DataFrame, Observation]:
    """``packets`` counting, as an action reads them, rows and rows per reason."""
    counts = Observation()
    return packets.observe(
        counts, F.count(F.lit(1)).alias("rows"),
        F.count_if(F.col("reject_reason").isNull()).alias("clean"),
        *(F.count_if(F.col("reject_reason") == reason).alias(reason)
          for reason in REJECTION_REASONS)), counts


def load_clean_packets(validated: DataFrame, path: str) -> dict:
    """Write the clean packets; return the counts of all the packets read."""
    packets, counts = _counted(validated)
    packets.where(F.col("reject_reason").isNull()).select(
        "capture_id", "category", "row_index", *FEATURE_COLUMNS).write.mode(
        "overwrite").parquet(path)
    read = counts.get
    unknown = read["rows"] - read["clean"] - sum(read[r] for r in REJECTION_REASONS)
    if unknown:
        raise ValueError(f"{unknown} packets rejected for a reason outside "
                         f"{REJECTION_REASONS}: add it to the contract")
    return read


def load_rejected_packets(validated: DataFrame, path: str) -> dict:
    """Write the rejected packets with their reason; return the counts of those written."""
    rejected, counts = _counted(validated.where(F.col("reject_reason").isNotNull()))
    rejected.write.mode("overwrite").parquet(path)
    return counts.get


def _drop_captures_read_short(validated: DataFrame, captures: Sequence[Capture],
                              rows_read: int):
    """``(captures read whole, their quarantine entries, their packets)``.

    A scan that stops at a corrupt page reads fewer rows than the footer
    declares; a count per capture names those files. It stops at the same
    page in every scan, so this count must read as many rows as the first.
    """
    per_capture: dict[str, int] = {}
    # Grouped by reason as well, so that the scan decodes every feature's pages:
    # a count of rows alone reads no page and so finds none corrupt.
    for row in validated.groupBy("capture_id", "reject_reason").count().collect():
        per_capture[row.capture_id] = per_capture.get(row.capture_id, 0) + row["count"]
    _check_same_read("the packets, counted per capture", rows_read, sum(per_capture.values()))
    short = [c for c in captures if per_capture.get(c.capture_id, 0) != c.rows]
    corrupt_files = [{"file": local_path(c.path),
                      "reason": f"corrupt parquet: {per_capture.get(c.capture_id, 0)} of the "
                                f"footer's {c.rows} rows could be read"} for c in short]
    short_ids = [c.capture_id for c in short]
    return ([c for c in captures if c.capture_id not in short_ids], corrupt_files,
            validated.where(~F.col("capture_id").isin(short_ids)))


def _check_same_read(what: str, expected: int, read: int) -> None:
    if read != expected:
        raise ReadMismatch(f"{what}: {read} rows read where {expected} were expected from the "
                           "first pass over the same files; a landing file changed or failed "
                           "to read during the ingest. Run it again.")


def _check_captures_left(spark: SparkSession, captures: Sequence, rejected_files: list[dict],
                         landing: str, quarantine: str) -> None:
    """Record the quarantined files; raise LandingError when no capture is left."""
    if rejected_files:
        write_text(spark, f"{quarantine}/files.json", json.dumps(rejected_files, indent=2))
    if not captures:
        named = "; ".join(f"{f['file']}: {f['reason']}" for f in rejected_files[:3])
        raise LandingError(f"all {len(rejected_files)} capture files in {landing} were "
                           f"quarantined: {named} (see {quarantine}/files.json)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, type=validate_ds, help="partition date")
    parser.add_argument("--data-dir", required=True, help="data root (PLATFORM_DATA_DIR)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    spark = build_spark_session(f"zte-tad-ingest-{args.ds}")
    try:
        report = run_ingest(spark, args.ds, args.data_dir)
    except LandingError as error:
        raise SystemExit(f"traffic landing rejected, nothing published: {error}") from None
    finally:
        spark.stop()
    summary = {k: report[k] for k in ("files_in", "files_rejected", "rows_in", "rows_clean",
                                      "rows_rejected")}
    print(f"zte_tad {args.ds}: {summary}; rejections {report['rejections']}", flush=True)
    for rejected in report["rejected_files"]:
        print(f"quarantined {rejected['file']}: {rejected['reason']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
