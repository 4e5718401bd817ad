"""Train and evaluate the traffic classifier on one date's clean packets.

Reads   staging/zte_tad/ds=<ds>/packets/
Writes  models/zte_tad/<model_version>/            Spark ML pipeline + metadata.json
        staging/zte_tad/ds=<ds>/<model_version>.evaluation.json

Two evaluations (``contracts.md``), each a model trained on its own split:

- ``random``: an 80/20 row split, as the seed's, to compare with its
  published figures. Rows of one capture land on both sides. A row's side is
  a hash of its capture, its row in the file and the seed 42, so it is the
  same in every run, whatever order Spark reads in (``sample_fraction``
  samples the same way).
- ``holdout_capture``: whole capture files held out, a share of each
  category's captures. This is the honest figure for unseen traffic. The saved
  model is this one.

Both fits read one cache of the assembled rows: label, feature vector and
each row's side of both splits (``gbt``'s OneVsRest caches a copy of its
own). The held-out captures and the categories come from all the date's
packets, sampled or not: for the ``flow`` set, from its flows, cached for
the join, instead of a pass over the packets of their own. Each evaluation
counts one confusion matrix (a single Spark job); all metrics come from it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence

from pyspark.ml import PipelineModel
from pyspark.ml.classification import (
    DecisionTreeClassifier,
    GBTClassifier,
    OneVsRest,
    RandomForestClassifier,
)
from pyspark.ml.feature import IndexToString, StringIndexerModel, VectorAssembler
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_apps.hadoop_fs import remove_path, rename, write_text
from spark_apps.layout import DataLayout, validate_ds
from spark_apps.session import build_spark_session
from spark_apps.zte_tad.evaluation import confusion_counts, metrics_from_confusion
from spark_apps.zte_tad.features import (
    DEFAULT_FEATURE_SET,
    FEATURE_SETS,
    transform_features,
    transform_flows,
    transform_packet_direction,
)

DATASET = "zte_tad"
ALGORITHMS = ("decision_tree", "random_forest", "gbt")
SPLIT_SEED = 42
RANDOM_TEST_SHARE = 0.2
HOLDOUT_SHARE = 0.2


def holdout_captures(captures: Iterable[tuple[str, str]], share: float = HOLDOUT_SHARE,
                     seed: int = SPLIT_SEED) -> set[str]:
    """Captures to hold out: ``share`` of each category's, at least one, never all.

    Chosen by a hash of the capture id, so the split is stable across runs
    and machines. A category with a single capture stays in training.
    """
    by_category: dict[str, list[str]] = {}
    for capture_id, category in captures:
        by_category.setdefault(category, []).append(capture_id)
    held_out = set()
    for ids in by_category.values():
        if len(ids) < 2:
            continue
        ranked = sorted(ids, key=lambda c: hashlib.sha256(f"{seed}:{c}".encode()).hexdigest())
        held_out.update(ranked[:min(len(ids) - 1, max(1, math.floor(len(ids) * share)))])
    return held_out


def build_classifier(algorithm: str, max_depth: int, max_bins: int):
    common = {"labelCol": "label", "featuresCol": "features", "maxDepth": max_depth,
              "maxBins": max_bins, "seed": SPLIT_SEED}
    if algorithm == "decision_tree":
        return DecisionTreeClassifier(**common)
    if algorithm == "random_forest":
        return RandomForestClassifier(numTrees=50, **common)
    if algorithm == "gbt":
        # Spark's GBT is binary: one model per category.
        return OneVsRest(classifier=GBTClassifier(maxIter=20, **common),
                         labelCol="label", featuresCol="features")
    raise ValueError(f"unknown algorithm {algorithm!r}; one of {ALGORITHMS}")


def feature_stages(feature_columns: Sequence[str], categories: Sequence[str]) -> list:
    """Label index fixed from the category names (sorted), never from data order."""
    return [StringIndexerModel.from_labels(list(categories), inputCol="category",
                                           outputCol="label"),
            VectorAssembler(inputCols=list(feature_columns), outputCol="features")]


def prediction_stage(categories: Sequence[str]) -> IndexToString:
    return IndexToString(inputCol="prediction", outputCol="predicted_category",
                         labels=list(categories))


def transform_training_rows(features: DataFrame, feature_columns: Sequence[str],
                            categories: Sequence[str], held_out: Iterable[str]) -> DataFrame:
    """What both fits read: ``label, features`` and each row's side of both
    splits (``random_test``, ``held_out``).

    Assembled once for the cache: each fit passes over its input three times
    or more, and would otherwise index the label and assemble the vector on
    every pass. The label stands for the category: a name in each cached row
    cost the 10M-packet cache 0.5-1 s to fill.
    """
    assembled = PipelineModel(feature_stages(feature_columns, categories)).transform(features)
    return assembled.select(
        "label", "features",
        _packet_drawn(SPLIT_SEED, RANDOM_TEST_SHARE).alias("random_test"),
        F.col("capture_id").isin(sorted(held_out)).alias("held_out"))


def transform_sample(features: DataFrame, fraction: float) -> DataFrame:
    """About ``fraction`` of the packets, the same ones in every run."""
    return features.where(_packet_drawn(SPLIT_SEED + 1, fraction))


def _packet_drawn(seed: int, share: float):
    """True for about ``share`` of the packets, by a hash of each one's capture
    and row: unlike Spark's own sampling, it does not depend on the order or
    the partitions the rows are read in."""
    scale = 1_000_000
    return F.pmod(F.xxhash64("capture_id", "row_index", F.lit(seed)), scale) < round(
        share * scale)


def fit_and_evaluate(classifier, categories: Sequence[str], train: DataFrame,
                     test: DataFrame, train_rows: int):
    """The classifier fitted on ``train``, and its metrics on ``test``."""
    started = time.perf_counter()
    model = classifier.fit(train)
    train_seconds = time.perf_counter() - started
    # Every test row lands in one cell: the matrix counts the test side.
    confusion = confusion_counts(predictions_only(model).transform(test), categories)
    overall, per_class = metrics_from_confusion(confusion)
    return model, {
        "train_rows": train_rows, "test_rows": sum(confusion.values()),
        "train_seconds": round(train_seconds, 3), **overall,
        "per_class": per_class,
        "confusion": [[actual, predicted, n] for (actual, predicted), n in sorted(
            confusion.items())],
    }


def predictions_only(model):
    """``model`` computing its prediction alone: without the raw and probability
    vectors it would build for every test row, which the metrics do not read
    (the evaluations' jobs at 10M packets: 1.1 -> 0.6 s and 0.8 -> 0.5 s).
    One-vs-rest is left whole: it predicts from its models' raw vectors."""
    if not model.hasParam("probabilityCol"):
        return model
    return model.copy({model.rawPredictionCol: "", model.probabilityCol: ""})


def _fit_both_splits(rows: DataFrame, classifier, categories: Sequence[str]):
    """``(held-out split's model, random split's metrics, held-out split's
    metrics)``, both fits on ``rows``, cached here and released."""
    rows = rows.cache()
    try:
        # One pass fills the cache and sizes every side of both splits.
        sizes = {(r.random_test, r.held_out): r["count"]
                 for r in rows.groupBy("random_test", "held_out").count().collect()}
        _, random_split = fit_and_evaluate(
            classifier, categories, rows.where(~F.col("random_test")),
            rows.where(F.col("random_test")),
            sum(n for (random_test, _), n in sizes.items() if not random_test))
        _collect_the_first_fits_garbage(rows.sparkSession)
        tree, holdout_split = fit_and_evaluate(
            classifier, categories, rows.where(~F.col("held_out")),
            rows.where(F.col("held_out")),
            sum(n for (_, is_held_out), n in sizes.items() if not is_held_out))
    finally:
        rows.unpersist()
    return tree, random_split, holdout_split


def _collect_the_first_fits_garbage(spark: SparkSession) -> None:
    """In local mode, where the driver's JVM holds the data: a full collection
    now finds the first tree's binned copy of the rows dead and little else
    but the cache's byte arrays. Left to itself, the collector ran it in the
    middle of the second fit, marking that fit's copy too: 7.0 s of the fit's
    GC time at 10M packets, 2.8 s this way, for a pause of 0.4-0.7 s."""
    if _is_local(spark):
        spark.sparkContext._jvm.java.lang.System.gc()


def registered_executors(spark: SparkSession) -> int:
    """Executors serving this application now (0 in local mode: the driver does the work)."""
    block_managers = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()
    return 0 if _is_local(spark) else block_managers - 1


def _is_local(spark: SparkSession) -> bool:
    return spark.sparkContext.master.startswith("local")


def run_training(spark: SparkSession, ds: str, data_dir: str, model_version: str,
                 algorithm: str = "decision_tree", feature_set: str = DEFAULT_FEATURE_SET,
                 max_depth: int = 5, max_bins: int = 32, sample_fraction: float = 1.0,
                 save_model: bool = True, submitted_at: float | None = None) -> dict:
    layout = DataLayout(data_dir)
    staging = layout.staging(DATASET, ds)
    packets = spark.read.parquet(f"{staging}/packets")
    if "row_index" not in packets.columns:
        raise ValueError(f"{staging}/packets was staged without row_index, before the "
                         "split by hash: run ingest_traffic for the date again")
    flows = None
    try:
        captures = packets.select("capture_id", "category")
        if feature_set == "flow":
            # Flows are few (29,778 for 10M packets): cached, they name the
            # captures too, without a pass over the packets of their own.
            flows = transform_flows(transform_packet_direction(packets)).cache()
            captures = flows.select(F.col("flow_capture_id").alias("capture_id"), "category")
        capture_rows = captures.distinct().collect()
        categories = sorted({row.category for row in capture_rows})
        held_out = holdout_captures((row.capture_id, row.category) for row in capture_rows)
        features = transform_features(packets, feature_set, flows)
        if sample_fraction < 1.0:
            features = transform_sample(features, sample_fraction)
        columns = FEATURE_SETS[feature_set]
        tree, random_split, holdout_split = _fit_both_splits(
            transform_training_rows(features, columns, categories, held_out),
            build_classifier(algorithm, max_depth, max_bins), categories)
    finally:
        if flows is not None:
            flows.unpersist()
    model = PipelineModel([*feature_stages(columns, categories), tree,
                           prediction_stage(categories)])

    evaluation = {
        "dataset": DATASET, "ds": ds, "model_version": model_version,
        "algorithm": algorithm, "feature_set": feature_set,
        "features": list(FEATURE_SETS[feature_set]), "categories": categories,
        "params": {"max_depth": max_depth, "max_bins": max_bins,
                   "sample_fraction": sample_fraction, "split_seed": SPLIT_SEED,
                   "random_test_share": RANDOM_TEST_SHARE, "holdout_share": HOLDOUT_SHARE},
        "held_out_captures": sorted(held_out),
        "executors": registered_executors(spark),
        # Wall time from spark-submit to a trained, evaluated model: JVM and
        # executor start-up included, as a user waiting for it sees it.
        "job_seconds": round(time.time() - submitted_at, 3) if submitted_at else None,
        "splits": {"random": random_split, "holdout_capture": holdout_split},
    }
    if save_model:
        save_versioned_model(spark, layout, model, evaluation)
    write_text(spark, f"{staging}/{model_version}.evaluation.json",
               json.dumps(evaluation, indent=2))
    return evaluation


def save_versioned_model(spark: SparkSession, layout: DataLayout, model,
                         evaluation: dict) -> None:
    model_version = evaluation["model_version"]
    # Saved beside its final place, then renamed: no half-written model is visible.
    model_dir = f"{layout.models(DATASET)}/{model_version}"
    staged = f"{layout.models(DATASET)}/.{model_version}.staged"
    remove_path(spark, staged)
    model.write().overwrite().save(f"{staged}/pipeline")
    metadata = {k: v for k, v in evaluation.items() if k != "splits"}
    metadata["metrics"] = {split: {k: v for k, v in result.items()
                                   if k not in ("per_class", "confusion")}
                           for split, result in evaluation["splits"].items()}
    write_text(spark, f"{staged}/metadata.json", json.dumps(metadata, indent=2))
    rename(spark, staged, model_dir)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, type=validate_ds)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model-version", required=True)
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="decision_tree")
    parser.add_argument("--feature-set", choices=sorted(FEATURE_SETS),
                        default=DEFAULT_FEATURE_SET)
    parser.add_argument("--max-depth", type=int, default=5)
    parser.add_argument("--max-bins", type=int, default=32)
    parser.add_argument("--sample-fraction", type=float, default=1.0)
    parser.add_argument("--no-save-model", dest="save_model", action="store_false",
                        help="evaluate only (the scaling runs): no model under models/")
    return parser.parse_args(argv)


def submission_time() -> float | None:
    """When spark-submit started: the driver's parent is the SparkSubmit JVM."""
    try:
        import psutil
    except ImportError:
        return None
    me = psutil.Process()
    parent = me.parent()
    return (parent if parent and parent.name() == "java" else me).create_time()


def main(argv: Sequence[str] | None = None) -> None:
    submitted_at = submission_time()
    args = parse_args(argv)
    spark = build_spark_session(f"zte-tad-train-{args.ds}")
    try:
        evaluation = run_training(
            spark, args.ds, args.data_dir, args.model_version, args.algorithm,
            args.feature_set, args.max_depth, args.max_bins, args.sample_fraction,
            args.save_model, submitted_at)
    finally:
        spark.stop()
    for split, result in evaluation["splits"].items():
        print(f"zte_tad {args.ds} {args.model_version} {split}: f1={result['f1']:.4f} "
              f"accuracy={result['accuracy']:.4f} train={result['train_rows']} "
              f"test={result['test_rows']} ({result['train_seconds']}s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
