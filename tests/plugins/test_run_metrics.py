"""Run metrics: read from what was published, stored, and pushed to a real Prometheus."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
import sqlalchemy as sa
from dataplatform.metrics import (
    METRICS,
    NothingPublished,
    Sample,
    collect_samples,
    partitions_from_events,
    partitions_to_refresh,
    push_samples,
    read_task_durations,
    record_task_duration,
    refresh_metrics,
)
from dataplatform.settings import PlatformSettings
from sample_tables import DS, VERSION, publish_traffic_date


@pytest.fixture
def settings(tmp_path) -> PlatformSettings:
    return PlatformSettings.from_env({"PLATFORM_DATA_DIR": str(tmp_path)})


def by_name(samples) -> dict[tuple, float]:
    return {(s.name, s.labels): s.value for s in samples}


def test_samples_are_the_published_numbers(settings):
    publish_traffic_date(settings)
    started = dt.datetime(2026, 3, 5, 1, 0, tzinfo=dt.UTC)
    record_task_duration(settings.data_dir, "zte_tad", DS, dag_id="zte_tad_training",
                         task_id="train_traffic", try_number=1, started=started,
                         finished=started + dt.timedelta(seconds=42.5))
    engine = sa.create_engine(settings.warehouse_url)
    with engine.connect() as connection:
        samples = by_name(collect_samples(connection, "zte_tad", DS, read_task_durations(
            settings.data_dir, "zte_tad", DS)))
    engine.dispose()
    assert samples[("dataplatform_rows_in", ())] == 100
    assert samples[("dataplatform_rows_clean", ())] == 94
    assert samples[("dataplatform_rows_rejected", ())] == 6
    assert samples[("dataplatform_files_rejected", ())] == 1
    assert samples[("dataplatform_rows_rejected_by_reason", (("reason", "missing_column"),))] == 2
    held_out = (("model_version", VERSION), ("split", "holdout_capture"))
    assert samples[("dataplatform_model_f1", held_out)] == pytest.approx(0.6)
    assert samples[("dataplatform_model_accuracy", held_out)] == pytest.approx(0.61)
    assert samples[("dataplatform_model_promoted", (("model_version", VERSION),))] == 1
    assert samples[("dataplatform_task_duration_seconds",
                    (("dag_id", "zte_tad_training"), ("task_id", "train_traffic")))] == 42.5
    assert {name for name, _ in samples} <= set(METRICS)


def test_a_date_with_nothing_published_says_so(settings):
    publish_traffic_date(settings)
    engine = sa.create_engine(settings.warehouse_url)
    with engine.connect() as connection, pytest.raises(NothingPublished, match="students"):
        collect_samples(connection, "students", DS, [])
    engine.dispose()


def test_a_rerun_task_keeps_its_latest_try(settings):
    started = dt.datetime(2026, 3, 5, 1, 0, tzinfo=dt.UTC)
    for try_number, seconds in ((1, 10.0), (2, 3.0)):
        record_task_duration(settings.data_dir, "students", DS, dag_id="students_nightly",
                             task_id="publish", try_number=try_number, started=started,
                             finished=started + dt.timedelta(seconds=seconds))
    (record,) = read_task_durations(settings.data_dir, "students", DS)
    assert (record["try_number"], record["seconds"]) == (2, 3.0)


def test_events_name_each_partition_once_and_hand_made_events_are_skipped(caplog):
    extras = [{"dataset": dataset, "ds": ds} for dataset, ds in (
        ("students", "2026-01-02"), ("zte_tad", "2026-01-02"), ("students", "2026-01-02"),
        ("students", "2026-01-03"))]
    # As "Create asset event" in the UI makes them: no extra, or not ours.
    extras[2:2] = [{}, {"dataset": "students", "ds": "01/02/2026"}, {"ds": "2026-01-02"}]
    assert partitions_from_events(extras) == [
        ("students", "2026-01-02"), ("zte_tad", "2026-01-02"), ("students", "2026-01-03")]
    assert caplog.text.count("skipping an asset event") == 3


def test_what_a_metrics_run_refreshes(settings):
    publish_traffic_date(settings)
    events = [{"dataset": "zte_tad", "ds": DS}]
    assert partitions_to_refresh(settings, events, None, None) == [("zte_tad", DS)]
    with pytest.raises(NothingPublished, match="none of the 1 asset events"):
        partitions_to_refresh(settings, [{}], None, None)
    # Manual runs: every dataset published on the date, or the one asked for.
    assert partitions_to_refresh(settings, [], DS, None) == [("zte_tad", DS)]
    assert partitions_to_refresh(settings, [], DS, "students") == [("students", DS)]
    with pytest.raises(NothingPublished, match="nothing published for 2026-01-01"):
        partitions_to_refresh(settings, [], "2026-01-01", None)


def test_an_undefined_figure_is_nan():
    assert math.isnan(Sample.of("dataplatform_model_f1", None, model_version="v",
                                split="random").value)


def test_refreshing_twice_stores_one_slice(settings):
    publish_traffic_date(settings)
    refresh_metrics(settings, [("zte_tad", DS)], gateway_url=None)
    refresh_metrics(settings, [("zte_tad", DS)], gateway_url=None)
    engine = sa.create_engine(settings.warehouse_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT metric, labels, value FROM pipeline_metrics WHERE ds = :ds "
            "AND dataset = 'zte_tad'"), {"ds": DS}).all()
    engine.dispose()
    names = [metric for metric, _, _ in rows]
    assert names.count("dataplatform_rows_in") == 1
    f1 = {json.loads(labels)["split"]: value for metric, labels, value in rows
          if metric == "dataplatform_model_f1"}
    assert f1 == pytest.approx({"random": 0.9, "holdout_capture": 0.6})


def test_pushed_metrics_answer_promql(settings, prometheus):
    publish_traffic_date(settings)
    publish_traffic_date(settings, "2026-03-05")
    refresh_metrics(settings, [("zte_tad", DS), ("zte_tad", "2026-03-05")],
                    prometheus.pushgateway.url)
    # (The Prometheus is shared: other tests' dates are there too.)
    f1 = prometheus.wait_for(
        f'dataplatform_model_f1{{split="holdout_capture",model_version="{VERSION}"}}', count=2)
    assert {(s["metric"]["dataset"], s["metric"]["ds"], s["metric"]["model_version"],
             float(s["value"][1])) for s in f1} == {
        ("zte_tad", DS, VERSION, 0.6), ("zte_tad", "2026-03-05", VERSION, 0.6)}
    # A rerun replaces its date's group: a series it no longer has goes away.
    engine = sa.create_engine(settings.warehouse_url)
    with engine.connect() as connection:
        samples = [s for s in collect_samples(connection, "zte_tad", DS, [])
                   if s.name != "dataplatform_rows_rejected_by_reason"]
    engine.dispose()
    push_samples(prometheus.pushgateway.url, "zte_tad", DS, samples)
    gateway_text = _get(f"{prometheus.pushgateway.url}/metrics")
    assert f'dataplatform_rows_rejected_by_reason{{dataset="zte_tad",ds="{DS}"' not in gateway_text
    assert 'dataplatform_rows_rejected_by_reason{dataset="zte_tad",ds="2026-03-05"' in gateway_text


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()
