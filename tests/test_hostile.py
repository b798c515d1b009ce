"""Every command over hostile input (tests/data/hostile/, docs/security.md): formula-looking ids, shops and
agents; HTML and script text; every form of personal data; corrupt XLSX/CSV/JSON; duplicate ids.

What a person opens (report HTML and CSVs, metrics.csv, review XLSX/CSV/HTML and sidecars, the console) is
scanned cell by cell: nothing starts a formula and no personal data is left unmasked.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from qa.cli import app
from tests.conftest import fill_review_sheet, run_main
from qa.safety import MAX_CELL, is_formula_like, mask_text, neutralise_cell, unneutralise_cell

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "data" / "hostile"
CHATS = HOSTILE / "chats.jsonl"
CORRUPT = [HOSTILE / "truncated.xlsx", HOSTILE / "random.csv", HOSTILE / "random.json", HOSTILE / "deep.jsonl"]
UNIQUE_IDS = 5              # chats.jsonl has 6 conversations, two share the id "@dup"; dup.jsonl repeats "+cmd"
# personal data written in the fixtures, every form; none may reach a file or console made for people
RAW_PII = ["13812345678", "138-1234-5679", "139 1234 5678", "一三八一二三四五六七八", "幺三九幺二三四五六七八",
           "幺三八幺二三四五六七八", "110101199003071234", "6222020200001234567", "建国路88号", "zhangsan@",
           "wxid_abc12345", "lily_2020", "987654321", "123456789", "13900001111"]


def cli(*args: str):
    r = CliRunner().invoke(app, [str(a) for a in args])
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


def assert_one_line_error(code: int, err: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err


# -- scanning artefacts ----------------------------------------------------------------------------------

def cells(path: Path):
    """(where, value) for every cell of a human-facing file: every sheet of a workbook (hidden ones too),
    every CSV field, every HTML table cell and heading."""
    if path.suffix == ".xlsx":
        wb = openpyxl.load_workbook(path)
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for c in row:
                    assert c.data_type != "f", f"{path.name}:{ws.title}!{c.coordinate} is a formula"
                    yield f"{path.name}:{ws.title}!{c.coordinate}", c.value
    elif path.suffix == ".csv":
        rows = list(csv.reader(path.read_text("utf-8-sig").splitlines(keepends=True)))
        for i, row in enumerate(rows, 1):
            for j, v in enumerate(row):
                yield f"{path.name}:{i}:{j}", v
    elif path.suffix == ".html":
        page = path.read_text("utf-8")
        for m in re.finditer(r"<(td|th|h2)\b[^>]*>(.*?)</\1>", page, re.S):
            yield f"{path.name}:<{m.group(1)}>", html.unescape(re.sub(r"<[^>]+>", "", m.group(2)))


def assert_safe(paths: list[Path], consoles: list[str] = ()) -> int:
    """No cell starts a formula or is over Excel's limit; no raw personal data anywhere. Returns cells seen."""
    n = 0
    for p in paths:
        for where, v in cells(p):
            n += 1
            if isinstance(v, str):
                assert not is_formula_like(v), f"{where}: {v[:40]!r}"
                assert len(v) <= 32_767, f"{where}: {len(v)} characters"
        text = p.read_text("utf-8", errors="replace") if p.suffix != ".xlsx" else "\n".join(
            str(v) for _, v in cells(p))
        for pii in RAW_PII:
            assert pii not in text, f"{p.name} shows {pii}"
    for out in consoles:
        for pii in RAW_PII:
            assert pii not in out, f"console shows {pii}"
    return n


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """grade → report → sample → export (xlsx, csv, html); metrics; check — all over the hostile chats."""
    d = tmp_path_factory.mktemp("hostile")
    r = cli("grade", CHATS, HOSTILE / "dup.jsonl", "--model", "none", "--workers", "1", "--out", d / "results.jsonl")
    assert r.exit_code == 0, r.output
    consoles = [r.output]
    r = cli("report", d / "results.jsonl", "--out", d / "report")
    assert r.exit_code == 0, r.output
    consoles.append(r.output)
    r = cli("sample", d / "results.jsonl", "--n", "10", "--out", d / "sample.jsonl")
    assert r.exit_code == 0, r.output
    for fmt in ("xlsx", "csv", "html"):
        r = cli("export-review", d / "sample.jsonl", "--out", d / f"review.{fmt}")
        assert r.exit_code == 0, r.output
    r = cli("metrics", CHATS, HOSTILE / "dup.jsonl", "--out", d / "metrics", "--by", "agent")
    assert r.exit_code == 0, r.output
    consoles.append(r.output)
    r = cli("check", CHATS, "--out", d / "findings.jsonl")
    assert r.exit_code == 0, r.output
    consoles.append(r.output)
    return d, consoles


