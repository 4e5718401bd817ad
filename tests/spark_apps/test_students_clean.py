"""The student clean job: header rules, every rejection reason, accounting."""

from __future__ import annotations

import json

import pytest
from pyspark.testing import assertDataFrameEqual

from spark_apps.students.clean import (
    LandingError,
    block_line_offsets,
    extract_lines,
    ids_may_repeat,
    normalise_programa,
    read_headers,
    run_clean,
    summarise_line_counts,
    transform_checked,
    transform_clean_rows,
    transform_duplicate_keys,
    transform_id_counts,
    transform_mark_duplicates,
    transform_parse_rows,
    transform_repeated_ids,
    transform_rows,
    transform_validate,
)
from spark_apps.students.contract import (
    REJECTION_REASONS,
    HeaderError,
    normalise_column_name,
    parse_header,
    required_column_positions,
)

HEADER = "id,nombre,grado,num_premios,programa,puntaje_mat,puntaje_ing,puntaje_ciencias"
COLUMNS = parse_header(HEADER)
GOOD = "1,Ana Ruiz,7,0,General,50,60,70"


@pytest.mark.parametrize("raw, expected", [
    ("id", "id"),
    ("  Num Premios ", "num_premios"),  # trim, lower, space -> _
    ("Puntaje-Matemáticas", "puntaje_matematicas"),  # accents stripped
    ("PUNTAJE__ING", "puntaje_ing"),  # runs collapse to one _
    ("(grado)", "grado"),  # no leading or trailing _
    ("Año", "ano"),  # ñ is n with a tilde
])
def test_normalise_column_name(raw, expected):
    assert normalise_column_name(raw) == expected


def test_parse_header_strips_bom_and_quotes():
    assert parse_header('\ufeffID,"Nombre",Grado') == ["id", "nombre", "grado"]


def test_missing_required_columns_are_named():
    header = parse_header("id,nombre,grado,programa,puntaje_mat,puntaje_ing")
    with pytest.raises(HeaderError) as error:
        required_column_positions(header, "landing/a.csv")
    message = str(error.value)
    assert message.startswith("landing/a.csv: line 1: missing required column(s) "
                              "num_premios, puntaje_ciencias;")


def test_required_columns_found_in_any_order():
    header = parse_header("puntaje_ciencias,extra,id,nombre,grado,num_premios,programa,"
                          "puntaje_mat,puntaje_ing")
    assert required_column_positions(header, "x")["puntaje_ciencias"] == 0
    assert required_column_positions(header, "x")["id"] == 2


def _validated(spark, lines: list[str], header: str = HEADER):
    """Run parse, validate and duplicates over the data lines of one inline file.

    ``mid`` is the line's index in ``lines``, as a scan of one split numbers it.
    """
    rows = [(0, 0, mid, line) for mid, line in enumerate(lines)]
    scanned = spark.createDataFrame(rows, "file_index INT, block_start LONG, mid LONG, "
                                          "value STRING")
    parsed = transform_parse_rows(scanned, [parse_header(header)])
    rows = transform_rows(transform_checked(transform_validate(parsed)), header_mids=[])
    duplicates = transform_duplicate_keys(rows, transform_repeated_ids(rows))
    return transform_mark_duplicates(rows, duplicates)


def _replace(line: str, column: str, value: str) -> str:
    fields = line.split(",")
    fields[COLUMNS.index(column)] = value
    return ",".join(fields)


