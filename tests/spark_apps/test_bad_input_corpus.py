"""The bad-input corpus: broken landings, and what the ingest jobs make of them.

Every case is bytes written here into a throwaway landing and run through the
real job (``run_clean``, ``run_ingest``) on the shared session, nothing mocked.
Each ends either in an error naming the file (and line) and the reason, with
nothing staged for the date, or in rows or files quarantined with a reason.
Either way nothing goes missing: rows_in = rows_clean + rows_rejected, every
rejected row is in the quarantine with its file, line and reason, every line
of every file is a header, a blank line, a clean row or a quarantined one; and
the quality gate refuses a date with nothing clean or too much rejected.

The cases that only reject rows or files share one date per dataset, so the
module runs a handful of jobs, not dozens: each student case owns a hundred of
ids, each traffic case its own files, so their outcomes are told apart exactly.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dataplatform.quality import QualityGateError, check_quality_gate
from dataplatform.settings import DEFAULT_MAX_REJECT_SHARE

from spark_apps.hadoop_fs import local_path
from spark_apps.students.clean import LandingError as StudentLandingError
from spark_apps.students.clean import run_clean
from spark_apps.students.contract import HeaderError
from spark_apps.zte_tad.contract import FEATURE_COLUMNS
from spark_apps.zte_tad.ingest import LandingError as TrafficLandingError
from spark_apps.zte_tad.ingest import run_ingest

DS = "2026-03-01"
MB = 1 << 20


def _land(data_dir: Path, dataset: str, files: dict[str, bytes]) -> Path:
    landing = data_dir / "landing" / dataset / f"ds={DS}"
    landing.mkdir(parents=True)
    for name, content in files.items():
        (landing / name).parent.mkdir(parents=True, exist_ok=True)
        (landing / name).write_bytes(content)
    return landing


def _staged_report(data_dir: Path, dataset: str) -> dict:
    """The quality report as the gate reads it."""
    return json.loads((data_dir / "staging" / dataset / f"ds={DS}" / "quality.json").read_text())


def _gate(report: dict) -> str:
    return check_quality_gate(report, DEFAULT_MAX_REJECT_SHARE, "the quarantine")


# ================================================================= students

HEADER = "id,nombre,grado,num_premios,programa,puntaje_mat,puntaje_ing,puntaje_ciencias"
COLUMNS = HEADER.split(",")


def row(student_id: int | str, **values: str) -> str:
    """A valid student line, but for ``values``."""
    fields = {"id": str(student_id), "nombre": "Ana", "grado": "7", "num_premios": "1",
              "programa": "General", "puntaje_mat": "50", "puntaje_ing": "60",
              "puntaje_ciencias": "70", **values}
    return ",".join(fields[column] for column in COLUMNS)


def text(*lines: str, newline: str = "\n", encoding: str = "utf-8") -> bytes:
    """A file of ``lines``, each ended by ``newline``."""
    return "".join(line + newline for line in lines).encode(encoding)


@dataclass(frozen=True)
class StudentCase:
    """Files of one case and their exact outcome in a date with other cases.

    ``block``: the case's ids are ``block * 100 + k``, so its clean rows are
    the staged ids of that hundred. ``quarantined``: ``(file, line, reason)``.
    """

    name: str
    block: int
    files: dict[str, bytes]
    clean_ids: tuple[int, ...]
    quarantined: tuple[tuple[str, int, str], ...] = ()
    blank_lines: int = 0
    extra_columns: dict[str, list[str]] = field(default_factory=dict)
    rejected_files: dict[str, str] = field(default_factory=dict)  # file -> reason
    why: str = ""


STUDENT_CASES = [
    StudentCase(
        "bom", 1, {"bom.csv": "\ufeff".encode() + text(HEADER, row(101), row(102))},
        clean_ids=(101, 102), why="a UTF-8 BOM before the header is allowed"),
    StudentCase(
        "crlf", 2,
        {"crlf.csv": text(HEADER, row(201), row(202, puntaje_mat="x"), row(203),
                          newline="\r\n")},
        clean_ids=(201, 203), quarantined=(("crlf.csv", 3, "puntaje_mat_not_number"),),
        why="Windows line ends: no \\r left on the last field, lines counted as an editor does"),
    StudentCase(
        "cr_only", 3,
        {"cr.csv": text(HEADER, row(301), row(302, grado="x"), row(303), newline="\r")},
        clean_ids=(301, 303), quarantined=(("cr.csv", 3, "grado_not_integer"),),
        why="old Mac line ends (\\r alone) split lines too"),
    StudentCase(
        "semicolon_row", 4, {"semicolon_row.csv": text(HEADER, row(401),
                                                       row(402).replace(",", ";"))},
        clean_ids=(401,), quarantined=(("semicolon_row.csv", 3, "wrong_field_count"),),
        why="one row separated by ';' is one field, not eight"),
    StudentCase(
        "stray_quotes", 5,
        {"quotes.csv": text(HEADER, row(501, nombre='Ana "La" Ruiz'),
                            row(502, nombre='"Ruiz, Ana"'), row(503, nombre='"Ana'),
                            row(504, nombre='"Ana ""La"" Ruiz"'))},
        clean_ids=(502, 504),
        quarantined=(("quotes.csv", 2, "malformed_quotes"), ("quotes.csv", 4, "malformed_quotes")),
        why="a quote in a bare field, or never closed; quoted commas and doubled quotes parse"),
    StudentCase(
        "quoted_line_break", 6,
        {"line_break.csv": text(HEADER, row(601, nombre='"Ana\nRuiz"'), row(602))},
        clean_ids=(602,),
        quarantined=(("line_break.csv", 2, "malformed_quotes"),
                     ("line_break.csv", 3, "malformed_quotes")),
        why="a line break inside quotes: each physical line is a row, both kept in quarantine"),
    StudentCase(
        "blank_lines", 7,
        {"blank.csv": text(HEADER, "", row(701), "   ", row(702, grado="13"), "")},
        clean_ids=(701,), quarantined=(("blank.csv", 5, "grado_out_of_range"),),
        blank_lines=3, why="blank and space-only lines are no rows but still count for numbering"),
    StudentCase(
        "header_only", 8, {"header_only.csv": text(HEADER)}, clean_ids=(),
        why="a header and nothing else: no rows, no error (the gate judges the date)"),
    StudentCase(
        "repeated_header", 9,
        {"concatenated.csv": text(HEADER, row(901), HEADER, row(902))},
        clean_ids=(901, 902), quarantined=(("concatenated.csv", 3, "id_not_integer"),),
        why="two files pasted together: the second header is a row whose id is 'id'"),
    StudentCase(
        "huge_fields", 10,
        {"huge.csv": text(HEADER, row(1001, nombre='"' + 'Ruiz, ""Ana"" ' * (MB // 14) + '"'),
                          row(1002, nombre="y" * MB), row(1003, puntaje_mat="9" * MB),
                          row(1004, puntaje_ing="x" * MB))},
        clean_ids=(1001, 1002),
        quarantined=(("huge.csv", 4, "puntaje_mat_out_of_range"),
                     ("huge.csv", 5, "puntaje_ing_not_number")),
        why="1 MB fields, quoted or not, parse; a 1 MB number is infinite, hence out of range"),
    StudentCase(
        "latin1_bytes", 11,
        {"latin1.csv": text(HEADER, row(1101), row(1102, nombre="José", programa="Académico"),
                            encoding="latin-1") + b"1103,N\xff,7,1,General,50,60,70\n"},
        clean_ids=(1101,),
        quarantined=(("latin1.csv", 3, "invalid_utf8"), ("latin1.csv", 4, "invalid_utf8")),
        why="bytes that are not UTF-8 reject their line, the ASCII lines of the file stay"),
    StudentCase(
        "extra_columns", 12,
        {"extra.csv": text(HEADER + ",Comentario,Año", row(1201) + ",hola,2024",
                           row(1202) + ",,")},
        clean_ids=(1201, 1202), extra_columns={"extra.csv": ["comentario", "ano"]},
        why="extra columns are ignored and reported"),
    StudentCase(
        "out_of_range", 13,
        {"ranges.csv": text(HEADER, row(0), row(1302, grado="13"), row(1303, num_premios="-1"),
                            row(1304, puntaje_ing="100.5"), row(1305, puntaje_ciencias="-0.1"),
                            row(1306, grado="12", puntaje_mat="100", num_premios="0"))},
        clean_ids=(1306,),
        quarantined=(("ranges.csv", 2, "id_not_positive"), ("ranges.csv", 3, "grado_out_of_range"),
                     ("ranges.csv", 4, "num_premios_negative"),
                     ("ranges.csv", 5, "puntaje_ing_out_of_range"),
                     ("ranges.csv", 6, "puntaje_ciencias_out_of_range")),
        why="each range of the contract, and its inclusive bounds kept"),
    StudentCase(
        "wrong_field_count", 14,
        {"fields.csv": text(HEADER, row(1401).rsplit(",", 1)[0], row(1402) + ",",
                            row(1403) + ",x", row(1404))},
        clean_ids=(1404,),
        quarantined=(("fields.csv", 2, "wrong_field_count"), ("fields.csv", 3, "wrong_field_count"),
                     ("fields.csv", 4, "wrong_field_count")),
        why="a field short, a trailing comma, a field too many"),
    StudentCase(
        "missing_values", 15,
        {"missing.csv": text(HEADER, row(1501, grado="NULL"), row(1502, puntaje_mat=""),
                             row("", nombre="Sin Id"), row(1504, num_premios=" "))},
        clean_ids=(),
        quarantined=(("missing.csv", 2, "grado_not_integer"),
                     ("missing.csv", 3, "puntaje_mat_missing"), ("missing.csv", 4, "id_missing"),
                     ("missing.csv", 5, "num_premios_missing")),
        why="the text NULL is no grade; empty and blank fields are missing"),
    StudentCase(
        "duplicate_id_in_file", 16,
        {"dup_in_file.csv": text(HEADER, row(1601), row(1601, nombre="Otra"), row(1602))},
        clean_ids=(1601, 1602), quarantined=(("dup_in_file.csv", 3, "id_duplicate"),),
        why="a repeated id keeps its first occurrence"),
    StudentCase(
        "duplicate_id_across_files", 17,
        {"dup_a.csv": text(HEADER, row(1701)), "dup_b.csv": text(HEADER, row(1701), row(1702))},
        clean_ids=(1701, 1702), quarantined=(("dup_b.csv", 2, "id_duplicate"),),
        why="the first file in path order keeps the id"),
    StudentCase(
        "no_final_newline", 18,
        {"no_newline.csv": text(HEADER, row(1801))
         + row(1802, puntaje_ciencias="70)").encode()},
        clean_ids=(1801,), quarantined=(("no_newline.csv", 3, "puntaje_ciencias_not_number"),),
        why="a last line without its newline is still a row"),
    StudentCase(
        "upper_case_extension", 19, {"UPPER.CSV": text(HEADER, row(1901))}, clean_ids=(1901,),
        why="*.CSV is a CSV file too"),
    StudentCase(
        "empty_file", 20, {"empty.csv": b""}, clean_ids=(),
        rejected_files={"empty.csv": "empty file: no header, no rows"},
        why="a 0-byte file is quarantined whole; the date goes on"),
    StudentCase(
        "id_too_long", 21,
        {"long_id.csv": text(HEADER, row("1" * 19), row(2101, num_premios="2147483648"))},
        clean_ids=(), quarantined=(("long_id.csv", 2, "id_not_integer"),
                                   ("long_id.csv", 3, "num_premios_too_large")),
        why="numbers beyond the typed columns are rejected, never a crash or a wrapped value"),
    StudentCase(
        "every_field_quoted", 22,
        {"quote_all.csv": text(",".join(f'"{c}"' for c in COLUMNS),
                               ",".join(f'"{v}"' for v in row(2201).split(",")),
                               ",".join(f'"{v}"' for v in row(2202, grado="x").split(",")))},
        clean_ids=(2201,), quarantined=(("quote_all.csv", 3, "grado_not_integer"),),
        why="a spreadsheet's quote-everything export parses like a bare one"),
    StudentCase(
        "header_trailing_comma", 23, {"trailing.csv": text(HEADER + ",", row(2301), row(2302))},
        clean_ids=(), quarantined=(("trailing.csv", 2, "wrong_field_count"),
                                   ("trailing.csv", 3, "wrong_field_count")),
        extra_columns={"trailing.csv": [""]},
        why="a header of nine fields over rows of eight: every row has the wrong count"),
]
CONTROL_IDS = range(100_001, 100_301)  # clean rows that keep the corpus date under the gate


def _student_lines(content: bytes) -> list[bytes]:
    """Physical lines as Spark's text source splits them (\\n, \\r\\n or \\r)."""
    return content.splitlines()


