"""Traffic features, the held-out split, evaluation and file checks."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.sql import functions as F

from spark_apps.zte_tad.contract import FEATURE_COLUMNS, schema_problem
from spark_apps.zte_tad.evaluation import confusion_counts, metrics_from_confusion
from spark_apps.zte_tad.features import (
    FEATURE_SETS,
    transform_features,
    transform_flow_aggregates,
    transform_flows,
    transform_packet_direction,
)
from spark_apps.zte_tad.ingest import inspect_file, transform_validate
from spark_apps.zte_tad.train import (
    ALGORITHMS,
    holdout_captures,
    predictions_only,
    run_training,
    transform_sample,
    transform_training_rows,
)

SCHEMA = "capture_id STRING, category STRING, row_index BIGINT, " + ", ".join(
    f"{c} BIGINT" for c in FEATURE_COLUMNS)
SCHEMA_NAMES = ("capture_id", "category", "row_index", *FEATURE_COLUMNS)


def _packet(capture, category, src, dst, sport, dport, len_raw, second=1, row_index=0):
    fields = {"LEN_SRC_IP": len(".".join(map(str, src))),
              "LEN_DEST_IP": len(".".join(map(str, dst))),
              **{f"Source_IP{i + 1}": v for i, v in enumerate(src)},
              **{f"Destination_IP{i + 1}": v for i, v in enumerate(dst)},
              "TCP_SPORT": sport, "TCP_DPORT": dport, "LEN_RAW": len_raw,
              "Send_Year": 2023, "Send_Month": 5, "Send_Day": 6, "Send_Hour": 3,
              "Send_Minute": 11, "Send_Second": second}
    return (capture, category, row_index, *(fields[c] for c in FEATURE_COLUMNS))


PHONE, SERVER = (192, 168, 31, 58), (47, 111, 245, 242)
PACKETS = [
    # One flow: a request up, two full segments and a short one down.
    _packet("Video/a", "Video", PHONE, SERVER, 42406, 443, 300, row_index=0),
    _packet("Video/a", "Video", SERVER, PHONE, 443, 42406, 2920, row_index=1),
    _packet("Video/a", "Video", SERVER, PHONE, 443, 42406, 2920, row_index=2),
    _packet("Video/a", "Video", SERVER, PHONE, 443, 42406, 1060, row_index=3),
    # Another flow of the same capture: another client port.
    _packet("Video/a", "Video", PHONE, SERVER, 42410, 443, 100, row_index=4),
]


def test_flow_features_know_the_server_side(spark):
    rows = transform_features(spark.createDataFrame(PACKETS, SCHEMA), "flow").collect()
    first = rows[0].asDict()
    assert [first[f"server_ip{i}"] for i in range(1, 5)] == [47.0, 111.0, 245.0, 242.0]
    assert (first["server_port"], first["uplink"]) == (443.0, 1.0)
    assert [r.uplink for r in rows] == [1.0, 0.0, 0.0, 0.0, 1.0]
    big_flow = [r for r in rows if r.flow_packets == 4.0]
    assert len(big_flow) == 4
    # Payloads 300, 2920, 2920, 1060: mean 1800, max 2920, half full segments,
    # a quarter uploads; sample deviation sqrt(((-1500)^2 + 1120^2 * 2 + (-740)^2) / 3).
    assert big_flow[0].flow_mean_len == 1800.0
    assert big_flow[0].flow_max_len == 2920.0
    assert big_flow[0].flow_mss_share == 0.5
    assert big_flow[0].flow_uplink_share == 0.25
    assert big_flow[0].flow_std_len == pytest.approx(
        ((1500 ** 2 + 2 * 1120 ** 2 + 740 ** 2) / 3) ** 0.5, rel=1e-12)
    single = [r for r in rows if r.flow_packets == 1.0][0]
    assert (single.flow_std_len, single.flow_mean_len) == (0.0, 100.0)


def test_a_null_flow_key_makes_a_flow_of_its_own(spark):
    # As a window's partitions would: NULL ports group with each other, apart.
    null_port = [_packet("Video/a", "Video", PHONE, SERVER, 42406, 443, 300, row_index=i)
                 for i in (5, 6)]
    null_port = [tuple(None if name == "TCP_SPORT" else value for name, value in zip(
        SCHEMA_NAMES, packet, strict=True)) for packet in null_port]
    frame = spark.createDataFrame(PACKETS + null_port, SCHEMA)
    rows = transform_flow_aggregates(transform_packet_direction(frame)).collect()
    assert len(rows) == len(PACKETS) + 2  # every packet once
    assert sorted((r.row_index, r.flow_packets) for r in rows) == [
        (0, 4.0), (1, 4.0), (2, 4.0), (3, 4.0), (4, 1.0), (5, 2.0), (6, 2.0)]


def test_the_flows_name_every_capture_and_give_the_features_they_join_to(spark):
    """The training takes its captures from the cached flows, not from a pass
    over the packets: every capture must be there, with its category."""
    other = [_packet("Music/b", "Music", PHONE, SERVER, 50000, 443, 80, row_index=0)]
    directed = transform_packet_direction(spark.createDataFrame(PACKETS + other, SCHEMA))
    flows = transform_flows(directed)
    assert sorted({(r.flow_capture_id, r.category) for r in flows.collect()}) == [
        ("Music/b", "Music"), ("Video/a", "Video")]
    assert flows.count() == 3
    given = transform_flow_aggregates(directed, flows).orderBy("capture_id", "row_index")
    assert given.collect() == transform_flow_aggregates(directed).orderBy(
        "capture_id", "row_index").collect()


def test_feature_sets_leave_send_columns_out_by_default(spark):
    frame = spark.createDataFrame(PACKETS, SCHEMA)
    assert transform_features(frame, "seed").columns == [
        "capture_id", "category", "row_index", *FEATURE_COLUMNS]
    for name in ("packet", "flow"):
        assert not any(c.startswith("Send_") for c in FEATURE_SETS[name]), name
        assert transform_features(frame, name).columns[3:] == list(FEATURE_SETS[name])
    with pytest.raises(ValueError, match="unknown feature set"):
        transform_features(frame, "everything")


def test_packets_out_of_range_or_null_are_rejected(spark):
    good = _packet("C/x", "C", PHONE, SERVER, 1, 443, 10)
    bad_port = _packet("C/x", "C", PHONE, SERVER, 70000, 443, 10)
    null_len = (*good[:-7], None, *good[-6:])
    reasons = [r.reject_reason for r in transform_validate(
        spark.createDataFrame([good, bad_port, null_len], SCHEMA)).collect()]
    assert reasons == [None, "out_of_range", "null_feature"]


def test_holdout_keeps_every_category_in_training():
    captures = [(f"A/{i}", "A") for i in range(10)] + [("B/0", "B"), ("B/1", "B")] + [
        ("C/0", "C")]
    held_out = holdout_captures(captures, share=0.2)
    # 20% of A's ten captures; one of B's two; C has one and stays in training.
    assert sum(c.startswith("A/") for c in held_out) == 2
    assert sum(c.startswith("B/") for c in held_out) == 1
    assert "C/0" not in held_out
    assert holdout_captures(reversed(captures), share=0.2) == held_out  # order-free


def test_training_rows_split_by_a_hash_of_the_packet_not_by_row_order(spark):
    # 7 captures of 500 packets, category b for the odd ones; feature c is the capture.
    frame = spark.range(3500).select(
        (F.col("id") % 7).cast("string").alias("capture_id"),
        F.when(F.col("id") % 7 % 2 == 1, "b").otherwise("a").alias("category"),
        (F.col("id") / 7).cast("long").alias("row_index"),
        (F.col("id") % 7).cast("double").alias("c"),
        (F.col("id") * 7919 % 1000).cast("double").alias("x"))

    def rows(packets):
        return transform_training_rows(packets, ["c", "x"], ["a", "b"], {"3", "4"})

    def sides(packets):
        return sorted((r.label, tuple(r.features.toArray()), r.random_test, r.held_out)
                      for r in rows(packets).collect())

    assert rows(frame).columns == ["label", "features", "random_test", "held_out"]
    # The tree takes its number of classes from the label's metadata.
    assert rows(frame).schema["label"].metadata["ml_attr"]["vals"] == ["a", "b"]
    collected = sides(frame)
    # A packet's side does not depend on where or in which order it is read.
    assert collected == sides(frame.orderBy(F.desc("x")).repartition(3))
    test_share = sum(random_test for *_, random_test, _ in collected) / len(collected)
    assert 0.18 < test_share < 0.22, test_share
    for label, (capture, _), _, held_out in collected:
        assert held_out == (capture in (3.0, 4.0))
        # The index of the category among the sorted categories.
        assert label == (1.0 if capture % 2 else 0.0)
    # Both sides of the random split hold rows of every capture.
    for side in (True, False):
        assert {c for _, (c, _), random_test, _ in collected if random_test == side} == {
            float(i) for i in range(7)}


def test_a_sample_keeps_the_same_packets_whatever_the_row_order(spark):
    frame = spark.range(20000).select((F.col("id") % 9).cast("string").alias("capture_id"),
                                      (F.col("id") / 9).cast("long").alias("row_index"))

    def sampled(packets):
        return sorted((r.capture_id, r.row_index) for r in transform_sample(packets, 0.1).collect())

    kept = sampled(frame)
    assert kept == sampled(frame.orderBy(F.desc("id")).repartition(3))
    assert 1800 < len(kept) < 2200, len(kept)


def test_training_refuses_packets_staged_before_row_index(spark, data_dir):
    staged = data_dir / "staging" / "zte_tad" / "ds=2026-03-02" / "packets"
    spark.createDataFrame(PACKETS, SCHEMA).drop("row_index").write.parquet(str(staged))
    with pytest.raises(ValueError, match="run ingest_traffic for the date again"):
        run_training(spark, "2026-03-02", str(data_dir), "v-old")


def _staged_packets(spark, data_dir, ds):
    """Two categories of three captures, 40 packets each, told apart by server."""
    packets = []
    for category, server, port in (("Music", (47, 111, 245, 242), 443),
                                   ("Video", (120, 92, 1, 7), 8080)):
        for capture in range(3):
            for i in range(40):
                up = i % 3 == 0
                src, dst = (PHONE, server) if up else (server, PHONE)
                sport, dport = (40000 + capture, port) if up else (port, 40000 + capture)
                packets.append(_packet(f"{category}/{capture}.parquet", category, src, dst,
                                       sport, dport, 100 + 37 * i % 2920, row_index=i))
    frame = spark.createDataFrame(packets, SCHEMA)
    frame.write.parquet(str(data_dir / "staging" / "zte_tad" / f"ds={ds}" / "packets"))
    return frame


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_run_training_saves_a_model_that_loads_and_classifies(spark, data_dir, algorithm):
    packets = _staged_packets(spark, data_dir, "2026-03-01")
    evaluation = run_training(spark, "2026-03-01", str(data_dir), f"v-{algorithm}",
                              algorithm=algorithm)
    assert evaluation["categories"] == ["Music", "Video"]
    assert len(evaluation["held_out_captures"]) == 2  # one of each category's three
    for split in evaluation["splits"].values():
        assert split["train_rows"] + split["test_rows"] == 240
    assert evaluation["splits"]["holdout_capture"]["test_rows"] == 80
    # Servers tell the categories apart: a held-out capture is still classified.
    assert evaluation["splits"]["holdout_capture"]["f1"] == 1.0
    assert evaluation["splits"]["holdout_capture"]["confusion"] == [
        ["Music", "Music", 40], ["Video", "Video", 40]]
    assert [row["category"] for row in evaluation["splits"]["random"]["per_class"]] == [
        "Music", "Video"]
    model = PipelineModel.load(
        str(data_dir / "models" / "zte_tad" / f"v-{algorithm}" / "pipeline"))
    predicted = model.transform(transform_features(packets, "flow"))
    assert {(r.category, r.predicted_category) for r in predicted.collect()} == {
        ("Music", "Music"), ("Video", "Video")}
    # The evaluation's copy of the classifier predicts the same without the
    # vectors; the saved one still gives them.
    assert "rawPrediction" in predicted.columns
    only = predictions_only(model.stages[2]).transform(
        PipelineModel(model.stages[:2]).transform(transform_features(packets, "flow")))
    assert only.select("prediction").collect() == predicted.select("prediction").collect()
    if algorithm != "gbt":  # one-vs-rest predicts from its models' raw vectors
        assert not {"rawPrediction", "probability"} & set(only.columns)


def test_run_training_on_a_set_without_flows_names_the_same_captures(spark, data_dir):
    """The ``packet`` set has no flows to name the captures: a pass over the
    packets does. Either way the splits and the held-out captures agree, and
    no cache is left behind."""
    _staged_packets(spark, data_dir, "2026-03-03")
    cached_before = spark.sparkContext._jsc.getPersistentRDDs().size()
    by_flows = run_training(spark, "2026-03-03", str(data_dir), "v-flow", save_model=False)
    by_packets = run_training(spark, "2026-03-03", str(data_dir), "v-packet",
                              feature_set="packet", save_model=False)
    assert by_packets["held_out_captures"] == by_flows["held_out_captures"]
    assert by_packets["categories"] == by_flows["categories"] == ["Music", "Video"]
    for split in ("random", "holdout_capture"):
        assert by_packets["splits"][split]["test_rows"] == by_flows["splits"][split][
            "test_rows"]
    assert spark.sparkContext._jsc.getPersistentRDDs().size() == cached_before


# A 3-class confusion matrix: (actual, predicted) -> count, 10 test rows.
CONFUSION = {("a", "a"): 3, ("a", "b"): 1, ("b", "b"): 4, ("c", "a"): 1, ("c", "c"): 1}


def test_metrics_from_a_known_confusion_matrix():
    overall, per_class = metrics_from_confusion(CONFUSION)
    # a: precision 3/4, recall 3/4; b: 4/5, 1; c: 1, 1/2. Supports 4, 4, 2.
    f1 = {"a": 0.75, "b": 2 * 0.8 / 1.8, "c": 2 * 0.5 / 1.5}
    assert per_class == [
        {"category": "a", "precision": 0.75, "recall": 0.75, "f1": f1["a"], "support": 4},
        {"category": "b", "precision": 0.8, "recall": 1.0, "f1": f1["b"], "support": 4},
        {"category": "c", "precision": 1.0, "recall": 0.5, "f1": f1["c"], "support": 2},
    ]
    assert overall["accuracy"] == 0.8
    assert overall["weighted_precision"] == pytest.approx((4 * 0.75 + 4 * 0.8 + 2 * 1) / 10)
    assert overall["weighted_recall"] == pytest.approx(0.8)
    assert overall["f1"] == pytest.approx((4 * f1["a"] + 4 * f1["b"] + 2 * f1["c"]) / 10)


def test_metrics_equal_sparks_evaluator(spark):
    """One confusion matrix gives what the seed's four evaluator passes gave."""
    categories = ["a", "b", "c"]
    rows = [(float(categories.index(a)), float(categories.index(p)))
            for (a, p), n in CONFUSION.items() for _ in range(n)]
    predictions = spark.createDataFrame(rows, "label DOUBLE, prediction DOUBLE")
    counted = confusion_counts(predictions, categories)
    assert counted == CONFUSION
    overall, _ = metrics_from_confusion(counted)
    for ours, spark_metric in (("accuracy", "accuracy"),
                               ("weighted_precision", "weightedPrecision"),
                               ("weighted_recall", "weightedRecall"), ("f1", "f1")):
        expected = MulticlassClassificationEvaluator(metricName=spark_metric).evaluate(
            predictions)
        assert overall[ours] == pytest.approx(expected, abs=1e-12), ours


@pytest.mark.parametrize("fields, problem", [
    ({c: "int64" for c in FEATURE_COLUMNS}, None),
    ({**{c: "int64" for c in FEATURE_COLUMNS}, "CLASS": "int64"}, None),
    ({c: "int64" for c in FEATURE_COLUMNS if c != "LEN_RAW"},
     "missing feature column(s) LEN_RAW"),
    ({**{c: "int64" for c in FEATURE_COLUMNS}, "TCP_DPORT": "string"},
     "feature columns must be int64: TCP_DPORT is string"),
])
def test_schema_problem(fields, problem):
    assert schema_problem(fields) == problem


def test_inspect_file_reads_footers_only(tmp_path):
    table = pa.table({c: pa.array([1, 2], pa.int64()) for c in FEATURE_COLUMNS})
    good = tmp_path / "good.parquet"
    pq.write_table(table, good)
    assert inspect_file(str(good)) == (2, None)
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[:-100])
    rows, reason = inspect_file(str(truncated))
    assert rows is None and reason.startswith("unreadable parquet: ")
    missing = tmp_path / "missing.parquet"
    pq.write_table(table.drop(["Send_Second"]), missing)
    assert inspect_file(str(missing)) == (None, "missing feature column(s) Send_Second")
