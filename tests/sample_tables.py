"""Small published tables of both pipelines, made by hand, for tests of what reads them."""

from __future__ import annotations

import pyarrow as pa
from dataplatform.publish import publish_slice
from dataplatform.settings import PlatformSettings
from dataplatform.zte_tad import traffic_tables

DS = "2026-03-04"
VERSION = "20260304-decision_tree-flow-0badc0de"


def quality(rows_in: int, rejections: dict[str, int]) -> dict[str, pa.Table]:
    rejected = sum(rejections.values())
    return {
        "data_quality": pa.table({"rows_in": [rows_in], "rows_clean": [rows_in - rejected],
                                  "rows_rejected": [rejected], "files_in": [3],
                                  "files_rejected": [1]}),
        "data_quality_rejections": pa.table({
            "reason": pa.array(list(rejections), pa.string()),
            "rows": pa.array(list(rejections.values()), pa.int64())}),
    }


def evaluation(f1_random: float, f1_held_out: float) -> dict:
    def split(f1: float) -> dict:
        return {"accuracy": f1 + 0.01, "weighted_precision": f1 + 0.02,
                "weighted_recall": f1 + 0.01, "f1": f1, "train_rows": 80, "test_rows": 20,
                "train_seconds": 1.5,
                "per_class": [{"category": "Music", "precision": f1, "recall": f1, "f1": f1,
                               "support": 20}],
                "confusion": [("Music", "Music", 20)]}

    return {"algorithm": "decision_tree",
            "splits": {"random": split(f1_random), "holdout_capture": split(f1_held_out)}}


STUDENT_TABLES = {
    "students_score_summary": pa.table({
        "subject": ["puntaje_mat", "num_premios"], "n": [3, 3],
        "mean": [70.0, 1.0 / 3.0], "stddev": [10.0, 0.5773502691896257],
        "min": [60.0, 0.0], "max": [80.0, 1.0]}),
    "students_by_grade": pa.table({
        "grado": [9, 10], "n_students": [2, 1], "avg_puntaje_mat": [65.0, 80.0],
        "avg_puntaje_ing": [70.5, 90.0], "avg_puntaje_ciencias": [50.25, 60.0],
        "avg_num_premios": [0.5, 0.0]}),
    "students_by_programa": pa.table({
        "programa": ["Academico", "Tecnico"], "n_students": [2, 1],
        "avg_puntaje_mat": [65.0, 80.0], "avg_puntaje_ing": [70.5, 90.0],
        "avg_puntaje_ciencias": [50.25, 60.0], "avg_num_premios": [0.5, 0.0]}),
    "students_awards_correlation": pa.table({
        "subject": ["puntaje_mat"], "n": [3], "pearson_r": [-0.8660254037844387]}),
}


def publish_traffic_date(settings: PlatformSettings, ds: str = DS) -> None:
    tables = traffic_tables(evaluation(0.9, 0.6), promoted=True)
    tables.update(quality(100, {"file_unreadable": 4, "missing_column": 2}))
    publish_slice(settings.data_dir, settings.warehouse_url,
                  {"ds": ds, "dataset": "zte_tad", "model_version": VERSION}, tables)


def publish_both(settings: PlatformSettings, rows_in: int) -> None:
    students = {**STUDENT_TABLES, **quality(rows_in, {"id_missing": 1})}
    publish_slice(settings.data_dir, settings.warehouse_url,
                  {"ds": DS, "dataset": "students"}, students)
    traffic = {**traffic_tables(evaluation(0.9, 0.6), promoted=False),
               **quality(rows_in * 10, {"file_unreadable": 7})}
    publish_slice(settings.data_dir, settings.warehouse_url,
                  {"ds": DS, "dataset": "zte_tad", "model_version": VERSION}, traffic)
