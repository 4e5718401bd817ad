"""The bench's own arithmetic: task times from a dags-test log, ratios, the table."""

from __future__ import annotations

from bench.run import median_run, task_seconds, with_ratios
from bench.tables import render

LOG = """\
2026-11-23T20:00:32.000000Z [info     ] [DAG TEST] starting task_id=resolve_partition map_index=-1
2026-11-23T20:00:38.500000Z [info     ] [DAG TEST] end task task_id=resolve_partition map_index=-1
2026-11-23T20:00:38.600000Z [info     ] Spark-Submit cmd: spark-submit --master local[*]
2026-11-23T20:00:38.600000Z [info     ] [DAG TEST] starting task_id=clean_students map_index=-1
2026-11-23T20:00:53.100000Z [info     ] [DAG TEST] end task task_id=clean_students map_index=-1
"""


def test_task_seconds_pairs_each_tasks_start_and_end():
    assert task_seconds(LOG) == {"resolve_partition": 6.5, "clean_students": 14.5}


def test_ratios_are_against_the_platform_of_the_same_run():
    results = with_ratios({"platform": {"wall_seconds": 10.0, "peak_memory_mib": 1000},
                           "pandas": {"wall_seconds": 2.5, "peak_memory_mib": 3000}}, "platform")
    assert (results["pandas"]["wall_vs_platform"], results["pandas"]["memory_vs_platform"]) == (
        0.25, 3.0)
    assert results["platform"]["wall_vs_platform"] == 1.0


def test_rendered_table_has_a_row_per_contender():
    report = {"name": "t", "date": "2026-11-23", "bench_seconds": 1.0,
              "machine": {"cpus": 2, "memory_gib": 24, "python": "3.11.7", "java": "17"},
              "suites": {"students": {"1000": with_ratios({
                  "platform": {"wall_seconds": 4.0, "peak_memory_mib": 900},
                  "duckdb": {"wall_seconds": 0.5, "peak_memory_mib": 100}}, "platform")}}}
    table = render(report)
    assert "| 1,000 | platform | 4.0 | 4.0 | 900 | 1.0 | 1.0 |" in table
    assert "| 1,000 | duckdb | 0.5 | 0.5 | 100 | 0.12 | 0.11 |" in table


def test_median_run_is_a_real_run_and_keeps_every_rounds_wall():
    runs = [{"wall_seconds": 69.7, "peak_memory_mib": 1700},
            {"wall_seconds": 59.7, "peak_memory_mib": 1650},
            {"wall_seconds": 61.0, "peak_memory_mib": 1800}]
    assert median_run(runs) == {"wall_seconds": 61.0, "peak_memory_mib": 1800,
                                "walls_seconds": [69.7, 59.7, 61.0]}
    # Two rounds: the faster one, not a mean no run took.
    assert median_run(runs[:2])["wall_seconds"] == 59.7


def test_student_rows_show_every_rounds_wall_and_whether_the_archive_was_mapped():
    report = {"name": "t", "date": "2026-11-24", "bench_seconds": 1.0,
              "machine": {"cpus": 2, "memory_gib": 24, "python": "3.11.7", "java": "17",
                          "spark_class_archive": "/venv/a.jsa"},
              "suites": {"students": {"1000": with_ratios({
                  "platform": median_run([{"wall_seconds": 5.0, "peak_memory_mib": 900},
                                          {"wall_seconds": 4.0, "peak_memory_mib": 800},
                                          {"wall_seconds": 4.5, "peak_memory_mib": 850}]),
                  "seed_approach": median_run([{"wall_seconds": 9.0, "peak_memory_mib": 700}])},
                  "platform")}}}
    table = render(report)
    assert "| 1,000 | platform | 4.5 | 5.0, 4.0, 4.5 | 850 | 1.0 | 1.0 |" in table
    assert "| 1,000 | seed_approach | 9.0 | 9.0 | 700 | 2.0 | 0.82 |" in table
    assert "Spark class archive: /venv/a.jsa." in table
    report["machine"]["spark_class_archive"] = None
    assert "Spark class archive: none." in render(report)


def test_orchestration_table_has_a_row_per_dag_and_input():
    run = {"wall_seconds": 50.0, "spark_jobs_seconds": 40.0, "overhead_seconds": 10.0,
           "overhead_share": 0.2}
    report = {"name": "t", "date": "2026-11-24", "bench_seconds": 1.0,
              "machine": {"cpus": 2, "memory_gib": 24, "python": "3.11.7", "java": "17"},
              "suites": {"orchestration": {
                  "dags_folder_parse_seconds": 0.3, "parse_seconds_per_file": {},
                  "runs": [{"dag_id": "students_nightly", "rows": "sample", **run},
                           {"dag_id": "students_nightly", "rows": 10_000_000, **run}]}}}
    table = render(report)
    assert "| students_nightly | committed sample | 50.0 | 40.0 | 10.0 | 0.2 |" in table
    assert "| students_nightly | 10,000,000 generated rows | 50.0 | 40.0 | 10.0 | 0.2 |" in table


def test_traffic_rows_show_every_rounds_wall_and_the_median_rounds_figures():
    def run(wall, train, f1, memory):
        return {"wall_seconds": wall, "peak_memory_mib": memory, "train_seconds": train,
                "f1_random": f1, "f1_holdout_capture": round(f1 - 0.1, 2)}

    report = {"name": "t", "date": "2026-11-25", "bench_seconds": 1.0,
              "machine": {"cpus": 2, "memory_gib": 24, "python": "3.11.7", "java": "17"},
              "suites": {"traffic": {"10000000": with_ratios({
                  "platform": median_run([run(76.0, 8.0, 0.61, 5100), run(74.0, 9.0, 0.62, 5000),
                                          run(75.0, 10.0, 0.63, 5200)]),
                  "seed_pipeline": median_run([
                      {"wall_seconds": wall, "peak_memory_mib": 1600, "train_seconds": 115.0,
                       "f1_random": 0.5} for wall in (230.0, 225.0, 220.0)])},
                  "platform")}}}
    table = render(report)
    # The median round's own figures, not the fastest round's.
    assert ("| 10,000,000 | platform | 75.0 | 76.0, 74.0, 75.0 | 10.0 | 0.63 | 0.53 | 5,200 "
            "| 1.0 | 1.0 |") in table
    assert ("| 10,000,000 | seed_pipeline | 225.0 | 230.0, 225.0, 220.0 | 115.0 | 0.5 | - "
            "| 1,600 | 3.0 | 0.31 |") in table
