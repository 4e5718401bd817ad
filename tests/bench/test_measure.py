"""The bench's memory reading of a process tree."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from bench.measure import _tree_memory

# The parent holds 200 MiB; its child either stays a fork of it (the pages
# shared copy-on-write, as a JVM's child before it execs) or execs a program.
HOLD = "import os, subprocess, sys, time; block = bytearray(200 << 20); "
FORK = HOLD + "pid = os.fork(); time.sleep(30); os._exit(0) if pid == 0 else os.waitpid(pid, 0)"
EXEC = HOLD + "subprocess.run(['sleep', '30'])"


def _tree_memory_once_both_run(code: str) -> tuple[int, int]:
    """``(the tree's memory, the parent's RSS)`` once the child is there."""
    process = psutil.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not process.children() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.children(), "the child never started: nothing to measure"
        time.sleep(0.5)  # the child has started (or exec'd)
        return _tree_memory(process), process.memory_info().rss
    finally:
        for member in [*process.children(recursive=True), process]:
            member.kill()
        process.wait()


def test_a_fork_that_has_not_execd_is_not_counted_twice():
    tree, parent = _tree_memory_once_both_run(FORK)
    assert parent > 200 << 20
    assert tree == parent


def test_a_child_that_execd_counts():
    tree, parent = _tree_memory_once_both_run(EXEC)
    assert parent < tree < parent + (50 << 20)  # sleep's own few MiB
