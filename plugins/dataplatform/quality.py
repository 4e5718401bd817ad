"""The quality report of a date's ingest, its gate, and its published rows.

Both pipelines' ingest jobs write ``staging/<dataset>/ds=<ds>/quality.json``
with ``rows_in = rows_clean + rows_rejected`` and rows per reason.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from dataplatform.settings import PlatformSettings


class QualityGateError(RuntimeError):
    """The date's input is too broken to publish anything computed from it."""


def read_quality_report(settings: PlatformSettings, dataset: str, ds: str) -> dict:
    path = Path(settings.layout.staging(dataset, ds)) / "quality.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise QualityGateError(f"no quality report at {path}: did the ingest run?") from None


def check_quality_gate(report: dict, max_reject_share: float, quarantine: str) -> str:
    """Raise QualityGateError unless the clean rows can be trusted; else a summary."""
    dataset, ds = report["dataset"], report["ds"]
    rows_in, rejected = report["rows_in"], report["rows_rejected"]
    top = ", ".join(f"{reason}: {n}" for reason, n in sorted(
        report["rejections"].items(), key=lambda item: -item[1])[:5])
    where = f"rejected rows and reasons are in {quarantine}"
    if report["rows_clean"] == 0:
        raise QualityGateError(
            f"{dataset} {ds}: no clean rows out of {rows_in} "
            f"(files rejected: {report['files_rejected']}; {top or 'no rows at all'}); "
            f"nothing published; {where}")
    share = rejected / rows_in
    if share > max_reject_share:
        raise QualityGateError(
            f"{dataset} {ds}: {share:.1%} of rows rejected ({rejected} of {rows_in}), "
            f"above the {max_reject_share:.0%} gate; top reasons: {top}; nothing published; "
            f"{where}")
    return (f"{dataset} {ds}: {report['rows_clean']} clean of {rows_in} rows "
            f"({share:.1%} rejected, gate {max_reject_share:.0%})")


def quality_gate(settings: PlatformSettings, dataset: str, ds: str,
                 max_reject_share: float) -> dict:
    report = read_quality_report(settings, dataset, ds)
    logging.getLogger(__name__).info(check_quality_gate(
        report, max_reject_share, settings.layout.quarantine(dataset, ds)))
    return {key: report[key] for key in ("rows_in", "rows_clean", "rows_rejected")}


def quality_tables(report: dict):
    """data_quality and data_quality_rejections rows of one report (no keys)."""
    import pyarrow as pa

    counts = ("rows_in", "rows_clean", "rows_rejected", "files_in", "files_rejected")
    reasons = sorted(report["rejections"].items())
    return {
        "data_quality": pa.table({key: [report[key]] for key in counts}),
        "data_quality_rejections": pa.table({
            "reason": pa.array([reason for reason, _ in reasons], pa.string()),
            "rows": pa.array([n for _, n in reasons], pa.int64()),
        }),
    }
