"""Published tables of ``contracts.md``: columns, types and partition keys.

The one definition the publisher checks every table against, for the serving
database (SQLAlchemy) and the warehouse Parquet (Arrow) alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import sqlalchemy as sa

# Arrow and SQL types of each kind of column.
_TYPES = {
    "date": (pa.date32(), sa.Date()),
    "text": (pa.string(), sa.String(128)),
    "longtext": (pa.string(), sa.Text()),
    "int": (pa.int64(), sa.BigInteger()),
    "float": (pa.float64(), sa.Float(precision=53)),
    "bool": (pa.bool_(), sa.Boolean()),
}


@dataclass(frozen=True)
class PublishedTable:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, kind), in contract order
    # Columns naming one published slice: the warehouse folders
    # (``ds=.../dataset=...``) and the rows replaced together in the database.
    partition_keys: tuple[str, ...] = ("ds",)

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def data_columns(self) -> list[str]:
        """Columns stored inside warehouse files (the keys are the folders)."""
        return [name for name in self.column_names if name not in self.partition_keys]

    def arrow_schema(self, columns: list[str] | None = None) -> pa.Schema:
        kinds = dict(self.columns)
        return pa.schema([(name, _TYPES[kinds[name]][0]) for name in columns or self.column_names])

    def sql_table(self, metadata: sa.MetaData) -> sa.Table:
        return sa.Table(
            self.name, metadata,
            *(sa.Column(name, _TYPES[kind][1], nullable=name not in self.partition_keys)
              for name, kind in self.columns),
            sa.Index(f"ix_{self.name}_partition", *self.partition_keys),
        )


def _stat_columns(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, "float") for name in names)


_AVERAGES = _stat_columns("avg_puntaje_mat", "avg_puntaje_ing", "avg_puntaje_ciencias",
                          "avg_num_premios")

TABLES = {table.name: table for table in (
    PublishedTable("students_score_summary", (
        ("ds", "date"), ("subject", "text"), ("n", "int"),
        *_stat_columns("mean", "stddev", "min", "max"))),
    PublishedTable("students_by_grade", (
        ("ds", "date"), ("grado", "int"), ("n_students", "int"), *_AVERAGES)),
    PublishedTable("students_by_programa", (
        ("ds", "date"), ("programa", "text"), ("n_students", "int"), *_AVERAGES)),
    PublishedTable("students_awards_correlation", (
        ("ds", "date"), ("subject", "text"), ("n", "int"), ("pearson_r", "float"))),
    PublishedTable("traffic_model_metrics", (
        ("ds", "date"), ("model_version", "text"), ("algorithm", "text"), ("split", "text"),
        *_stat_columns("accuracy", "weighted_precision", "weighted_recall", "f1"),
        ("train_rows", "int"), ("test_rows", "int"), ("train_seconds", "float"),
        ("promoted", "bool")),
        partition_keys=("ds", "model_version")),
    PublishedTable("traffic_class_metrics", (
        ("ds", "date"), ("model_version", "text"), ("split", "text"), ("category", "text"),
        *_stat_columns("precision", "recall", "f1"), ("support", "int")),
        partition_keys=("ds", "model_version")),
    PublishedTable("traffic_confusion_matrix", (
        ("ds", "date"), ("model_version", "text"), ("split", "text"), ("actual", "text"),
        ("predicted", "text"), ("count", "int")),
        partition_keys=("ds", "model_version")),
    PublishedTable("traffic_executor_scaling", (
        ("ds", "date"), ("executors", "int"), ("train_seconds", "float"),
        ("total_seconds", "float"), ("f1", "float")),
        partition_keys=("ds",)),
    PublishedTable("data_quality", (
        ("ds", "date"), ("dataset", "text"), ("rows_in", "int"), ("rows_clean", "int"),
        ("rows_rejected", "int"), ("files_in", "int"), ("files_rejected", "int")),
        partition_keys=("ds", "dataset")),
    PublishedTable("data_quality_rejections", (
        ("ds", "date"), ("dataset", "text"), ("reason", "text"), ("rows", "int")),
        partition_keys=("ds", "dataset")),
    # A run's metrics as Prometheus sees them: labels besides dataset and ds,
    # as a JSON object (dataplatform.metrics).
    PublishedTable("pipeline_metrics", (
        ("ds", "date"), ("dataset", "text"), ("metric", "text"), ("labels", "longtext"),
        ("value", "float")),
        partition_keys=("ds", "dataset")),
)}
