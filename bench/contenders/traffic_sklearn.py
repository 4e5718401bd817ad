"""scikit-learn's DecisionTreeClassifier on the platform's features and splits.

Reads the capture files with pyarrow, builds the platform's default ``flow``
features with pandas (the same definitions as ``spark_apps/zte_tad/features.py``),
holds out the same captures (``holdout_captures``) and trains a depth-5 tree
on each split, as the platform's train job does.

    python -m bench.contenders.traffic_sklearn CAPTURES_DIR
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from bench.contenders import report
from spark_apps.zte_tad.contract import FEATURE_COLUMNS
from spark_apps.zte_tad.features import FEATURE_SETS, MSS_HEX
from spark_apps.zte_tad.train import SPLIT_SEED, holdout_captures


def read_captures(root: Path) -> pd.DataFrame:
    frames = []
    for path in sorted(root.glob("*/*.parquet")):
        frame = pq.read_table(path, columns=list(FEATURE_COLUMNS)).to_pandas()
        frame["capture_id"] = f"{path.parent.name}/{path.name}"
        frame["category"] = path.parent.name
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def flow_features(packets: pd.DataFrame) -> pd.DataFrame:
    s1, s2 = packets["Source_IP1"], packets["Source_IP2"]
    uplink = ((s1 == 10) | ((s1 == 172) & s2.between(16, 31)) | ((s1 == 192) & (s2 == 168)))
    out = pd.DataFrame({"capture_id": packets["capture_id"], "category": packets["category"],
                        "LEN_RAW": packets["LEN_RAW"], "uplink": uplink.astype("int64")})
    for i in range(1, 5):
        out[f"server_ip{i}"] = np.where(uplink, packets[f"Destination_IP{i}"],
                                        packets[f"Source_IP{i}"])
    out["server_port"] = np.where(uplink, packets["TCP_DPORT"], packets["TCP_SPORT"])
    client_port = np.where(uplink, packets["TCP_SPORT"], packets["TCP_DPORT"])
    out["is_mss"] = (packets["LEN_RAW"] == MSS_HEX).astype("int64")
    keys = ["capture_id", "server_ip1", "server_ip2", "server_ip3", "server_ip4",
            "server_port", pd.Series(client_port, name="client_port")]
    flows = out.groupby(keys, sort=False)
    length = flows["LEN_RAW"]
    out["flow_packets"] = length.transform("size").astype("float64")
    out["flow_mean_len"] = length.transform("mean")
    out["flow_std_len"] = length.transform("std").fillna(0.0)
    out["flow_max_len"] = length.transform("max").astype("float64")
    out["flow_mss_share"] = flows["is_mss"].transform("mean")
    out["flow_uplink_share"] = flows["uplink"].transform("mean")
    return out


def fit_and_score(train: pd.DataFrame, test: pd.DataFrame, columns: list[str]):
    tree = DecisionTreeClassifier(max_depth=5, random_state=SPLIT_SEED)
    started = time.perf_counter()
    tree.fit(train[columns].to_numpy(dtype="float64"), train["category"])
    seconds = time.perf_counter() - started
    predicted = tree.predict(test[columns].to_numpy(dtype="float64"))
    return seconds, f1_score(test["category"], predicted, average="weighted")


def main(captures_dir: str) -> None:
    features = flow_features(read_captures(Path(captures_dir)))
    columns = list(FEATURE_SETS["flow"])
    random_train, random_test = train_test_split(features, test_size=0.2,
                                                 random_state=SPLIT_SEED)
    _, f1_random = fit_and_score(random_train, random_test, columns)
    captures = features[["capture_id", "category"]].drop_duplicates().itertuples(index=False)
    held_out = features["capture_id"].isin(holdout_captures(captures))
    train_seconds, f1_holdout = fit_and_score(features[~held_out], features[held_out], columns)
    report(train_seconds=round(train_seconds, 2), f1_random=round(f1_random, 4),
           f1_holdout_capture=round(f1_holdout, 4))


if __name__ == "__main__":
    main(sys.argv[1])
