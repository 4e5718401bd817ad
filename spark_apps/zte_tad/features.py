"""Packet and flow features of the traffic classifier; pure transforms.

Feature sets:

- ``seed``: the seed's 19 columns as they are. The ``Send_*`` columns are
  the capture's timestamp second, shared by every packet of a file: they
  identify the capture, not the app, and score 1.00 on a random row split
  only because rows of one capture land on both sides.
- ``packet``: the seed's columns without ``Send_*``.
- ``flow`` (default): direction-aware packet features (who is the server: its
  address and port; upload or download; payload size) plus aggregates of the
  packet's flow (capture, server endpoint and client port): packets, payload
  mean, deviation and maximum, share of full segments and of uploads.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_apps.zte_tad.contract import FEATURE_COLUMNS, SEND_COLUMNS

MSS_HEX = 2920
SERVER_IP = tuple(f"server_ip{i}" for i in range(1, 5))
FLOW_AGGREGATES = ("flow_packets", "flow_mean_len", "flow_std_len", "flow_max_len",
                   "flow_mss_share", "flow_uplink_share")
FEATURE_SETS = {
    "seed": FEATURE_COLUMNS,
    "packet": tuple(c for c in FEATURE_COLUMNS if c not in SEND_COLUMNS),
    "flow": ("LEN_RAW", "uplink", "server_port", *SERVER_IP, *FLOW_AGGREGATES),
}
DEFAULT_FEATURE_SET = "flow"


def _is_private(first, second):
    """RFC 1918 addresses: the phone's side of a capture."""
    return ((first == 10) | ((first == 172) & second.between(16, 31))
            | ((first == 192) & (second == 168)))


def transform_packet_direction(packets: DataFrame) -> DataFrame:
    """Which side is the server: ``uplink``, ``server_ip1..4``, ports, ``is_mss``."""
    uplink = _is_private(F.col("Source_IP1"), F.col("Source_IP2"))
    return packets.select(
        "*",
        uplink.cast("int").alias("uplink"),
        *(F.when(uplink, F.col(f"Destination_IP{i}")).otherwise(F.col(f"Source_IP{i}"))
          .alias(f"server_ip{i}") for i in range(1, 5)),
        F.when(uplink, F.col("TCP_DPORT")).otherwise(F.col("TCP_SPORT")).alias("server_port"),
        F.when(uplink, F.col("TCP_SPORT")).otherwise(F.col("TCP_DPORT")).alias("client_port"),
        (F.col("LEN_RAW") == MSS_HEX).cast("int").alias("is_mss"),
    )


FLOW_KEYS = ("capture_id", *SERVER_IP, "server_port", "client_port")


def transform_flows(directed: DataFrame) -> DataFrame:
    """One row per flow: its keys (``flow_<key>``), its capture's ``category``
    and the ``flow_*`` aggregates."""
    length = F.col("LEN_RAW").cast("double")
    # A capture's id begins with its category's folder, so grouping by the
    # category too splits no flow. any_value("category") would instead hold
    # a string per group, which the hash aggregate cannot: Spark sorted the
    # packets for it (the flows job 3.0 -> 7.9 s at 10M).
    return directed.groupBy(*FLOW_KEYS, "category").agg(
        F.count(F.lit(1)).cast("double").alias("flow_packets"),
        F.avg(length).alias("flow_mean_len"),
        F.coalesce(F.stddev_samp(length), F.lit(0.0)).alias("flow_std_len"),
        F.max(length).alias("flow_max_len"),
        F.avg("is_mss").alias("flow_mss_share"),
        F.avg("uplink").alias("flow_uplink_share"),
    ).select(*(F.col(key).alias(f"flow_{key}") for key in FLOW_KEYS), "category",
             *FLOW_AGGREGATES)


def transform_flow_aggregates(directed: DataFrame, flows: DataFrame | None = None) -> DataFrame:
    """Add the ``flow_*`` aggregates of each packet's flow (``flows``, as
    ``transform_flows`` makes them from ``directed``).

    The flows are aggregated apart and joined back by broadcast, so the
    packets are neither shuffled nor sorted (as a window would), and keep the
    order they were read in, which the tree's sampled split candidates
    depend on. This holds while a date has far fewer flows than packets: the
    seed's real sample has 1,306 flows for 112,553 packets, the bench's
    generated dates 29,778 for 10M. Each flow costs the driver about 150
    bytes; a date of millions of one-packet flows would need the window back.
    """
    if flows is None:
        flows = transform_flows(directed)
    # Null-safe, as a window's partitions are: a NULL key is a flow of its own.
    same_flow = [directed[key].eqNullSafe(flows[f"flow_{key}"]) for key in FLOW_KEYS]
    return directed.join(F.broadcast(flows.drop("category")), same_flow).select(
        *directed.columns, *FLOW_AGGREGATES)


def transform_features(packets: DataFrame, feature_set: str,
                       flows: DataFrame | None = None) -> DataFrame:
    """``capture_id, category, row_index`` and the feature set's columns, as
    doubles; the ``flow`` set's aggregates from ``flows`` if given (see
    ``transform_flows``)."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}; one of {sorted(FEATURE_SETS)}")
    columns = FEATURE_SETS[feature_set]
    frame = packets
    if feature_set == "flow":
        frame = transform_flow_aggregates(transform_packet_direction(packets), flows)
    return frame.select("capture_id", "category", "row_index",
                        *(F.col(c).cast("double").alias(c) for c in columns))
