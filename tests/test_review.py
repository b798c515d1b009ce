"""qa.review: sample graded results, export a review sheet, fill it in as reviewers would, import it back."""

from __future__ import annotations

import csv
import json
import random
import shutil

import openpyxl
import pytest
from openpyxl.cell.rich_text import CellRichText
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from qa.cli import app
from qa.io import Reject, read_path
from qa.review import (SampleSpec, agreement_report, cohen_kappa, export_review, fleiss_kappa, import_reviews,
                       krippendorff_alpha, mask_text, read_results, safe_cell, sample)
from qa.review.importer import parse_grade
from qa.review.sample import flags

DIMS = {"attitude": "服务态度", "etiquette": "礼仪", "professionalism": "专业水平", "clarity": "语言沟通能力"}
WEIGHTS = {"attitude": 20, "etiquette": 15, "professionalism": 25, "clarity": 10}
PHONE, ADDRESS = "13812345678", "北京市朝阳区建国路88号院3号楼2单元501"
ID_NO, CARD = "110101199003071234", "6222021234567890123"
MESSAGES = [
    {"role": "customer", "type": "product_card", "text": "法式碎花V领连衣裙 ¥139", "ts": "2026-03-02T10:15:18+08:00"},
    {"role": "agent", "type": "text", "text": "亲亲您好呀~有什么可以帮您", "ts": "2026-03-02T10:15:36+08:00"},
    {"role": "customer", "type": "text", "text": f"电话{PHONE} 寄到{ADDRESS}", "ts": "2026-03-02T10:16:16+08:00"},
    {"role": "agent", "type": "text", "text": f"好的 您的号码{PHONE}已备注 滚吧", "ts": "2026-03-02T10:16:41+08:00"},
    {"role": "customer", "type": "text", "text": f"=HYPERLINK(\"http://x\") 身份证{ID_NO} 卡号{CARD}",
     "ts": "2026-03-03T09:00:00+08:00"},
]


def band(score: float, failed: bool) -> str:
    return "不合格" if failed or score < 60 else "优秀" if score >= 90 else "良好" if score >= 75 else "合格"


def result(cid: str, *, shop: str = "栀夏女装旗舰店", agent: str = "小桃", levels: dict | None = None,
           base: dict | None = None, conf: dict | None = None, findings: list | None = None,
           failed: bool = False, messages: list | None = None) -> dict:
    """A graded result record as docs/results.md describes it (model, timing and rules dimensions)."""
    levels = {k: 5 for k in DIMS} | (levels or {})
    base = levels | (base or {})
    conf = {k: 0.9 for k in DIMS} | (conf or {})
    dims = {}
    for k, name in DIMS.items():
        probs = {str(lv): (conf[k] if lv == base[k] else round((1 - conf[k]) / 3, 4)) for lv in (5, 4, 3, 2)}
        dims[k] = {"name": name, "source": "model", "weight": WEIGHTS[k], "level": levels[k], "base_level": base[k],
                   "expected": sum(int(lv) * p for lv, p in probs.items()), "probs": probs, "confidence": conf[k],
                   "evidence": [1], "points": WEIGHTS[k] * (levels[k] - 2) / 3}
    dims["reply_speed"] = {"name": "回复速度", "source": "timing", "weight": 15, "level": 5, "base_level": 5,
                           "expected": None, "probs": None, "confidence": None, "evidence": [], "points": 15.0}
    dims["chat_time"] = {"name": "聊天时效", "source": "timing", "weight": 5, "level": 5, "base_level": 5,
                         "expected": None, "probs": None, "confidence": None, "evidence": [], "points": 5.0}
    dims["resolution"] = {"name": "问题解决", "source": "rules", "weight": 10, "level": 5, "base_level": 5,
                          "expected": None, "probs": None, "confidence": None, "evidence": [], "points": 10.0}
    findings = findings or []
    score = 0.0 if failed else round(sum(d["points"] for d in dims.values()), 1)
    deductions = [{"dimension": k, "points": 1.0, "reason": "cap", "source": "rule", "rule": f["rule"],
                   "message": f.get("message"), "span": f.get("span"), "confidence": None}
                  for f in findings for k in f.get("dims", [])]
    return {"id": cid, "platform": "douyin", "shop": shop, "agent": agent, "customer": "用户2789", "day": "2026-03-02",
            "profile": "douyin", "rubric": "default", "model": "tiny", "score": score, "band": band(score, failed),
            "failed": failed, "dimensions": dims,
            "findings": [{k: v for k, v in f.items() if k != "dims"} for f in findings], "deductions": deductions,
            "timing": {"first_response_s": 18.0, "first_response_ok": True}, "rating": {"stars": 5, "label": "满意"},
            "messages": messages or MESSAGES, "warnings": []}


