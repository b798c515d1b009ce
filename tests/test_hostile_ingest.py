"""Hostile input on the reading path: absurd times, one broken record among good ones, broken CSV structure and
a workbook with a far cell. Each case costs the broken record (or file) only, names where it is, and counts add
up (docs/ingest.md, docs/schema.md)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import re
import zipfile
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from typer.testing import CliRunner

from qa.chatrecords import load_chats
from qa.cli import app
from qa.errors import InputError
from qa.io import ReadStats, Reject, read_many
from qa.rubric import Hours
from qa.schema import Conversation
from qa.timing import service_seconds
from tests.conftest import ROOT


def _chat(cid: str, *, ts0="2026-03-02T10:15:03+08:00", ts1="2026-03-02T10:15:33+08:00", **extra) -> dict:
    return {"id": cid, **extra, "messages": [{"role": "customer", "text": "在吗", "ts": ts0},
                                            {"role": "agent", "text": "亲亲在的", "ts": ts1}]}


def _jsonl(tmp_path, bad: str, name="in.jsonl"):
    """ok1, the bad line, ok2, ok3."""
    lines = [json.dumps(_chat("ok1")), bad, json.dumps(_chat("ok2")), json.dumps(_chat("ok3"))]
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _read(path, **kw):
    stats = ReadStats()
    items = list(read_many([path], stats, unique_ids=True, **kw))
    assert stats.read == stats.accepted + stats.rejected == len(items)
    return items, stats


def _one_reject(items) -> Reject:
    rejects = [x for x in items if isinstance(x, Reject)]
    assert len(rejects) == 1, rejects
    return rejects[0]


def cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r


def _summary(stderr: str) -> tuple[int, int, int]:
    m = re.search(r"read (\d+) · accepted (\d+) · rejected (\d+)", stderr)
    assert m, stderr
    return tuple(map(int, m.groups()))


HEADER = ["会话ID", "时间", "发送方角色", "发送人", "消息类别", "聊天内容", "店铺", "客服"]


def _rows(n=4):
    out = []
    for i in range(n):
        out += [[f"tb-{i}", f"2026-03-02 09:1{i}:00", "买家", "", "文本", "敏感肌能用吗", "花间", "小柚"],
                [f"tb-{i}", f"2026-03-02 09:1{i}:30", "卖家", "小柚", "文本", "可以的亲", "花间", "小柚"]]
    return out


def _write_csv(path, header, rows):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8-sig")
    return path


def test_hostile_ingest_csv_times_as_excel_day_counts_are_dates_not_1970(tmp_path):
    """A CSV saved from a sheet whose time cells lost their format holds 46083.3127: read as epoch seconds, every
    chat fell on 1970-01-01 and a 30 s reply took 0.0003 s."""
    rows = _rows(2)
    for r in rows:   # 2026-03-02 09:1i:00 / :30 as Excel's day count
        h, m, sec = map(int, r[1].split()[1].split(":"))
        r[1] = f"{46083 + (h * 3600 + m * 60 + sec) / 86400:.8f}"
    items, _ = _read(_write_csv(tmp_path / "serial.csv", HEADER, rows))
    c = items[0]
    assert c.messages[0].ts.isoformat() == "2026-03-02T09:10:00+08:00"
    assert (c.messages[1].ts - c.messages[0].ts).total_seconds() == pytest.approx(30, abs=0.01)


def test_hostile_ingest_xlsx_conversation_ids_merged_over_their_rows(tmp_path):
    """A sheet with each chat's id merged over its rows read 1 message per chat and rejected every other row."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER)
    rows = _rows(3)
    for r in rows:
        ws.append(r)
    for i in range(3):   # rows 2–3, 4–5, 6–7: one id each, merged
        ws.merge_cells(start_row=2 + 2 * i, start_column=1, end_row=3 + 2 * i, end_column=1)
    ws.merge_cells("G2:G7")   # the shop over every row
    wb.save(tmp_path / "merged.xlsx")
    items, stats = _read(tmp_path / "merged.xlsx")
    assert (stats.accepted, stats.rejected) == (3, 0)
    assert [len(c.messages) for c in items] == [2, 2, 2] and {c.shop for c in items} == {"花间"}


