"""Duplicate conversation ids in the review loop (fuzzing): ``qa export-review`` wrote one row per record, so a
results file (or several) holding an id twice had a reviewer grade the same chat twice, and ``qa import-review``
could not map a row without its 复核键 back. ``qa sample`` and ``qa export-review`` now read through
``qa.review.read_unique``: the first record of each id is kept, as ``qa report`` counts it, and every later one
is listed on stderr with its file and line, then ``read N · … K · duplicate ids left out D`` (N = K + D).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import fill_review_sheet, one_line_error, run_main
from tests.test_hostile_results import record, write_jsonl


def _dup_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("duplicate_id ")]


def _csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text("utf-8-sig").splitlines(keepends=True)))


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "html"])
def test_export_review_keeps_the_first_record_of_each_id(tmp_path, capsys, fmt):
    src = write_jsonl(tmp_path / "results.jsonl", record(id="a"), record(id="b"), record(id="a", score=10.0))
    out = tmp_path / f"e.{fmt}"
    code, stdout, err = run_main(capsys, "export-review", src, "--out", out)
    assert code == 0, err
    assert ": 2 conversations" in " ".join(stdout.split())
    assert _dup_lines(err) == [f"duplicate_id {src}:3: id: duplicate conversation id 'a' (first read at {src}:1); "
                               "left out"], err
    assert "read 3 · exported 2 · duplicate ids left out 1" in err, err
    if fmt == "xlsx":
        ws = openpyxl.load_workbook(out)["复核"]
        col = {c.value: c.column for c in ws[1]}
        ids = [ws.cell(r, col["会话ID"]).value for r in range(2, ws.max_row + 1)]
        scores = [ws.cell(r, col["总分"]).value for r in range(2, ws.max_row + 1)]
        assert ids == ["a", "b"] and scores[0] == 75
    else:
        side = json.loads((tmp_path / f"e.{fmt}.records.json").read_text("utf-8"))
        assert [(r["id"], r["score"]) for r in side["records"]] == [("a", 75.0), ("b", 75.0)]
        if fmt == "csv":
            assert [r["会话ID"] for r in _csv_rows(out)] == ["a", "b"]


def test_export_review_drops_an_id_repeated_in_another_file_and_a_file_given_twice(tmp_path, capsys):
    one = write_jsonl(tmp_path / "one.jsonl", record(id="a"), record(id="b"))
    two = write_jsonl(tmp_path / "two.jsonl", record(id="c"), record(id="b", score=20.0))
    code, _, err = run_main(capsys, "export-review", one, two, one, "--out", tmp_path / "e.csv")
    assert code == 0, err
    assert [r["会话ID"] for r in _csv_rows(tmp_path / "e.csv")] == ["a", "b", "c"]
    assert _dup_lines(err) == [
        f"duplicate_id {two}:2: id: duplicate conversation id 'b' (first read at {one}:2); left out",
        f"duplicate_id {one}:1: id: duplicate conversation id 'a' (the same record: a file given twice); left out",
        f"duplicate_id {one}:2: id: duplicate conversation id 'b' (the same record: a file given twice); left out"]
    assert "read 6 · exported 3 · duplicate ids left out 3" in err


def test_import_review_maps_every_row_back_after_exporting_duplicates(tmp_path, capsys, rubric):
    """Without its 复核键 column a sheet is matched by 会话ID: unambiguous now that each id is exported once."""
    from qa.review import import_reviews

    src = write_jsonl(tmp_path / "results.jsonl", record(id="a"), record(id="b"),
                      record(id="a", messages__0__text="另一个会话"))
    code, _, err = run_main(capsys, "export-review", src, "--out", tmp_path / "e.xlsx")
    assert code == 0, err
    wb = openpyxl.load_workbook(tmp_path / "e.xlsx")
    ws = wb["复核"]
    col = fill_review_sheet(ws, {r: 4 for r in range(2, ws.max_row + 1)})
    ws.delete_cols(col["复核键"])
    wb.save(tmp_path / "done.xlsx")
    imp = import_reviews([tmp_path / "done.xlsx"], rubric)
    assert (imp.read, imp.accepted, imp.rejected) == (2, 2, 0), imp.problems
    assert sorted(rec["id"] for rec in imp.labelled()) == ["a", "b"]
    assert all("另一个会话" not in m["text"] for rec in imp.labelled() for m in rec["messages"])


def test_sample_lists_its_duplicates_like_export_review(tmp_path, capsys):
    src = write_jsonl(tmp_path / "results.jsonl", record(id="a"), record(id="b"), record(id="a", score=10.0),
                      record(id="b", score=20.0))
    code, _, err = run_main(capsys, "sample", src, "--n", 10, "--out", tmp_path / "s.jsonl")
    assert code == 0, err
    assert _dup_lines(err) == [
        f"duplicate_id {src}:3: id: duplicate conversation id 'a' (first read at {src}:1); left out",
        f"duplicate_id {src}:4: id: duplicate conversation id 'b' (first read at {src}:2); left out"], err
    assert "read 4 · conversations 2 · duplicate ids left out 2" in err
    picks = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text("utf-8").splitlines()]
    assert sorted((p["id"], p["score"]) for p in picks) == [("a", 75.0), ("b", 75.0)]


def test_sample_export_and_report_keep_the_same_records(tmp_path, capsys):
    src = write_jsonl(tmp_path / "results.jsonl", record(id="a"), record(id="b", score=40.0),
                      record(id="a", score=10.0), record(id="c"))
    assert run_main(capsys, "sample", src, "--n", 10, "--out", tmp_path / "s.jsonl")[0] == 0
    sampled = {(r["id"], r["score"]) for r in map(json.loads, (tmp_path / "s.jsonl").read_text("utf-8").splitlines())}
    assert run_main(capsys, "export-review", src, "--out", tmp_path / "e.csv")[0] == 0
    side = json.loads((tmp_path / "e.csv.records.json").read_text("utf-8"))["records"]
    code, _, err = run_main(capsys, "report", src, "--out", tmp_path / "rp")
    assert code == 0, err
    total = next(r for r in _csv_rows(tmp_path / "rp" / "kpis.csv") if r["level"] == "all")
    assert sampled == {(r["id"], r["score"]) for r in side} == {("a", 75.0), ("b", 40.0), ("c", 75.0)}
    assert int(total["conversations"]) == len(sampled) == 3


def test_many_duplicates_are_listed_twenty_then_counted_per_file(tmp_path, capsys):
    one = write_jsonl(tmp_path / "one.jsonl", *(record(id=f"c{i}") for i in range(30)))
    two = write_jsonl(tmp_path / "two.jsonl", *(record(id=f"c{i}") for i in range(5)))
    code, _, err = run_main(capsys, "export-review", one, one, two, "--out", tmp_path / "e.csv")
    assert code == 0, err
    assert len(_dup_lines(err)) == 20
    assert f"… 15 more duplicate ids left out ({one}: 10, {two}: 5)" in err, err
    assert "read 65 · exported 30 · duplicate ids left out 35" in err
    assert len(_csv_rows(tmp_path / "e.csv")) == 30


def test_a_hostile_duplicate_id_stays_one_escaped_line_and_the_sheet_stays_neutralised(tmp_path, capsys):
    cid = '=HYPERLINK("http://x")\n[bold red]13812345678[/]'
    src = write_jsonl(tmp_path / "results.jsonl", record(id=cid), record(id=cid, score=1.0))
    code, _, err = run_main(capsys, "export-review", src, "--out", tmp_path / "e.csv")
    assert code == 0, err
    dup = _dup_lines(err)
    assert len(dup) == 1 and f"{src}:2: id: duplicate conversation id {cid!r}" in dup[0], err
    row = _csv_rows(tmp_path / "e.csv")
    assert len(row) == 1 and row[0]["会话ID"] == "'" + cid


@pytest.mark.parametrize("command,out", [("sample", "s.jsonl"), ("export-review", "e.xlsx"), ("report", "rp")])
def test_a_bad_record_is_refused_even_when_its_id_repeats(tmp_path, capsys, command, out):
    src = write_jsonl(tmp_path / "results.jsonl", record(id="a"), record(id="a", day="9999-01-01"))
    line = one_line_error(*run_main(capsys, command, src, "--out", tmp_path / out)[::2], f"{src}:2: day:")
    assert "out of range" in line


# -- review sheets as other programs save them (fuzzing, session 41) --------------------------------------------

def _filled_export(tmp_path, capsys, n: int = 6) -> tuple[Path, "openpyxl.Workbook"]:
    src = write_jsonl(tmp_path / "results.jsonl", *(record(id=f"c{i}") for i in range(n)))
    code, _, err = run_main(capsys, "export-review", src, "--out", tmp_path / "e.xlsx")
    assert code == 0, err
    wb = openpyxl.load_workbook(tmp_path / "e.xlsx")
    fill_review_sheet(wb["复核"], {r: 4 for r in range(2, n + 2)}, reviewer="张三")
    return src, wb


@pytest.mark.parametrize("ref", ["A1:Y3", "A1"])
def test_import_review_reads_every_row_whatever_size_the_file_claims(tmp_path, capsys, rubric, ref):
    """A stale <dimension> (another program's save) hid the rows past it: 6 rows read as 2, or no grade column."""
    import re
    import zipfile

    from qa.review import import_reviews

    _, wb = _filled_export(tmp_path, capsys)
    wb.save(tmp_path / "full.xlsx")
    with zipfile.ZipFile(tmp_path / "full.xlsx") as zin, zipfile.ZipFile(tmp_path / "stale.xlsx", "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename.startswith("xl/worksheets/sheet"):
                data, k = re.subn(rb'<dimension ref="[^"]*" ?/>', f'<dimension ref="{ref}"/>'.encode(), data)
                assert k == 1
            zout.writestr(item, data)
    imp = import_reviews([tmp_path / "stale.xlsx"], rubric)
    assert (imp.read, imp.accepted, imp.rejected) == (6, 6, 0), imp.problems


def test_import_review_refuses_a_read_column_that_appears_twice(tmp_path, capsys, rubric):
    """A copy of a grade column kept to the right was read in place of the reviewer's own grades, silently."""
    from qa.review import import_reviews

    _, wb = _filled_export(tmp_path, capsys)
    ws = wb["复核"]
    col = {c.value: c.column for c in ws[1]}
    n = ws.max_column + 1
    ws.cell(1, n).value = "复核·服务态度"
    for r in range(2, ws.max_row + 1):
        ws.cell(r, n).value = 2
    wb.save(tmp_path / "twice.xlsx")
    imp = import_reviews([tmp_path / "twice.xlsx"], rubric)
    assert (imp.read, imp.accepted, imp.rejected) == (6, 0, 6)
    head = [p for p in imp.problems if p.row == 1]
    assert [p.code for p in head] == ["duplicate_column"] and "appears 2 times" in head[0].message
    assert openpyxl.utils.get_column_letter(col["复核·服务态度"]) in head[0].message


def test_import_review_gives_a_merged_cell_to_every_row_it_covers(tmp_path, capsys, rubric):
    """One reviewer name merged over rows 2–7: rows 3–7 were credited to the file's name."""
    from qa.review import import_reviews

    _, wb = _filled_export(tmp_path, capsys)
    ws = wb["复核"]
    col = {c.value: c.column for c in ws[1]}
    letter = openpyxl.utils.get_column_letter(col["评审人"])
    for r in range(3, 8):
        ws.cell(r, col["评审人"]).value = None
    ws.merge_cells(f"{letter}2:{letter}7")
    wb.save(tmp_path / "merged.xlsx")
    imp = import_reviews([tmp_path / "merged.xlsx"], rubric)
    assert imp.accepted == 6 and {r.reviewer for r in imp.reviews} == {"张三"}


@pytest.mark.parametrize("form", ["utf-16 tab", "utf-8 tab", "long cell"])
def test_import_review_reads_csv_as_excel_saves_it(tmp_path, capsys, rubric, form):
    """Excel's "Unicode Text" (UTF-16, tabs), tab-separated UTF-8, and a 200,000-character comment."""
    from qa.review import import_reviews

    src, wb = _filled_export(tmp_path, capsys)
    code, _, err = run_main(capsys, "export-review", src, "--out", tmp_path / "e.csv")
    assert code == 0, err
    rows = list(csv.reader((tmp_path / "e.csv").read_text("utf-8-sig").splitlines(keepends=True)))
    head = rows[0]
    for row in rows[1:]:
        for j, h in enumerate(head):
            if h.startswith("复核·") and h != "复核·违规规则":
                row[j] = "4"
        row[head.index("备注")] = "长" * 200_000 if form == "long cell" else "ok"
    out = tmp_path / ("e.txt" if "tab" in form else "e.csv")
    if out.suffix == ".txt":
        (tmp_path / "e.txt.records.json").write_bytes((tmp_path / "e.csv.records.json").read_bytes())
    with open(out, "w", encoding="utf-16" if form.startswith("utf-16") else "utf-8", newline="") as f:
        csv.writer(f, delimiter="\t" if "tab" in form else ",").writerows(rows)
    imp = import_reviews([out], rubric)
    assert (imp.read, imp.accepted, imp.rejected) == (6, 6, 0), imp.problems[:3]


def test_the_review_guide_gives_levels_in_chinese_as_the_grading_guide_reads_them(tmp_path, capsys):
    """The 说明 tab gave 服务态度 3 as 无礼 (harsher than 2's 不礼貌) and 礼仪 4 as 缺乏尊重, half in English."""
    _, wb = _filled_export(tmp_path, capsys, n=1)
    guide = {r[0]: r[1] for r in wb["说明"].iter_rows(values_only=True) if r[0]}
    attitude, etiquette = guide["服务态度"], guide["礼仪"]
    assert "3: 冷淡、敷衍" in attitude and "2: 粗鲁、嘲讽" in attitude and "无礼" not in attitude
    assert "4: 缺少其中一项礼仪" in etiquette and "缺乏尊重" not in etiquette
    assert not re.search(r"[A-Za-z]{4,}", attitude + etiquette + guide["专业水平"] + guide["语言沟通能力"])
    assert guide["不文明用语"].endswith("红线（整单不合格）")