def _read_quarantine(folder: Path) -> list[dict]:
    rows = []
    limit = csv.field_size_limit()
    csv.field_size_limit(16 * MB)  # the huge-field case's raw lines
    try:
        for part in sorted(folder.glob("part-*.csv")):
            with open(part, newline="", encoding="utf-8", errors="replace") as handle:
                rows += list(csv.DictReader(handle))
    finally:
        csv.field_size_limit(limit)
    return rows


@dataclass
class StudentRun:
    landing: Path
    report: dict
    staged_report: dict
    quarantine: list[dict]
    rejected_files: list[dict]
    clean_ids: list[int]


@pytest.fixture(scope="module")
def student_corpus(spark, tmp_path_factory) -> StudentRun:
    """Every case of STUDENT_CASES landed for one date, and the job run once."""
    data_dir = tmp_path_factory.mktemp("student-corpus")
    files = {"control.csv": text(HEADER, *(row(i) for i in CONTROL_IDS))}
    for case in STUDENT_CASES:
        assert not set(case.files) & set(files), case.name
        files.update(case.files)
    landing = _land(data_dir, "students", files)
    report = run_clean(spark, DS, str(data_dir))
    quarantine = data_dir / "quarantine" / "students" / f"ds={DS}"
    clean = spark.read.parquet(str(data_dir / "staging" / "students" / f"ds={DS}" / "clean"))
    return StudentRun(
        landing=landing, report=report, staged_report=_staged_report(data_dir, "students"),
        quarantine=_read_quarantine(quarantine / "rows"),
        rejected_files=json.loads((quarantine / "files.json").read_text()),
        clean_ids=[r.id for r in clean.select("id").collect()])


