"""qa report: hand-built graded results (docs/results.md) in JSONL and Parquet → KPIs, warnings, CSV, HTML."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from typer.testing import CliRunner

from qa.cli import app
from qa.errors import InputError, RubricError
from qa.kpis import aggregate
from qa.report import build_report
from qa.rubric import KPIS
from qa.timing import compute_timing
from tests.conftest import ROOT, make_conv, run_main

WEIGHTS = {"attitude": 20, "etiquette": 15, "professionalism": 25, "clarity": 10, "reply_speed": 15,
           "chat_time": 5, "resolution": 10}
NAMES = {"attitude": "服务态度", "etiquette": "礼仪", "professionalism": "专业水平",
         "clarity": "语言沟通能力", "reply_speed": "回复速度", "chat_time": "聊天时效", "resolution": "问题解决"}
NESTED = ("dimensions", "findings", "deductions", "timing", "rating", "messages")
SHOP_A, SHOP_B = "小鹿女装旗舰店", "<b>&店</b>"
EVIL_AGENT = "<script>alert(1)</script>"


def finding(rule: str, name: str, severity: str, evidence: str = "") -> dict:
    return {"rule": rule, "name": name, "severity": severity, "explanation": name, "message": 1,
            "span": [0, len(evidence)] if evidence else None, "evidence": evidence}


def timing(*, human=True, first_s=30.0, first_ok=True, delays=(), ok=None, runs=None, unanswered=0,
           responded=True) -> dict:
    runs = len(delays) + unanswered if runs is None else runs
    ok = sum(d <= 180 for d in delays) if ok is None else ok
    return {"human_start": "2026-03-02T10:00:00+08:00", "human_start_source": "first_customer",
            "human_service": human, "first_response_s": first_s, "first_response_wall_s": first_s,
            "first_response_ok": first_ok if human else None, "reply_runs": runs, "replies_ok": ok,
            "unanswered_runs": unanswered, "reply_delays_s": list(delays),
            "avg_reply_s": sum(delays) / len(delays) if delays else None, "responded_24h": responded,
            "handle_s": 600.0, "reply_speed_level": 5, "chat_time_level": 5, "bot_only": not human,
            "night_messages": 0}


def record(rid: str, shop: str, agent: str, day: str, score: float, t: dict, *, rating=None, findings=(),
           levels=None, failed=False) -> dict:
    levels = {**dict.fromkeys(WEIGHTS, 5), **(levels or {})}
    dims = {k: {"name": NAMES[k], "source": "model", "weight": w, "level": levels[k], "base_level": levels[k],
                "expected": None, "probs": None, "confidence": None, "evidence": [],
                "points": w * (levels[k] - 2) / 3} for k, w in WEIGHTS.items()}
    band = "优秀" if score >= 90 else "良好" if score >= 75 else "合格" if score >= 60 else "不合格"
    return {"id": rid, "platform": "douyin", "shop": shop, "agent": agent, "customer": "用户1", "day": day,
            "profile": "douyin", "rubric": "default", "model": None, "score": score,
            "band": "不合格" if failed else band, "failed": failed, "dimensions": dims,
            "findings": list(findings), "deductions": [], "timing": t, "rating": rating,
            "messages": [{"role": "customer", "type": "text", "text": "在吗",
                          "ts": "2026-03-02T10:00:00+08:00"}],
            "warnings": []}


def records() -> list[dict]:
    closing = finding("missing_closing", "缺少结束语", "minor")
    return [
        record("r1", SHOP_A, "小美", "2026-03-02", 92, timing(delays=(30, 60, 90)),
               rating={"stars": 5, "label": "一般"}, findings=[closing]),
        record("r2", SHOP_A, "小美", "2026-03-02", 0, timing(first_s=20, delays=(20, 400)),
               rating={"stars": 2, "label": None}, failed=True, levels={"professionalism": 2},
               findings=[finding("off_platform_diversion", "引导站外交易", "red_line", "加我微信<vx>"), closing]),
        record("r3", SHOP_A, "小王", "2026-03-03", 78, timing(first_s=300, first_ok=False, delays=(300, 60)),
               rating={"stars": None, "label": "失望"}, levels={"etiquette": 3, "professionalism": 4}),
        record("r4", SHOP_A, "小王", "2026-03-03", 85, timing(human=False, first_s=None, first_ok=None),
               rating={"stars": 4, "label": None}, levels={"etiquette": 3, "professionalism": 3}),
        record("r5", SHOP_B, EVIL_AGENT, "2026-03-03", 70, timing(delays=(), unanswered=1, responded=False)),
    ]


def write_jsonl(path: Path, recs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return path


def write_parquet(path: Path, recs: list[dict]) -> Path:
    rows = [{k: json.dumps(v, ensure_ascii=False) if k in NESTED else v for k, v in r.items()} for r in recs]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> list[Path]:
    tmp, recs = tmp_path_factory.mktemp("results"), records()
    return [write_jsonl(tmp / "a.jsonl", recs[:3]), write_parquet(tmp / "b.parquet", recs[3:])]


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    return build_report(results, tmp_path_factory.mktemp("report"))


def _row(rep, level, **keys):
    return next(r for r in rep.kpis if r["level"] == level and all(r[k] == v for k, v in keys.items()))


def test_report_kpis_overall(report):
    r = _row(report, "all")
    assert report.conversations == 5 and r["conversations"] == 5 and r["human_conversations"] == 4
    assert r["first_response_rate_2min"] == pytest.approx(3 / 4)      # r1, r2, r5 of the 4 human chats
    assert r["reply_rate_3min"] == pytest.approx(5 / 8)               # 3 + 1 + 1 of 3 + 2 + 2 + 0 + 1 runs
    assert r["avg_reply_s"] == pytest.approx(960 / 7, abs=0.05)
    assert r["response_rate_24h"] == pytest.approx(4 / 5)
    assert r["rated"] == 4
    assert r["satisfaction_rate"] == pytest.approx(2 / 4)             # 5★ (stars win over 一般), 4★
    assert r["dissatisfaction_rate"] == pytest.approx(2 / 4)          # 2★, 失望
    assert r["good_review_rate"] == pytest.approx(1 / 4)              # the label wins: 一般, 失望, 失望, 满意
    assert r["mean_score"] == pytest.approx((92 + 0 + 78 + 85 + 70) / 5)
    assert r["profile"] == "douyin" and r["first_response_rate_2min_threshold"] == "≥ 0.85"
    assert r["first_response_rate_2min_pass"] is False and r["good_review_rate_threshold"] is None


def test_report_kpis_by_group(report):
    shop = _row(report, "shop", shop=SHOP_A)
    assert shop["first_response_rate_2min"] == pytest.approx(2 / 3, abs=1e-4)   # rounded to 4 places
    assert shop["reply_rate_3min"] == pytest.approx(5 / 7, abs=1e-4)
    mei = _row(report, "agent", shop=SHOP_A, agent="小美")
    assert mei["first_response_rate_2min"] == 1.0 and mei["first_response_rate_2min_pass"] is True
    assert mei["reply_rate_3min"] == pytest.approx(0.8) and mei["reply_rate_3min_pass"] is True
    assert mei["satisfaction_rate"] == 0.5 and mei["satisfaction_rate_pass"] is False
    day = _row(report, "day", shop=SHOP_A, day="2026-03-03")
    assert day["conversations"] == 2 and day["first_response_rate_2min"] == 0.0
    trend = [r["day"] for r in report.kpis if r["level"] == "all_day"]
    assert trend == ["2026-03-02", "2026-03-03"]
    assert report.histogram == [1, 0, 0, 0, 0, 0, 0, 2, 1, 1]      # 0 (failed); 70, 78; 85; 92


def test_report_profile_of_a_mixed_group_does_not_depend_on_line_order(tmp_path):
    """Two profiles as frequent: the first by name judges the group, whichever line comes first (DuckDB's mode()
    picked by order: the same records gave douyin or kuaishou thresholds, and other pass marks)."""
    recs = records()[:4]
    for r, prof in zip(recs, ("kuaishou", "douyin", "kuaishou", "douyin")):
        r["profile"] = prof
    got = set()
    for name, order in (("a", recs), ("b", recs[::-1]), ("c", recs[1:] + recs[:1])):
        rep = build_report([write_jsonl(tmp_path / f"{name}.jsonl", order)], tmp_path / name)
        got.add(_row(rep, "all")["profile"])
    assert got == {"douyin"}


def test_report_profile_option_and_unknown(results, tmp_path):
    rep = build_report(results, tmp_path / "k", profile="kuaishou")
    r = _row(rep, "all")
    assert r["profile"] == "kuaishou" and r["good_review_rate_threshold"] == "≥ 0.9"
    assert r["satisfaction_rate_threshold"] is None
    with pytest.raises(RubricError, match="unknown profile 'nope'"):
        build_report(results, tmp_path / "x", profile="nope")


def test_report_agents_weakest_and_findings(report):
    wang = next(a for a in report.agents if a["agent"] == "小王")
    assert wang["weakest"] == "礼仪 3.00; 专业水平 3.50"
    assert wang["dim_etiquette"] == 3.0 and wang["dim_attitude"] == 5.0
    mei = next(a for a in report.agents if a["agent"] == "小美")
    assert mei["top_findings"] == "缺少结束语 ×2; 引导站外交易 ×1"
    assert mei["failed"] == 1 and mei["不合格"] == 1 and mei["优秀"] == 1
    assert list(report.dimensions) == list(WEIGHTS)


def test_report_warnings(report):
    got = [(w["id"], w["kinds"]) for w in report.warnings]
    assert got == [("r2", "red_line;rating;slow"), ("r3", "rating;slow"), ("r5", "slow")]
    r2, r3, r5 = report.warnings
    assert r2["red_lines"] == "引导站外交易" and r2["evidence"] == "加我微信<vx>" and r2["rating"] == "2★"
    assert "1 次回复 > 180s (最长 400s)" in r2["reasons"]
    assert "差评: 失望" in r3["reasons"] and "首响 300s > 120s" in r3["reasons"]
    assert r5["reasons"] == "1 次未回复"


def test_report_csv_files(report):
    def read(name):
        raw = (report.files[name]).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")                       # utf-8-sig: Excel reads Chinese
        return list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    kpis, agents, warnings = read("kpis"), read("agents"), read("warnings")
    assert list(kpis[0])[:6] == ["level", "shop", "agent", "day", "profile", "conversations"]
    assert {"first_response_rate_2min", "first_response_rate_2min_threshold", "first_response_rate_2min_pass",
            "satisfaction_rate"} <= set(kpis[0])
    assert {r["level"] for r in kpis} == {"all", "shop", "agent", "day", "all_day"}
    assert {"shop", "agent", "mean_score", "dim_etiquette", "weakest", "top_findings"} <= set(agents[0])
    assert [w["id"] for w in warnings] == ["r2", "r3", "r5"]
    assert list(warnings[0])[:8] == ["shop", "agent", "day", "id", "score", "band", "kinds", "reasons"]
    assert any(r["shop"] == SHOP_A for r in agents)


def test_report_html_charts_and_escaping(report):
    html = report.files["html"].read_text(encoding="utf-8")
    assert html.split('<h2 id="alerts"')[0].count("<svg") == 4      # histogram, bars, heatmap, trend
    for label in ("分数分布", "客服平均分", "各维度平均等级", "KPI 按天趋势"):
        assert f'aria-label="{label}"' in html
    assert 'class="threshold"' in html and "<polyline" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert "&lt;b&gt;&amp;店&lt;/b&gt;" in html and "<b>&" not in html
    assert "加我微信&lt;vx&gt;" in html
    assert not re.search(r"(src|href)=|@import|url\(|https?://", html)  # self-contained


def test_report_jsonl_and_parquet_agree(tmp_path):
    recs = records()
    one = build_report([write_jsonl(tmp_path / "all.jsonl", recs)], tmp_path / "o1")
    two = build_report([write_parquet(tmp_path / "all.parquet", recs)], tmp_path / "o2")
    assert one.kpis == two.kpis and one.agents == two.agents
    assert [w["id"] for w in one.warnings] == [w["id"] for w in two.warnings]


def test_report_kpis_match_qa_kpis(rubric, tmp_path):
    """The SQL KPIs equal qa/kpis.py's on real timing figures from compute_timing."""
    convs = [
        make_conv(("customer", "在吗", 0), ("agent", "在的", 60), ("customer", "有货吗", 100), ("agent", "有", 400),
                  cid="c1", shop="S1", agent="A", rating={"stars": 5, "label": "一般"}),
        make_conv(("customer", "在吗", 0), ("agent", "在", 200), ("customer", "发货了吗", 300),
                  cid="c2", shop="S1", agent="A", rating={"label": "失望"}),
        make_conv(("customer", "运费多少", 0), ("bot", "包邮哦", 5), cid="c3", shop="S1", agent="B",
                  rating={"stars": 3}),
        make_conv(("customer", "转人工", 0), ("bot", "请稍等", 5), ("system", "transfer_to_human", 10),
                  ("agent", "您好", 20), ("customer", "退货", 30), ("agent", "好的", 50), cid="c4", shop="S2",
                  agent="B"),
        make_conv(("customer", "在吗", 0), ("agent", "抱歉久等", 90000), cid="c5", shop="S2", agent="A",
                  rating={"stars": 1}),
    ]
    timings = [compute_timing(c, rubric) for c in convs]
    recs = [record(c.id, c.shop, c.agent_name, "2026-03-02", 80, t.as_dict(),
                   rating=c.rating.model_dump() if c.rating else None) for c, t in zip(convs, timings)]
    rep = build_report([write_parquet(tmp_path / "r.parquet", recs)], tmp_path / "out")
    expected = aggregate(zip(convs, timings), rubric)
    pairs = [("platform", "all", ()), ("shop", "shop", ("shop",)), ("agent", "agent", ("shop", "agent"))]
    for theirs, ours, keys in pairs:
        for row in (r for r in expected if r["level"] == theirs):
            got = _row(rep, ours, **{k: row[k] for k in keys})
            for kpi in KPIS:
                want = row[kpi]
                tol = 0.05 if kpi == "avg_reply_s" else 1e-4                     # the report rounds
                assert got[kpi] == (None if want is None else pytest.approx(want, abs=tol)), (ours, keys, kpi)
                assert got[f"{kpi}_pass"] == row[f"{kpi}_pass"], (ours, keys, kpi)