def test_hostile_ingest_a_renamed_optional_column_and_a_second_sheet_are_said(tmp_path, caplog):
    """消息内容 renamed read every message as empty, and chats on Sheet2 were skipped, both without a word."""
    header = [h if h != "聊天内容" else "Message Content" for h in HEADER]
    with caplog.at_level("WARNING"):
        items, _ = _read(_write_csv(tmp_path / "renamed.csv", header, _rows(2)))
    assert "'聊天内容' (text)" in caplog.text and "not in the header" in caplog.text
    wb = openpyxl.Workbook()
    wb.active.append(HEADER)
    for r in _rows(2):
        wb.active.append(r)
    more = wb.create_sheet("Sheet2")
    more.append(HEADER)
    more.append(["tb-9", "2026-03-02 09:19:00", "买家", "", "文本", "在吗", "花间", "小柚"])
    wb.save(tmp_path / "two.xlsx")
    caplog.clear()
    with caplog.at_level("WARNING"):
        items, stats = _read(tmp_path / "two.xlsx")
    assert stats.accepted == 2 and "sheet 'Sheet2' is not read" in caplog.text


def test_hostile_ingest_a_chat_listed_newest_first_keeps_messages_of_one_second_in_order(tmp_path):
    """Re-sorted by time, an instant reply (same second) came before the question it answers: 270 s, failed."""
    rows = [["tb-1", "2026-03-02 10:05:00", "卖家", "小柚", "文本", "有的亲", "花间", "小柚"],
            ["tb-1", "2026-03-02 10:04:30", "买家", "", "文本", "这个有S码吗", "花间", "小柚"],
            ["tb-1", "2026-03-02 10:00:00", "卖家", "小柚", "文本", "在的亲", "花间", "小柚"],
            ["tb-1", "2026-03-02 10:00:00", "买家", "", "文本", "在吗", "花间", "小柚"]]
    items, _ = _read(_write_csv(tmp_path / "desc.csv", HEADER, rows))
    c = items[0]
    assert [m.text for m in c.messages] == ["在吗", "在的亲", "这个有S码吗", "有的亲"]
    assert "newest_first" in c.warnings and "out_of_order_ts" not in c.warnings


# -- times out of range ---------------------------------------------------------------------------------

@pytest.mark.parametrize("ts0,ts1,field", [
    ("2026-03-02T10:15:03+08:00", "9999-12-31T23:59:59+00:00", "messages.1.ts"),   # far future
    ("0001-01-01T00:00:00", "2026-03-02T10:15:33", "messages.0.ts"),               # naive year 1
    ("0002-01-01T00:00:00+08:00", "9998-01-01T00:00:00+08:00", "messages.0.ts"),   # an absurd span
    (-5, 1772416830, "messages.0.ts"),                                             # before the epoch
    ("2026-03-02T10:15:03+08:00", 4102444800, "messages.1.ts"),                    # 2100-01-01 UTC exactly
])
def test_hostile_ingest_time_out_of_range_rejects_that_conversation(tmp_path, ts0, ts1, field):
    items, stats = _read(_jsonl(tmp_path, json.dumps(_chat("bad", ts0=ts0, ts1=ts1))))
    rej = _one_reject(items)
    assert (rej.line, rej.field, rej.id) == (2, field, "bad") and "out of range" in rej.reason
    assert [c.id for c in items if isinstance(c, Conversation)] == ["ok1", "ok2", "ok3"]


def test_hostile_ingest_time_range_edges_are_accepted(tmp_path):
    items, _ = _read(_jsonl(tmp_path, json.dumps(_chat("edge", ts0=0, ts1="2099-12-31T23:59:59+00:00"))))
    assert all(isinstance(c, Conversation) for c in items) and len(items) == 4


