"""Airflow-side steps of the traffic pipeline: model versions, promotion, publishing.

The champion is named by ``models/zte_tad/current.json``. A challenger takes
its place only when its ``holdout_capture`` F1 is not worse: the held-out
figure, never the leaky random split.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from dataplatform.settings import PlatformSettings

log = logging.getLogger(__name__)

DATASET = "zte_tad"
PROMOTION_SPLIT = "holdout_capture"
TRAINING_PARAMS = ("algorithm", "feature_set", "max_depth", "max_bins", "sample_fraction")


def model_version_for(ds: str, params: dict) -> str:
    """Stable for a date and its training params: a rerun replaces its own version."""
    chosen = {name: params[name] for name in TRAINING_PARAMS}
    digest = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:8]
    return f"{ds.replace('-', '')}-{params['algorithm']}-{params['feature_set']}-{digest}"


def read_evaluation(settings: PlatformSettings, ds: str, model_version: str) -> dict:
    path = Path(settings.layout.staging(DATASET, ds)) / f"{model_version}.evaluation.json"
    return json.loads(path.read_text())


def champion_path(settings: PlatformSettings) -> Path:
    return Path(settings.layout.models(DATASET)) / "current.json"


def decide_promotion(challenger_f1: float, champion: dict | None) -> bool:
    """Promote when there is no champion or the challenger is not worse."""
    return champion is None or challenger_f1 >= champion["f1"]


def promote_if_better(settings: PlatformSettings, ds: str, model_version: str) -> dict:
    """Compare with the champion; on promotion, swap the pointer atomically."""
    evaluation = read_evaluation(settings, ds, model_version)
    challenger_f1 = evaluation["splits"][PROMOTION_SPLIT]["f1"]
    pointer = champion_path(settings)
    champion = json.loads(pointer.read_text()) if pointer.exists() else None
    promoted = decide_promotion(challenger_f1, champion)
    decision = {"model_version": model_version, "f1": challenger_f1, "promoted": promoted,
                "champion": champion["model_version"] if champion else None,
                "champion_f1": champion["f1"] if champion else None}
    if promoted:
        pointer.parent.mkdir(parents=True, exist_ok=True)
        staged = pointer.with_name(f".{pointer.name}.staged")
        staged.write_text(json.dumps({"model_version": model_version, "f1": challenger_f1,
                                      "split": PROMOTION_SPLIT, "ds": ds,
                                      "path": str(pointer.parent / model_version)}, indent=2))
        os.replace(staged, pointer)
    log.info("model %s: held-out f1 %.4f against champion %s (%s): %s", model_version,
             challenger_f1, decision["champion"], decision["champion_f1"],
             "promoted" if promoted else "not promoted")
    return decision


def traffic_tables(evaluation: dict, promoted: bool):
    """The three traffic tables of one evaluation (without their slice keys)."""
    import pyarrow as pa

    metrics, per_class, confusion = [], [], []
    for split, result in evaluation["splits"].items():
        metrics.append({"algorithm": evaluation["algorithm"], "split": split,
                        **{k: result[k] for k in ("accuracy", "weighted_precision",
                                                  "weighted_recall", "f1", "train_rows",
                                                  "test_rows", "train_seconds")},
                        "promoted": promoted})
        per_class += [{"split": split, **row} for row in result["per_class"]]
        confusion += [{"split": split, "actual": a, "predicted": p, "count": n}
                      for a, p, n in result["confusion"]]
    return {"traffic_model_metrics": pa.Table.from_pylist(metrics),
            "traffic_class_metrics": pa.Table.from_pylist(per_class),
            "traffic_confusion_matrix": pa.Table.from_pylist(confusion)}


def publish_traffic(settings: PlatformSettings, ds: str, model_version: str,
                    promoted: bool) -> dict[str, int]:
    from dataplatform.publish import publish_slice
    from dataplatform.quality import quality_tables, read_quality_report

    tables = traffic_tables(read_evaluation(settings, ds, model_version), promoted)
    tables.update(quality_tables(read_quality_report(settings, DATASET, ds)))
    return publish_slice(settings.data_dir, settings.warehouse_url,
                         {"ds": ds, "dataset": DATASET, "model_version": model_version},
                         tables)


# Runners where an executor count means something: local mode is one JVM,
# and the docker runner's default master is local mode inside the container.
SCALING_RUNNERS = ("standalone", "yarn", "k8s_pod", "spark_operator")


def check_scaling_runner(settings: PlatformSettings) -> None:
    if settings.spark_runner not in SCALING_RUNNERS:
        raise ValueError(
            f"zte_tad_scaling needs a cluster runner ({', '.join(SCALING_RUNNERS)}); "
            f"PLATFORM_SPARK_RUNNER={settings.spark_runner} runs every job in one JVM, "
            f"where an executor count means nothing. Locally: `make spark-up` and "
            f"PLATFORM_SPARK_RUNNER=standalone.")


def scaling_row(evaluation: dict, requested: int) -> dict:
    """One line of the scaling table; refuses a run that got fewer executors than asked."""
    if evaluation["executors"] != requested:
        raise ValueError(f"{evaluation['model_version']}: asked for {requested} executors, "
                         f"{evaluation['executors']} registered; its timing would be "
                         f"mislabelled")
    held_out = evaluation["splits"][PROMOTION_SPLIT]
    return {"executors": requested, "train_seconds": held_out["train_seconds"],
            "total_seconds": evaluation["job_seconds"], "f1": held_out["f1"]}


def publish_scaling(settings: PlatformSettings, ds: str, executor_counts: list[int]) -> dict:
    """Replace the date's ``traffic_executor_scaling`` rows with these runs."""
    import pyarrow as pa

    from dataplatform.job_specs import scaling_model_version
    from dataplatform.publish import publish_slice

    rows = [scaling_row(read_evaluation(settings, ds, scaling_model_version(n)), n)
            for n in executor_counts]
    for row in rows:
        log.info("zte_tad %s: %d executor(s): train %.2fs, total %.2fs, held-out f1 %.4f",
                 ds, row["executors"], row["train_seconds"], row["total_seconds"], row["f1"])
    return publish_slice(settings.data_dir, settings.warehouse_url, {"ds": ds},
                         {"traffic_executor_scaling": pa.Table.from_pylist(rows)})