assert MESSAGES[3]["text"][22:24] == "滚吧" and MESSAGES[3]["text"][7:18] == PHONE
UNCIVIL = {"rule": "uncivil_language", "name": "不文明用语", "severity": "red_line", "explanation": "辱骂客户",
           "message": 3, "span": [22, 24], "evidence": "滚吧", "dims": ["attitude", "etiquette"]}
LEAK = {"rule": "privacy_leak", "name": "泄露/索要隐私", "severity": "red_line", "explanation": "复述客户手机号",
        "message": 3, "span": [7, 18], "evidence": PHONE, "dims": ["professionalism"]}


def population(n: int = 120, seed: int = 7) -> list[dict]:
    """Two shops, five agents; some red lines, some rule caps, some low-confidence grades."""
    rng = random.Random(seed)
    agents = [("栀夏女装旗舰店", "小桃"), ("栀夏女装旗舰店", "小梨"), ("栀夏女装旗舰店", "小杏"),
              ("鹿角数码专营店", "阿杰"), ("鹿角数码专营店", "阿明")]
    out = []
    for i in range(n):
        shop, agent = agents[i % 5] if i % 7 else agents[0]   # 小桃 has more chats than the others
        kind = rng.random()
        if kind < 0.1:
            out.append(result(f"p{i:03d}", shop=shop, agent=agent, levels={"attitude": 2}, base={"attitude": 5},
                              findings=[UNCIVIL], failed=True))
        elif kind < 0.2:
            out.append(result(f"p{i:03d}", shop=shop, agent=agent, levels={"professionalism": 3}, base={
                "professionalism": 5}, findings=[{**UNCIVIL, "rule": "vague_reply", "severity": "major",
                                                  "dims": ["professionalism"]}]))
        elif kind < 0.35:
            out.append(result(f"p{i:03d}", shop=shop, agent=agent, conf={"clarity": round(rng.uniform(0.3, 0.49), 3)}))
        else:
            lv = rng.choice([5, 5, 4, 4, 3])
            out.append(result(f"p{i:03d}", shop=shop, agent=agent, levels={"attitude": lv, "etiquette": max(lv, 4)},
                              findings=[] if lv > 3 else [{**UNCIVIL, "rule": "negative_emotion_unsoothed",
                                                           "severity": "major", "dims": ["attitude"]}]))
    return out


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


# -- sample ------------------------------------------------------------------------------------------

def test_review_sample_same_seed_same_sample_whatever_the_input_order(rubric):
    pop = population()
    a = sample(pop, rubric, SampleSpec(n=30, seed=3))
    b = sample(list(reversed(pop)), rubric, SampleSpec(n=30, seed=3))
    c = sample(pop, rubric, SampleSpec(n=30, seed=4))
    key = [(r["id"], r["pick_reason"], r["pick_detail"]) for r in a.records]
    assert key == [(r["id"], r["pick_reason"], r["pick_detail"]) for r in b.records]
    assert [r["id"] for r in a.records] != [r["id"] for r in c.records]


def test_review_sample_reasons_quotas_and_full_records(rubric):
    pop = population()
    s = sample(pop, rubric, SampleSpec(n=40, seed=0, per_agent=9))
    assert len(s.records) == 40 and len({r["id"] for r in s.records}) == 40
    assert s.by_reason["control"] == 8                       # 20 % of 40, drawn first
    for reason in ("red_line", "disagreement", "low_confidence"):
        assert s.by_reason[reason] == min(6, s.candidates[reason])   # 15 % each when there are enough
    assert s.by_reason["stratified"] == 40 - sum(v for k, v in s.by_reason.items() if k != "stratified")
    per_agent = {}
    for r in s.records:
        per_agent[r["agent"]] = per_agent.get(r["agent"], 0) + 1
        assert r["pick_detail"] and r["pick_seed"] == 0
        assert r["messages"] and r["dimensions"] and "findings" in r     # the full result record is kept
    assert max(per_agent.values()) <= 9 and len(per_agent) == 5
    assert [r["pick_rank"] for r in s.records] == list(range(1, 41))
    red = [r for r in s.records if r["pick_reason"] == "red_line"]
    assert all(r["failed"] and "不文明用语" in r["pick_detail"] for r in red)