def test_hostile_ingest_year_one_row_in_an_export_names_line_and_column(tmp_path):
    header = ["会话ID", "时间", "发送方角色", "发送人", "消息类别", "聊天内容", "店铺"]
    rows = [["tb-1", "2026-03-02 09:10:27", "买家", "", "文本", "在吗", "花间"],
            ["tb-1", "0001-01-01 00:00:00", "卖家", "小柚", "文本", "在的", "花间"],
            ["tb-2", "2026-03-02 09:12:00", "买家", "", "文本", "发货了吗", "花间"],
            ["tb-2", "2026-03-02 09:12:30", "卖家", "小柚", "文本", "今天发", "花间"]]
    p = tmp_path / "qianniu.csv"
    _write_csv(p, header, rows)
    items, stats = _read(p)
    rej = _one_reject(items)
    assert (rej.line, rej.field, rej.id) == (3, "时间", "tb-1") and "out of range" in rej.reason
    assert (stats.accepted, stats.rejected) == (1, 1)


def test_hostile_ingest_check_and_metrics_on_far_times_print_the_summary(tmp_path):
    p = _jsonl(tmp_path, json.dumps(_chat("bad", ts1="9999-12-31T23:59:59+00:00")))
    r = cli("check", p, "-q", "--out", tmp_path / "f.jsonl")
    assert r.exit_code == 0, r.output
    assert _summary(r.stderr) == (4, 3, 1)
    r = cli("metrics", p, "--out", tmp_path / "m")
    assert r.exit_code == 0, r.output
    assert _summary(r.stderr) == (4, 3, 1)


def test_hostile_ingest_report_refuses_a_result_time_out_of_range(tmp_path):
    rec = {"id": "a", "score": 90.0, "band": "良好", "messages": [
        {"role": "customer", "text": "在吗", "ts": "2026-03-02T10:15:03+08:00"},
        {"role": "agent", "text": "在", "ts": "9999-12-31T23:59:59+00:00"}]}
    p = tmp_path / "results.jsonl"
    p.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="out of range") as e:
        load_chats([p])
    assert (e.value.file, e.value.line) == (str(p), 1)


# -- service hours over long spans ------------------------------------------------------------------------

def _loop(start, end, hours):
    """The day-by-day definition, for comparison."""
    zone = ZoneInfo(hours.tz)
    a, b = start.astimezone(zone), end.astimezone(zone)
    total, day = 0.0, a.date() - dt.timedelta(days=1)
    while day <= b.date():
        w0 = dt.datetime.combine(day, hours.start, tzinfo=zone)
        w1 = dt.datetime.combine(day + dt.timedelta(days=hours.end <= hours.start), hours.end, tzinfo=zone)
        total += max(0.0, (min(b, w1) - max(a, w0)).total_seconds())
        day += dt.timedelta(days=1)
    return total


@pytest.mark.parametrize("hours", [Hours(), Hours(start=dt.time(19), end=dt.time(3)),
                                   Hours(start=dt.time(9), end=dt.time(18), tz="America/New_York")])
def test_hostile_ingest_service_seconds_matches_the_day_by_day_definition(hours):
    rng = random.Random(7)
    for _ in range(200):
        a = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=rng.randrange(2 * 365 * 86400))
        b = a + dt.timedelta(seconds=rng.randrange(90 * 86400))
        assert service_seconds(a, b, hours) == _loop(a, b, hours)