@pytest.mark.parametrize("field", ["timing", "score", "shop"])
def test_report_missing_field(tmp_path, field):
    recs = records()
    del recs[1][field]
    path = write_jsonl(tmp_path / "bad.jsonl", recs)
    with pytest.raises(InputError) as err:
        build_report([path], tmp_path / "out")
    assert err.value.field == field and err.value.file == str(path) and err.value.line == 2
    pq_path = write_parquet(tmp_path / "bad.parquet", [{k: v for k, v in r.items() if k != field} for r in recs])
    with pytest.raises(InputError, match=f"bad.parquet: {field}: column missing"):
        build_report([pq_path], tmp_path / "out")


@pytest.mark.parametrize("mutate, field, message", [
    (lambda r: r.update(score="high"), "score", "must be a number, not a string"),
    (lambda r: r.update(rating=5), "rating", "must be an object or null, not an integer"),
    (lambda r: r["timing"].pop("replies_ok"), "timing.replies_ok", "required field missing"),
])
def test_report_invalid_record(tmp_path, mutate, field, message):
    recs = records()
    mutate(recs[2])
    path = write_jsonl(tmp_path / "bad.jsonl", recs)
    with pytest.raises(InputError, match=re.escape(f"bad.jsonl:3: {field}: {message}")):
        build_report([path], tmp_path / "out")