def test_review_sample_stratified_fill_spreads_over_agents_and_bands(rubric):
    pop = population()
    s = sample(pop, rubric, SampleSpec(n=10, control=0, red_line=0, disagreement=0, low_confidence=0))
    assert {r["pick_reason"] for r in s.records} == {"stratified"}
    agents = [r["agent"] for r in s.records]
    assert all(agents.count(a) == 2 for a in set(agents)) and len(set(agents)) == 5
    for a in set(agents):   # an agent's two picks come from two different bands where it has two
        bands = {r["band"] for r in pop if r["agent"] == a}
        if len(bands) > 1:
            assert len({r["band"] for r in s.records if r["agent"] == a}) == 2


def test_review_sample_flags_say_why(rubric):
    capped = result("x1", levels={"professionalism": 3}, base={"professionalism": 5},
                    findings=[{**UNCIVIL, "rule": "vague_reply", "severity": "major", "dims": ["professionalism"]}])
    assert flags(capped, rubric) == {"disagreement": "专业水平 模型5→规则3"}
    low_no_rule = result("x2", levels={"clarity": 3})
    assert flags(low_no_rule, rubric) == {"disagreement": "语言沟通能力 模型评3级，没有规则涉及该维度"}
    low_with_rule = result("x3", levels={"clarity": 3}, findings=[{**UNCIVIL, "rule": "mechanical_repetition",
                                                                    "severity": "minor", "dims": []}])
    assert flags(low_with_rule, rubric) == {}                # mechanical_repetition caps clarity: explained
    unsure = result("x4", conf={"etiquette": 0.41})
    assert flags(unsure, rubric) == {"low_confidence": "礼仪 置信度 0.41"}
    red = flags(result("x5", findings=[UNCIVIL], failed=True, levels={"attitude": 2}, base={"attitude": 5}), rubric)
    assert red["red_line"] == "不文明用语" and "服务态度 模型5→规则2" in red["disagreement"]


def test_review_sample_reads_parquet_like_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    recs = population(6)
    nested = ("dimensions", "findings", "deductions", "timing", "rating", "messages", "warnings")
    rows = [{k: json.dumps(v, ensure_ascii=False) if k in nested else v for k, v in r.items()} for r in recs]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "r.parquet")
    assert list(read_results([tmp_path / "r.parquet"])) == list(read_results([write_jsonl(tmp_path / "r.jsonl",
                                                                                          recs)]))


def test_review_sample_cli_holds_summaries_and_picks_what_sample_picks(tmp_path, rubric):
    """`qa sample` chooses on summaries and reads the picks again: the same picks, full records, as ``sample``."""
    from qa.cli.review import sample_results
    from qa.review.sample import summary

    pop = population()
    assert len(json.dumps(summary(pop[0], rubric))) < 400            # what is held per chat, whatever its length
    a, b = write_jsonl(tmp_path / "a.jsonl", pop[:50]), write_jsonl(tmp_path / "b.jsonl", pop[40:])   # 10 ids twice
    spec = SampleSpec(n=30, seed=5, per_agent=8)
    s, res = sample_results([a, b], tmp_path / "s.jsonl", spec)
    want = sample(pop, rubric, spec)
    assert s.records == want.records and len(res.duplicates) == 10 and res.read == len(pop) + 10
    assert [json.loads(ln) for ln in (tmp_path / "s.jsonl").read_text("utf-8").splitlines()] == want.records


# -- masking and neutralising ------------------------------------------------------------------------

@pytest.mark.parametrize("text,masked", [
    ("电话13812345678谢谢", "电话138****5678谢谢"),
    ("138 1234 5678", "138 **** 5678"),
    ("+86 159-1234-5678", "+86 159-****-5678"),
    ("身份证110101199003071234", "身份证110***********1234"),
    ("11010119900307123X", "110***********123X"),
    ("卡号6222021234567890123", "卡号6222***********0123"),
    ("6222 0212 3456 7890", "6222 **** **** 7890"),
    (f"寄到{ADDRESS}，谢谢", "寄到北京市朝阳区****************，谢谢"),
    ("退货地址是浙江省杭州市余杭区仓前街道文一西路969号", "退货地址是浙江省杭州市余杭区************"),
    ("这款区别不大 尺码155 160 165", "这款区别不大 尺码155 160 165"),          # not personal data
    ("价格139元 订单2026-03-02 10:15", "价格139元 订单2026-03-02 10:15"),
    ("座机010-62345678", "座机010-******78"),                                # landlines keep the area code
    ("（0571）8765-4321转2", "（0571）****-**21转2"),
    ("075588886666", "0755******66"),
    ("老身份证110101900307123", "老身份证110*********123"),                   # the 15-digit ID
    ("热线400-820-8820", "热线400-820-8820"),                                # a shop's service line stays
    ("快递单号0123456789", "快递单号0123456789"),                            # 012 is no area code
])
def test_review_mask_keeps_length(text, masked):
    assert mask_text(text) == masked and len(mask_text(text)) == len(text)
    assert mask_text(masked) == masked                                       # idempotent


