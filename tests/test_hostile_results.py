"""Malformed results records and damaged review exports (fuzzing session 31, findings 7–9): every command that
reads a results file (``qa report``, ``qa sample``, ``qa export-review``, ``qa import-review --records``) or a
review export's hidden ``_qa`` sheet / sidecar stops with exit 2 and one ``error:`` line naming the file, the
line (or row) and the field — never a traceback. Each record is checked once, where it is read
(``qa.grade.check_record`` in ``qa.grade.read_records``; the export's settings in ``qa.review.importer``).
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import run_main as main_run
from qa.grade import check_record
from qa.shape import FieldError

MESSAGES = [
    {"role": "customer", "type": "text", "text": "在吗 这条裙子160穿什么码", "ts": "2026-03-02T10:15:06+08:00"},
    {"role": "agent", "type": "text", "text": "亲，建议M码哦", "ts": "2026-03-02T10:15:30+08:00"},
    {"role": "customer", "type": "text", "text": "好的谢谢", "ts": "2026-03-02T10:16:00+08:00"},
]
DIM = {"name": "服务态度", "source": "model", "weight": 100.0, "level": 4, "base_level": 5, "expected": 4.6,
       "probs": {"5": 0.7, "4": 0.3}, "confidence": 0.7, "evidence": [1], "value": None, "points": 75.0}
TIMING = {"human_start": "2026-03-02T10:15:06+08:00", "human_start_source": "first_customer",
          "human_service": True, "first_response_s": 24.0, "first_response_wall_s": 24.0,
          "first_response_ok": True, "reply_runs": 1, "replies_ok": 1, "unanswered_runs": 0,
          "reply_delays_s": [24.0], "avg_reply_s": 24.0, "responded_24h": True, "handle_s": 54.0,
          "reply_speed_level": 5, "chat_time_level": 5, "bot_only": False, "night_messages": 0}
RECORD = {"id": "c1", "platform": "douyin", "shop": "栀夏女装旗舰店", "agent": "小桃", "customer": "用户1",
          "day": "2026-03-02", "profile": "douyin", "rubric": "default", "model": "tiny", "score": 75.0,
          "band": "良好", "failed": False, "dimensions": {"attitude": DIM},
          "findings": [{"rule": "vague_reply", "name": "答非所问", "severity": "minor", "explanation": "x",
                        "message": 1, "span": [0, 1], "evidence": "亲", "source": "rule"}],
          "deductions": [{"dimension": "attitude", "points": 5.0, "reason": "x", "source": "rule",
                          "rule": "vague_reply", "message": 1, "span": [0, 1], "confidence": None}],
          "timing": TIMING, "rating": {"stars": 5, "label": "满意"}, "messages": MESSAGES,
          "warnings": [], "not_graded": {}, "stamp": {"rubric": "abc", "model": None, "profile": None}}


def record(**changes) -> dict:
    """A valid record with ``changes`` (dotted paths, list indexes as digits: ``findings.0.span``)."""
    rec = copy.deepcopy(RECORD)
    for path, value in changes.items():
        *head, last = path.split("__")
        obj = rec
        for k in head:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        obj[int(last) if isinstance(obj, list) else last] = value
    return rec


def write_jsonl(path: Path, *recs: dict, raw: str | None = None) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in recs]
    path.write_text("\n".join(lines + ([raw] if raw is not None else [])) + "\n", encoding="utf-8")
    return path


def run_main(capsys, *args) -> tuple[int, str]:
    """The installed ``qa`` entry point, in process: (exit code, stderr)."""
    code, _, err = main_run(capsys, *args)
    return code, err


def one_line_error(code: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


# -- the check itself --------------------------------------------------------------------------------------

def test_check_record_accepts_a_graded_record_and_its_sampled_form():
    check_record(RECORD)
    check_record({**RECORD, "messages": None, "rating": None, "timing": None, "findings": None})
    check_record({**RECORD, "pick_reason": "control", "pick_detail": "随机对照", "pick_flags": ["red_line"],
                  "pick_rank": 1, "pick_seed": 0, "review_key": "0123456789ab", "unknown_extra": [1, 2]})


BAD_RECORDS = [   # (changes, field named, words in the message)
    ({"findings": [1]}, "findings[0]", "must be an object"),
    ({"findings__0__span": [1]}, "findings[0].span", "[start, end]"),
    ({"findings__0__span": "ab"}, "findings[0].span", "[start, end]"),
    ({"findings__0__severity": ["red_line"]}, "findings[0].severity", "must be a string"),
    ({"findings__0__message": "1"}, "findings[0].message", "must be an integer"),
    ({"messages": [1, 2]}, "messages[0]", "must be an object"),
    ({"messages__1__text": ["a"]}, "messages[1].text", "must be a string or null"),
    ({"warnings": 5}, "warnings", "must be a list"),
    ({"warnings": [5]}, "warnings[0]", "must be a string"),
    ({"not_graded": [1]}, "not_graded", "must be an object"),
    ({"not_graded": {"attitude": 1}}, "not_graded.attitude", "must be a string"),
    ({"dimensions": [1]}, "dimensions", "must be an object"),
    ({"dimensions__attitude__level": "4"}, "dimensions.attitude.level", "must be an integer"),
    ({"dimensions__attitude__evidence": "1"}, "dimensions.attitude.evidence", "must be a list"),
    ({"deductions__0__points": "5"}, "deductions[0].points", "must be a number"),
    ({"rating__stars": "5"}, "rating.stars", "must be a number or null"),
    ({"rating__stars": 9}, "rating.stars", "from 1 to 5"),
    ({"rating__stars": 3.5}, "rating.stars", "must be whole stars (1–5), not 3.5"),   # the report counted it 4★
    ({"rating__label": 5}, "rating.label", "must be a string or null"),
    ({"timing__reply_delays_s": "24"}, "timing.reply_delays_s", "must be a list"),
    ({"timing__replies_ok": 4}, "timing.replies_ok", "reply_delays_s holds only 1"),
    ({"score": -5}, "score", "from 0 to 100, not -5"),
    ({"score": 1e308}, "score", "from 0 to 100"),
    ({"score": float("nan")}, "score", "not nan"),
    ({"score": float("inf")}, "score", "not inf"),
    ({"score": "100"}, "score", "must be a number"),
    ({"score": True}, "score", "must be a number"),
    ({"id": ["c1"]}, "id", "must be a string or an integer"),
    ({"pick_reason": ["control"]}, "pick_reason", "must be a string"),
    ({"day": "9999-12-31"}, "day", "out of range (allowed: 1970-01-01 to 2100-01-01)"),
    ({"day": "1969-07-20"}, "day", "out of range"),
    ({"day": "2026-3-2"}, "day", "must be a YYYY-MM-DD date"),
    ({"day": 20260302}, "day", "must be a string or null"),
    ({"messages__1__ts": "9999-03-02T10:15:30+08:00"}, "messages[1].ts", "out of range"),
    ({"messages__1__ts": "0001-01-01T00:00:00"}, "messages[1].ts", "out of range"),
    ({"messages__0__ts": "yesterday"}, "messages[0].ts", "must be an ISO-8601 time"),
    ({"timing__human_start": "9999-03-02T10:15:06+08:00"}, "timing.human_start", "out of range"),
]


@pytest.mark.parametrize("changes,field,words", BAD_RECORDS, ids=[b[1] + ":" + b[2] for b in BAD_RECORDS])
def test_check_record_names_the_bad_field(changes, field, words):
    with pytest.raises(FieldError) as e:
        check_record(record(**changes))
    assert e.value.field == field and words in e.value.message, e.value


# -- the commands ------------------------------------------------------------------------------------------

def _cmd(name: str, src: Path, out: Path) -> list:
    return {"sample": ["sample", src, "--out", out / "s.jsonl"],
            "export-review": ["export-review", src, "--out", out / "e.xlsx"],
            "report": ["report", src, "--out", out / "rp"]}[name]


# the fuzzing session's crashes, and their neighbours: line 2 is the bad record (line 1 is good)
COMMAND_CASES = [
    ("export-review", {"findings": [1]}, "findings[0]"),
    ("export-review", {"messages__0__text": ["a"]}, "messages[0].text"),
    ("export-review", {"findings__0__span": [1]}, "findings[0].span"),
    ("export-review", {"findings__0__span": "ab"}, "findings[0].span"),
    ("export-review", {"findings__0__severity": ["red_line"]}, "findings[0].severity"),
    ("export-review", {"messages": [1, 2]}, "messages[0]"),
    ("export-review", {"not_graded": [1]}, "not_graded"),
    ("sample", {"warnings": 5}, "warnings"),
    ("sample", {"findings__0__severity": ["red_line"]}, "findings[0].severity"),
    ("sample", {"not_graded": [1]}, "not_graded"),
    ("report", {"score": -5}, "score"),
    ("report", {"score": 1e308}, "score"),
    ("report", {"score": float("nan")}, "score"),
    ("report", {"score": float("inf")}, "score"),
    ("report", {"rating__stars": "5"}, "rating.stars"),
    ("report", {"rating__label": 5}, "rating.label"),
    ("report", {"findings": [1]}, "findings[0]"),
    ("report", {"timing__replies_ok": 4, "rating__stars": 1}, "timing.replies_ok"),
]


@pytest.mark.parametrize("command,changes,field", COMMAND_CASES,
                         ids=[f"{c}-{f}-{i}" for i, (c, _, f) in enumerate(COMMAND_CASES)])
def test_command_stops_on_a_bad_record_naming_file_line_field(tmp_path, capsys, command, changes, field):
    src = write_jsonl(tmp_path / "results.jsonl", record(id="ok"), record(**changes))
    line = one_line_error(*run_main(capsys, *_cmd(command, src, tmp_path / "out")))
    assert f"{src}:2: {field}:" in line, line
    assert not (tmp_path / "out" / "rp" / "report.html").exists()


@pytest.mark.parametrize("command", ["sample", "export-review", "report"])
def test_command_reads_good_records(tmp_path, capsys, command):
    src = write_jsonl(tmp_path / "results.jsonl", record(id="a"), record(id="b", score=0.0, failed=True, band="不合格"),
                      record(id="c", score=100, rating=None, findings=[], messages=MESSAGES[:1]))
    code, err = run_main(capsys, *_cmd(command, src, tmp_path / "out"))
    assert code == 0, err


@pytest.mark.parametrize("command", ["sample", "export-review", "report"])
def test_command_stops_on_a_file_that_is_not_utf8(tmp_path, capsys, command):
    src = tmp_path / "results.jsonl"
    src.write_bytes(json.dumps(record(id="ok"), ensure_ascii=False).encode() + b"\n\xd3\x6e\x13\x2c\xff\xfe\n")
    line = one_line_error(*run_main(capsys, *_cmd(command, src, tmp_path / "out")))
    assert str(src) in line


# fuzzing: a record dated in year 9999 was read by sample and export-review but refused by report; every reader
# of results now applies the one check (qa.grade.check_record → qa.schema.iso_day / iso_time) and says the same
TIME_CASES = [
    ({"day": "9999-12-31"}, "day", "out of range"),
    ({"day": "not a day"}, "day", "must be a YYYY-MM-DD date"),
    ({"messages__1__ts": "9999-03-02T10:15:30+08:00"}, "messages[1].ts", "out of range"),
    ({"messages__2__ts": "1969-12-31T23:59:59+00:00"}, "messages[2].ts", "out of range"),
    ({"messages__0__ts": "garbage"}, "messages[0].ts", "must be an ISO-8601 time"),
    ({"timing__human_start": "9999-03-02T10:15:06+08:00"}, "timing.human_start", "out of range"),
]


@pytest.mark.parametrize("changes,field,words", TIME_CASES, ids=[f"{f}:{w}" for _, f, w in TIME_CASES])
def test_every_results_reader_refuses_a_time_out_of_range_alike(tmp_path, capsys, changes, field, words):
    src = write_jsonl(tmp_path / "results.jsonl", record(id="ok"), record(id="bad", **changes))
    lines = {}
    for command in ("sample", "export-review", "report"):
        lines[command] = one_line_error(*run_main(capsys, *_cmd(command, src, tmp_path / command)))
        assert f"{src}:2: {field}: " in lines[command] and words in lines[command], lines[command]
        assert not (tmp_path / command).exists() or not any((tmp_path / command).iterdir()), command
    assert len(set(lines.values())) == 1, lines


@pytest.mark.parametrize("command", ["sample", "export-review", "report"])
def test_command_refuses_a_parquet_day_out_of_range(tmp_path, capsys, command):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    from qa.grade import NESTED, arrow_schema

    rows = [{k: json.dumps(v, ensure_ascii=False) if k in NESTED and v is not None else v for k, v in rec.items()}
            for rec in (record(id="ok"), record(id="bad", day="9999-12-31"))]
    src = tmp_path / "results.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), src)
    line = one_line_error(*run_main(capsys, *_cmd(command, src, tmp_path / "out")))
    assert f"{src}:2: day: date '9999-12-31' out of range" in line, line


def test_command_reads_times_at_the_ends_of_the_range(tmp_path, capsys):
    src = write_jsonl(tmp_path / "results.jsonl", record(id="a", day="1970-01-01",
                                                         messages__0__ts="1970-01-01T08:00:00+08:00"),
                      record(id="b", day="2100-01-01", messages__2__ts="2099-12-31T23:59:59+00:00"),
                      record(id="c", day="", messages__1__ts=None, timing__human_start=None))
    for command in ("sample", "export-review", "report"):
        code, err = run_main(capsys, *_cmd(command, src, tmp_path / command))
        assert code == 0, (command, err)


def test_report_refuses_a_parquet_score_out_of_range(tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    from qa.grade import NESTED, arrow_schema

    rows = []
    for rec in (record(id="ok"), record(id="bad", score=-5.0)):
        rows.append({k: json.dumps(v, ensure_ascii=False) if k in NESTED and v is not None else v
                     for k, v in rec.items()})
    src = tmp_path / "results.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), src)
    line = one_line_error(*run_main(capsys, "report", src, "--out", tmp_path / "rp"))
    assert f"{src}:2: score:" in line and "0 to 100" in line


# -- import-review: the export's hidden _qa sheet and its sidecar -----------------------------------------

@pytest.fixture
def exported(tmp_path, capsys):
    """An XLSX and a CSV (with sidecar) review export of two good records, and a graded CSV row."""
    src = write_jsonl(tmp_path / "results.jsonl", record(id="c1"), record(id="c2"))
    for name in ("r.xlsx", "r.csv"):
        code, err = run_main(capsys, "export-review", src, "--out", tmp_path / name)
        assert code == 0, err
    return tmp_path


def _import(capsys, tmp_path, sheet: Path, *extra) -> tuple[int, str]:
    return run_main(capsys, "import-review", sheet, *extra, "--out", tmp_path / "l.jsonl",
                    "--report", tmp_path / "a.json")


def _damage_xlsx(path: Path, *, meta=None, record_row: dict | None = None) -> None:
    wb = openpyxl.load_workbook(path)
    ws = wb["_qa"]
    if meta is not None:
        ws.cell(1, 1).value = json.dumps(meta(json.loads(ws.cell(1, 1).value)), ensure_ascii=False)
    if record_row is not None:
        for j in range(2, ws.max_column + 1):
            ws.cell(2, j).value = None
        ws.cell(2, 2).value = json.dumps(record_row, ensure_ascii=False)
    wb.save(path)


META_CASES = [   # (how the settings are damaged, field named)
    (lambda m: {**m, "grades": [1]}, "grades"),
    (lambda m: {**m, "grades": "x"}, "grades"),
    (lambda m: {**m, "grades": {"复核·服务态度": 1}}, "grades.复核·服务态度"),
    (lambda m: {**m, "scale": None}, "scale"),
    (lambda m: {**m, "scale": "abc"}, "scale"),
    (lambda m: {**m, "scale": []}, "scale"),
    (lambda m: {**m, "id": 5}, "id"),
    (lambda m: {**m, "rule_ids": [1]}, "rule_ids"),
    (lambda m: [m], None),
]


@pytest.mark.parametrize("damage,field", META_CASES, ids=[str(i) for i in range(len(META_CASES))])
def test_import_review_damaged_qa_sheet_settings(exported, capsys, damage, field):
    sheet = exported / "r.xlsx"
    _damage_xlsx(sheet, meta=damage)
    line = one_line_error(*_import(capsys, exported, sheet))
    assert f"{sheet}: " in line and "the hidden _qa sheet is damaged" in line, line
    if field:
        assert f": {field}: " in line, line


@pytest.mark.parametrize("rec,field", [
    ({**RECORD, "dimensions": [1]}, "dimensions"),
    ({**RECORD, "messages": [1]}, "messages[0]"),
    ({**RECORD, "id": None}, "id"),
    ([1], None),
])
def test_import_review_damaged_qa_sheet_record(exported, capsys, rec, field):
    sheet = exported / "r.xlsx"
    _damage_xlsx(sheet, record_row=rec)
    line = one_line_error(*_import(capsys, exported, sheet))
    assert f"{sheet}:2: " in line and "the hidden _qa sheet is damaged" in line, line
    if field:
        assert f":2: {field}: " in line, line


@pytest.mark.parametrize("content,words", [
    ("null", "not a review sidecar"),
    ("[1, 2]", "not a review sidecar"),
    ('{"records": []}', "id: must be a string"),
    ("SIDECAR_GRADES_LIST", "grades: must be an object"),
    ("SIDECAR_RECORDS_OBJECT", "records: must be a list"),
    ("SIDECAR_RECORD_BAD", "records[0].findings[0]: must be an object"),
    ("[" * 100_000, "not a review sidecar (JSON nested too deep)"),
])
def test_import_review_damaged_sidecar(exported, capsys, content, words):
    side = exported / "r.csv.records.json"
    data = json.loads(side.read_text("utf-8"))
    content = {"SIDECAR_GRADES_LIST": json.dumps({**data, "grades": [1]}),
               "SIDECAR_RECORDS_OBJECT": json.dumps({**data, "records": {"a": 1}}),
               "SIDECAR_RECORD_BAD": json.dumps({**data, "records": [{**RECORD, "findings": [1]}]}),
               }.get(content, content)
    side.write_text(content, encoding="utf-8")
    line = one_line_error(*_import(capsys, exported, exported / "r.csv"))
    assert str(side) in line and words in line, line


def test_import_review_records_not_utf8(exported, capsys):
    sheet = exported / "r.csv"
    (exported / "r.csv.records.json").unlink()
    bad = exported / "records.jsonl"
    bad.write_bytes(b"\xd3\x6e\x13\x2c\x06\x0d\xab\x4b\n")
    line = one_line_error(*_import(capsys, exported, sheet, "--records", bad))
    assert f"{bad}:1: not UTF-8" in line, line


def test_import_review_still_reads_a_good_export(exported, capsys):
    sheet = exported / "r.csv"
    rows = list(csv.reader(sheet.read_text("utf-8-sig").splitlines(keepends=True)))
    head, grades = rows[0], json.loads((exported / "r.csv.records.json").read_text("utf-8"))["grades"]
    for row in rows[1:]:
        for h in grades:
            row[head.index(h)] = "4"
    with open(sheet, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(rows)
    code, err = _import(capsys, exported, sheet)
    assert code == 0, err
    assert len((exported / "l.jsonl").read_text("utf-8").splitlines()) == 2