REASON_CASES = [
    # (line, reason, why)
    (GOOD, None, "a clean row"),
    ('1,"Ruiz, Ana",7,0,General,50,60,70', None, "a quoted comma is one field"),
    ('1,"Ana ""La Flaca"" Ruiz",7,0,General,50,60,70', None, "doubled quotes escape"),
    (" 1 , Ana ,7, 0 ,General, 50 ,60,70", None, "values are trimmed"),
    (_replace(GOOD, "puntaje_mat", "1e2"), None, "scientific notation is a number"),
    (_replace(GOOD, "puntaje_mat", "99.5"), None, "scores may be fractional"),
    ("1,Ana,7,0,General,50,60", "wrong_field_count", "one field short"),
    (GOOD + ",9", "wrong_field_count", "one field too many"),
    ('1,"Ana,7,0,General,50,60,70', "malformed_quotes", "a quote never closed"),
    ('1,Ana "La" Ruiz,7,0,General,50,60,70', "malformed_quotes", "a stray quote"),
    (_replace(GOOD, "id", ""), "id_missing", "no id"),
    (_replace(GOOD, "id", "1.0"), "id_not_integer", "ids are integers"),
    (_replace(GOOD, "id", "(1"), "id_not_integer", "the seed's SQL dump"),
    (_replace(GOOD, "id", "5\u2028"), "id_not_integer",
     "a line separator after the digits: Java's $ would have let it through"),
    (_replace(GOOD, "id", "007"), None, "leading zeros: not as Spark writes it, still an integer"),
    (_replace(GOOD, "id", "+5"), None, "a plus sign: not as Spark writes it, still an integer"),
    (_replace(GOOD, "id", "1000000000000000000"), "id_not_integer",
     "19 digits: a long holds it, the 18-digit pattern does not"),
    (_replace(GOOD, "id", "0"), "id_not_positive", "ids start at 1"),
    (_replace(GOOD, "id", "-4"), "id_not_positive", "negative id"),
    (_replace(GOOD, "grado", ""), "grado_missing", "no grade"),
    (_replace(GOOD, "grado", "NULL"), "grado_not_integer", "the text NULL is not a grade"),
    (_replace(GOOD, "grado", "7.0"), "grado_not_integer", "grades are integers"),
    (_replace(GOOD, "grado", "0"), "grado_out_of_range", "below 1"),
    (_replace(GOOD, "grado", "13"), "grado_out_of_range", "above 12"),
    (_replace(GOOD, "num_premios", ""), "num_premios_missing", "no award count"),
    (_replace(GOOD, "num_premios", "dos"), "num_premios_not_integer", "a word"),
    (_replace(GOOD, "num_premios", "-1"), "num_premios_negative", "below 0"),
    (_replace(GOOD, "num_premios", "2147483648"), "num_premios_too_large",
     "beyond a 32-bit integer: a crash under ANSI casts otherwise"),
    (_replace(GOOD, "num_premios", "2147483647"), None, "the largest award count kept"),
    (_replace(GOOD, "puntaje_mat", ""), "puntaje_mat_missing", "no maths score"),
    (_replace(GOOD, "puntaje_mat", "NaN"), "puntaje_mat_not_number", "NaN is not a score"),
    (_replace(GOOD, "puntaje_mat", "50\u2029"), "puntaje_mat_not_number",
     "a paragraph separator after the score"),
    (_replace(GOOD, "puntaje_mat", "100.5"), "puntaje_mat_out_of_range", "above 100"),
    (_replace(GOOD, "puntaje_mat", "1e300"), "puntaje_mat_out_of_range",
     "a number no long holds: try_cast, not a crash"),
    (_replace(GOOD, "puntaje_mat", "-0"), None, "minus zero is zero"),
    (_replace(GOOD, "puntaje_ing", ""), "puntaje_ing_missing", "no English score"),
    (_replace(GOOD, "puntaje_ing", "Infinity"), "puntaje_ing_not_number", "not finite"),
    (_replace(GOOD, "puntaje_ing", "-0.1"), "puntaje_ing_out_of_range", "below 0"),
    (_replace(GOOD, "puntaje_ciencias", ""), "puntaje_ciencias_missing", "no science score"),
    (_replace(GOOD, "puntaje_ciencias", "70)"), "puntaje_ciencias_not_number",
     "the seed's dump kept a ) on the last field"),
    (_replace(GOOD, "puntaje_ciencias", "101"), "puntaje_ciencias_out_of_range", "above 100"),
    (_replace(GOOD, "id", "x") + ",9", "wrong_field_count", "the first failing check wins"),
]