@pytest.mark.parametrize("value,safe", [("=1+1", "'=1+1"), ("+86", "'+86"), ("-退款", "'-退款"),
                                        ("@SUM(A1)", "'@SUM(A1)"), ("\t=x", "'\t=x"), ("亲 =1", "亲 =1"), (5, 5)])
def test_review_safe_cell_neutralises_formulas(value, safe):
    assert safe_cell(value) == safe


# -- export ------------------------------------------------------------------------------------------

def _cells(wb):
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                yield ws.title, c


def test_review_export_xlsx_layout_masking_and_neutralising(tmp_path, rubric):
    recs = [result("c1", shop="=HYPERLINK(\"http://evil\")", agent="-小桃", findings=[UNCIVIL, LEAK], failed=True),
            result("c2", levels={"clarity": 4})]
    out = tmp_path / "review.xlsx"
    export_review(recs, out, rubric)
    wb = openpyxl.load_workbook(out, rich_text=True)
    assert wb.sheetnames == ["复核", "消息", "说明", "_qa"] and wb["_qa"].sheet_state == "hidden"
    ws = wb["复核"]
    header = [c.value for c in ws[1]]
    col = {h: i + 1 for i, h in enumerate(header)}
    assert {"会话ID", "对话", "规则发现", "模型·服务态度", "复核·服务态度", "复核·礼仪", "复核·专业水平",
            "复核·语言沟通能力", "评审人", "备注"} <= set(header)
    assert ws.freeze_panes == "C2" and ws.column_dimensions["K"].width > 0
    grade_cols = {openpyxl.utils.get_column_letter(col[f"复核·{n}"]) for n in DIMS.values()}
    dvs = ws.data_validations.dataValidation
    assert len(dvs) == 1 and dvs[0].type == "list" and dvs[0].formula1 == '"5,4,3,2"'
    assert {str(r).split(":")[0][:-1] for r in dvs[0].sqref.ranges} == grade_cols
    chat = ws.cell(2, col["对话"]).value
    assert isinstance(chat, CellRichText)                                  # finding spans are red bold runs
    red = [b.text for b in chat if not isinstance(b, str) and b.font.color and b.font.color.rgb.endswith("C00000")]
    assert red == ["【138****5678】", "【滚吧】"]
    text = str(chat)
    assert text.startswith("#0 [客户 10:15] [商品卡片] 法式碎花") and "\n▶#1 [客服 10:15] 亲亲您好" in text
    assert "#4 [客户 03-03 09:00] =HYPERLINK" in text                      # another day shows the date
    assert ws.cell(2, col["店铺"]).value == "'=HYPERLINK(\"http://evil\")" and ws.cell(2, col["客服"]).value == "'-小桃"
    assert ws.cell(2, col["红线"]).value == "是" and ws.cell(2, col["模型·服务态度"]).value == 5
    assert ws.cell(2, col["规则发现"]).value.startswith("[红线] 不文明用语 #3 【滚吧】")
    assert ws.cell(2, col["复核·服务态度"]).value is None and ws.cell(2, col["复核·服务态度"]).alignment.wrap_text
    for title, c in _cells(openpyxl.load_workbook(out)):                   # hidden sheet included
        v = str(c.value or "")
        assert c.data_type != "f", (title, c.coordinate)
        assert PHONE not in v and ID_NO not in v and CARD not in v and "建国路" not in v, (title, c.coordinate)
        assert "用户2789" not in v
    hidden = json.loads("".join(x for x in next(wb["_qa"].iter_rows(min_row=2, values_only=True))[1:] if x))
    assert hidden["messages"][2]["text"] == "电话138****5678 寄到北京市朝阳区****************"


