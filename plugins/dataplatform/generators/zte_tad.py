"""Generate ZTE_TAD-like packet parquet: one file per capture session.

Follows ``shared/docs/seeds.md``: the 13 category folders, several apps per
category, one row per TCP packet with payload and the seed's 19 int64
features. Each capture is one app talking to a few of its servers:

- one timestamp second per file (so ``Send_*`` identify the capture, as in
  the real data);
- a private client address, ephemeral client ports, well-known server ports;
- ``LEN_RAW`` is the payload's hex length (2 x bytes), MSS-heavy (2920) for
  bulk downloads;
- capture sizes are skewed (log-normal).

Categories differ in their server pools (which overlap), ports, download
share, packet sizes and flow counts. A model can learn them, but not
perfectly. ``--rows N`` streams capture by capture, so 10M+ rows never sit in
memory.

    python -m dataplatform.generators.zte_tad --rows 20000 --out data/samples/zte_tad
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CATEGORIES = ("Education", "Finance", "Games", "Health Fitness", "Life Service", "Music",
              "News", "Reading", "Shopping", "Social", "Tools", "Travel", "Video")
FEATURES = ("LEN_SRC_IP", "LEN_DEST_IP", "Source_IP1", "Source_IP2", "Source_IP3",
            "Source_IP4", "Destination_IP1", "Destination_IP2", "Destination_IP3",
            "Destination_IP4", "TCP_SPORT", "TCP_DPORT", "LEN_RAW", "Send_Year",
            "Send_Month", "Send_Day", "Send_Hour", "Send_Minute", "Send_Second")
MSS_HEX = 2920  # a 1460-byte segment, as hex characters
# First octets of cloud and CDN ranges the apps' servers sit in; categories
# draw from overlapping windows of this list.
SERVER_FIRST_OCTETS = (14, 36, 39, 42, 47, 58, 101, 103, 106, 110, 111, 112, 113, 115,
                       116, 117, 119, 120, 121, 122, 123, 124, 125, 139, 140, 157, 175,
                       180, 182, 183, 202, 203, 210, 211, 218, 220, 221, 222, 223)
SCHEMA = pa.schema([("CLASS", pa.int64()), *((name, pa.int64()) for name in FEATURES)])


@dataclass(frozen=True)
class CategoryProfile:
    servers: np.ndarray  # (n, 5): four octets and a port
    download_share: float  # share of packets sent by the server
    mss_share: float  # share of download packets that are full segments
    small_payload_mean: float  # bytes, for everything else
    flows_mean: float


def _profiles(rng: np.random.Generator) -> dict[str, CategoryProfile]:
    profiles = {}
    for index, category in enumerate(CATEGORIES):
        window = SERVER_FIRST_OCTETS[index * 2: index * 2 + 8] or SERVER_FIRST_OCTETS[-8:]
        n_servers = int(rng.integers(6, 14))
        ports = rng.choice([443, 443, 443, 80, 8080, 8443, 5222, 1935, 9000], n_servers)
        servers = np.column_stack([
            rng.choice(window, n_servers), rng.integers(1, 255, (n_servers, 3)), ports])
        profiles[category] = CategoryProfile(
            servers=servers,
            download_share=float(rng.uniform(0.45, 0.85)),
            mss_share=float(rng.uniform(0.05, 0.8)),
            small_payload_mean=float(rng.uniform(60, 600)),
            flows_mean=float(rng.uniform(2, 12)),
        )
    return profiles


def _ip_text_length(octets: np.ndarray) -> np.ndarray:
    """Characters of a dotted IPv4 address, per row of four octets."""
    digits = np.where(octets >= 100, 3, np.where(octets >= 10, 2, 1))
    return digits.sum(axis=1) + 3


def capture_table(rng: np.random.Generator, profile: CategoryProfile, rows: int,
                  class_index: int) -> pa.Table:
    """One capture session: a client talking to a few of the category's servers."""
    client = np.array([192, 168, int(rng.integers(0, 256)), int(rng.integers(2, 255))])
    n_flows = max(1, int(rng.poisson(profile.flows_mean)))
    flow_servers = profile.servers[rng.integers(0, len(profile.servers), n_flows)]
    flow_ports = rng.integers(32768, 61000, n_flows)
    weights = rng.pareto(1.5, n_flows) + 0.1  # a few flows carry most packets
    flow = rng.choice(n_flows, rows, p=weights / weights.sum())
    download = rng.random(rows) < profile.download_share
    full_segment = download & (rng.random(rows) < profile.mss_share)
    small = np.clip(rng.exponential(profile.small_payload_mean, rows), 1, 1459).astype(int)
    len_raw = np.where(full_segment, MSS_HEX, 2 * small)

    server_ip = flow_servers[flow, :4]
    client_ip = np.broadcast_to(client, (rows, 4))
    source = np.where(download[:, None], server_ip, client_ip)
    destination = np.where(download[:, None], client_ip, server_ip)
    server_port, client_port = flow_servers[flow, 4], flow_ports[flow]
    moment = [2023, 5, int(rng.integers(1, 29)), int(rng.integers(0, 24)),
              int(rng.integers(0, 60)), int(rng.integers(0, 60))]
    columns = {
        "CLASS": np.full(rows, class_index),
        "LEN_SRC_IP": _ip_text_length(source),
        "LEN_DEST_IP": _ip_text_length(destination),
        **{f"Source_IP{i + 1}": source[:, i] for i in range(4)},
        **{f"Destination_IP{i + 1}": destination[:, i] for i in range(4)},
        "TCP_SPORT": np.where(download, server_port, client_port),
        "TCP_DPORT": np.where(download, client_port, server_port),
        "LEN_RAW": len_raw,
        **{name: np.full(rows, value) for name, value in zip(FEATURES[13:], moment, strict=True)},
    }
    return pa.table({name: pa.array(columns[name], pa.int64()) for name in SCHEMA.names},
                    schema=SCHEMA)


def write_captures(out: Path, rows: int, seed: int = 11, median_capture_rows: int = 2000,
                   apps_per_category: int = 3) -> dict:
    """Write ``rows`` packets as capture files under ``out/<Category>/``; a manifest too."""
    rng = np.random.default_rng(seed)
    profiles = _profiles(rng)
    # The seed's CLASS came from directory listing order: stable here, never trusted.
    class_index = {category: i for i, category in enumerate(rng.permutation(CATEGORIES))}
    written, files, per_category = 0, 0, dict.fromkeys(CATEGORIES, 0)
    while written < rows:
        category = CATEGORIES[files % len(CATEGORIES)]
        size = int(np.clip(rng.lognormal(np.log(median_capture_rows), 0.8), 50,
                           20 * median_capture_rows))
        size = min(size, rows - written)
        app_number = files // len(CATEGORIES) % apps_per_category
        app = f"{category.lower().replace(' ', '_')}_app{app_number}"
        path = out / category / f"{app}_{files:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(capture_table(rng, profiles[category], size, class_index[category]), path)
        written += size
        files += 1
        per_category[category] += size
    manifest = {"rows": written, "files": files, "seed": seed, "rows_per_category": per_category}
    (out / "captures.manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="packets to write")
    parser.add_argument("--out", type=Path, required=True, help="folder for <Category>/ files")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--median-capture-rows", type=int, default=2000)
    args = parser.parse_args(argv)
    manifest = write_captures(args.out, args.rows, args.seed, args.median_capture_rows)
    print(f"wrote {manifest['rows']} packets in {manifest['files']} capture files to {args.out}")


if __name__ == "__main__":
    main()
