"""Run one command and measure it from outside: wall time and peak memory (PSS) of its
process tree."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psutil

POLL_SECONDS = 0.1


def _tree_memory(process: psutil.Process) -> int:
    """The tree's proportional set size: a page that n processes share counts
    1/n in each. Summed RSS counted a forked child's pages twice: a Spark
    driver forks `pgrep` at every executor heartbeat (the process-tree
    metrics), and until the child execs, its RSS is the driver's (10.2 GB
    for a 5 GB training driver in the bench run of 08:33 on 2026-11-25)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_full_info().pss
        except psutil.Error:  # exited between the listing and the reading
            pass
    return total


def measure(command: list[str], log_path: Path, env: dict[str, str] | None = None,
            timeout: float = 3600) -> dict:
    """Wall seconds, peak memory (PSS, MiB, the whole tree: a JVM counts) and the BENCH line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        started = time.perf_counter()
        process = psutil.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        peak = 0
        while process.poll() is None:
            try:
                peak = max(peak, _tree_memory(process))
            except psutil.NoSuchProcess:
                break
            if time.perf_counter() - started > timeout:
                process.kill()
                raise TimeoutError(f"{command[:3]} ran over {timeout}s; see {log_path}")
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - started
    if process.returncode != 0:
        tail = log_path.read_text()[-2000:]
        raise RuntimeError(f"{' '.join(command[:4])} failed ({process.returncode}): {tail}")
    inner = {}
    for line in log_path.read_text().splitlines():
        if line.startswith("BENCH "):
            inner = json.loads(line[len("BENCH "):])
    return {"wall_seconds": round(wall, 2), "peak_memory_mib": round(peak / 2**20), **inner}