def test_review_export_csv_and_html(tmp_path, rubric):
    recs = [result("c1", agent="@小桃", findings=[UNCIVIL]), result("c2")]
    out = tmp_path / "review.csv"
    res = export_review(recs, out, rubric)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and PHONE.encode() not in raw
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines(keepends=True)))
    assert rows[0]["客服"] == "'@小桃" and "【滚吧】" in rows[0]["对话"] and rows[0]["复核·礼仪"] == ""
    assert res.sidecar == tmp_path / "review.csv.records.json" and PHONE not in res.sidecar.read_text("utf-8")
    html = tmp_path / "review.html"
    export_review([result("c3", messages=[{**MESSAGES[1], "text": "<script>alert(1)</script>"}, MESSAGES[3]],
                          findings=[{**UNCIVIL, "message": 1}])], html, rubric)
    page = html.read_text("utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;" in page and PHONE not in page
    assert "<mark>" in page and "138****5678" in page and "<link" not in page and "src=" not in page
    blind = tmp_path / "blind.xlsx"
    export_review(recs, blind, rubric, blind=True)
    header = [c.value for c in openpyxl.load_workbook(blind)["复核"][1]]
    assert "模型·服务态度" not in header and "规则发现" not in header and "抽样原因" not in header


# -- import --------------------------------------------------------------------------------------------

# Attitude grades of the two reviewers on c1..c10 (the model agrees with Alice):
#   Alice 5 5 5 5 5 4 4 4 3 3
#   Bob   5 5 5 5 4 4 4 3 3 3
# Cohen's kappa by hand: agreement p_o = 8/10; marginals Alice {5:5, 4:3, 3:2}, Bob {5:4, 4:3, 3:3};
#   chance p_e = (5·4 + 3·3 + 2·3)/100 = 0.35; κ = (0.8 − 0.35)/(1 − 0.35) = 9/13.
# Fleiss (2 raters): P̄ = 0.8; category shares 9/20, 6/20, 5/20 → P_e = 142/400; κ = (0.8 − 0.355)/0.645 = 89/129.
# Krippendorff interval: n = 20 values, n_c = {5: 9, 4: 6, 3: 5}; observed Σ o·δ² = 2 units × 2 ordered pairs × 1
#   = 4; expected Σ n_c·n_k·δ² = 2·(9·6·1 + 9·5·4 + 6·5·1) = 528; α = 1 − 19·4/528 = 113/132.
ALICE = [5, 5, 5, 5, 5, 4, 4, 4, 3, 3, 5, 4, 3]
BOB = [5, 5, 5, 5, 4, 4, 4, 3, 3, 3]


def _fill(src, dst, grades: dict[str, list], reviewer=None, comments=None, rules=None):
    """Fill the review columns as a reviewer would in Excel: one value per row, blank stays blank."""
    wb = openpyxl.load_workbook(src)
    ws = wb["复核"]
    col = {c.value: c.column for c in ws[1]}
    for dim, values in grades.items():
        for r, v in enumerate(values, 2):
            ws.cell(r, col[f"复核·{DIMS[dim]}"]).value = v
    for r in range(2, ws.max_row + 1):
        if reviewer:
            ws.cell(r, col["评审人"]).value = reviewer
        if comments and r - 2 < len(comments):
            ws.cell(r, col["备注"]).value = comments[r - 2]
        if rules and r - 2 < len(rules):
            ws.cell(r, col["复核·违规规则"]).value = rules[r - 2]
    wb.save(dst)
    return dst


@pytest.fixture
def review_files(tmp_path, rubric):
    recs = [result(f"c{i}", levels={"attitude": a}) for i, a in enumerate(ALICE, 1)]
    recs[0] = result("c1", findings=[UNCIVIL, LEAK])
    export = tmp_path / "export.xlsx"
    export_review(recs, export, rubric)
    same = {"etiquette": [5] * 13, "professionalism": [4] * 13, "clarity": [5] * 13}
    alice = _fill(export, tmp_path / "alice.xlsx", {"attitude": ALICE, **same}, reviewer="Alice",
                  comments=["=辱骂客户，红线"] + [""] * 12, rules=["不文明用语，privacy_leak"])
    bob_etiquette = [5, 5, 3] + [5] * 10                      # c3: Alice 5, Bob 3 — the widest spread
    bob = _fill(export, tmp_path / "bob.xlsx", {"attitude": BOB + [6, 4, None], "etiquette": bob_etiquette[:11] +
                [None, None], "professionalism": [4] * 12 + [None], "clarity": [5] * 12 + [None]})
    export_review(recs, tmp_path / "carol.csv", rubric)
    text = (tmp_path / "carol.csv").read_text("utf-8-sig").replace("复核·服务态度", "服务态度评分", 1)
    (tmp_path / "carol.csv").write_text(text, encoding="utf-8-sig")
    return export, alice, bob, tmp_path / "carol.csv"


def test_review_import_counts_rejects_and_labelled_data(review_files, rubric, tmp_path):
    export, alice, bob, carol = review_files
    imp = import_reviews([alice, bob, carol], rubric)
    assert (imp.read, imp.accepted, imp.rejected) == (39, 23, 16)     # 13 rows per file
    assert imp.read == imp.accepted + imp.rejected
    by_code = {}
    for p in imp.problems:
        by_code.setdefault(p.code, []).append(p)
    bad, = by_code["bad_grade"]
    assert (bad.file, bad.row, bad.id) == (str(bob), 12, "c11") and bad.column.endswith("复核·服务态度")
    assert "6" in bad.message
    blank, = by_code["blank_grade"]
    assert (blank.row, blank.id) == (13, "c12") and blank.column.endswith("复核·礼仪")
    unreviewed, = by_code["not_reviewed"]
    assert (unreviewed.row, unreviewed.id) == (14, "c13")
    renamed = [p for p in by_code["missing_column"] if p.row == 1]
    assert len(renamed) == 1 and renamed[0].column == "复核·服务态度" and "服务态度评分" in renamed[0].message
    assert len([p for p in by_code["missing_column"] if p.row > 1]) == 13 and all(
        p.file == str(carol) for p in by_code["missing_column"])
    assert {r.reviewer for r in imp.reviews} == {"Alice", "bob"}      # blank 评审人 → the file's name

    out = tmp_path / "labelled.jsonl"
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in imp.labelled()), encoding="utf-8")
    items = list(read_path(out))
    assert not [x for x in items if isinstance(x, Reject)] and len(items) == 13
    assert all(c.labels and c.labels["reviews"] for c in items)
    c1 = items[0]
    assert [r["reviewer"] for r in c1.labels["reviews"]] == ["Alice", "bob"]
    first = c1.labels["reviews"][0]
    assert first["grades"] == {"attitude": 5, "etiquette": 5, "professionalism": 4, "clarity": 5}
    assert first["rules"] == ["uncivil_language", "privacy_leak"] and first["reason"] == "=辱骂客户，红线"
    assert c1.messages[2].text == "电话138****5678 寄到北京市朝阳区****************"   # masked text, from the export
    assert PHONE not in out.read_text("utf-8")