def test_hostile_ingest_service_seconds_long_and_extreme_spans_are_arithmetic():
    start = dt.datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
    days = 2_000_000   # ~5,500 years: a per-day loop would take seconds
    assert service_seconds(start, start + dt.timedelta(days=days), Hours()) == days * 15 * 3600
    lo = dt.datetime(1, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    hi = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
    for hours in (Hours(), Hours(start=dt.time(19), end=dt.time(3))):
        assert service_seconds(lo, hi, hours) > 0     # no OverflowError at the calendar's ends


# -- one broken record costs that record only ----------------------------------------------------------------

@pytest.mark.parametrize("bad,field,reason", [
    ('{"id": "bad", "platform": "jd", "warnings": 5, "messages": [{"role": "agent", "text": "x"}]}',
     "warnings", "tuple"),
    ('{"id": "bad", "messages": [{"role": "agent", "text": "x", "ts": 1' + "0" * 400 + "}]}",
     "messages.0.ts", "out of range"),
    ('{"id": "bad", "messages": [{"role": "agent", "text": "x", "ts": ' + "9" * 5000 + "}]}", None, "bad JSON"),
])
def test_hostile_ingest_bad_record_is_one_reject_and_the_rest_is_read(tmp_path, bad, field, reason):
    items, stats = _read(_jsonl(tmp_path, bad))
    rej = _one_reject(items)
    assert rej.line == 2 and rej.field == field and reason in rej.reason
    assert [c.id for c in items if isinstance(c, Conversation)] == ["ok1", "ok2", "ok3"]
    assert (stats.read, stats.accepted, stats.rejected) == (4, 3, 1)


def test_hostile_ingest_unforeseen_error_in_one_record_stays_with_that_record(tmp_path, monkeypatch):
    real = Conversation.model_validate.__func__

    def validate(cls, obj, *a, **kw):
        if obj.get("id") == "boom":
            raise RuntimeError("something no check foresaw")
        return real(cls, obj, *a, **kw)

    monkeypatch.setattr(Conversation, "model_validate", classmethod(validate))
    items, stats = _read(_jsonl(tmp_path, json.dumps(_chat("boom"))))
    rej = _one_reject(items)
    assert rej.line == 2 and rej.id == "boom" and "RuntimeError: something no check foresaw" in rej.reason
    assert (stats.accepted, stats.rejected) == (3, 1)


def test_hostile_ingest_a_line_that_is_not_utf8_is_one_reject(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(_chat("ok1")).encode() + b'\n{"id":"x\xff"}\r\n'
                  + json.dumps(_chat("ok2")).encode() + b"\r" + json.dumps(_chat("ok3")).encode())
    items, stats = _read(p)
    rej = _one_reject(items)
    assert rej.line == 2 and "not UTF-8" in rej.reason
    assert [c.id for c in items if isinstance(c, Conversation)] == ["ok1", "ok2", "ok3"]


def test_hostile_ingest_check_counts_every_record_of_a_file_with_a_broken_one(tmp_path):
    p = _jsonl(tmp_path, '{"id": "bad", "platform": "jd", "warnings": 5, "messages": [{"role": "agent"}]}')
    r = cli("check", p, "-q", "--out", tmp_path / "f.jsonl")
    assert r.exit_code == 0, r.output
    assert _summary(r.stderr) == (4, 3, 1)
    (rej,) = [json.loads(x) for x in (tmp_path / "f.rejects.jsonl").read_text("utf-8").splitlines()]
    assert (rej["line"], rej["field"]) == (2, "warnings")


def test_hostile_ingest_malformed_dialeval_dialogue_is_one_reject(tmp_path):
    turn = [{"sender": "customer", "utterances": ["在吗"]}]
    data = [{"id": "d1", "turns": turn}, {"id": "b", "turns": turn, "annotations": [{"quality": [[1, 2, 3]]}]},
            {"id": "d2", "turns": turn}, {"id": "d3", "turns": turn}]
    p = tmp_path / "stc3.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    items, stats = _read(p)
    rej = _one_reject(items)
    assert (rej.line, rej.id) == (2, "b") and "ValueError" in rej.reason
    assert [c.id for c in items if isinstance(c, Conversation)] == ["d1", "d2", "d3"]


# -- CSV structure ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("column", ["会话ID", "聊天内容"])
def test_hostile_ingest_csv_column_read_twice_is_a_clear_reject(tmp_path, column):
    rows = [r + ["other"] for r in _rows()]
    items, stats = _read(_write_csv(tmp_path / "dup.csv", HEADER + [column], rows))
    rej = _one_reject(items)
    assert (rej.line, rej.field) == (1, column) and "appears 2 times" in rej.reason
    assert (stats.read, stats.rejected) == (1, 1)


def test_hostile_ingest_csv_unbalanced_quote_is_a_clear_reject_not_a_merge(tmp_path):
    p = _write_csv(tmp_path / "q.csv", HEADER, _rows())
    lines = p.read_text("utf-8-sig").splitlines()
    lines[2] = lines[2].replace("可以的亲", '"可以的亲')   # line 3 of the file opens a quote it never closes
    p.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    items, stats = _read(p)
    rej = _one_reject(items)
    assert (rej.line, rej.field) == (3, "聊天内容") and "quote" in rej.reason
    assert stats.accepted == 0


def _csv_text(header, rows, edit_line: int, old: str, new: str, end: str = "\n") -> str:
    """The CSV of ``header`` and ``rows`` with ``old`` → ``new`` once in line ``edit_line`` (1-based)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    lines = buf.getvalue().splitlines()
    assert old in lines[edit_line - 1]
    lines[edit_line - 1] = lines[edit_line - 1].replace(old, new, 1)
    return "\n".join(lines) + end


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "gb18030"])
@pytest.mark.parametrize("end", ["\n", "\r\n", ""])
@pytest.mark.parametrize("old,new,column", [("可以的亲", '"可以的亲', "聊天内容"), ("卖家,小柚", '卖家,"小柚', "发送人"),
                                            ("花间,小柚", '花间,"小柚', "客服")])
def test_hostile_ingest_csv_quote_left_open_on_the_last_row_is_a_clear_reject(tmp_path, encoding, end, old, new,
                                                                              column):
    # the last row opens a quote that the file never closes: the cells after it were merged into its cell
    text = _csv_text(HEADER, _rows(), 9, old, new, end)
    p = tmp_path / "last.csv"
    p.write_bytes(text.replace("\n", "\r\n").encode(encoding) if end == "\r\n" else text.encode(encoding))
    items, stats = _read(p)
    rej = _one_reject(items)
    assert (rej.line, rej.field) == (9, column) and "never closed" in rej.reason and "quote" in rej.reason
    assert (stats.read, stats.accepted) == (1, 0)


@pytest.mark.parametrize("last", ["好的\n", "第一行\n第二行,有逗号,两个\n", '说"好"', "\n", '""'])
@pytest.mark.parametrize("end", ["\n", ""])
def test_hostile_ingest_csv_closed_quote_on_the_last_row_is_read(tmp_path, last, end):
    rows = _rows()
    rows[-1][-1] = last                                  # a quoted cell, closed, as the very end of the file
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([HEADER, *rows])
    p = tmp_path / "ok.csv"
    p.write_text(buf.getvalue().removesuffix("\n") + end, encoding="utf-8")
    items, stats = _read(p)
    assert (stats.read, stats.accepted, stats.rejected) == (4, 4, 0)


def test_hostile_ingest_csv_unbalanced_quote_with_three_columns_is_a_clear_reject(tmp_path):
    # id, time, role: the fewest columns a profile reads; the quote took in rows of three conversations
    p = tmp_path / "three.csv"
    p.write_text(_csv_text(HEADER[:3], [r[:3] for r in _rows()], 3, "卖家", '"卖家'), encoding="utf-8")
    items, stats = _read(p)
    rej = _one_reject(items)
    assert (rej.line, rej.field) == (3, "发送方角色") and "quote" in rej.reason
    assert (stats.read, stats.accepted) == (1, 0)


def test_hostile_ingest_csv_unbalanced_quote_in_the_header_is_a_clear_reject(tmp_path):
    # before: the header swallowed every row, the profile still fitted, and the file read as 0 conversations
    p = tmp_path / "head.csv"
    p.write_text(_csv_text(HEADER, _rows(), 1, "消息类别", '"消息类别'), encoding="utf-8")
    items, stats = _read(p)
    rej = _one_reject(items)
    assert (rej.line, rej.field) == (1, "消息类别") and "quote" in rej.reason and "header" in rej.reason
    assert (stats.read, stats.rejected) == (1, 1)


def test_hostile_ingest_check_on_a_quote_left_open_at_the_end_counts_and_names_it(tmp_path):
    p = tmp_path / "last.csv"
    p.write_text(_csv_text(HEADER, _rows(), 9, "可以的亲", '"可以的亲'), encoding="utf-8-sig")
    r = cli("check", p, "-q", "--out", tmp_path / "f.jsonl")
    assert r.exit_code == 0, r.output
    assert _summary(r.stderr) == (1, 0, 1)
    (rej,) = [json.loads(x) for x in (tmp_path / "f.rejects.jsonl").read_text("utf-8").splitlines()]
    assert (rej["file"], rej["line"], rej["field"]) == (str(p), 9, "聊天内容") and "never closed" in rej["reason"]


def test_hostile_ingest_csv_multiline_message_is_still_one_message(tmp_path):
    rows = _rows(2)
    rows[1][5] = "可以的亲，\n成分温和,不含酒精\n有问题随时找我"
    items, stats = _read(_write_csv(tmp_path / "ml.csv", HEADER, rows))
    assert (stats.accepted, stats.rejected) == (2, 0)
    assert items[0].messages[1].text.count("\n") == 2


# -- XLSX far cell --------------------------------------------------------------------------------------------

def _one_chat_xlsx(path, cells: dict):
    """One chat (``_rows(1)``) under the header as a workbook, with ``cells`` (reference → value) set."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in _rows(1):
        ws.append(r)
    for ref, value in cells.items():
        ws[ref] = value
    wb.save(path)
    return path


def test_hostile_ingest_xlsx_far_cell_reads_the_cells_present(tmp_path):
    items, stats = _read(_one_chat_xlsx(tmp_path / "far.xlsx", {"XFD1048576": "x"}))
    assert [c.id for c in items if isinstance(c, Conversation)] == ["tb-0"]
    rej = _one_reject(items)
    assert rej.line == 1048576 and rej.field == "会话ID"
    assert (stats.read, stats.accepted, stats.rejected) == (2, 1, 1)


# -- XLSX formula cells ---------------------------------------------------------------------------------------

def _xlsx_with_formulas(path, formulas: dict[str, str], cached: dict[str, str] | None = None):
    """The test chats as a workbook with ``formulas`` (cell → formula); those in ``cached`` carry the value Excel
    would have saved (openpyxl saves none)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in _rows():
        ws.append(r)
    for ref, f in formulas.items():
        ws[ref] = f
    wb.save(path)
    with zipfile.ZipFile(path) as z:
        files = {i.filename: z.read(i.filename) for i in z.infolist()}
    sheet = files["xl/worksheets/sheet1.xml"].decode()
    for ref, value in (cached or {}).items():
        old = f'<c r="{ref}"><f>{formulas[ref][1:].replace("&", "&amp;")}</f><v /></c>'
        assert old in sheet, sheet
        sheet = sheet.replace(old, f'<c r="{ref}" t="str"><f>{formulas[ref][1:].replace("&", "&amp;")}</f>'
                                   f"<v>{value}</v></c>")
    files["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def test_hostile_ingest_xlsx_formula_without_a_cached_value_is_a_warning_naming_the_cell(tmp_path):
    p = _xlsx_with_formulas(tmp_path / "f.xlsx", {"F3": '="可以"&"的亲"', "F5": "=F3", "H9": "=1+1"},
                            cached={"F5": "可以的亲"})
    items, stats = _read(p)
    assert (stats.read, stats.accepted, stats.repaired) == (4, 4, 2)
    by_id = {c.id: c for c in items}
    assert by_id["tb-0"].messages[1].text is None
    assert by_id["tb-0"].warnings == ("formula_no_cached_value:F3", "empty_text:1")
    assert by_id["tb-1"].messages[1].text == "可以的亲" and by_id["tb-1"].warnings == ()   # the cached value
    assert by_id["tb-3"].warnings == ("formula_no_cached_value:H9",)                      # 客服: read by the profile
    assert by_id["tb-2"].warnings == ()


def test_hostile_ingest_xlsx_formula_without_a_value_where_a_row_needs_one_says_so_in_the_reject(tmp_path):
    p = _xlsx_with_formulas(tmp_path / "f.xlsx", {"C7": '="卖"&"家"', "A8": '="tb-3"'})
    items, stats = _read(p)
    rejects = sorted((x.line, x.field, x.reason) for x in items if isinstance(x, Reject))
    assert [(n, f) for n, f, _ in rejects] == [(7, "发送方角色"), (8, "会话ID")]
    assert all("formula with no cached value" in r for _, _, r in rejects)
    assert "cell C7" in rejects[0][2] and "cell A8" in rejects[1][2]
    assert (stats.read, stats.accepted, stats.rejected) == (5, 3, 2)


def test_hostile_ingest_xlsx_shared_formula_without_a_value_is_named_too(tmp_path):
    p = _xlsx_with_formulas(tmp_path / "f.xlsx", {"F3": "=F2"})
    with zipfile.ZipFile(p) as z:
        files = {i.filename: z.read(i.filename) for i in z.infolist()}
    sheet = files["xl/worksheets/sheet1.xml"]
    old = b'<c r="F3"><f>F2</f><v /></c>'
    assert old in sheet
    files["xl/worksheets/sheet1.xml"] = sheet.replace(old, b'<c r="F3"><f t="shared" si="0"/>\n  <v/>\n</c>')
    with zipfile.ZipFile(p, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    items, stats = _read(p)
    assert {c.id: c.warnings for c in items}["tb-0"] == ("formula_no_cached_value:F3", "empty_text:1")
    assert (stats.accepted, stats.repaired) == (4, 1)


@pytest.mark.parametrize("text, kind", [
    ("👌" + "🏻" * 5000 + "x", "text"), ("[微笑]" * 20000 + "x", "text"), ("/:" + "/:a" * 20000 + "x", "text"),
    ("客" * 50000 + "撤回了消息?", "text"), ("2026年" + "1" * 5000, "text"), ("https://" + "a." * 20000, "text"),
    ("a" * 50000 + "taobao.com/item.htm?id=1 这个", "product_card"),   # the link and 这个; the letters are noise
])
def test_hostile_ingest_long_placeholder_like_texts_read_in_linear_time(text, kind):
    """A customer text built to make the card, placeholder and notice patterns backtrack (a long run of skin tones
    after an emoji once took seconds per 20 characters more; a link search over "a.a.a.…" grew with the square of the
    text) is read at once."""
    from tests.conftest import run_bounded
    code = ("import sys, json; from qa.schema import Conversation, parse_ts; t = json.loads(sys.stdin.read()); "
            "c = Conversation.model_validate({'id': 'h', 'messages': [{'role': 'customer', 'text': t}, "
            "{'role': 'agent', 'text': t, 'sender': t[:200]}]}); print(c.messages[0].type)\n"
            "try:\n    parse_ts(t)\nexcept ValueError:\n    pass")
    assert run_bounded(code, text, timeout=20) == kind


# -- where the data starts, and cells the readers used to misread (session 40) ---------------------------------

def test_hostile_ingest_csv_blank_lines_above_the_header_lose_nothing(tmp_path):
    p = _write_csv(tmp_path / "b.csv", HEADER, _rows())
    p.write_text("\n,,,\n" + p.read_text("utf-8-sig"), encoding="utf-8-sig")
    items, stats = _read(p)
    assert (stats.read, stats.accepted) == (4, 4)
    p.write_text("\n\n" + ",".join(HEADER[1:]) + "\n", encoding="utf-8")   # the header is on line 3
    (rej,), _ = _read(p)
    assert rej.line == 3 and "no column profile fits this header" in rej.reason
    (rej,), _ = _read(p, columns="qianniu")
    assert (rej.line, rej.field) == (3, "会话ID") and "missing column" in rej.reason


def test_hostile_ingest_xlsx_header_below_blank_rows_on_a_later_sheet_is_read(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "空"                       # an empty first sheet
    ws = wb.create_sheet("聊天记录")
    for i, row in enumerate([HEADER] + _rows(), 3):
        for j, v in enumerate(row, 1):
            ws.cell(i, j, v)
    ws.cell(5, 3, "路人")                        # tb-0's reply from an unknown side: named on its row, 5
    p = tmp_path / "h.xlsx"
    wb.save(p)
    items, stats = _read(p)
    assert (stats.read, stats.accepted) == (4, 3)
    assert _one_reject(items).line == 5


def test_hostile_ingest_xlsx_time_cell_that_lost_its_date_format_is_read_as_a_date(tmp_path):
    days = {"B2": 46083.39583333333, "B3": 46083.396180555555}   # 2026-03-02 09:30:00 and 09:30:30, as Excel counts
    (conv,), _ = _read(_one_chat_xlsx(tmp_path / "serial.xlsx", days))
    assert [m.ts.replace(tzinfo=None) for m in conv.messages] == [dt.datetime(2026, 3, 2, 9, 30),
                                                                 dt.datetime(2026, 3, 2, 9, 30, 30)]


def test_hostile_ingest_csv_cell_past_the_csv_modules_limit_costs_nothing(tmp_path):
    rows = _rows()
    rows[1][5] = "好" * 200_000
    items, stats = _read(_write_csv(tmp_path / "big.csv", HEADER, rows))
    assert (stats.read, stats.accepted) == (4, 4)
    assert len(items[0].messages[1].text) == 200_000


def test_hostile_ingest_csv_half_a_star_is_a_reject_as_in_jsonl(tmp_path):
    rows = [r + ["4.5" if r[0] == "tb-1" else "5"] for r in _rows()]
    items, stats = _read(_write_csv(tmp_path / "stars.csv", HEADER + ["服务评价"], rows))
    rej = _one_reject(items)
    assert (rej.id, rej.field) == ("tb-1", "服务评价") and "not a number of whole stars" in rej.reason
    assert (stats.read, stats.accepted) == (4, 3)


def test_hostile_ingest_dialeval_with_turns_after_a_long_opening_is_one_dialogue(tmp_path):
    d = {"id": "p1", "annotations": [{"quality": {"A": 1, "S": 0, "E": 1}, "nugget": ["HNUG"] * 1000}],
         "turns": [{"sender": "customer", "utterances": ["在吗"]}, {"sender": "helpdesk", "utterances": ["在的"]}]}
    p = tmp_path / "pretty.json"
    p.write_text(json.dumps([d], indent=2), encoding="utf-8")
    (conv,), stats = _read(p)
    assert conv.id == "p1" and stats.read == 1


@pytest.mark.parametrize("text,reason", [("[" * 100_000 + "]" * 100_000, "nested too deep"),
                                         ('[{"id": null, "turns": []}]', "id")])
def test_hostile_ingest_dialeval_deep_or_without_an_id_is_one_reject(tmp_path, text, reason):
    p = tmp_path / "d.json"
    p.write_text(text, encoding="utf-8")
    (rej,), stats = _read(p)
    assert reason in rej.reason + str(rej.field) and stats.rejected == 1


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_hostile_ingest_a_compressed_file_is_one_reject(tmp_path, suffix):
    """A gzip file named .jsonl read as 177 lines of binary: 177 rejects of garbage for 64 chats."""
    import gzip
    p = tmp_path / f"in{suffix}"
    p.write_bytes(gzip.compress((ROOT / "data" / "samples" / "samples.jsonl").read_bytes()))
    items, stats = _read(p)
    assert (stats.read, stats.rejected) == (1, 1) and "a gzip file" in items[0].reason