def test_hostile_every_cell_of_every_artefact_is_neutralised_and_masked(pipeline):
    d, consoles = pipeline
    report = [d / "report" / "report.html", d / "report" / "kpis.csv", d / "report" / "agents.csv",
              d / "report" / "warnings.csv"]
    assert all(p.is_file() for p in report)
    files = [*report, *(p for p in sorted((d / "report").glob("*.csv")) if p not in report),   # every report CSV
             d / "metrics" / "metrics.csv", d / "review.xlsx", d / "review.csv", d / "review.html"]
    assert assert_safe(files, consoles) > 500
    for side in (d / "review.csv.records.json", d / "review.html.records.json", d / "metrics" / "metrics.json"):
        text = side.read_text("utf-8")
        assert not [pii for pii in RAW_PII if pii in text], side.name
    # the formula-looking values are there, neutralised, not dropped
    hidden = openpyxl.load_workbook(d / "review.xlsx")["_qa"]
    ids = [c.value for c in hidden["A"][1:]]
    assert "'=HYPERLINK(\"http://x\",\"y\")" in ids and "'+cmd" in ids
    kpis = (d / "report" / "kpis.csv").read_text("utf-8-sig")
    assert "'=1+1" in kpis and "'@SUM(A1:A9)" in kpis and "' ＝1+1" in kpis   # blank and full-width forms too
    warnings = (d / "report" / "warnings.csv").read_text("utf-8-sig")
    # the red line's evidence (the first by text: the Chinese-numeral phone number the agent sent), masked
    assert "'=HYPERLINK" in warnings and "一三八****五六七八" in warnings
    page = (d / "report" / "report.html").read_text("utf-8")
    assert "<script>" not in page and "客服-138****5678" in page


def test_hostile_xlsx_workbook_does_not_recalculate_and_import_reads_formula_ids(pipeline, tmp_path):
    d, _ = pipeline
    wb = openpyxl.load_workbook(d / "review.xlsx")
    assert not wb.calculation.fullCalcOnLoad
    ws = wb["复核"]
    fill_review_sheet(ws, {r: 4 for r in range(2, ws.max_row + 1)}, reviewer="=甲")
    wb.save(tmp_path / "done.xlsx")
    r = cli("import-review", tmp_path / "done.xlsx", "--out", tmp_path / "l.jsonl", "--report", tmp_path / "a.json")
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "a.json").read_text("utf-8"))
    assert rep["rows"]["rejected"] == 0 and rep["rows"]["accepted"] == ws.max_row - 1
    ids = {json.loads(x)["id"] for x in (tmp_path / "l.jsonl").read_text("utf-8").splitlines()}
    assert "=HYPERLINK(\"http://x\",\"y\")" in ids and "+cmd" in ids      # the real ids, not the neutralised text
    assert rep["reviewers"] == ["=甲"]
    text = (tmp_path / "l.jsonl").read_text("utf-8")
    assert not [pii for pii in RAW_PII if pii in text]