def test_review_import_agreement_matches_hand_computed(review_files, rubric):
    export, alice, bob, carol = review_files
    rep = agreement_report(import_reviews([alice, bob, carol], rubric))
    att = rep["dimensions"]["attitude"]
    pair, = att["reviewers"]["pairs"]
    assert (pair["a"], pair["b"], pair["n"], pair["exact"]) == ("Alice", "bob", 10, 0.8)
    assert pair["kappa"] == pytest.approx(9 / 13)
    assert pair["kappa"] == pytest.approx(cohen_kappa_score(ALICE[:10], BOB))
    assert att["reviewers"]["fleiss_kappa"] == pytest.approx(89 / 129)
    assert att["reviewers"]["krippendorff_alpha_interval"] == pytest.approx(113 / 132)
    model = att["model_vs_reviewers"]["level"]                 # model = Alice on 13, vs Bob 8 of 10 the same
    assert (model["n"], model["exact"], model["within_one"]) == (23, pytest.approx(21 / 23), 1.0)
    assert model["qwk"] == pytest.approx(cohen_kappa_score(ALICE + ALICE[:10], ALICE + BOB, weights="quadratic"))
    assert att["model_vs_each_reviewer"]["Alice"]["exact"] == 1.0
    assert rep["dimensions"]["professionalism"]["reviewers"]["fleiss_kappa"] is None   # all 4: nothing to agree on
    assert [c["id"] for c in rep["calibration"][:3]] == ["c3", "c5", "c8"]
    assert rep["calibration"][0]["dimensions"]["etiquette"]["reviewers"] == {"Alice": 5, "bob": 3}
    assert rep["rows"] == {"read": 39, "accepted": 23, "rejected": 16}


