"""The seed's student analysis, re-implemented as ``seeds.md`` describes it.

Schema inferred from the CSV (a full extra pass), one Spark action per
statistic, every result written as a Spark CSV folder. This is the approach
the platform is measured against, not the platform's code.

    python -m bench.contenders.students_seed INPUT.csv OUT_DIR
"""

from __future__ import annotations

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from bench.contenders import report

SCORES = ["puntaje_mat", "puntaje_ing", "puntaje_ciencias"]


def main(path: str, out: str) -> None:
    spark = (SparkSession.builder.master("local[*]").appName("seed-students")
             .config("spark.ui.enabled", "false").getOrCreate())
    df = spark.read.csv(path, header=True, inferSchema=True)

    def save(frame, name: str) -> None:
        frame.write.mode("overwrite").csv(f"{out}/{name}", header=True)

    statistics = 0
    for column in [*SCORES, "num_premios"]:
        for name, function in (("mean", F.mean), ("stddev", F.stddev), ("max", F.max),
                               ("min", F.min), ("avg", F.avg)):
            save(df.select(function(column).alias(f"{name}_{column}")), f"{name}_{column}")
            statistics += 1
    save(df.groupBy("grado").count(), "students_per_grade")
    save(df.groupBy("grado").agg(*(F.avg(c).alias(f"avg_{c}") for c in SCORES)),
         "mean_score_per_grade")
    statistics += 2
    for column in SCORES:
        value = df.stat.corr("num_premios", column)  # an action of its own
        save(spark.createDataFrame([(column, value)], "subject string, r double"),
             f"corr_{column}")
        statistics += 1
    spark.stop()
    report(statistics=statistics)


if __name__ == "__main__":
    main(*sys.argv[1:3])
