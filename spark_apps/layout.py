"""Where data lands and is published: the paths of ``contracts.md``, in one place.

Used by the Spark jobs and by the Airflow-side publisher alike, so both agree on
every folder. Plain string paths (``file:`` or cluster URIs pass through).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


def validate_ds(ds: str) -> str:
    """Return ``ds`` if it is an ISO date (YYYY-MM-DD), else raise ValueError."""
    try:
        parsed = dt.date.fromisoformat(ds)
    except (TypeError, ValueError):
        raise ValueError(f"partition date must be YYYY-MM-DD, got {ds!r}") from None
    if parsed.isoformat() != ds:
        raise ValueError(f"partition date must be YYYY-MM-DD, got {ds!r}")
    return ds


@dataclass(frozen=True)
class DataLayout:
    """Folders under the data root (``PLATFORM_DATA_DIR``)."""

    root: str

    def landing(self, dataset: str, ds: str) -> str:
        return f"{self.root}/landing/{dataset}/ds={validate_ds(ds)}"

    def quarantine(self, dataset: str, ds: str) -> str:
        return f"{self.root}/quarantine/{dataset}/ds={validate_ds(ds)}"

    def staging(self, dataset: str, ds: str) -> str:
        """Job outputs not yet published: only the publish step reads them."""
        return f"{self.root}/staging/{dataset}/ds={validate_ds(ds)}"

    def warehouse_table(self, table: str) -> str:
        """A table's root; its partitions are ``ds=...`` folders (see publish)."""
        return f"{self.root}/warehouse/{table}"

    def models(self, dataset: str) -> str:
        return f"{self.root}/models/{dataset}"

    def task_durations(self, dataset: str, ds: str) -> str:
        """What each task of a date's run took (dataplatform.metrics). Not under
        staging/: the Spark jobs clear the date's staging folder when they start."""
        return f"{self.root}/metrics/task_durations/{dataset}/ds={validate_ds(ds)}"
