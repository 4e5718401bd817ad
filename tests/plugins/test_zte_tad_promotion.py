"""Model versions, the champion/challenger decision, and the traffic tables."""

from __future__ import annotations

import json

import pytest
from dataplatform.settings import PlatformSettings
from dataplatform.zte_tad import (
    decide_promotion,
    model_version_for,
    promote_if_better,
    traffic_tables,
)

PARAMS = {"algorithm": "decision_tree", "feature_set": "flow", "max_depth": 5, "max_bins": 32,
          "sample_fraction": 1.0, "executors": 1, "ds": None}


def test_model_version_is_stable_per_date_and_training_params():
    version = model_version_for("2026-05-01", PARAMS)
    assert version.startswith("20260501-decision_tree-flow-")
    # Executors change how fast, not what is trained.
    assert model_version_for("2026-05-01", {**PARAMS, "executors": 4}) == version
    assert model_version_for("2026-05-01", {**PARAMS, "max_depth": 6}) != version
    assert model_version_for("2026-05-02", PARAMS) != version


@pytest.mark.parametrize("challenger, champion, promoted", [
    (0.5, None, True),  # the first model is the champion
    (0.91, {"f1": 0.90}, True),
    (0.90, {"f1": 0.90}, True),  # not worse is enough: a rerun keeps its place
    (0.89, {"f1": 0.90}, False),
])
def test_decide_promotion(challenger, champion, promoted):
    assert decide_promotion(challenger, champion) is promoted


def _evaluation(settings, ds, version, f1):
    split = {"accuracy": f1, "weighted_precision": f1, "weighted_recall": f1, "f1": f1,
             "train_rows": 8, "test_rows": 2, "train_seconds": 0.5,
             "per_class": [{"category": "a", "precision": 1.0, "recall": f1, "f1": f1,
                            "support": 2}],
             "confusion": [["a", "a", 2]]}
    staging = settings.data_dir / "staging" / "zte_tad" / f"ds={ds}"
    staging.mkdir(parents=True, exist_ok=True)
    evaluation = {"algorithm": "decision_tree",
                  "splits": {"random": {**split, "f1": 1.0}, "holdout_capture": split}}
    (staging / f"{version}.evaluation.json").write_text(json.dumps(evaluation))
    return evaluation


def test_a_worse_model_is_not_promoted(tmp_path):
    settings = PlatformSettings.from_env({"PLATFORM_DATA_DIR": str(tmp_path)})
    _evaluation(settings, "2026-05-01", "good", 0.9)
    _evaluation(settings, "2026-05-02", "worse", 0.6)
    assert promote_if_better(settings, "2026-05-01", "good")["promoted"] is True
    decision = promote_if_better(settings, "2026-05-02", "worse")
    assert decision == {"model_version": "worse", "f1": 0.6, "promoted": False,
                        "champion": "good", "champion_f1": 0.9}
    current = json.loads((tmp_path / "models/zte_tad/current.json").read_text())
    assert (current["model_version"], current["f1"]) == ("good", 0.9)


def test_traffic_tables_hold_both_splits(tmp_path):
    settings = PlatformSettings.from_env({"PLATFORM_DATA_DIR": str(tmp_path)})
    tables = traffic_tables(_evaluation(settings, "2026-05-01", "v", 0.75), promoted=False)
    metrics = tables["traffic_model_metrics"].to_pylist()
    assert [(m["split"], m["f1"], m["promoted"]) for m in metrics] == [
        ("random", 1.0, False), ("holdout_capture", 0.75, False)]
    assert tables["traffic_confusion_matrix"].to_pylist()[0] == {
        "split": "random", "actual": "a", "predicted": "a", "count": 2}
