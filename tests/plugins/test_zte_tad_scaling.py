"""The scaling table's rules: cluster runners only, and no mislabelled timing."""

from __future__ import annotations

import pytest
from dataplatform.settings import PlatformSettings
from dataplatform.zte_tad import check_scaling_runner, scaling_row

EVALUATION = {
    "model_version": "scaling-2x", "executors": 2, "job_seconds": 31.5,
    "splits": {"random": {"f1": 0.99, "train_seconds": 4.0},
               "holdout_capture": {"f1": 0.91, "train_seconds": 6.25}},
}


def test_row_takes_the_held_out_fit_and_the_whole_job_time():
    assert scaling_row(EVALUATION, 2) == {"executors": 2, "train_seconds": 6.25,
                                          "total_seconds": 31.5, "f1": 0.91}


def test_a_run_with_fewer_executors_than_asked_is_refused():
    with pytest.raises(ValueError, match="asked for 3 executors, 2 registered"):
        scaling_row(EVALUATION, 3)


@pytest.mark.parametrize("runner", ["local", "docker"])
def test_one_jvm_runners_are_refused_with_the_way_out(runner):
    settings = PlatformSettings.from_env({"PLATFORM_SPARK_RUNNER": runner})
    with pytest.raises(ValueError, match="make spark-up"):
        check_scaling_runner(settings)


@pytest.mark.parametrize("runner", ["standalone", "yarn", "k8s_pod", "spark_operator"])
def test_cluster_runners_are_accepted(runner):
    check_scaling_runner(PlatformSettings.from_env({"PLATFORM_SPARK_RUNNER": runner}))
