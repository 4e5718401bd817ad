"""The student generator: realistic, streaming, and honest about its defects."""

from __future__ import annotations

import json

import pandas as pd
from dataplatform.generators.students import DEFECT_KINDS, HEADER, generate_rows, write_csv

from spark_apps.students.contract import REJECTION_REASONS


def test_every_defect_is_a_contract_rejection_reason():
    # invalid_utf8 and malformed_quotes are file-level damage, made by the bad-input corpus.
    assert set(DEFECT_KINDS) == set(REJECTION_REASONS) - {"invalid_utf8", "malformed_quotes"}


def test_clean_rows_follow_the_seed_distributions(tmp_path):
    path = tmp_path / "s.csv"
    write_csv(path, 20_000, seed=3)
    df = pd.read_csv(path)
    assert list(df.columns) == HEADER
    assert df["id"].is_unique and df["id"].min() == 1
    assert set(df["grado"]) == set(range(6, 13))
    assert df["grado"].value_counts(normalize=True)[6] > df["grado"].value_counts(
        normalize=True)[12]  # 86 against 30 students in the seed
    assert (df["num_premios"] == 0).mean() > 0.3  # awards skew to 0
    assert df.groupby("grado")["num_premios"].mean()[12] > df.groupby("grado")[
        "num_premios"].mean()[6]
    for score in ("puntaje_mat", "puntaje_ing", "puntaje_ciencias"):
        assert df[score].between(0, 100).all()
        assert 45 < df[score].mean() < 56 and 19 < df[score].std() < 25
    assert df["num_premios"].corr(df["puntaje_ciencias"]) < -0.1


def test_dirty_rows_are_counted_in_the_manifest(tmp_path):
    path = tmp_path / "d.csv"
    manifest = write_csv(path, 5_000, seed=4, dirty_fraction=0.1)
    assert json.loads(path.with_name("d.csv.manifest.json").read_text()) == manifest
    assert 400 < manifest["rows_rejected"] < 600
    assert set(manifest["rejections"]) == set(DEFECT_KINDS)
    assert sum(manifest["rejections"].values()) == manifest["rows_rejected"]


def test_rows_stream_lazily():
    rows = generate_rows(10_000_000, chunk_rows=1_000)
    first = [next(rows) for _ in range(3)]
    assert [fields[0] for fields, _ in first] == ["1", "2", "3"]
