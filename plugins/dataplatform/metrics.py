"""Run metrics: what a pipeline run did, for Prometheus and the serving database.

The numbers come from what was published (``data_quality``,
``data_quality_rejections``, ``traffic_model_metrics``) and from the durations
the pipeline's tasks record when they succeed, so a dashboard never shows a
figure the tables do not hold. ``platform_metrics`` (an asset-scheduled DAG)
stores them as the ``pipeline_metrics`` table and, when
``PLATFORM_PUSHGATEWAY_URL`` is set, pushes them to a Prometheus Pushgateway.

In Prometheus every series carries ``dataset`` and ``ds`` (the Pushgateway
grouping key, one group per dataset and date): pushing a date again replaces
its group, so a rerun or a backfill never leaves two values for one date.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from spark_apps.layout import DataLayout

log = logging.getLogger(__name__)

PUSH_JOB = "dataplatform"
DATASETS = ("students", "zte_tad")

# Every metric the platform exports: name -> (help, label names besides
# dataset and ds). Dashboards may only query these (tests/infra checks it).
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dataplatform_rows_in": ("Input rows of the date.", ()),
    "dataplatform_rows_clean": ("Rows that passed every check.", ()),
    "dataplatform_rows_rejected": ("Rows quarantined with a reason.", ()),
    "dataplatform_files_in": ("Input files of the date.", ()),
    "dataplatform_files_rejected": ("Input files quarantined whole.", ()),
    "dataplatform_rows_rejected_by_reason": ("Quarantined rows per reason.", ("reason",)),
    "dataplatform_task_duration_seconds": (
        "Wall time of a successful task try of the pipeline.", ("dag_id", "task_id")),
    "dataplatform_model_accuracy": ("Accuracy of a trained model on a split.",
                                    ("model_version", "split")),
    "dataplatform_model_f1": ("Weighted F1 of a trained model on a split.",
                              ("model_version", "split")),
    "dataplatform_model_weighted_precision": ("Weighted precision on a split.",
                                              ("model_version", "split")),
    "dataplatform_model_weighted_recall": ("Weighted recall on a split.",
                                           ("model_version", "split")),
    "dataplatform_model_train_seconds": ("Time the fit took on a split's training rows.",
                                         ("model_version", "split")),
    "dataplatform_model_promoted": ("1 when the model became the current one, else 0.",
                                    ("model_version",)),
    "dataplatform_metrics_refreshed_timestamp_seconds": (
        "When these metrics were last computed (Unix time).", ()),
}

_QUALITY_COUNTS = ("rows_in", "rows_clean", "rows_rejected", "files_in", "files_rejected")
_MODEL_FIGURES = ("accuracy", "f1", "weighted_precision", "weighted_recall", "train_seconds")


class NothingPublished(LookupError):
    """No published rows for a dataset and date: there is nothing to measure."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]  # besides dataset and ds, sorted
    value: float

    @classmethod
    def of(cls, name: str, value: float | None, **labels: str) -> Sample:
        expected = METRICS[name][1]
        if tuple(sorted(labels)) != tuple(sorted(expected)):
            raise ValueError(f"{name} takes labels {expected}, got {sorted(labels)}")
        # A NULL in a published table (an undefined figure) is NaN for Prometheus.
        return cls(name, tuple(sorted(labels.items())),
                   float("nan") if value is None else float(value))


# --- task durations -----------------------------------------------------------


def task_durations_dir(data_dir: Path | str, dataset: str, ds: str) -> Path:
    return Path(DataLayout(str(data_dir)).task_durations(dataset, ds))


def record_task_duration(data_dir: Path | str, dataset: str, ds: str, *, dag_id: str,
                         task_id: str, try_number: int, started: dt.datetime,
                         finished: dt.datetime) -> Path:
    """Keep one successful try's wall time; a rerun of the task replaces it."""
    folder = task_durations_dir(data_dir, dataset, ds)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{dag_id}.{task_id}.json"
    staged = folder / f".{target.name}.{os.getpid()}"
    staged.write_text(json.dumps({
        "dag_id": dag_id, "task_id": task_id, "try_number": try_number,
        "started": started.isoformat(), "finished": finished.isoformat(),
        "seconds": (finished - started).total_seconds()}))
    os.replace(staged, target)
    return target