def test_student_cases_own_distinct_id_blocks():
    """The shared date tells cases' clean rows apart by their hundred of ids."""
    assert len({case.block for case in STUDENT_CASES}) == len(STUDENT_CASES)
    for case in STUDENT_CASES:
        assert all(i // 100 == case.block for i in case.clean_ids), case.name


@pytest.mark.parametrize("case", STUDENT_CASES, ids=[case.name for case in STUDENT_CASES])
def test_student_case(student_corpus, case):
    run = student_corpus
    mine = [q for q in run.quarantine if Path(q["source_file"]).name in case.files]
    assert sorted((Path(q["source_file"]).name, int(q["line_number"]), q["reason"])
                  for q in mine) == sorted(case.quarantined), case.why
    # Each quarantined row names its whole path and carries its raw line.
    for q in mine:
        path = Path(local_path(q["source_file"]))
        assert path.parent == run.landing
        raw = _student_lines(case.files[path.name])[int(q["line_number"]) - 1]
        assert q["raw_line"] == raw.decode("utf-8", "replace")
    assert sorted(i for i in run.clean_ids if i // 100 == case.block) == list(case.clean_ids)

    # Every line of the case's files is a header, a blank line, a clean row
    # or a quarantined row: nothing is dropped without a trace.
    data_lines = blank = 0
    for content in case.files.values():
        lines = _student_lines(content)[1:]
        blank += sum(line.strip(b" ") == b"" for line in lines)
        data_lines += sum(line.strip(b" ") != b"" for line in lines)
    assert blank == case.blank_lines
    assert data_lines == len(case.clean_ids) + len(case.quarantined)

    extra = {Path(path).name: cols for path, cols in run.report["extra_columns"].items()}
    assert {name: extra[name] for name in case.files if name in extra} == case.extra_columns
    rejected = {Path(f["file"]).name: f["reason"] for f in run.rejected_files}
    assert {name: rejected[name] for name in case.files if name in rejected} == \
        case.rejected_files


def test_student_corpus_accounts_for_every_row_and_passes_the_gate(student_corpus):
    run, report = student_corpus, student_corpus.report
    assert run.staged_report == report
    quarantined = [q for case in STUDENT_CASES for q in case.quarantined]
    clean = [i for case in STUDENT_CASES for i in case.clean_ids] + list(CONTROL_IDS)
    assert sorted(run.clean_ids) == sorted(clean)
    assert report["rows_in"] == report["rows_clean"] + report["rows_rejected"]
    assert (report["rows_clean"], report["rows_rejected"]) == (len(clean), len(quarantined))
    assert len(run.quarantine) == report["rows_rejected"]
    by_reason: dict[str, int] = {}
    for _, _, reason in quarantined:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    assert report["rejections"] == by_reason
    assert report["blank_lines"] == sum(case.blank_lines for case in STUDENT_CASES)
    n_files = 1 + sum(len(case.files) for case in STUDENT_CASES)
    assert (report["files_in"], report["files_rejected"]) == (n_files, 1)
    # A date with some bad lines among many good ones is still published.
    assert _gate(report).startswith(f"students {DS}: {len(clean)} clean of {report['rows_in']}")


STUDENT_FAILING_DATES = [
    # (name, files, error, message pattern: file, line and reason where there is one)
    ("no_files", {}, StudentLandingError,
     rf"^no student CSV files \(\*\.csv\) in \S+/landing/students/ds={DS}$"),
    ("no_csv_extension", {"students.txt": text(HEADER, row(1)),
                          "students.csv.gz": gzip.compress(text(HEADER, row(1)))},
     StudentLandingError, r"^no student CSV files \(\*\.csv\) in "),
    ("only_empty_files", {"a.csv": b"", "b.csv": b""}, StudentLandingError,
     rf"^every student CSV in \S+/ds={DS} is empty \(0 bytes\): \S+/ds={DS}/a\.csv, "
     rf"\S+/ds={DS}/b\.csv$"),
    ("semicolon_delimiter", {"semicolon.csv": text(HEADER.replace(",", ";"),
                                                   row(1).replace(",", ";"))},
     HeaderError, r"/semicolon\.csv: line 1: missing required column\(s\) id, nombre, grado, "
                  r"num_premios, programa, puntaje_mat, puntaje_ing, puntaje_ciencias; header "
                  r"has id_nombre_grado_num_premios_programa_puntaje_mat_puntaje_ing_puntaje_"
                  r"ciencias$"),
    ("excel_separator_line", {"excel.csv": text("sep=,", HEADER, row(1))},
     HeaderError, r"/excel\.csv: line 1: missing required column\(s\) id, .*; header has sep, $"),
    ("missing_columns", {"short.csv": text("id,nombre,grado,programa,puntaje_mat,puntaje_ing",
                                           "1,Ana,7,General,50,60")},
     HeaderError, r"/short\.csv: line 1: missing required column\(s\) num_premios, "
                  r"puntaje_ciencias; header has id, nombre, grado, programa, puntaje_mat, "
                  r"puntaje_ing$"),
    ("repeated_column", {"twice.csv": text(HEADER + ",ID", row(1) + ",1")},
     HeaderError, r"/twice\.csv: line 1: column\(s\) id appear twice$"),
    ("blank_first_line", {"blank_first.csv": text("", HEADER, row(1))},
     HeaderError, r"/blank_first\.csv: line 1: missing required column\(s\) id, .* header "
                  r"has \(nothing\)$"),
    ("utf16", {"utf16.csv": text(HEADER, row(1), encoding="utf-16")},
     HeaderError, r"/utf16\.csv: line 1: missing required column\(s\) id, .*; header has i_d, "
                  r"n_o_m_b_r_e, "),
    ("gzip_named_csv", {"packed.csv": gzip.compress(text(HEADER, row(1)))},
     HeaderError, r"/packed\.csv: line 1: missing required column\(s\) id, nombre, "),
    ("one_bad_header_among_good_files", {"a_good.csv": text(HEADER, row(1)),
                                         "b_bad.csv": text("id,nombre", "2,Luis")},
     HeaderError, r"/b_bad\.csv: line 1: missing required column\(s\) grado, "),
]


@pytest.mark.parametrize("name, files, error, message", STUDENT_FAILING_DATES,
                         ids=[case[0] for case in STUDENT_FAILING_DATES])
def test_student_date_fails_naming_file_line_and_reason(spark, data_dir, name, files, error,
                                                        message):
    _land(data_dir, "students", files)
    with pytest.raises(error) as raised:
        run_clean(spark, DS, str(data_dir))
    assert re.search(message, str(raised.value)), str(raised.value)
    # Nothing staged: the gate finds no report and nothing is published.
    assert not (data_dir / "staging" / "students" / f"ds={DS}").exists()


COPIED = text(HEADER, *(row(i) for i in range(1, 5)))
STUDENT_REFUSED_DATES = [
    # (name, files, rejections, quarantined (file, line, reason), gate message)
    ("header_only_date", {"header_only.csv": text(HEADER)}, {}, [],
     rf"^students {DS}: no clean rows out of 0 \(files rejected: 0; no rows at all\); "
     r"nothing published;"),
    ("every_row_bad", {"all_bad.csv": text(HEADER, row(1, grado="0"), row(2, puntaje_mat="x"),
                                           row(3, nombre='"Ana'))},
     {"grado_out_of_range": 1, "puntaje_mat_not_number": 1, "malformed_quotes": 1},
     [("all_bad.csv", 2, "grado_out_of_range"), ("all_bad.csv", 3, "puntaje_mat_not_number"),
      ("all_bad.csv", 4, "malformed_quotes")],
     rf"^students {DS}: no clean rows out of 3 \(files rejected: 0; grado_out_of_range: 1, "),
    ("file_landed_twice", {"a.csv": COPIED, "a_copy.csv": COPIED}, {"id_duplicate": 4},
     [("a_copy.csv", line, "id_duplicate") for line in range(2, 6)],
     rf"^students {DS}: 50\.0% of rows rejected \(4 of 8\), above the 20% gate; top reasons: "
     r"id_duplicate: 4; nothing published;"),
]


@pytest.mark.parametrize("name, files, rejections, quarantined, message", STUDENT_REFUSED_DATES,
                         ids=[case[0] for case in STUDENT_REFUSED_DATES])
def test_student_date_is_refused_by_the_gate(spark, data_dir, name, files, rejections,
                                             quarantined, message):
    _land(data_dir, "students", files)
    report = run_clean(spark, DS, str(data_dir))
    assert report["rejections"] == rejections
    assert report["rows_rejected"] == len(quarantined)
    assert report["rows_in"] == report["rows_clean"] + report["rows_rejected"]
    rows = _read_quarantine(data_dir / "quarantine" / "students" / f"ds={DS}" / "rows")
    assert sorted((Path(q["source_file"]).name, int(q["line_number"]), q["reason"])
                  for q in rows) == quarantined
    with pytest.raises(QualityGateError, match=message):
        _gate(_staged_report(data_dir, "students"))


# ================================================================= traffic

PARQUET_OK = {"LEN_SRC_IP": 12, "LEN_DEST_IP": 13, "Source_IP1": 192, "Source_IP2": 168,
              "Source_IP3": 31, "Source_IP4": 58, "Destination_IP1": 47, "Destination_IP2": 111,
              "Destination_IP3": 245, "Destination_IP4": 242, "TCP_SPORT": 42406,
              "TCP_DPORT": 443, "LEN_RAW": 1460, "Send_Year": 2023, "Send_Month": 5,
              "Send_Day": 6, "Send_Hour": 3, "Send_Minute": 11, "Send_Second": 0}


def packets(n: int, seed: int, **columns) -> pa.Table:
    """``n`` valid packets (int64), but for ``columns``; ``seed`` makes the bytes unique."""
    data = {name: pa.array([value] * n, pa.int64()) for name, value in PARQUET_OK.items()}
    data["TCP_SPORT"] = pa.array([1024 + (seed * 1000 + i) % 60000 for i in range(n)], pa.int64())
    for name, values in columns.items():
        data[name] = values if isinstance(values, pa.Array) else pa.array(values, pa.int64())
    return pa.table(data)


def parquet(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def corrupt_pages(content: bytes, row_group: int = 0) -> bytes:
    """The file with the first data page of ``row_group`` garbled; its footer still reads."""
    metadata = pq.ParquetFile(io.BytesIO(content)).metadata
    offset = metadata.row_group(row_group).column(0).data_page_offset
    garbled = bytearray(content)
    for i in range(offset, offset + 16):
        garbled[i] ^= 0xFF
    return bytes(garbled)


SAME_CAPTURE = parquet(packets(3, seed=14))


@dataclass(frozen=True)
class TrafficCase:
    """Files of one case and their exact outcome in a date with other cases.

    Either ``rejected_files`` (file -> reason pattern) or rows: ``clean`` per
    capture (``Category/file``) and ``quarantined`` (capture, row_index, reason).
    """

    name: str
    files: dict[str, bytes]
    rejected_files: dict[str, str] = field(default_factory=dict)
    clean: dict[str, int] = field(default_factory=dict)
    quarantined: tuple[tuple[str, int, str], ...] = ()
    why: str = ""


TRAFFIC_CASES = [
    TrafficCase(
        "truncated", {"Video/truncated.parquet": parquet(packets(5, seed=1))[:-100]},
        rejected_files={"Video/truncated.parquet": r"^unreadable parquet: \w+: "},
        why="a copy cut short has no footer"),
    TrafficCase(
        "text_named_parquet", {"Video/notes.parquet": b"capture,packets\nvideo,12\n"},
        rejected_files={"Video/notes.parquet": r"^unreadable parquet: ArrowInvalid: Parquet "
                                               r"magic bytes not found in footer"},
        why="a text file renamed .parquet"),
    TrafficCase(
        "zero_bytes", {"Video/zero.parquet": b""},
        rejected_files={"Video/zero.parquet": r"^unreadable parquet: ArrowInvalid: Parquet file "
                                              r"size is 0 bytes$"},
        why="an upload that never wrote a byte"),
    TrafficCase(
        "string_column",
        {"Video/strings.parquet": parquet(packets(2, seed=2, TCP_DPORT=pa.array(["443", "80"])))},
        rejected_files={"Video/strings.parquet": r"^feature columns must be int64: TCP_DPORT is "
                                                 r"string$"},
        why="a feature written as text"),
    TrafficCase(
        "int32_columns",
        {"Video/int32.parquet": parquet(packets(2, seed=3).cast(pa.schema(
            [(name, pa.int32()) for name in FEATURE_COLUMNS])))},
        rejected_files={"Video/int32.parquet": r"^feature columns must be int64: LEN_SRC_IP is "
                                               r"int32, LEN_DEST_IP is int32, "},
        why="the contract's integers are 64-bit"),
    TrafficCase(
        "missing_column",
        {"Video/no_second.parquet": parquet(packets(2, seed=4).drop(["Send_Second"]))},
        rejected_files={"Video/no_second.parquet": r"^missing feature column\(s\) Send_Second$"},
        why="a capture without a feature"),
    TrafficCase(
        "column_named_twice_ignoring_case",
        {"Video/clash.parquet": parquet(packets(2, seed=5).append_column(
            "len_raw", pa.array([1, 2], pa.int64())))},
        rejected_files={"Video/clash.parquet": r"^feature column\(s\) named more than once, "
                                               r"ignoring case: LEN_RAW \(LEN_RAW, len_raw\)$"},
        why="Spark reads columns regardless of case: once failed the whole date"),
    TrafficCase(
        "corrupt_page",
        {"Video/corrupt.parquet": corrupt_pages(parquet(packets(1000, seed=6),
                                                        use_dictionary=False))},
        rejected_files={"Video/corrupt.parquet": r"^corrupt parquet: 0 of the footer's 1000 rows "
                                                 r"could be read$"},
        why="a sound footer over garbled pages: once failed the whole date"),
    TrafficCase(
        "corrupt_second_row_group",
        {"Video/half.parquet": corrupt_pages(parquet(
            packets(1000, seed=15, LEN_RAW=[-1] * 3 + [60] * 997), use_dictionary=False,
            row_group_size=500), row_group=1)},
        rejected_files={"Video/half.parquet": r"^corrupt parquet: 500 of the footer's 1000 rows "
                                              r"could be read$"},
        why="the rows read before the corrupt page, clean or not, are neither staged nor "
            "quarantined: the date is written again"),
    TrafficCase(
        "no_category_folder", {"stray.parquet": parquet(packets(2, seed=7))},
        rejected_files={"stray.parquet": r"^not in a <Category>/ folder: no label$"},
        why="a capture beside the folders has no label: once skipped without a word"),
    TrafficCase(
        "below_a_category_folder",
        {"Video/2026-01/deep.parquet": parquet(packets(2, seed=16))},
        rejected_files={"Video/2026-01/deep.parquet": r"^in Video/2026-01/, below its category "
                                                      r"folder: no label$"},
        why="a capture a folder too deep: once skipped without a word"),
    TrafficCase(
        "same_capture_twice",
        {"Music/capture.parquet": SAME_CAPTURE, "Music/capture_copy.parquet": SAME_CAPTURE},
        rejected_files={"Music/capture_copy.parquet": r"^same bytes as \S+/Music/capture"
                                                      r"\.parquet: a capture landed twice$"},
        clean={"Music/capture.parquet": 3},
        why="a copy would count its packets twice, on both sides of the held-out split"),
    TrafficCase(
        "extra_columns",
        {"Video/extra.parquet": parquet(packets(3, seed=8).append_column(
            "CLASS", pa.array(["Games"] * 3)).append_column("note", pa.array(["x"] * 3)))},
        clean={"Video/extra.parquet": 3},
        why="CLASS and other columns are ignored; the folder is the label"),
    TrafficCase(
        "null_features",
        {"Video/nulls.parquet": parquet(packets(4, seed=9, LEN_RAW=[10, None, 30, 40],
                                                Send_Month=[5, 5, 5, None],
                                                TCP_DPORT=[443, 443, 443, 70000]))},
        clean={"Video/nulls.parquet": 2},
        quarantined=(("Video/nulls.parquet", 1, "null_feature"),
                     ("Video/nulls.parquet", 3, "null_feature")),
        why="a NULL feature rejects its packet, before any range"),
    TrafficCase(
        "out_of_range",
        {"Video/ranges.parquet": parquet(packets(6, seed=10, TCP_DPORT=[443, 65536, 443, 443,
                                                                        443, 65535],
                                                 Source_IP1=[192, 192, 256, 192, 192, 0],
                                                 Send_Month=[5, 5, 5, 13, 5, 12],
                                                 LEN_SRC_IP=[12, 12, 12, 12, 6, 15]))},
        clean={"Video/ranges.parquet": 2},
        quarantined=tuple(("Video/ranges.parquet", i, "out_of_range") for i in (1, 2, 3, 4)),
        why="port, octet, month and length out of range; the bounds themselves kept"),
    TrafficCase(
        "empty_capture", {"Video/empty.parquet": parquet(packets(0, seed=11))},
        clean={"Video/empty.parquet": 0},
        why="a valid file of 0 packets: read, nothing to account"),
    TrafficCase(
        "category_with_space", {"Health Fitness/run.parquet": parquet(packets(2, seed=12))},
        clean={"Health Fitness/run.parquet": 2},
        why="the scan names it Health%20Fitness; labels keep the space"),
]
TRAFFIC_CONTROL = {"Control/control.parquet": parquet(packets(200, seed=99))}


@dataclass
class TrafficRun:
    landing: Path
    report: dict
    staged_report: dict
    rejected_files: list[dict]
    clean: dict[str, int]  # capture_id -> clean packets
    categories: dict[str, set[str]]  # capture_id -> categories of its clean packets
    quarantine: list[tuple[str, int, str]]


def _traffic_outputs(spark, data_dir: Path) -> tuple[dict, dict, list]:
    staged = spark.read.parquet(str(data_dir / "staging" / "zte_tad" / f"ds={DS}" / "packets"))
    clean, categories = {}, {}
    for r in staged.groupBy("capture_id", "category").count().collect():
        clean[r.capture_id] = clean.get(r.capture_id, 0) + r["count"]
        categories.setdefault(r.capture_id, set()).add(r.category)
    rows = data_dir / "quarantine" / "zte_tad" / f"ds={DS}" / "rows"
    quarantine = [] if not rows.exists() else [
        (r.capture_id, r.row_index, r.reject_reason)
        for r in spark.read.parquet(str(rows)).collect()]
    return clean, categories, sorted(quarantine)


@pytest.fixture(scope="module")
def traffic_corpus(spark, tmp_path_factory) -> TrafficRun:
    """Every case of TRAFFIC_CASES landed for one date, and the ingest run once."""
    data_dir = tmp_path_factory.mktemp("traffic-corpus")
    files = dict(TRAFFIC_CONTROL)
    for case in TRAFFIC_CASES:
        assert not set(case.files) & set(files), case.name
        files.update(case.files)
    landing = _land(data_dir, "zte_tad", files)
    report = run_ingest(spark, DS, str(data_dir))
    clean, categories, quarantine = _traffic_outputs(spark, data_dir)
    return TrafficRun(
        landing=landing, report=report, staged_report=_staged_report(data_dir, "zte_tad"),
        rejected_files=json.loads((data_dir / "quarantine" / "zte_tad" / f"ds={DS}" /
                                   "files.json").read_text()),
        clean=clean, categories=categories, quarantine=quarantine)


@pytest.mark.parametrize("case", TRAFFIC_CASES, ids=[case.name for case in TRAFFIC_CASES])
def test_traffic_case(traffic_corpus, case):
    run = traffic_corpus
    rejected = {str(Path(f["file"]).relative_to(run.landing)): f["reason"]
                for f in run.rejected_files}
    mine = {name: rejected[name] for name in case.files if name in rejected}
    assert set(mine) == set(case.rejected_files), case.why
    for name, pattern in case.rejected_files.items():
        assert re.search(pattern, mine[name]), mine[name]
    assert {c: n for c, n in run.clean.items() if c in case.files} == \
        {c: n for c, n in case.clean.items() if n}
    assert [q for q in run.quarantine if q[0] in case.files] == sorted(case.quarantined)
    for capture in case.clean:
        if case.clean[capture]:
            assert run.categories[capture] == {capture.split("/")[0]}
    # A capture read is accounted for packet by packet: clean + quarantined =
    # the rows its footer declares; a capture quarantined whole gives no rows.
    for name, content in case.files.items():
        if name in case.rejected_files:
            assert name not in run.clean and not any(q[0] == name for q in run.quarantine)
        else:
            footer_rows = pq.ParquetFile(io.BytesIO(content)).metadata.num_rows
            assert case.clean[name] + sum(q[0] == name for q in case.quarantined) == footer_rows


def test_traffic_corpus_accounts_for_every_packet_and_passes_the_gate(traffic_corpus):
    run, report = traffic_corpus, traffic_corpus.report
    assert run.staged_report == report
    quarantined = [q for case in TRAFFIC_CASES for q in case.quarantined]
    clean = 200 + sum(n for case in TRAFFIC_CASES for n in case.clean.values())
    assert report["rows_in"] == report["rows_clean"] + report["rows_rejected"]
    assert (report["rows_clean"], report["rows_rejected"]) == (clean, len(quarantined))
    assert len(run.quarantine) == report["rows_rejected"]
    assert report["rejections"] == {"null_feature": 2, "out_of_range": 4}
    rejected = sum(len(case.rejected_files) for case in TRAFFIC_CASES)
    n_files = 1 + sum(len(case.files) for case in TRAFFIC_CASES)
    assert (report["files_in"], report["files_rejected"]) == (n_files, rejected)
    assert run.rejected_files == report["rejected_files"]
    assert _gate(report).startswith(f"zte_tad {DS}: {clean} clean of {report['rows_in']}")


TRAFFIC_FAILING_DATES = [
    # (name, files, message pattern naming the files and reasons)
    ("no_files", {}, rf"^no capture files \(<Category>/\*\.parquet\) in \S+/zte_tad/ds={DS}$"),
    ("no_parquet_in_category_folders", {"Video/readme.txt": b"captures come tomorrow"},
     r"^no capture files \(<Category>/\*\.parquet\) in "),
    ("every_file_unreadable", {"Video/a.parquet": b"PAR1 not really", "Games/b.parquet": b""},
     rf"^all 2 capture files in \S+/ds={DS} were quarantined: \S+/Games/b\.parquet: "
     rf"unreadable parquet: ArrowInvalid: Parquet file size is 0 bytes; \S+/Video/a\.parquet: "
     rf"unreadable parquet: .* \(see \S+/quarantine/zte_tad/ds={DS}/files\.json\)$"),
    ("only_file_corrupt", {"Video/corrupt.parquet": corrupt_pages(parquet(
        packets(1000, seed=13), use_dictionary=False))},
     r"^all 1 capture files in \S+ were quarantined: \S+/Video/corrupt\.parquet: corrupt "
     r"parquet: 0 of the footer's 1000 rows could be read \(see "),
]


@pytest.mark.parametrize("name, files, message", TRAFFIC_FAILING_DATES,
                         ids=[case[0] for case in TRAFFIC_FAILING_DATES])
def test_traffic_date_fails_naming_files_and_reasons(spark, data_dir, name, files, message):
    _land(data_dir, "zte_tad", files)
    with pytest.raises(TrafficLandingError) as raised:
        run_ingest(spark, DS, str(data_dir))
    assert re.search(message, str(raised.value)), str(raised.value)
    assert not (data_dir / "staging" / "zte_tad" / f"ds={DS}" / "quality.json").exists()
    assert not (data_dir / "staging" / "zte_tad" / f"ds={DS}" / "packets").exists()
    files_json = data_dir / "quarantine" / "zte_tad" / f"ds={DS}" / "files.json"
    quarantined = json.loads(files_json.read_text()) if files_json.exists() else []
    assert len(quarantined) == len([f for f in files if f.endswith(".parquet")])


TRAFFIC_REFUSED_DATES = [
    # (name, files, rejections, gate message)
    ("every_packet_bad",
     {"Video/bad.parquet": parquet(packets(3, seed=20, LEN_RAW=[None, -1, 200000]))},
     {"null_feature": 1, "out_of_range": 2},
     rf"^zte_tad {DS}: no clean rows out of 3 \(files rejected: 0; out_of_range: 2, "
     r"null_feature: 1\); nothing published;"),
    ("mostly_bad",
     {"Video/bad.parquet": parquet(packets(4, seed=21, Send_Hour=[3, 24, 24, 24])),
      "Video/gone.parquet": b"not parquet"},
     {"out_of_range": 3},
     rf"^zte_tad {DS}: 75\.0% of rows rejected \(3 of 4\), above the 20% gate; top reasons: "
     r"out_of_range: 3; nothing published;"),
]


@pytest.mark.parametrize("name, files, rejections, message", TRAFFIC_REFUSED_DATES,
                         ids=[case[0] for case in TRAFFIC_REFUSED_DATES])
def test_traffic_date_is_refused_by_the_gate(spark, data_dir, name, files, rejections, message):
    _land(data_dir, "zte_tad", files)
    report = run_ingest(spark, DS, str(data_dir))
    assert report["rejections"] == rejections
    assert report["rows_in"] == report["rows_clean"] + report["rows_rejected"]
    clean, _, quarantine = _traffic_outputs(spark, data_dir)
    assert len(quarantine) == report["rows_rejected"]
    assert sum(clean.values()) == report["rows_clean"]  # one pass: staged what it counted
    with pytest.raises(QualityGateError, match=message):
        _gate(_staged_report(data_dir, "zte_tad"))