def test_review_import_csv_uses_its_sidecar_or_records(tmp_path, rubric):
    recs = [result("c1"), result("c2")]
    sheet = tmp_path / "r.csv"
    export_review(recs, sheet, rubric)
    rows = list(csv.reader(sheet.read_text("utf-8-sig").splitlines(keepends=True)))
    head = rows[0]
    for row in rows[1:]:
        for name in DIMS.values():
            row[head.index(f"复核·{name}")] = "４"                  # a full-width digit is still a 4
    renamed = tmp_path / "r_alice.csv"
    with open(renamed, "w", encoding="gb18030", newline="") as f:   # as Excel on Chinese Windows saves it
        csv.writer(f).writerows(rows)
    with pytest.raises(Exception, match="records.json"):
        import_reviews([renamed], rubric)
    imp = import_reviews([renamed], rubric, records=[tmp_path / "r.csv.records.json"])
    assert (imp.read, imp.accepted) == (2, 2) and imp.reviews[0].reviewer == "r_alice"
    assert imp.reviews[0].grades == {k: 4 for k in DIMS}
    shutil.copy(tmp_path / "r.csv.records.json", tmp_path / "r_alice.csv.records.json")
    assert import_reviews([renamed], rubric).accepted == 2


@pytest.mark.parametrize("value,expected", [(5, 5), (4.0, 4), ("3", 3), (" 2 ", 2), ("５", 5), (6, "bad_grade"),
                                            ("4.5", "bad_grade"), ("五", "bad_grade"), (True, "bad_grade"),
                                            (None, "blank_grade"), ("  ", "blank_grade"),
                                            ("9" * 400, "bad_grade"), ("9" * 5000, "bad_grade"),
                                            (10 ** 400, "bad_grade"), (float("inf"), "bad_grade"),
                                            (float("nan"), "bad_grade")])
def test_review_import_parse_grade(value, expected):
    assert parse_grade(value, [5, 4, 3, 2]) == expected


@pytest.mark.parametrize("change,code", [
    ({"复核·违规规则": "加微信"}, "unknown_rule"),
    ({"会话ID": "nope"}, "unknown_conversation"),
    ({"会话ID": None}, "missing_id"),
])
def test_review_import_rejects_bad_rows(tmp_path, rubric, change, code):
    export = tmp_path / "e.xlsx"
    export_review([result("c1"), result("c2")], export, rubric)
    wb = openpyxl.load_workbook(export)
    ws = wb["复核"]
    col = {c.value: c.column for c in ws[1]}
    for r in (2, 3):
        for name in DIMS.values():
            ws.cell(r, col[f"复核·{name}"]).value = 4
    for k, v in change.items():
        ws.cell(2, col[k]).value = v
    wb.save(tmp_path / "x.xlsx")
    imp = import_reviews([tmp_path / "x.xlsx", tmp_path / "x.xlsx"], rubric)    # the same file twice
    assert (imp.read, imp.accepted, imp.rejected) == (4, 1, 3)
    assert [p.code for p in imp.problems if p.row == 2][0] == code
    assert [p.code for p in imp.problems if p.row == 3] == ["duplicate_review"]


# -- agreement figures -----------------------------------------------------------------------------------