def record_this_task(data_dir: Path | str, dataset: str, context) -> None:
    """Record the running (or just finished) task's duration for its ``ds``."""
    from dataplatform.partition import partition_date_from_context

    ti = context["ti"]
    if ti.start_date is None:  # nothing to measure from
        return
    record_task_duration(
        data_dir, dataset, partition_date_from_context(context), dag_id=ti.dag_id,
        task_id=ti.task_id, try_number=ti.try_number, started=ti.start_date,
        finished=getattr(ti, "end_date", None) or dt.datetime.now(dt.UTC))


def task_duration_callback(data_dir: Path | str, dataset: str):
    """An ``on_success_callback`` recording each task's duration for its ``ds``.

    Airflow runs it after the task's asset events are sent, so a task that
    publishes also calls ``record_this_task`` itself before it returns: the
    metrics run its events trigger then finds its duration.
    """
    return lambda context: record_this_task(data_dir, dataset, context)


def read_task_durations(data_dir: Path | str, dataset: str, ds: str) -> list[dict]:
    folder = task_durations_dir(data_dir, dataset, ds)
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


# --- what a date's published rows say ---------------------------------------------


def collect_samples(connection, dataset: str, ds: str,
                    task_durations: Iterable[Mapping]) -> list[Sample]:
    """The metrics of one dataset and date, read from the serving database."""
    import sqlalchemy as sa

    day = dt.date.fromisoformat(ds)

    def select(sql: str) -> list[Mapping]:
        return [row._mapping for row in
                connection.execute(sa.text(sql), {"ds": day, "dataset": dataset})]

    quality = select("SELECT * FROM data_quality WHERE ds = :ds AND dataset = :dataset")
    if not quality:
        raise NothingPublished(f"nothing published for {dataset} on {ds}: no data_quality row")
    samples = [Sample.of(f"dataplatform_{key}", quality[0][key]) for key in _QUALITY_COUNTS]
    samples += [Sample.of("dataplatform_rows_rejected_by_reason", row["rows"],
                          reason=row["reason"])
                for row in select("SELECT reason, rows FROM data_quality_rejections "
                                  "WHERE ds = :ds AND dataset = :dataset ORDER BY reason")]
    if dataset == "zte_tad":
        promoted: dict[str, bool] = {}
        for row in select("SELECT * FROM traffic_model_metrics WHERE ds = :ds "
                          "ORDER BY model_version, split"):
            version = row["model_version"]
            samples += [Sample.of(f"dataplatform_model_{figure}", row[figure],
                                  model_version=version, split=row["split"])
                        for figure in _MODEL_FIGURES]
            promoted[version] = promoted.get(version, False) or bool(row["promoted"])
        samples += [Sample.of("dataplatform_model_promoted", int(flag), model_version=version)
                    for version, flag in promoted.items()]
    samples += [Sample.of("dataplatform_task_duration_seconds", record["seconds"],
                          dag_id=record["dag_id"], task_id=record["task_id"])
                for record in task_durations]
    samples.append(Sample.of("dataplatform_metrics_refreshed_timestamp_seconds",
                             dt.datetime.now(dt.UTC).timestamp()))
    return samples


def metrics_table(samples: Iterable[Sample]):
    """The ``pipeline_metrics`` rows of one slice (without ds and dataset)."""
    import pyarrow as pa

    samples = list(samples)
    return pa.table({
        "metric": pa.array([s.name for s in samples], pa.string()),
        "labels": pa.array([json.dumps(dict(s.labels), sort_keys=True) for s in samples],
                           pa.string()),
        "value": pa.array([s.value for s in samples], pa.float64()),
    })


