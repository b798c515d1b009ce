"""Hostile outputs and options: an ``--out`` that is an input (or whose rejects file / sidecar is), option values
out of bounds, a review format that does not match its file name, outputs that cannot be written, shop-stats
CSVs in other encodings or with absurd numbers, and personal data next to other digits. Every case ends in one
line and exit code 2 (or, for masking, in masked text); no input is ever overwritten."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import one_line_error, run_main, write_jsonl
from qa.safety import mask_text

CHAT = {"id": "c1", "shop": "店A", "agent": "客服1",
        "messages": [{"role": "customer", "text": "在吗", "ts": "2026-03-02T10:15:03+08:00"},
                     {"role": "agent", "text": "亲亲在的", "ts": "2026-03-02T10:15:33+08:00"}]}
PII_CHAT = {"id": "p1", "shop": "店", "agent": "客服",
            "messages": [{"role": "customer", "text": "我的手机号13812345678 3点前能发货吗",
                          "ts": "2026-03-02T10:15:03+08:00"},
                         {"role": "agent", "text": "亲亲在的，已记下13912345678 1号楼，卡号6222020200001234567 2张",
                          "ts": "2026-03-02T10:15:33+08:00"}]}
PII = ("13812345678", "13912345678", "6222020200001234567")
STATS_HEADER = "shop,day,orders,reviews_5,reviews_4,reviews_3,reviews_2,reviews_1,complaints,refunds\n"
STATS_ROW = "店A,2026-03-02,100,50,10,5,2,1,1,3\n"
STATS_ZH = "店铺,日期,订单数,5星,4星,3星,2星,1星,投诉数,退款数\n" + STATS_ROW


qa = run_main   # the ``qa`` entry point in process: (exit code, stdout, stderr)


@pytest.fixture
def chats(tmp_path) -> Path:
    return write_jsonl(tmp_path / "in.jsonl", [CHAT, {**CHAT, "id": "c2"}])


@pytest.fixture
def results(tmp_path, capsys) -> Path:
    src = write_jsonl(tmp_path / "chats.jsonl", [CHAT, {**CHAT, "id": "c2"}, PII_CHAT])
    out = tmp_path / "R.jsonl"
    code, _, err = qa(capsys, "grade", src, "--model", "none", "--workers", "1", "--out", out)
    assert code == 0, err
    return out


# -- an output that is an input ---------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["grade", "check", "predict"])
def test_hostile_outputs_out_equal_to_input_is_refused(tmp_path, capsys, chats, cmd):
    before = chats.read_bytes()
    extra = ["--model", "none", "--workers", "1"] if cmd == "grade" else []
    code, _, err = qa(capsys, cmd, chats, *extra, "--out", chats)
    one_line_error(code, err, "is the input file", str(chats))
    assert chats.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]            # nothing written


@pytest.mark.parametrize("how", ["relative", "symlink", "hardlink"])
def test_hostile_outputs_same_file_by_another_name_is_refused(tmp_path, capsys, chats, monkeypatch, how):
    before = chats.read_bytes()
    if how == "relative":
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path / "sub")
        out = Path("..") / "sub" / ".." / "in.jsonl"
    elif how == "symlink":
        out = tmp_path / "link.jsonl"
        out.symlink_to(chats)
    else:
        out = tmp_path / "hard.jsonl"
        os.link(chats, out)
    code, _, err = qa(capsys, "grade", chats, "--model", "none", "--workers", "1", "--out", out)
    one_line_error(code, err, "is the input file")
    assert chats.read_bytes() == before


def test_hostile_outputs_derived_rejects_file_equal_to_input_is_refused(tmp_path, capsys):
    src = write_jsonl(tmp_path / "R.rejects.jsonl", [CHAT])      # grade --out R.jsonl writes R.rejects.jsonl
    before = src.read_bytes()
    for cmd in ("grade", "check"):
        extra = ["--model", "none", "--workers", "1"] if cmd == "grade" else []
        code, _, err = qa(capsys, cmd, src, *extra, "--out", tmp_path / "R.jsonl")
        one_line_error(code, err, "is the input file", "R.rejects.jsonl")
        assert src.read_bytes() == before and not (tmp_path / "R.jsonl").exists()


def test_hostile_outputs_folder_outputs_never_overwrite_an_input(tmp_path, capsys, chats, results):
    m = tmp_path / "m"
    m.mkdir()
    timing = write_jsonl(m / "timing.jsonl", [CHAT])             # metrics --out m writes m/timing.jsonl
    code, _, err = qa(capsys, "metrics", timing, "--out", m)
    one_line_error(code, err, "is the input file", "timing.jsonl")
    assert json.loads(timing.read_text("utf-8")) == CHAT
    rep = tmp_path / "rep"
    rep.mkdir()
    stats = rep / "shop_score.csv"
    stats.write_text(STATS_HEADER + STATS_ROW, encoding="utf-8")
    code, _, err = qa(capsys, "report", results, "--shop-stats", stats, "--out", rep)
    one_line_error(code, err, "is the input file", "shop_score.csv")
    assert stats.read_text("utf-8") == STATS_HEADER + STATS_ROW
    tp = tmp_path / "tp"
    tp.mkdir()
    q = write_jsonl(tp / "questions.csv", [CHAT])
    code, _, err = qa(capsys, "topics", q, "--backend", "lsa", "--out", tp)
    one_line_error(code, err, "is the input file", "questions.csv")


def test_hostile_outputs_review_loop_never_overwrites_its_input(tmp_path, capsys, results):
    before = results.read_bytes()
    code, _, err = qa(capsys, "sample", results, "--out", results)
    one_line_error(code, err, "is the input file")
    sidecar_named = tmp_path / "rv.csv.records.json"              # export --out rv.csv writes this sidecar
    sidecar_named.write_bytes(before)
    code, _, err = qa(capsys, "export-review", sidecar_named, "--out", tmp_path / "rv.csv")
    one_line_error(code, err, "is the input file", "rv.csv.records.json")
    assert not (tmp_path / "rv.csv").exists() and sidecar_named.read_bytes() == before
    code, _, err = qa(capsys, "export-review", results, "--out", tmp_path / "rv.xlsx")
    assert code == 0, err
    xlsx = tmp_path / "rv.xlsx"
    xbefore = xlsx.read_bytes()
    for opt in ("--out", "--report"):
        other = "--report" if opt == "--out" else "--out"
        code, _, err = qa(capsys, "import-review", xlsx, opt, xlsx, other, tmp_path / "x.json")
        one_line_error(code, err, "is the input file", opt)
        assert xlsx.read_bytes() == xbefore
    assert results.read_bytes() == before


def test_hostile_outputs_shop_score_out_equal_to_stats_is_refused(tmp_path, capsys):
    stats = tmp_path / "s.csv"
    stats.write_text(STATS_HEADER + STATS_ROW, encoding="utf-8")
    code, _, err = qa(capsys, "shop-score", stats, "--out", stats)
    one_line_error(code, err, "is the input file")
    assert stats.read_text("utf-8") == STATS_HEADER + STATS_ROW


# -- personal data beside other digits --------------------------------------------------------------------

@pytest.mark.parametrize("text,masked", [
    ("我的手机号13812345678 3点前", "我的手机号138****5678 3点前"),
    ("第3 13812345678", "第3 138****5678"),
    ("13912345678 1号楼", "139****5678 1号楼"),
    ("卡号6222020200001234567 2张", "卡号6222***********4567 2张"),
    ("买2 6222020200001234567", "买2 6222***********4567"),
    ("身份证110101199003071234 2份", "身份证110***********1234 2份"),
    ("13812345678 13912345678", "138****5678 139****5678"),
    ("138 1234 5678 9", "138 **** 5678 9"),
    ("6222 0212 1391 2345 678", "6222 **** **** ***5 678"),    # a phone-like tail of a card: masked as the card
    ("尺码155 160 165 170 175", "尺码155 160 165 170 175"),    # sizes, not personal data
    ("订单 2 件，共 129 元", "订单 2 件，共 129 元"),
])
def test_hostile_outputs_mask_numbers_next_to_spaced_digits(text, masked):
    assert mask_text(text) == masked and len(masked) == len(text)
    assert mask_text(masked) == masked


def test_hostile_outputs_review_files_mask_phone_then_digit(tmp_path, capsys, results):
    for name in ("rv.xlsx", "rv.csv", "rv.html"):
        code, _, err = qa(capsys, "export-review", results, "--out", tmp_path / name)
        assert code == 0, err
    texts = [(tmp_path / "rv.csv").read_text("utf-8-sig"), (tmp_path / "rv.csv.records.json").read_text("utf-8"),
             (tmp_path / "rv.html").read_text("utf-8")]
    wb = openpyxl.load_workbook(tmp_path / "rv.xlsx")
    texts += [str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    leaks = [p for p in PII for t in texts if p in t]
    assert not leaks, leaks
    assert any("138****5678" in t for t in texts)


# -- review format and file name -------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,name", [("html", "x.xlsx"), ("xlsx", "x.csv"), ("csv", "x.html"), ("csv", "x")])
def test_hostile_outputs_export_format_must_match_suffix(tmp_path, capsys, results, fmt, name):
    code, _, err = qa(capsys, "export-review", results, "--format", fmt, "--out", tmp_path / name)
    one_line_error(code, err, f"--format {fmt}")
    assert not (tmp_path / name).exists()


def test_hostile_outputs_export_format_from_suffix(tmp_path, capsys, results):
    code, _, err = qa(capsys, "export-review", results, "--out", tmp_path / "x.htm")
    assert code == 0, err
    assert (tmp_path / "x.htm").read_text("utf-8").lstrip().lower().startswith("<!doctype html")
    code, _, err = qa(capsys, "export-review", results, "--format", "CSV", "--out", tmp_path / "x.csv")
    assert code == 0, err
    code, _, err = qa(capsys, "export-review", results, "--out", tmp_path / "x.txt")
    one_line_error(code, err, "--out")


# -- grade option bounds ---------------------------------------------------------------------------------

@pytest.mark.parametrize("opts,word", [
    (["--workers", "1", "--batch-size", "99999999999999999999"], "--batch-size"),
    (["--workers", "1", "--batch-size", "100001"], "--batch-size"),
    (["--workers", "100000"], "--workers"),
    (["--workers", "-1"], "--workers"),
    (["--engine", "ray", "--workers", "100000"], "--workers"),
])
def test_hostile_outputs_grade_option_bounds(tmp_path, capsys, chats, opts, word):
    out = tmp_path / ("o" if "ray" in opts else "o.jsonl")
    code, _, err = qa(capsys, "grade", chats, "--model", "none", *opts, "--out", out)
    one_line_error(code, err, word, "must be from 1 to")
    assert not out.exists()


def test_hostile_outputs_grade_starts_no_more_workers_than_batches(tmp_path, monkeypatch, chats):
    import qa.batch
    from qa.grader import GradeSettings

    def no_pool(*a, **k):
        raise AssertionError("a worker pool was started for a single batch")

    monkeypatch.setattr(qa.batch.mp, "get_context", no_pool)
    run = qa.batch.grade_files([chats], tmp_path / "r.jsonl", GradeSettings(model="none", batch_size=64), workers=4)
    assert run.graded == 2 and len((tmp_path / "r.jsonl").read_text("utf-8").splitlines()) == 2


# -- topics outputs and inputs ----------------------------------------------------------------------------

def test_hostile_outputs_topics_unwritable_out_and_garbage_parquet(tmp_path, capsys, chats):
    for out in (chats / "x", Path("/dev/full")):
        code, _, err = qa(capsys, "topics", chats, "--backend", "lsa", "--out", out)
        one_line_error(code, err, "not a folder")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet at all \x00\x01\x02")
    code, _, err = qa(capsys, "topics", garbage, "--backend", "lsa", "--out", tmp_path / "tp")
    one_line_error(code, err, "garbage.parquet", "Parquet")
    assert not (tmp_path / "tp").exists()


# -- shop-score ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_hostile_outputs_shop_score_reads_excel_encodings(tmp_path, capsys, encoding):
    stats = tmp_path / "s.csv"
    stats.write_bytes(STATS_ZH.encode(encoding))
    code, out, err = qa(capsys, "shop-score", stats, "--out", tmp_path / "o.csv")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "o.csv").read_text("utf-8-sig").splitlines()))
    assert rows[0]["shop"] == "店A" and rows[0]["total"] == "76.49"


def test_hostile_outputs_shop_score_binary_is_one_line(tmp_path, capsys):
    stats = tmp_path / "s.csv"
    stats.write_bytes(bytes(range(128, 256)) * 4)
    code, _, err = qa(capsys, "shop-score", stats)
    one_line_error(code, err, "s.csv")


@pytest.mark.parametrize("cell", ["inf", "-inf", "1e400", "9" * 400, "nan", "1e13"])
def test_hostile_outputs_shop_score_absurd_count_names_line_and_column(tmp_path, capsys, cell):
    stats = tmp_path / "s.csv"
    stats.write_text(STATS_HEADER + STATS_ROW + f"店B,2026-03-02,100,1,1,1,1,1,{cell},1\n", encoding="utf-8")
    code, _, err = qa(capsys, "shop-score", stats)
    text = one_line_error(code, err, "s.csv:3", "complaints")
    assert len(text) < 300                                       # the 400-digit cell is not echoed whole


def test_hostile_outputs_shop_score_huge_cell(tmp_path, capsys):
    stats = tmp_path / "s.csv"
    stats.write_text(STATS_HEADER + "店A," + "x" * 140_000 + ",1,1,1,1,1,1,1,1\n", encoding="utf-8")
    code, _, err = qa(capsys, "shop-score", stats)
    one_line_error(code, err, "s.csv:2", "too long")


def test_hostile_outputs_shop_score_unwritable_out(tmp_path, capsys):
    stats = tmp_path / "s.csv"
    stats.write_text(STATS_HEADER + STATS_ROW, encoding="utf-8")
    for out in (tmp_path, stats / "o.csv", Path("/proc/qa_nosuch/x.csv")):
        code, _, err = qa(capsys, "shop-score", stats, "--out", out)
        one_line_error(code, err, str(out.parent))


def test_hostile_outputs_report_reads_gb18030_shop_stats(tmp_path, capsys, results):
    stats = tmp_path / "s.csv"
    stats.write_bytes(STATS_ZH.encode("gb18030"))
    code, _, err = qa(capsys, "report", results, "--shop-stats", stats, "--out", tmp_path / "rep")
    assert code == 0, err
    assert "店A" in (tmp_path / "rep" / "shop_score.csv").read_text("utf-8-sig")