def test_review_agreement_krippendorff_reference_values():
    """Krippendorff (2011), 'Computing Krippendorff's alpha-reliability', the 4 observers × 12 units example."""
    obs = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
           [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]
    units = [[o[u] for o in obs if o[u] is not None] for u in range(12)]
    assert krippendorff_alpha(units, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(units, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(units, "interval") == pytest.approx(0.849, abs=5e-4)
    assert krippendorff_alpha([[3, 3], [3, 3]]) is None


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_review_agreement_cohen_matches_sklearn(weights):
    rng = random.Random(5)
    a = [rng.choice([5, 4, 3, 2]) for _ in range(40)]
    b = [x if rng.random() < 0.6 else rng.choice([5, 4, 3, 2]) for x in a]
    assert cohen_kappa(a, b, [5, 4, 3, 2], weights) == pytest.approx(cohen_kappa_score(a, b, weights=weights))
    assert cohen_kappa([4, 4], [4, 4], [5, 4, 3, 2]) is None


def test_review_agreement_fleiss_textbook():
    """Fleiss (1971) style check: three raters, perfect agreement on varied items gives 1, chance-like gives < 0."""
    assert fleiss_kappa([[5, 5, 5], [4, 4, 4], [3, 3, 3]], [5, 4, 3, 2]) == pytest.approx(1.0)
    assert fleiss_kappa([[5, 4], [4, 5]], [5, 4, 3, 2]) == pytest.approx(-1.0)


# -- command line ------------------------------------------------------------------------------------------

def test_review_cli_sample_export_import(tmp_path):
    results = write_jsonl(tmp_path / "results.jsonl", population(30))
    runner = CliRunner()
    r = runner.invoke(app, ["sample", str(results), "--n", "8", "--seed", "1", "--per-agent", "3",
                            "--out", str(tmp_path / "s.jsonl")])
    assert r.exit_code == 0, r.output
    picks = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text("utf-8").splitlines()]
    assert len(picks) == 8 and all(p["pick_reason"] for p in picks)
    for fmt in ("xlsx", "csv", "html"):
        r = runner.invoke(app, ["export-review", str(tmp_path / "s.jsonl"), "--format", fmt,
                                "--out", str(tmp_path / f"review.{fmt}")])
        assert r.exit_code == 0, r.output
    _fill(tmp_path / "review.xlsx", tmp_path / "done.xlsx", {k: [4] * 8 for k in DIMS}, reviewer="张三")
    r = runner.invoke(app, ["import-review", str(tmp_path / "done.xlsx"), "--out", str(tmp_path / "l.jsonl"),
                            "--report", str(tmp_path / "a.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "a.json").read_text("utf-8"))["rows"] == {"read": 8, "accepted": 8, "rejected": 0}
    assert len(list(read_path(tmp_path / "l.jsonl"))) == 8
    r = runner.invoke(app, ["export-review", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "x.pdf")])
    assert r.exit_code == 2


def test_review_round_trip_grade_sample_export_fill_import_train(tmp_path):
    """The loop closed on the sample chats: qa grade (shipped model) → qa sample → XLSX → two reviewers fill it
    with openpyxl → qa import-review (agreement) → qa train accepts the labelled output."""
    pytest.importorskip("torch")
    from tests.conftest import ROOT
    runner = CliRunner()
    results = tmp_path / "results.jsonl"
    r = runner.invoke(app, ["grade", str(ROOT / "data" / "samples" / "samples.jsonl"), "--out", str(results),
                            "--workers", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["sample", str(results), "--n", "12", "--seed", "3", "--out", str(tmp_path / "s.jsonl")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["export-review", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "review.xlsx")])
    assert r.exit_code == 0, r.output
    a = {"attitude": [5, 4, 3, 2] * 3, "etiquette": [5] * 12, "professionalism": [4] * 12, "clarity": [5, 4] * 6}
    b = {**a, "attitude": [5, 4, 3, 3] * 3}            # the reviewers differ on 3 of 12 attitude grades
    _fill(tmp_path / "review.xlsx", tmp_path / "a.xlsx", a, reviewer="甲")
    _fill(tmp_path / "review.xlsx", tmp_path / "b.xlsx", b, reviewer="乙")
    r = runner.invoke(app, ["import-review", str(tmp_path / "a.xlsx"), str(tmp_path / "b.xlsx"),
                            "--out", str(tmp_path / "labelled.jsonl"), "--report", str(tmp_path / "agree.json")])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "agree.json").read_text("utf-8"))
    assert report["rows"] == {"read": 24, "accepted": 24, "rejected": 0}
    # attitude, 甲 vs 乙: 9 of 12 agree; marginals 甲 3/3/3/3, 乙 3/3/6/0 over 5/4/3/2 → p_e = 36/144
    # Cohen κ = (0.75 − 0.25) / 0.75 = 2/3; Fleiss: p_j = 6, 6, 9, 3 of 24 → P_e = 162/576, κ = (0.75 − P_e)/(1 − P_e)
    pair = report["dimensions"]["attitude"]["reviewers"]
    assert pair["pairs"][0]["kappa"] == pytest.approx(2 / 3)
    assert pair["fleiss_kappa"] == pytest.approx((0.75 - 162 / 576) / (1 - 162 / 576))
    # every review of a chat the model graded (a chat with no agent or bot turn has no model grades)
    graded = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text("utf-8").splitlines()]
    assert report["dimensions"]["attitude"]["model_vs_reviewers"]["level"]["n"] == \
        2 * sum("attitude" in g["dimensions"] for g in graded) >= 20
    labelled = [c for c in read_path(tmp_path / "labelled.jsonl")]
    assert len(labelled) == 12 and all(len(c.labels["reviews"]) == 2 for c in labelled)
    r = runner.invoke(app, ["train", str(tmp_path / "labelled.jsonl"), "--out", str(tmp_path / "m"),
                            "--base-model", "none", "--epochs", "1", "--batch-size", "4", "--no-features"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "m" / "model.safetensors").is_file()
