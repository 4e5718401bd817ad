"""The scheduler settings every deployment of the platform carries."""

from __future__ import annotations

import importlib

from dataplatform.local_airflow import SCHEDULER_SETTINGS, local_airflow_env


def test_every_module_the_forkserver_preloads_imports():
    # The forkserver skips a module that fails with ImportError, silently: a
    # misspelt or renamed one would cost every task its import again, unseen.
    modules = SCHEDULER_SETTINGS["AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"].split(",")
    for module in modules:
        importlib.import_module(module)
    assert "airflow.providers.apache.spark.operators.spark_submit" in modules


def test_embedded_defaults_carry_them_unless_the_environment_says_otherwise(tmp_path):
    env = local_airflow_env(tmp_path, base={})
    assert {name: env[name] for name in SCHEDULER_SETTINGS} == SCHEDULER_SETTINGS
    chosen = local_airflow_env(tmp_path, base={"AIRFLOW__SCHEDULER__MP_START_METHOD": "fork"})
    assert chosen["AIRFLOW__SCHEDULER__MP_START_METHOD"] == "fork"
