"""Run one command and measure it from outside: wall time and peak memory (RSS) of its
process tree."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psutil

POLL_SECONDS = 0.1


def _tree_memory(process: psutil.Process) -> int:
    """The summed RSS of the tree, less forks that have not exec'd.

    A Spark driver forks `pgrep` at every executor heartbeat (the
    process-tree metrics). Until the child execs, it runs the driver's
    command line on the driver's pages, shared copy-on-write, and its RSS is
    the driver's: summed RSS counted a 5 GB training driver twice (10.2 GB in
    the bench run of 08:33 on 2026-11-25). A child with its parent's command
    line is skipped. The tree's PSS would count shared pages once, but
    reading it ten times a second walks the JVM's page tables and slowed the
    10M training 48.6 -> 61.0 s (bench run of 09:03).
    """
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            if member is not process and member.cmdline() == member.parent().cmdline():
                continue
            total += member.memory_info().rss
        except (psutil.Error, AttributeError):  # exited while read (no parent any more)
            pass
    return total


def measure(command: list[str], log_path: Path, env: dict[str, str] | None = None,
            timeout: float = 3600) -> dict:
    """Wall seconds, peak memory (RSS, MiB, the whole tree: a JVM counts) and the BENCH line."""
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