def test_every_reason_has_a_case():
    covered = {reason for _, reason, _ in REASON_CASES} | {"id_duplicate", "invalid_utf8"}
    assert covered - {None} == set(REJECTION_REASONS)


@pytest.mark.parametrize("line, reason, why", REASON_CASES, ids=[c[2] for c in REASON_CASES])
def test_rejection_reason(spark, line, reason, why):
    (row,) = _validated(spark, [line]).collect()
    assert row.reject_reason == reason


def test_duplicate_ids_keep_the_first_clean_occurrence(spark):
    lines = [
        "5,A,7,0,General,50,60,70",    # kept
        "6,B,7,0,General,50,60,999",   # rejected for its score
        "5,C,7,0,General,50,60,70",    # duplicate of the first line
        "6,D,7,0,General,50,60,70",    # kept: the earlier 6 was not clean
    ]
    reasons = {row.mid: row.reject_reason for row in _validated(spark, lines).collect()}
    assert reasons == {0: None, 1: "puntaje_ciencias_out_of_range", 2: "id_duplicate", 3: None}


@pytest.mark.parametrize("ids, distinct", [
    ([], 0),
    ([1, 2, 3], 3),
    # Repeats inside a word and across words, the words' edges (63, 64, 127)
    # and ids too far apart to share a word.
    ([1, 2, 2, 63, 64, 64, 127, 128, 10**17, 10**17, 2**62], 8),
])
def test_id_counts_are_exact_across_words(spark, ids, distinct):
    # A rejected row's id (5, in none of the lists) must not count.
    rows = spark.createDataFrame([(i, None) for i in ids] + [(5, "grado_missing")],
                                 "id BIGINT, reject_reason STRING")
    (counts,) = transform_id_counts(rows).collect()
    assert counts.distinct_ids == distinct


@pytest.mark.parametrize("ids, may_repeat", [
    ([], False),
    ([1, 2, 3], False),
    ([1, 2, 2], True),
    ([1, 10**17], False),               # sparse ids are proven too
    ([10**17, 10**17], True),
])
def test_ids_may_repeat(spark, ids, may_repeat):
    rows = spark.createDataFrame([(i, None) for i in ids] + [(7, "id_missing")],
                                 "id BIGINT, reject_reason STRING")
    assert ids_may_repeat(rows, len(ids)) is may_repeat


def test_clean_rows_are_typed_and_nameless(spark):
    lines = ["7,Ana Ruiz,11,3, académico ,50.5,60,70", "8,Luis,6,0,VOCACIONAL,0,100,1"]
    clean = transform_clean_rows(_validated(spark, lines))
    expected = spark.createDataFrame(
        [(7, 11, 3, "Academico", 50.5, 60.0, 70.0), (8, 6, 0, "Vocacional", 0.0, 100.0, 1.0)],
        "id BIGINT, grado INT, num_premios INT, programa STRING, "
        "puntaje_mat DOUBLE, puntaje_ing DOUBLE, puntaje_ciencias DOUBLE")
    assertDataFrameEqual(clean, expected)
    assert "nombre" not in clean.columns


@pytest.mark.parametrize("raw, expected", [
    ("académico", "Academico"),
    ("  GENERAL ", "General"),
    ("vocacional", "Vocacional"),
    ("Técnico Agrícola", "Tecnico agricola"),
    # Letters with no accent to strip stay, and keep their case mapping
    # under either of Spark's (session.BASE_CONF picks the JVM's).
    ("øKONOMI", "Økonomi"),
    ("ÆSTHETICA", "Æsthetica"),
    ("SMØRREBRØD", "Smørrebrød"),
    ("", None),
])
def test_normalise_programa(spark, raw, expected):
    (row,) = spark.createDataFrame([(raw,)], "programa STRING").select(
        normalise_programa("programa").alias("p")).collect()
    assert row.p == expected


