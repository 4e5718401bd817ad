"""The file helpers the jobs list their landing folders with."""

from __future__ import annotations

from spark_apps.hadoop_fs import list_file_tree

LISTED = ("Health Fitness/run.parquet", "Video/100%.parquet", "Video/a#b?.parquet",
          "Video/c+d=e.parquet", "Vidéo/été.parquet", "Video/deep/er.parquet", "stray.parquet",
          "Video/empty.parquet")
SKIPPED = ("Video/notes.txt", "Video/_SUCCESS.parquet", "Video/.part.parquet",
           "_temporary/Video/half.parquet", ".staging/Video/half.parquet")


def test_list_file_tree_names_each_file_as_hadoop_and_as_a_scan_do(spark, tmp_path):
    landing = tmp_path / "ds=2026-01-01"
    for name in LISTED + SKIPPED:
        (landing / name).parent.mkdir(parents=True, exist_ok=True)
        (landing / name).write_bytes(b"" if "empty" in name else b"PAR1")

    root, listed = list_file_tree(spark, str(landing), "*.parquet")

    assert root == f"file:{landing}"
    # Hidden files and folders skipped, as Spark skips them; empty files kept.
    assert [file.path for file in listed] == sorted(f"{root}/{name}" for name in LISTED)
    # Each URI is the one a scan of the file names it by (a scan skips empty files).
    scanned = spark.read.format("binaryFile").option("recursiveFileLookup", "true").option(
        "pathGlobFilter", "*.parquet").load(root).select("_metadata.file_path")
    assert sorted(row[0] for row in scanned.collect()) == sorted(
        file.file_uri for file in listed if "empty" not in file.path)
    assert f"{root}/Health%20Fitness/run.parquet" in {file.file_uri for file in listed}


def test_list_file_tree_of_a_folder_without_matches_or_missing_is_empty(spark, tmp_path):
    (tmp_path / "Video").mkdir()
    (tmp_path / "Video" / "notes.txt").write_text("not a capture")
    assert list_file_tree(spark, str(tmp_path), "*.parquet") == (f"file:{tmp_path}", [])
    assert list_file_tree(spark, str(tmp_path / "none"), "*.parquet") == (
        f"file:{tmp_path / 'none'}", [])