# -- personal data ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,kept", [
    ("客服-13812345678", "客服-138****5678"),
    ("电话 138-1234-5678", "电话 138-****-5678"),
    ("+86 139 1234 5678", "+86 139 **** 5678"),
    ("+8613912345678", "+86139****5678"),
    ("一三八一二三四五六七八", "一三八****五六七八"),
    ("幺三八幺二三四五六七八", "幺三八****五六七八"),
    ("１３８１２３４５６７８", "１３８****５６７８"),
    ("身份证110101199003071234", "身份证110***********1234"),
    ("卡号6222020200001234567", "卡号6222***********4567"),
    ("北京市朝阳区建国路88号院3号楼", "北京市朝阳区**********"),
    ("邮箱zhangsan@example.com", "邮箱z*******@example.com"),
    ("微信号 wxid_abc12345", "微信号 wx***********"),
    ("加我vx：lily_2020", "加我vx：l********"),
    ("QQ 123456789", "QQ 1********"),
    ("扣扣987654321", "扣扣9********"),
    ("订单 2 件，共 129 元", "订单 2 件，共 129 元"),
    ("收件人：张三 13812345678", "收件人：张* 138****5678"),     # a name after its shipping-form label
    ("联系人是李小明", "联系人是李**"),
    ("收货人姓名:欧阳娜娜", "收货人姓名:欧***"),
    ("请问收件人姓名是什么", "请问收件人姓名是什么"),           # the question for it is no name
    ("收件人写错了", "收件人写错了"),
    ("寄到建国路88号3栋2单元501室", "寄到建国路************"),   # a numbered street with no city or district
    ("建国路88号发货吗", "建国路***发货吗"),
    ("坐5路公交", "坐5路公交"),
    ("\u202e87654321831", "\u202e8765****831"),                  # shown reversed: 138****5678
    ("电话 012-738 4291", "电话 012-*** **91"),                     # a Malaysian mobile (TikTok Shop MY)
    ("手机 +65 9123 4567", "手机 +65 91** **67"),
    ("电话 9123 4567 住Tampines", "电话 91** **67 住Tampines"),        # a Singapore mobile written locally
    ("whatsapp me 98765432", "whatsapp me 98****32"),
    ("订单 9981 2230 6614", "订单 9981 2230 6614"),                  # groups of a longer number: no mobile
    ("数量 8000 1000件", "数量 8000 1000件"),
    ("快递单号 9123456789", "快递单号 9123456789"),
    ("预算8000-9000", "预算8000-9000"),                               # a range, not a Singapore mobile
    ("订单号码 81234567", "订单号码 81234567"),
    ("Taiwan 91234567", "Taiwan 91234567"),
    ("电话138\ufeff1234\u180e5678", "电话138\ufeff****\u180e5678"),      # a BOM and a vowel separator between groups
    ("Taman Johor Jaya, Jalan Dedap 12, No. 28", "Taman Johor Jaya, Jalan ***** **, No. **"),
    ("尺码 No.1 推荐", "尺码 No.1 推荐"),                            # a rank, no house
])
def test_hostile_mask_covers_every_form_and_keeps_length(text, kept):
    assert mask_text(text) == kept and len(kept) == len(text)


@pytest.mark.parametrize("value", ["=1+1", "+86", "-2", "@x", "\t=x", "\r=x", "'=x", "''@x", "'plain", "ok",
                                   " =HYPERLINK(\"http://x\")", "\u3000=1+1", "\u00a0@SUM(1)", "\n=1", "＝1", "＋1",
                                   "－1", "＠x", "' ＝x"])
def test_hostile_neutralise_round_trips(value):
    safe = neutralise_cell(value)
    assert not is_formula_like(safe) and unneutralise_cell(safe) == value


@pytest.mark.parametrize("value", [" 好的", "a=1", "\u3000您好", "1+1", "-"])   # "-": a missing agent, shown as is
def test_hostile_neutralise_leaves_plain_text(value):
    assert neutralise_cell(value) == value


# -- corrupt files ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["check", "metrics", "grade", "predict"])
def test_hostile_corrupt_files_become_rejects_and_the_summary_prints(command, tmp_path):
    if command == "predict":
        pytest.importorskip("torch")
    extra = {"grade": ["--model", "none", "--workers", "1", "--out", tmp_path / "r.jsonl"],
             "predict": ["--out", tmp_path / "p.jsonl"], "check": ["--out", tmp_path / "f.jsonl"],
             "metrics": ["--out", tmp_path / "m"]}[command]
    r = cli(command, CHATS, *CORRUPT, *extra)
    assert r.exit_code == 0, r.output
    m = re.search(r"read (\d+) · accepted (\d+) · rejected (\d+)", r.stderr)
    assert m, r.stderr
    read, accepted, rejected = map(int, m.groups())
    assert read == accepted + rejected and rejected >= len(CORRUPT)
    rejects = next(tmp_path.rglob("*rejects.jsonl")).read_text("utf-8")
    for p in CORRUPT:
        assert str(p) in rejects
    assert "not a valid .xlsx workbook" in rejects and "nested too deeply" in rejects