def push_samples(gateway_url: str, dataset: str, ds: str, samples: Iterable[Sample]) -> None:
    """Replace the (dataset, ds) group on the Pushgateway with ``samples``."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    gauges: dict[str, Gauge] = {}
    for sample in samples:
        if sample.name not in gauges:
            help_text, label_names = METRICS[sample.name]
            gauges[sample.name] = Gauge(sample.name, help_text, labelnames=label_names,
                                        registry=registry)
        gauge = gauges[sample.name]
        (gauge.labels(**dict(sample.labels)) if sample.labels else gauge).set(sample.value)
    # PUT: the whole group is replaced, so a series the rerun no longer has goes.
    push_to_gateway(gateway_url, job=PUSH_JOB, registry=registry, timeout=30,
                    grouping_key={"dataset": dataset, "ds": ds})


# --- which dates a metrics run refreshes ------------------------------------------


def partitions_from_events(extras: Iterable[Mapping]) -> list[tuple[str, str]]:
    """(dataset, ds) pairs named by the triggering asset events, each once, in order.

    An event that names none (one created by hand in the UI or the REST API) is
    skipped with a warning: it must not stop the refresh of the others.
    """
    from spark_apps.layout import validate_ds

    found: list[tuple[str, str]] = []
    for extra in extras:
        dataset, ds = extra.get("dataset"), extra.get("ds")
        try:
            pair = (dataset, validate_ds(ds)) if dataset in DATASETS else None
        except (TypeError, ValueError):
            pair = None
        if pair is None:
            log.warning("skipping an asset event that names no dataset and ds: %s", extra)
        elif pair not in found:
            found.append(pair)
    return found


def partitions_to_refresh(settings, event_extras: list[Mapping], ds: str | None,
                          dataset: str | None) -> list[tuple[str, str]]:
    """What a platform_metrics run refreshes: the dates its asset events name, else
    (a manual run, ``ds`` given) ``dataset`` or every dataset published on ``ds``."""
    if event_extras:
        partitions = partitions_from_events(event_extras)
        if not partitions:
            raise NothingPublished(f"none of the {len(event_extras)} asset events names a "
                                   f"dataset and ds: {event_extras}")
        return partitions
    datasets = [dataset] if dataset else published_datasets(settings, ds)
    if not datasets:
        raise NothingPublished(f"nothing published for {ds}: no data_quality row to measure")
    return [(name, ds) for name in datasets]


def refresh_metrics(settings, partitions: Iterable[tuple[str, str]],
                    gateway_url: str | None) -> dict[str, int]:
    """Store (and push) the metrics of each (dataset, ds); returns samples per slice."""
    from dataplatform.publish import publish_slice, serving_engine

    refreshed: dict[str, int] = {}
    for dataset, ds in partitions:
        engine = serving_engine(settings.warehouse_url)
        try:
            with engine.connect() as connection:
                samples = collect_samples(connection, dataset, ds, read_task_durations(
                    settings.data_dir, dataset, ds))
        finally:
            engine.dispose()
        publish_slice(settings.data_dir, settings.warehouse_url,
                      {"ds": ds, "dataset": dataset}, {"pipeline_metrics": metrics_table(samples)})
        if gateway_url:
            push_samples(gateway_url, dataset, ds, samples)
            log.info("pushed %d samples of %s %s to %s", len(samples), dataset, ds, gateway_url)
        refreshed[f"{dataset}/{ds}"] = len(samples)
    return refreshed


def published_datasets(settings, ds: str) -> list[str]:
    """Datasets with a data_quality row for ``ds`` in the serving database."""
    import sqlalchemy as sa

    from dataplatform.publish import serving_engine

    engine = serving_engine(settings.warehouse_url)
    try:
        if not sa.inspect(engine).has_table("data_quality"):
            return []
        with engine.connect() as connection:
            return sorted(row[0] for row in connection.execute(
                sa.text("SELECT DISTINCT dataset FROM data_quality WHERE ds = :ds"),
                {"ds": dt.date.fromisoformat(ds)}))
    finally:
        engine.dispose()