# HotSpot runs a method of more than 8,000 bytes of bytecode interpreted: it
# does not compile it (-XX:+DontCompileHugeMethods, the default). A scan
# whose generated method crossed that ran about 3.5 times slower
# (bench/README.md); a check added to the scan can cross it unnoticed.
JIT_HUGE_METHOD_BYTES = 8000


# 1 file: no lookup; 8: the path compared in turn; 9: a broadcast join.
@pytest.mark.parametrize("files", [1, 8, 9])
def test_the_scans_generated_code_stays_within_what_the_jit_compiles(spark, tmp_path, files):
    paths = []
    for index in range(files):
        path = tmp_path / f"part {index}.csv"
        path.write_text(HEADER + "\n" + GOOD + "\n")
        paths.append(f"file:{path}")
    checked = transform_checked(transform_validate(transform_parse_rows(
        extract_lines(spark, paths), read_headers(spark, paths))))
    # Adaptive execution plans a join only as it runs; the generated code is the same.
    adaptive = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        generated = checked._jdf.queryExecution().debug().codegenToSeq()
        largest = [generated.apply(i)._3().maxMethodCodeSize() for i in range(generated.size())]
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", adaptive)
    assert largest and max(largest) < JIT_HUGE_METHOD_BYTES, largest


def test_block_line_offsets_number_lines_across_splits():
    blocks = [
        {"file_index": 1, "block_start": 0, "lines": 3, "first_mid": 40},
        {"file_index": 0, "block_start": 128, "lines": 5, "first_mid": 7},
        {"file_index": 0, "block_start": 0, "lines": 10, "first_mid": 0},
        {"file_index": 0, "block_start": 256, "lines": 2, "first_mid": 90},
    ]
    assert sorted(block_line_offsets(blocks)) == [
        (0, 0, 0, 1), (0, 128, 7, 11), (0, 256, 90, 16), (1, 0, 40, 1)]


def test_summarise_line_counts_takes_headers_out_and_folds_splits():
    def group(index, start, blank, reason, lines, first_mid):
        return {"file_index": index, "block_start": start, "blank": blank,
                "reject_reason": reason, "lines": lines, "first_mid": first_mid}

    summary = summarise_line_counts([
        group(0, 0, False, "id_not_integer", 2, 0),  # the header and one bad row
        group(0, 0, False, None, 5, 1),
        group(0, 0, True, "id_missing", 1, 4),
        group(0, 128, False, None, 3, 50),
        group(1, 0, False, "id_not_integer", 1, 80),  # a header alone
    ])
    assert sorted((b["file_index"], b["block_start"], b["lines"], b["first_mid"])
                  for b in summary.blocks) == [(0, 0, 8, 0), (0, 128, 3, 50), (1, 0, 1, 80)]
    assert sorted(summary.header_mids) == [0, 80]
    assert summary.blank_lines == 1
    assert summary.reason_counts == {"id_not_integer": 1, None: 8}


# ----------------------------------------------------------- whole job on files


def _land(data_dir, ds: str, files: dict[str, bytes]) -> None:
    landing = data_dir / "landing" / "students" / f"ds={ds}"
    landing.mkdir(parents=True)
    for name, content in files.items():
        (landing / name).write_bytes(content)


def _quarantined(data_dir, ds):
    import csv

    folder = data_dir / "quarantine" / "students" / f"ds={ds}" / "rows"
    rows = []
    for part in sorted(folder.glob("part-*.csv")):
        with open(part, newline="", encoding="utf-8", errors="replace") as handle:
            rows += list(csv.DictReader(handle))
    return [(r["source_file"].rsplit("/", 1)[1], int(r["line_number"]), r["reason"]) for r in rows]


