"""The programs the platform is measured against, each run in a process of its own.

Each prints one last line ``BENCH {json}`` with what it measured inside
(training time, F1); wall time and peak memory are measured from outside.
"""

import json


def report(**values) -> None:
    print("BENCH " + json.dumps(values), flush=True)
