"""Classifier metrics from one confusion matrix, as Spark's evaluator defines them.

One Spark job counts (actual, predicted) pairs; every metric follows from that
matrix in plain Python, where the seed ran one evaluator pass per metric.
Weighted metrics weigh each actual class by its share of the test rows, like
``MulticlassClassificationEvaluator`` (``f1`` is its weighted F-measure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame


def confusion_counts(predictions: DataFrame,
                     categories: Sequence[str]) -> dict[tuple[str, str], int]:
    """``{(actual category, predicted category): rows}``, from the ``label`` and
    ``prediction`` indices into ``categories``: counting the indices spares
    the rows their category names."""
    rows = predictions.groupBy("label", "prediction").count().collect()
    return {(categories[int(row.label)], categories[int(row.prediction)]): row["count"]
            for row in rows}


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def metrics_from_confusion(confusion: Mapping[tuple[str, str], int]) -> tuple[dict, list[dict]]:
    """Overall metrics and per-class rows (category, precision, recall, f1, support)."""
    total = sum(confusion.values())
    classes = sorted({a for a, _ in confusion} | {p for _, p in confusion})
    per_class = []
    for label in classes:
        true_positive = confusion.get((label, label), 0)
        support = sum(n for (a, _), n in confusion.items() if a == label)
        predicted = sum(n for (_, p), n in confusion.items() if p == label)
        precision, recall = _ratio(true_positive, predicted), _ratio(true_positive, support)
        per_class.append({"category": label, "precision": precision, "recall": recall,
                          "f1": _ratio(2 * precision * recall, precision + recall),
                          "support": support})
    weighted = {key: sum(row[key] * row["support"] for row in per_class) / total if total else 0.0
                for key in ("precision", "recall", "f1")}
    correct = sum(n for (a, p), n in confusion.items() if a == p)
    overall = {"accuracy": _ratio(correct, total), "weighted_precision": weighted["precision"],
               "weighted_recall": weighted["recall"], "f1": weighted["f1"]}
    return overall, per_class