def test_run_clean_accounts_for_every_row_with_file_and_line(spark, data_dir):
    ds = "2026-01-05"
    _land(data_dir, ds, {
        # BOM, reordered columns and an extra column; a blank line is not a row.
        "a.csv": ("\ufeffNombre,ID,Grado,Num Premios,Programa,Puntaje Mat,Puntaje Ing,"
                  "Puntaje Ciencias,Comentario\n"
                  "Ana,1,7,0,General,50,60,70,x\n"
                  "\n"
                  "Luis,2,NULL,0,General,50,60,70,x\n").encode(),
        # A space in the name: the scan names the file "b%20x.csv".
        "b x.csv": (HEADER + "\n1,Dup,7,0,General,50,60,70\n3,Eva,8,1,General,50,60,70\n"
                    ).encode() + b"4,Bad\xff,8,1,General,50,60,70\n",
        # Empty, and listed between the two others: the readable files'
        # indices must not count it.
        "a0.csv": b"",
    })
    handed_over = []
    report = run_clean(spark, ds, str(data_dir), on_clean_rows=lambda clean: handed_over.append(
        sorted(row.id for row in clean.collect())))
    assert handed_over == [[1, 3]]  # the statistics get exactly the clean rows
    assert {k: report[k] for k in ("files_in", "files_rejected", "rows_in", "rows_clean",
                                   "rows_rejected", "blank_lines")} == {
        "files_in": 3, "files_rejected": 1, "rows_in": 5, "rows_clean": 2,
        "rows_rejected": 3, "blank_lines": 1}
    assert report["rejections"] == {"grado_not_integer": 1, "id_duplicate": 1,
                                    "invalid_utf8": 1}
    assert _quarantined(data_dir, ds) == [
        ("a.csv", 4, "grado_not_integer"), ("b x.csv", 2, "id_duplicate"),
        ("b x.csv", 4, "invalid_utf8")]
    ((path, extra),) = report["extra_columns"].items()
    assert path.endswith("/a.csv") and extra == ["comentario"]
    files = json.loads((data_dir / "quarantine/students" / f"ds={ds}" / "files.json")
                       .read_text())
    assert [f["file"].rsplit("/", 1)[1] for f in files] == ["a0.csv"]
    staged = json.loads((data_dir / "staging/students" / f"ds={ds}" / "quality.json")
                        .read_text())
    assert staged == report
    clean = spark.read.parquet(str(data_dir / "staging/students" / f"ds={ds}" / "clean"))
    assert sorted(row.id for row in clean.collect()) == [1, 3]


# 8: each line compares its file's path with the listing; 1: a broadcast join.
@pytest.mark.parametrize("compares_max", [8, 1])
def test_files_sharing_a_header_keep_their_own_names_and_lines(spark, data_dir,
                                                               monkeypatch, compares_max):
    monkeypatch.setattr("spark_apps.students.clean.FILE_INDEX_COMPARES_MAX", compares_max)
    ds = "2026-01-08"
    _land(data_dir, ds, {
        "a.csv": (HEADER + "\n5,A,7,0,General,50,60,70\n6,B,7,0,General,50,60,x\n").encode(),
        "b x.csv": (HEADER + "\n7,C,7,0,General,50,60,70\n5,D,7,0,General,50,60,70\n"
                    ).encode(),
        "c.csv": (HEADER + "\n8,E,13,0,General,50,60,70\n").encode(),
    })
    report = run_clean(spark, ds, str(data_dir))
    assert (report["rows_in"], report["rows_clean"]) == (5, 2)
    # The repeated id 5: the row of the file listed first is kept.
    assert _quarantined(data_dir, ds) == [
        ("a.csv", 3, "puntaje_ciencias_not_number"), ("b x.csv", 3, "id_duplicate"),
        ("c.csv", 2, "grado_out_of_range")]


@pytest.mark.parametrize("compares_max", [8, 1])
def test_a_file_the_scan_names_otherwise_than_listed_stops_the_run(spark, data_dir,
                                                                   monkeypatch, compares_max):
    """Listed "b x.csv" but scanned "b%20x.csv": its lines belong to no listed file."""
    monkeypatch.setattr("spark_apps.students.clean.FILE_INDEX_COMPARES_MAX", compares_max)
    monkeypatch.setattr("spark_apps.students.clean.scan_uri", lambda spark, path: path)
    ds = "2026-01-09"
    _land(data_dir, ds, {"a.csv": (HEADER + "\n" + GOOD + "\n").encode(),
                         "b x.csv": (HEADER + "\n" + GOOD + "\n").encode()})
    with pytest.raises(LandingError, match="names otherwise than listed"):
        run_clean(spark, ds, str(data_dir))


