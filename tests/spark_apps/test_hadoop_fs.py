"""The file helpers the jobs list their landing folders with."""

from __future__ import annotations

from spark_apps.hadoop_fs import list_file_tree


def test_list_file_tree_names_each_file_as_hadoop_and_as_a_scan_do(spark, tmp_path):
    landing = tmp_path / "ds=2026-01-01"
    for name in ("Health Fitness/run.parquet", "Video/deep/er.parquet", "stray.parquet",
                 "Video/empty.parquet", "Video/notes.txt", "Video/_SUCCESS.parquet",
                 "Video/.part.parquet", "_temporary/Video/half.parquet"):
        (landing / name).parent.mkdir(parents=True, exist_ok=True)
        (landing / name).write_bytes(b"" if "empty" in name else b"PAR1")

    root, listed = list_file_tree(spark, str(landing), "*.parquet")

    assert root == f"file:{landing}"
    # Hidden files and folders skipped, as Spark skips them; empty files kept.
    assert [(file.path[len(root):], file.file_uri[len(root):]) for file in listed] == [
        ("/Health Fitness/run.parquet", "/Health%20Fitness/run.parquet"),
        ("/Video/deep/er.parquet", "/Video/deep/er.parquet"),
        ("/Video/empty.parquet", "/Video/empty.parquet"),
        ("/stray.parquet", "/stray.parquet"),
    ]
    # A scan names each file by the same URI.
    scanned = spark.read.format("binaryFile").load(listed[0].path).select(
        "_metadata.file_path").first()[0]
    assert scanned == listed[0].file_uri


def test_list_file_tree_of_a_missing_folder_is_empty(spark, tmp_path):
    assert list_file_tree(spark, str(tmp_path / "none"), "*.parquet") == (
        f"file:{tmp_path / 'none'}", [])
