"""Time a parse of the dags folder the way the dag-processor parses it.

The dag-processor first imports the ``airflow.*`` modules each DAG file names
(``parsing_pre_import_modules``), once, then forks a process per parse; the
figure that matters is that per-parse time. Run in a fresh interpreter:

    python -m dataplatform.dag_parse dags/    # prints one JSON line
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time


def parse_stats(dags_folder: str) -> dict:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.file import iter_airflow_imports

    for path in pathlib.Path(dags_folder).glob("*.py"):
        for module in iter_airflow_imports(str(path)):
            __import__(module)
    started = time.perf_counter()
    bag = DagBag(dag_folder=dags_folder)
    wall = time.perf_counter() - started
    return {"wall": wall, "import_errors": bag.import_errors,
            "files": {stat.file: stat.duration.total_seconds() for stat in bag.dagbag_stats}}


def measure_in_fresh_interpreter(dags_folder: pathlib.Path) -> dict:
    result = subprocess.run([sys.executable, "-m", "dataplatform.dag_parse", str(dags_folder)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(parse_stats(sys.argv[1])))