def test_run_clean_line_numbers_survive_file_splits(spark, data_dir):
    """A file read in several splits still gets exact line numbers."""
    ds = "2026-01-06"
    good = [f"{i},N,7,0,General,50,60,70" for i in range(1, 3001)]
    good[2499] = "2500,N,7,0,General,50,60,x"  # line 2501
    _land(data_dir, ds, {"big.csv": (HEADER + "\n" + "\n".join(good) + "\n").encode()})
    spark.conf.set("spark.sql.files.maxPartitionBytes", "16384")
    try:
        report = run_clean(spark, ds, str(data_dir))
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert report["rows_in"] == 3000
    assert _quarantined(data_dir, ds) == [("big.csv", 2501, "puntaje_ciencias_not_number")]


def test_run_clean_rejects_a_file_missing_columns(spark, data_dir):
    ds = "2026-01-07"
    _land(data_dir, ds, {"a.csv": b"id,nombre,grado,programa\n1,A,7,General\n"})
    with pytest.raises(HeaderError, match="a.csv: line 1: missing required column"):
        run_clean(spark, ds, str(data_dir))


def test_run_clean_refuses_a_sql_dump_saved_as_csv(spark, data_dir):
    # The seed's mistake: its first line is no CSV header, so the columns are missing.
    ds = "2026-01-09"
    dump = (b"INSERT INTO estudiantes (id,nombre,grado,num_premios,programa,puntaje_mat,"
            b"puntaje_ing,puntaje_ciencias) VALUES\n(1,'Ana',7,2,'General',80.5,70,60),\n"
            b"(2,'Luis',12,0,'Academico',55,61.5,NULL);\n")
    _land(data_dir, ds, {"estudiantes.csv": dump})
    with pytest.raises(HeaderError, match=r"estudiantes.csv: line 1: missing required "
                                          r"column\(s\) id, puntaje_ciencias"):
        run_clean(spark, ds, str(data_dir))


def test_a_sql_dump_under_a_csv_header_has_no_clean_row_and_fails_the_gate(spark, data_dir):
    # The seed's mistake with a CSV header on top: each row keeps "(" and "),", the
    # trailing comma makes a ninth field, and the last row (ending ");") has an id
    # of "(400". The gate then refuses the date, naming the reasons.
    import pandas as pd
    from dataplatform.quality import QualityGateError, check_quality_gate
    from dataplatform.settings import REPO_ROOT

    frame = pd.read_csv(REPO_ROOT / "data" / "samples" / "students" / "students_sample.csv")
    tuples = [f"({r.id},'{r.nombre}',{r.grado},{r.num_premios},'{r.programa}',"
              f"{r.puntaje_mat},{r.puntaje_ing},{r.puntaje_ciencias})"
              for r in frame.itertuples()]
    dump = ",".join(frame.columns) + "\n" + ",\n".join(tuples) + ";\n"
    ds = "2026-01-10"
    _land(data_dir, ds, {"students.csv": dump.encode()})
    report = run_clean(spark, ds, str(data_dir))
    assert (report["rows_in"], report["rows_clean"]) == (400, 0)
    assert report["rejections"] == {"wrong_field_count": 399, "id_not_integer": 1}
    with pytest.raises(QualityGateError, match=r"no clean rows out of 400 .*"
                       r"wrong_field_count: 399, id_not_integer: 1"):
        check_quality_gate(report, 0.2, "quarantine")


def test_run_clean_without_files_says_where_it_looked(spark, data_dir):
    with pytest.raises(LandingError, match="no student CSV files"):
        run_clean(spark, "2026-01-08", str(data_dir))
