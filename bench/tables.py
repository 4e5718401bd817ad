"""The Markdown tables of a bench report, written between markers in bench/README.md."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).with_name("README.md")
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _table(header: list[str], rows: list[list]) -> list[str]:
    def cell(value) -> str:
        if value is None:
            return "-"
        return f"{value:,}" if isinstance(value, int) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def _walls(result: dict) -> str:
    """Each round's wall, in the order they ran (a result of one run has none)."""
    return ", ".join(str(wall) for wall in result.get("walls_seconds", [result["wall_seconds"]]))


def _archive_note(machine: dict) -> str:
    """Whether the platform's drivers mapped a Spark class archive (runs
    before 2026-11-24 21:30 did not record it)."""
    if "spark_class_archive" not in machine:
        return ""
    return f" Spark class archive: {machine['spark_class_archive'] or 'none'}."


def render(report: dict) -> str:
    suites = report["suites"]
    machine = report["machine"]
    lines = [f"Run `{report['name']}` of {report['date']} on {machine['cpus']} cores, "
             f"{machine['memory_gib']} GiB, Python {machine['python']}, {machine['java']}; "
             f"{report['bench_seconds']} s in all. Ratios are against the platform in the "
             "same run (wall x: how many times the platform's wall time)."
             + _archive_note(machine), ""]
    if "students" in suites:
        lines += ["### Student statistics", ""]
        lines += _table(
            ["rows", "contender", "wall s (median)", "every round s",
             "peak memory MiB, RSS (median round)", "wall x", "memory x"],
            [[int(rows), name, r["wall_seconds"], _walls(r), r["peak_memory_mib"],
              r["wall_vs_platform"], r["memory_vs_platform"]]
             for rows, contenders in suites["students"].items()
             for name, r in contenders.items()]) + [""]
    if "traffic" in suites:
        lines += ["### Traffic training", ""]
        lines += _table(
            ["rows", "contender", "wall s (median)", "every round s", "train s (median round)",
             "F1 random", "F1 held-out captures", "peak memory MiB, RSS (median round)",
             "wall x", "memory x"],
            [[int(rows), name, r["wall_seconds"], _walls(r), r.get("train_seconds"),
              r.get("f1_random"), r.get("f1_holdout_capture"), r["peak_memory_mib"],
              r["wall_vs_platform"], r["memory_vs_platform"]]
             for rows, contenders in suites["traffic"].items()
             for name, r in contenders.items()]) + [""]
    if "orchestration" in suites:
        o = suites["orchestration"]
        lines += ["### Orchestration overhead", "",
                  f"dags folder parse: {o['dags_folder_parse_seconds']} s "
                  f"(per file: {o['parse_seconds_per_file']})", ""]
        lines += _table(
            ["DAG", "input", "`airflow dags test` wall s", "Spark jobs s", "overhead s",
             "overhead share"],
            [[run["dag_id"], "committed sample" if run["rows"] == "sample"
              else f"{run['rows']:,} generated rows", run["wall_seconds"],
              run["spark_jobs_seconds"], run["overhead_seconds"], run["overhead_share"]]
             for run in o["runs"]]) + [""]
    if "scheduled" in suites:
        lines += ["### Scheduled runs (scheduler, LocalExecutor, SQLite metadata)", "",
                  "Each nightly DAG on its committed sample, one new date a round, "
                  "against the same Spark jobs by spark-submit alone (their median round). "
                  "Wall: from the run's queueing to its end.", ""]
        lines += _table(
            ["DAG", "round", "wall s", "Spark tasks s", "other tasks s", "between tasks s",
             "bare spark-submits s", "overhead: wall - bare s", "overhead share of the wall"],
            [[dag_id, run["round"], run["wall_seconds"], run["spark_tasks_seconds"],
              run["other_tasks_seconds"], run["between_tasks_seconds"],
              s["bare_spark_submits"]["wall_seconds"], run["overhead_seconds"],
              run["overhead_share"]]
             for dag_id, s in suites["scheduled"].items() for run in s["runs"]]) + [""]
        lines += ["Median run: " + "; ".join(
            f"{dag_id} {s['median_run']['overhead_share']:.1%} "
            f"({s['median_run']['overhead_seconds']} s of {s['median_run']['wall_seconds']} s)"
            for dag_id, s in suites["scheduled"].items()) + ".", ""]
    if "scaling" in suites:
        lines += ["### Scaling on the local standalone cluster (executors of one core)", ""]
        for rows, s in suites["scaling"].items():
            lines += _table(
                ["rows", "executors", "registered", "wall s", "train s", "F1 held-out"],
                [[int(rows), int(n), s[n]["executors_registered"], s[n]["wall_seconds"],
                  s[n]["train_seconds"], s[n]["f1_holdout_capture"]] for n in ("1", "2")])
            lines += ["", f"Speed-up 1 -> 2 executors: wall {s['speedup_wall']}x, "
                      f"training {s['speedup_train']}x.", ""]
    return "\n".join(lines)


def update_readme(report: dict) -> None:
    text = README.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{START}\n{render(report)}\n{END}{tail}")