def test_report_missing_file_and_bad_json(tmp_path):
    with pytest.raises(InputError, match="no such results file"):
        build_report([tmp_path / "nope.jsonl"], tmp_path / "out")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n{"id": oops}\n', encoding="utf-8")
    with pytest.raises(InputError, match="bad.jsonl: cannot read"):
        build_report([bad], tmp_path / "out")
    with pytest.raises(InputError, match="unsupported results file type"):
        build_report([write_jsonl(tmp_path / "r.csv", records())], tmp_path / "out")


def test_report_no_warnings_and_unknown_profile(tmp_path):
    rec = record("ok", SHOP_A, "小美", "2026-03-02", 95, timing(delays=(10,)), rating={"stars": 5})
    rec["profile"] = "custom"
    rep = build_report([write_jsonl(tmp_path / "ok.jsonl", [rec])], tmp_path / "out")
    assert rep.warnings == [] and rep.agents[0]["weakest"] == ""
    header = rep.files["warnings"].read_text(encoding="utf-8-sig").splitlines()
    assert header == [",".join(["shop", "agent", "day", "id", "score", "band", "kinds", "reasons", "rating",
                                "red_lines", "evidence", "first_response_s", "max_reply_s", "slow_replies",
                                "unanswered_runs", "file"])]
    total = _row(rep, "all")
    assert total["profile"] == "custom" and total["first_response_rate_2min_threshold"] is None
    assert any("'custom'" in n for n in rep.notes)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="no graded results"):
        build_report([empty], tmp_path / "out")