# -- duplicate ids ---------------------------------------------------------------------------------------

def test_hostile_metrics_count_each_conversation_id_once(tmp_path):
    r = cli("metrics", CHATS, HOSTILE / "dup.jsonl", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "metrics.json").read_text("utf-8"))["groups"]
    assert sum(x["conversations"] for x in rows if x["level"] == "platform") == UNIQUE_IDS
    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text("utf-8").splitlines()]
    assert {(x["id"], x["field"]) for x in rejects} == {("@dup", "id"), ("+cmd", "id")}


def test_hostile_report_counts_each_conversation_id_once(pipeline, tmp_path):
    d, _ = pipeline
    r = cli("report", d / "results.jsonl", d / "results.jsonl", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    n = len({json.loads(x)["id"] for x in (d / "results.jsonl").read_text("utf-8").splitlines()})
    total = next(x for x in csv.DictReader((tmp_path / "kpis.csv").read_text("utf-8-sig").splitlines())
                 if x["level"] == "all")
    assert int(total["conversations"]) == n and "note" in r.output


def test_hostile_grade_rejects_a_repeated_id(pipeline):
    d, _ = pipeline
    ids = [json.loads(x)["id"] for x in (d / "results.jsonl").read_text("utf-8").splitlines()]
    assert len(ids) == len(set(ids)) == UNIQUE_IDS
    rejects = [json.loads(x) for x in (d / "results.rejects.jsonl").read_text("utf-8").splitlines()]
    dup = [r for r in rejects if r.get("field") == "id"]
    assert sorted(r["id"] for r in dup) == ["+cmd", "@dup"]
    assert all("duplicate conversation id" in r["reason"] for r in dup)
    assert next(r for r in dup if r["id"] == "+cmd")["file"].endswith("dup.jsonl")
    assert str(CHATS) in next(r for r in dup if r["id"] == "+cmd")["reason"]    # where it was first read


def _two_chats_one_id(pipeline) -> list[dict]:
    d, _ = pipeline
    recs = [json.loads(x) for x in (d / "results.jsonl").read_text("utf-8").splitlines()]
    base = next(r for r in recs if r["id"] == "-2+3")
    other = {**base, "messages": [{**m, "text": "另一个会话：" + (m["text"] or "")} for m in base["messages"]]}
    return [base, other, next(r for r in recs if r["id"] == "+cmd")]


def test_hostile_review_of_two_chats_with_one_id_lands_on_each_chat(pipeline, tmp_path, rubric):
    from qa.review import export_review, import_reviews

    export_review(_two_chats_one_id(pipeline), tmp_path / "e.xlsx", rubric)
    wb = openpyxl.load_workbook(tmp_path / "e.xlsx")
    ws = wb["复核"]
    col = fill_review_sheet(ws, {2: 5, 3: 2, 4: 4})    # row → grade
    rows = [[c.value for c in ws[r]] for r in (2, 3, 4)]
    for r, values in zip((2, 3, 4), reversed(rows)):  # the reviewer sorted the sheet
        for j, v in enumerate(values, 1):
            ws.cell(r, j).value = v
    wb.save(tmp_path / "done.xlsx")
    imp = import_reviews([tmp_path / "done.xlsx"], rubric)
    assert (imp.accepted, imp.rejected) == (3, 0), imp.problems
    by_text = {rec["messages"][0]["text"]: rec["labels"]["reviews"][0]["grades"]["attitude"]
               for rec in imp.labelled()}
    first = [t for t in by_text if not t.startswith("另一个会话")]
    assert sorted(by_text.values()) == [2, 4, 5]
    assert {by_text[t] for t in first} == {5, 4} and [v for t, v in by_text.items() if t.startswith("另一个")] == [2]

    # without the review key column the shared id is ambiguous: those rows are refused, not guessed
    ws.delete_cols(col["复核键"])
    wb.save(tmp_path / "nokey.xlsx")
    imp = import_reviews([tmp_path / "nokey.xlsx"], rubric)
    assert (imp.accepted, imp.rejected) == (1, 2) and {p.code for p in imp.problems} == {"ambiguous_id"}


def test_hostile_review_row_moved_to_another_id_is_refused(pipeline, tmp_path, rubric):
    from qa.review import export_review, import_reviews

    export_review(_two_chats_one_id(pipeline), tmp_path / "e.csv", rubric)
    rows = list(csv.reader((tmp_path / "e.csv").read_text("utf-8-sig").splitlines(keepends=True)))
    h = {name: j for j, name in enumerate(rows[0])}
    for row in rows[1:]:
        for name, j in h.items():
            if name.startswith("复核·") and name != "复核·违规规则":
                row[j] = "4"
    rows[3][h["会话ID"]] = rows[1][h["会话ID"]]            # the id of another chat typed over a row
    with open(tmp_path / "e.csv", "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(rows)
    imp = import_reviews([tmp_path / "e.csv"], rubric)
    assert imp.accepted == 2 and [p.code for p in imp.problems] == ["id_mismatch"]


# -- size limits -----------------------------------------------------------------------------------------

def test_hostile_review_cells_stay_under_excels_limit(pipeline, tmp_path, rubric):
    from qa.review import export_review

    rec = _two_chats_one_id(pipeline)[0]
    long = {**rec, "messages": [{**rec["messages"][0], "text": "很长的消息" * 9000}, *rec["messages"][1:]]}
    for fmt in ("csv", "xlsx"):
        export_review([long], tmp_path / f"long.{fmt}", rubric)
        seen = [v for _, v in cells(tmp_path / f"long.{fmt}") if isinstance(v, str)]
        assert max(map(len, seen)) <= 32_767 and MAX_CELL < 32_767


# -- option values and outputs ---------------------------------------------------------------------------

def _bad_options(tmp_path: Path) -> list[list]:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    return [
        ["grade", CHATS, "--batch-size", "0", "--model", "none"],
        ["grade", CHATS, "--batch-size", "-3", "--model", "none"],
        ["grade", CHATS, "--workers", "0", "--model", "none"],
        ["grade", CHATS, "--batch-size", "many"],
        ["grade", CHATS, "--tz", "Mars/Olympus", "--model", "none"],
        ["check", CHATS, "--platform", "jd"],
        ["grade", CHATS, "--platform", "拼多多", "--model", "none"],
        ["check", CHATS, "--columns", "nosuch"],
        ["metrics", CHATS, "--columns", "nosuch.yaml"],
        ["metrics", CHATS, "--by", "week"],
        ["check", HOSTILE],
        ["check", tmp_path / "notes.txt"],
        ["predict", CHATS, "--out", tmp_path / "p.jsonl", "--format", "csv"],
        ["predict", CHATS, "--out", tmp_path / "p.jsonl", "--batch-size", "0"],
        ["sample", CHATS, "--n", "0"],
        ["grade", CHATS, "--model", "none", "--out", a_file / "results.jsonl"],
        ["metrics", CHATS, "--out", a_file / "m"],
        ["check", CHATS, "--out", a_file / "f.jsonl"],
        ["report", HOSTILE / "dup.jsonl", "--out", a_file / "r"],
        ["report", HOSTILE],
        ["export-review", CHATS, "--out", a_file / "x.xlsx"],
        ["nosuch-command"],
    ]


def test_hostile_every_bad_option_value_is_one_line_and_exit_2(tmp_path, capsys):
    for args in _bad_options(tmp_path):
        code, _, err = run_main(capsys, *args)
        try:
            assert_one_line_error(code, err)
        except AssertionError as e:
            raise AssertionError(f"qa {' '.join(map(str, args))}: {e}") from None


def test_hostile_unwritable_output_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    import qa.io.write

    def refuse(self, path, **kw):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(qa.io.write.JsonlWriter, "__init__", refuse)
    code, _, err = run_main(capsys, "metrics", CHATS, "--out", tmp_path / "ro")
    assert_one_line_error(code, err)
    assert "Permission denied" in err and str(tmp_path / "ro") in err


# -- rubric ---------------------------------------------------------------------------------------------

def test_hostile_rubric_weights_must_sum_to_100(tmp_path, capsys):
    from qa.errors import RubricError
    from qa.rubric import DEFAULT_RUBRIC, load_rubric

    text = DEFAULT_RUBRIC.read_text("utf-8").replace("lexicon: lexicon/zh.yaml",
                                                     f"lexicon: {DEFAULT_RUBRIC.parent / 'lexicon' / 'zh.yaml'}")
    bad = re.sub(r"weights: \{attitude: 20,", "weights: {attitude: 210,", text, count=1)   # 290 in all
    (tmp_path / "bad.yaml").write_text(bad, encoding="utf-8")
    with pytest.raises(RubricError, match="sum to 100"):
        load_rubric(tmp_path / "bad.yaml")
    code, _, err = run_main(capsys, "rubric", "validate", tmp_path / "bad.yaml")
    assert_one_line_error(code, err)
    for p in sorted((ROOT / "rubrics").glob("*.yaml")):
        for prof in load_rubric(p).profiles.values():
            assert sum(prof.weights.values()) == pytest.approx(100)


@pytest.mark.parametrize("old, new, why, rule", [
    # answer_types and the yes/no questions are written once (YAML anchors in vague_reply) and shared with
    # unanswered_question: the first rule that reads a bad pattern is named
    ("ask: ['多少钱',", "ask: ['(多少钱',", "bad regex", "vague_reply"),   # answer_types' question pattern
    ("yes_no_question: &yes_no_question ['吗',", "yes_no_question: &yes_no_question ['[吗',", "bad regex", "vague_reply"),
    ("      answer_types: *answer_types\n", "      answer_types: [price]\n", "a mapping of name",
     "unanswered_question"),
])
def test_hostile_rubric_rule_params_a_check_cannot_use(tmp_path, capsys, old, new, why, rule):
    from qa.errors import RubricError
    from qa.rubric import DEFAULT_RUBRIC, load_rubric
    from qa.rules import RuleEngine

    text = DEFAULT_RUBRIC.read_text("utf-8").replace("lexicon: lexicon/zh.yaml",
                                                     f"lexicon: {DEFAULT_RUBRIC.parent / 'lexicon' / 'zh.yaml'}")
    assert old in text
    (tmp_path / "bad.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(RubricError, match=why) as e:
        RuleEngine(load_rubric(tmp_path / "bad.yaml"))
    assert f"rules -> {rule} -> params" in str(e.value)
    for cmd in (["rubric", "validate", tmp_path / "bad.yaml"],
                ["check", CHATS, "--rubric", tmp_path / "bad.yaml", "--out", tmp_path / "out"]):
        code, _, err = run_main(capsys, *cmd)
        assert_one_line_error(code, err)
        assert rule in err and str(tmp_path / "bad.yaml") in err


def test_hostile_scores_stay_within_0_and_100(pipeline):
    d, _ = pipeline
    scores = [json.loads(x)["score"] for x in (d / "results.jsonl").read_text("utf-8").splitlines()]
    assert scores and all(0 <= s <= 100 for s in scores)


def test_hostile_rubric_docs_pointers_exist():
    for p in sorted((ROOT / "rubrics").glob("*.yaml")):
        for line in p.read_text("utf-8").splitlines():
            if not line.lstrip().startswith("#"):
                continue
            for ref in re.findall(r"[\w./-]+\.md\b", line):
                assert (ROOT / ref).is_file() or (p.parent / ref).resolve().is_file(), f"{p.name}: {ref}"


# -- half characters ---------------------------------------------------------------------------------------

def test_hostile_unpaired_surrogates_are_graded_not_a_traceback(tmp_path):
    """JSON may escape half a character ("\\ud83d" of an emoji cut off by an export): every command reads the
    chat with U+FFFD there and writes it; a whole escaped emoji stays whole."""
    from qa.io.jsonl import whole_characters
    assert whole_characters({"a\ud800": ["x\udfffy", 1, None]}) == {"a\ufffd": ["x\ufffdy", 1, None]}
    src = tmp_path / "half.jsonl"
    src.write_text("\n".join([
        '{"id": "h1\\ud800", "messages": [{"role": "customer", "text": "\\u5728\\u5417\\ud83d"},'
        ' {"role": "agent", "text": "\\udc00\\u60a8\\u597d \\ud83d\\ude00"}]}',
        '{"id": "h2", "messages": [{"role": "customer", "text": "hi"}, {"role": "agent", "text": "ok"}]}']) + "\n",
        encoding="utf-8")
    r = cli("grade", src, "--model", "none", "--workers", "1", "--out", tmp_path / "r.jsonl")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text("utf-8").splitlines()]
    assert [x["id"] for x in rows] == ["h1\ufffd", "h2"]
    assert [m["text"] for m in rows[0]["messages"]] == ["在吗\ufffd", "\ufffd您好 😀"]
    for command, out in (("check", "f.jsonl"), ("metrics", "m")):
        r = cli(command, src, "--out", tmp_path / out)
        assert r.exit_code == 0 and "accepted 2" in r.stderr, r.output


def test_hostile_control_characters_reach_a_workbook_as_replacement_marks(tmp_path):
    """NUL, BEL, ESC … in a chat (valid JSON, no place in XLSX): the review workbook is written, each such character
    one U+FFFD, so spans keep their place."""
    src = tmp_path / "ctl.jsonl"
    src.write_text(json.dumps({"id": "c1", "messages": [
        {"role": "customer", "text": "在吗\u0000\u0007"}, {"role": "agent", "text": "\u001b您好，稍等"}]}) + "\n",
        encoding="utf-8")
    r = cli("grade", src, "--model", "none", "--workers", "1", "--out", tmp_path / "r.jsonl")
    assert r.exit_code == 0, r.output
    r = cli("export-review", tmp_path / "r.jsonl", "--out", tmp_path / "review.xlsx")
    assert r.exit_code == 0, r.output
    texts = "".join(str(v) for _, v in cells(tmp_path / "review.xlsx"))
    assert "在吗\ufffd\ufffd" in texts and "\ufffd您好" in texts
    assert not re.search("[\u0000-\u0008\u000b\u000c\u000e-\u001f]", texts)


def test_hostile_a_date_in_the_stars_column_rejects_that_chat_not_the_file(tmp_path):
    """A workbook cell of the wrong kind (a date, a number too large for an int) where the stars go: that conversation is rejected
    with its line and column, and the file's other conversations are read."""
    import datetime as dt
    rows = list(csv.reader((ROOT / "data/samples/qianniu.csv").read_text("utf-8-sig").splitlines()))
    head, body = rows[0], rows[1:]
    ids = list(dict.fromkeys(r[head.index("会话ID")] for r in body))
    for bad in (dt.datetime(2026, 1, 1, 10), "1e999"):
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append(head)
        for r in body:
            cells_ = list(r)
            if r[head.index("会话ID")] == ids[0]:
                cells_[head.index("服务评价")] = bad
            ws.append(cells_)
        path = tmp_path / "qianniu.xlsx"
        wb.save(path)
        r = cli("metrics", path, "--out", tmp_path / "m")
        assert r.exit_code == 0, r.output
        assert f"read {len(ids)} · accepted {len(ids) - 1} · rejected 1" in r.stderr, r.stderr
        reject = json.loads((tmp_path / "m" / "rejects.jsonl").read_text("utf-8").splitlines()[0])
        assert "服务评价" in json.dumps(reject, ensure_ascii=False) and "not a number" in reject["reason"], reject


@pytest.mark.parametrize("text", ["市" * 20000, "微 信 " * 40000, "广东省深圳市" * 8000 + "号"])
def test_hostile_long_runs_that_once_backtracked_are_checked_in_linear_time(text):
    """Rule checks on a message built to make the address pattern backtrack (市 × 900 took four minutes) or to make
    the diversion check search the whole message once per 微信 (40,000 of them, minutes) finish at once."""
    from tests.conftest import run_bounded
    code = ("import sys, json; from qa.schema import Conversation; from qa.rubric import load_rubric; "
            "from qa.rules import RuleEngine; from qa.timing import compute_timing; t = json.loads(sys.stdin.read()); "
            "r = load_rubric(); c = Conversation.model_validate({'id': 'h', 'messages': ["
            "{'role': 'customer', 'text': t}, {'role': 'agent', 'text': t}]}); "
            "print(len(RuleEngine(r).check(c, compute_timing(c, r))))")
    assert run_bounded(code, text, timeout=60).isdigit()


def test_hostile_ids_with_control_and_bidi_characters_round_trip_through_a_review_sheet(tmp_path):
    """The sheet shows such an id with U+FFFD (so no reviewer sees reordered text); import still finds its chat."""
    msgs = [{"role": "customer", "type": "text", "text": "在吗", "ts": "2026-03-02T10:15:03+08:00"},
            {"role": "agent", "type": "text", "text": "您好", "ts": "2026-03-02T10:15:10+08:00"}]
    ids = ["a\x1bb", "c\u202ed", " plain "]
    chats = tmp_path / "c.jsonl"
    chats.write_text("".join(json.dumps({"id": i, "platform": "douyin", "shop": "s", "agent": "a", "messages": msgs},
                                        ensure_ascii=False) + "\n" for i in ids), "utf-8")
    assert cli("grade", chats, "--model", "none", "--workers", "1", "--out", tmp_path / "r.jsonl").exit_code == 0
    assert cli("export-review", tmp_path / "r.jsonl", "--out", tmp_path / "rv.xlsx").exit_code == 0
    wb = openpyxl.load_workbook(tmp_path / "rv.xlsx")
    ws = wb["复核"]
    head = [c.value for c in ws[1]]
    assert [ws.cell(r, head.index("会话ID") + 1).value for r in (2, 3, 4)] == ["a\ufffdb", "c\ufffdd", " plain "]
    for r in (2, 3, 4):
        for j, h in enumerate(head, 1):
            if h.startswith("复核·") and h != "复核·违规规则":
                ws.cell(r, j).value = 4
    wb.save(tmp_path / "rv.xlsx")
    r = cli("import-review", tmp_path / "rv.xlsx", "--out", tmp_path / "lab.jsonl", "--report", tmp_path / "agr.json")
    assert r.exit_code == 0 and "accepted 3 · rejected 0" in r.output, r.output
    got = [json.loads(ln)["id"] for ln in (tmp_path / "lab.jsonl").read_text("utf-8").splitlines()]
    assert sorted(got) == sorted(ids)


def test_hostile_a_number_typed_over_two_messages_is_masked_in_both():
    from qa.review.mask import mask_record
    msgs = [("customer", "我电话138"), ("customer", "1234 5678"), ("agent", "好的"), ("customer", "收件人："),
            ("customer", "张三"), ("customer", "要3个"), ("customer", "2件"), ("agent", "138"), ("customer", "12345678")]
    got = [m["text"] for m in mask_record({"id": "x", "messages": [{"role": r, "text": t} for r, t in msgs]})["messages"]]
    # one sender's run is masked as one text; another sender's digits are not joined to it
    assert got == ["我电话138", "**** 5678", "好的", "收件人：", "张*", "要3个", "2件", "138", "12345678"]


@pytest.mark.parametrize("command", ["check", "grade", "metrics"])
def test_hostile_a_pipe_or_device_input_is_named_not_missing(tmp_path, capsys, command):
    fifo = tmp_path / "p.jsonl"
    os.mkfifo(fifo)
    for path, why in ((fifo, "not a regular file"), (Path("/dev/null"), "not a regular file"),
                      (Path("-"), "standard input is not read")):
        code, _, err = run_main(capsys, command, path, "--out", tmp_path / "o")
        assert_one_line_error(code, err)
        assert why in err and str(path) in err and "no such" not in err.replace("no such input file: -", "")


def test_hostile_a_write_error_without_a_path_names_the_output():
    from qa.cli.common import os_error_message
    full = OSError(28, "No space left on device")          # what a buffered flush on a full disk raises
    assert os_error_message(full, Path("qa_out/r.jsonl")) == "writing qa_out/r.jsonl: No space left on device"
    ro = OSError(30, "Read-only file system")
    ro.filename = "qa_out/r.rejects.jsonl"
    assert os_error_message(ro, Path("qa_out/r.jsonl")) == "qa_out/r.rejects.jsonl: Read-only file system"
