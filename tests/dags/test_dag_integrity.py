"""Every DAG imports, parses fast and states its owner, tags and retries."""

from __future__ import annotations

import pytest
from dataplatform.dag_parse import measure_in_fresh_interpreter
from dataplatform.settings import REPO_ROOT

DAGS_FOLDER = REPO_ROOT / "dags"
NIGHTLY_DAGS = {"students_nightly", "zte_tad_training"}
# zte_tad_scaling is run by hand; platform_metrics runs when a pipeline publishes.
PLATFORM_DAGS = NIGHTLY_DAGS | {"zte_tad_scaling", "platform_metrics"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert PLATFORM_DAGS <= set(dagbag.dag_ids)


def test_dags_folder_parses_in_well_under_a_second():
    stats = measure_in_fresh_interpreter(DAGS_FOLDER)
    assert stats["import_errors"] == {}
    print(f"dags folder parse: {stats['wall']:.3f}s, per file {stats['files']}")
    assert stats["wall"] < 1.0, stats


@pytest.mark.parametrize("dag_id", sorted(PLATFORM_DAGS))
def test_dag_states_owner_tags_retries_and_docs(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags, "tags let users filter the DAG list"
    assert dag.doc_md and dag.doc_md.strip().startswith("###")
    assert "retries" in dag.default_args and "owner" in dag.default_args
    assert dag.catchup is False
    assert dag.start_date is not None
    assert (dag.schedule == "@daily") == (dag_id in NIGHTLY_DAGS)
    for task in dag.tasks:
        assert task.owner == "data-platform", task.task_id


def test_nightly_dags_alert_on_failure_and_on_a_missed_deadline(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from dataplatform.alerts import on_task_failure

    # The tests' environment turns deadlines off, as for every `airflow dags test`.
    monkeypatch.setenv("PLATFORM_RUN_DEADLINE_SECONDS", "3600")
    dagbag = DagBag(dag_folder=str(DAGS_FOLDER))
    for dag_id in sorted(NIGHTLY_DAGS):
        dag = dagbag.dags[dag_id]
        for task in dag.tasks:
            assert on_task_failure in task.on_failure_callback, (dag_id, task.task_id)
        (deadline,) = dag.deadline
        assert deadline.interval.total_seconds() == 3600
        assert deadline.callback.path == "dataplatform.alerts.on_deadline_missed"


def test_dag_file_name_is_the_dag_id(dagbag):
    for dag_id in PLATFORM_DAGS:
        assert dagbag.dags[dag_id].fileloc == str(DAGS_FOLDER / f"{dag_id}.py")


def test_students_nightly_shape(dagbag):
    dag = dagbag.dags["students_nightly"]
    assert {task.task_id: sorted(task.downstream_task_ids) for task in dag.tasks} == {
        "resolve_partition": ["clean_and_compute_statistics", "publish", "quality_gate"],
        "clean_and_compute_statistics": ["quality_gate"],
        "quality_gate": ["publish"],
        "publish": [],
    }
    assert {asset.name for asset in dag.get_task("publish").outlets} == {
        "students_score_summary", "students_by_grade", "students_by_programa",
        "students_awards_correlation", "data_quality", "data_quality_rejections"}
    clean = dag.get_task("clean_and_compute_statistics")
    assert clean.task_type == "SparkSubmitOperator"
    assert clean.application.endswith("spark_apps/students/clean.py")


def test_zte_tad_scaling_trains_one_executor_count_after_the_other(dagbag):
    dag = dagbag.dags["zte_tad_scaling"]
    trainings = [t for t in dag.tasks if t.task_id.startswith("train_with_")]
    assert [t.task_id for t in trainings] == [
        f"train_with_{n}_executors" for n in range(1, len(trainings) + 1)]
    for earlier, later in zip(trainings, trainings[1:], strict=False):
        # each later run waits for the one before it, through its skip switch
        (switch,) = later.upstream_task_ids - {"resolve_partition"}
        assert dag.get_task(switch).upstream_task_ids == {earlier.task_id}
    publish = dag.get_task("publish")
    assert {t.task_id for t in trainings} <= publish.upstream_task_ids
    assert publish.trigger_rule == "none_failed_min_one_success"
    assert dag.params["max_executors"] == 2


def test_platform_metrics_runs_on_what_both_pipelines_publish(dagbag):
    from airflow.sdk import Asset

    (asset,) = dagbag.dags["platform_metrics"].schedule
    assert isinstance(asset, Asset) and asset.name == "data_quality"
    for dag_id in NIGHTLY_DAGS:
        dag = dagbag.dags[dag_id]
        assert asset in dag.get_task("publish").outlets, dag_id
        # every task's duration goes into the run's metrics
        assert all(task.on_success_callback for task in dag.tasks), dag_id