def test_report_cli(results, tmp_path):
    res = CliRunner().invoke(app, ["report", *map(str, results), "--out", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and (tmp_path / "cli" / "report.html").is_file()
    res = CliRunner().invoke(app, ["report", str(tmp_path / "missing.parquet")])
    assert res.exit_code == 2 and "no such results file" in " ".join(res.output.split())


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")
def test_report_html_renders_in_chromium(report, tmp_path):
    res = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
                          "--dump-dom", report.files["html"].resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    dom = res.stdout
    assert res.returncode == 0, res.stderr[-2000:]
    assert dom.split('<h2 id="alerts"')[0].count("<svg") == 4 and "<rect" in dom and "<polyline" in dom
    assert "客服质检报告" in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def test_results_graded_without_messages_are_named_in_the_report_and_refused_by_topics(tmp_path, capsys):
    """The staffing table, alerts and question types read the messages: a --no-messages file gave 0 arrivals and 0
    questions without a word."""
    src = ROOT / "data" / "samples" / "samples.jsonl"
    bare = tmp_path / "r.jsonl"
    code, _, err = run_main(capsys, "grade", src, "--model", "none", "--no-messages", "--out", bare, "--workers", "1")
    assert code == 0, err
    rep = build_report([bare], tmp_path / "rep")
    assert any("64 results were graded with --no-messages" in n for n in rep.notes)
    code, _, err = run_main(capsys, "topics", bare, "--out", tmp_path / "top")
    assert code == 2 and "messages" in err and "--no-messages" in err and "Traceback" not in err
