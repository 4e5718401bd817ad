"""The seed's traffic classifier, re-implemented as ``seeds.md`` describes it.

VectorAssembler over all 19 columns, a decision tree with Spark's defaults,
``randomSplit([0.8, 0.2], seed=42)``, then four MulticlassClassificationEvaluator
passes (accuracy, weightedPrecision, weightedRecall, f1) and a confusion
matrix, the label being the files' ``CLASS`` column. Not the platform's code.

    python -m bench.contenders.traffic_seed CAPTURES_DIR
"""

from __future__ import annotations

import sys
import time

from pyspark.ml.classification import DecisionTreeClassifier
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import SparkSession

from bench.contenders import report
from spark_apps.zte_tad.contract import FEATURE_COLUMNS


def main(captures_dir: str) -> None:
    spark = (SparkSession.builder.master("local[*]").appName("seed-traffic")
             .config("spark.ui.enabled", "false").getOrCreate())
    packets = spark.read.parquet(f"{captures_dir}/*/*.parquet")
    data = VectorAssembler(inputCols=list(FEATURE_COLUMNS), outputCol="features").transform(
        packets)
    train, test = data.randomSplit([0.8, 0.2], seed=42)
    started = time.perf_counter()
    model = DecisionTreeClassifier(labelCol="CLASS", featuresCol="features").fit(train)
    train_seconds = time.perf_counter() - started
    predictions = model.transform(test)
    metrics = {name: MulticlassClassificationEvaluator(
        labelCol="CLASS", predictionCol="prediction", metricName=name).evaluate(predictions)
        for name in ("accuracy", "weightedPrecision", "weightedRecall", "f1")}
    confusion = predictions.groupBy("CLASS", "prediction").count().collect()
    spark.stop()
    report(train_seconds=round(train_seconds, 2), f1_random=round(metrics["f1"], 4),
           accuracy_random=round(metrics["accuracy"], 4), confusion_cells=len(confusion))


if __name__ == "__main__":
    main(sys.argv[1])
