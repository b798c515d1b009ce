"""Shop-level views (issue 18): 服务体验分, staffing with Erlang C, alerts, question types, report sections.

Every expected figure below is computed by hand in the comments.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.alerts import alerts
from qa.chatrecords import Chat, Msg
from qa.errors import InputError
from qa.rubric import load_rubric
from qa.shopscore import score_row, shop_scores
from qa.staffing import erlang_c, service_level, servers_needed, staffing

TZ = dt.timezone(dt.timedelta(hours=8))


def ts(hm: str, day: int = 2) -> dt.datetime:
    h, m = map(int, hm.split(":"))
    return dt.datetime(2026, 3, day, h, m, tzinfo=TZ)


def chat(cid: str, agent: str, msgs: list[tuple[str, str, str]], **kw) -> Chat:
    return Chat(id=cid, shop="S", agent=agent, day="2026-03-02",
                messages=[Msg(role, "text", text, ts(hm)) for role, hm, text in msgs], **kw)


@pytest.fixture(scope="module")
def rub():
    return load_rubric(None)


# ---------------------------------------------------------------- 服务体验分

STATS = {"shop": "A", "day": "2026-03-02", "orders": 200, "reviews_5": 80, "reviews_4": 10, "reviews_3": 5,
         "reviews_2": 3, "reviews_1": 2, "complaints": 1, "refunds": 20}


def test_shop_score_by_hand():
    r = score_row(STATS)
    # mean stars (5·80 + 4·10 + 3·5 + 2·3 + 1·2) / 100 = 4.63 → (4.63 − 1) / 4 × 100 = 90.75
    assert r["mean_stars"] == 4.63 and r["review_score"] == 90.75
    # complaints 1 / 200 = 0.5 % → 100 × (1 − 0.005 / 0.02) = 75; refunds 20 / 200 = 10 % → 100 × (1 − 0.1 / 0.2) = 50
    assert r["complaint_score"] == 75.0 and r["refund_score"] == 50.0
    # 0.5 × 90.75 + 0.3 × 75 + 0.2 × 50 = 45.375 + 22.5 + 10 = 77.875
    assert r["total"] == pytest.approx(77.88, abs=0.006)
    # no reviews: the total is 0.3/0.5 × 75 + 0.2/0.5 × 50 = 45 + 20 = 65; rates above the cap score 0
    none = score_row({**STATS, **dict.fromkeys(("reviews_5", "reviews_4", "reviews_3", "reviews_2", "reviews_1"), 0),
                      "complaints": 10})
    assert none["review_score"] is None and none["complaint_score"] == 0.0 and none["total"] == 20.0
    assert score_row({**STATS, "complaints": 0, "refunds": 0, "orders": 0})["total"] == 90.75


def test_shop_score_csv_and_cli(tmp_path):
    path = tmp_path / "stats.csv"
    day2 = {**STATS, "day": "2026-03-03", "reviews_5": 0, "reviews_4": 0, "reviews_3": 0, "reviews_2": 0,
            "reviews_1": 0, "complaints": 3, "refunds": 0}
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(STATS))
        w.writeheader()
        w.writerows([STATS, day2])
    rows = shop_scores([STATS, day2])
    shop = rows[0]
    # all days: 400 orders, same reviews (90.75), 4 complaints = 1 % → 50, 20 refunds = 5 % → 75
    assert shop["level"] == "shop" and shop["review_score"] == 90.75
    assert shop["complaint_score"] == 50.0 and shop["refund_score"] == 75.0
    assert shop["total"] == pytest.approx(0.5 * 90.75 + 0.3 * 50 + 0.2 * 75, abs=0.006)
    from qa.cli import app

    res = CliRunner().invoke(app, ["shop-score", str(path), "--out", str(tmp_path / "s.csv")])
    assert res.exit_code == 0, res.output
    assert "77.88" in res.output and (tmp_path / "s.csv").is_file()
    bad = tmp_path / "bad.csv"
    bad.write_text("shop,day,orders\nA,2026-03-02,1\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["shop-score", str(bad)])
    assert res.exit_code == 2 and "reviews_5" in res.output


HEADER = "shop,day,orders,reviews_5,reviews_4,reviews_3,reviews_2,reviews_1,complaints,refunds\n"


@pytest.mark.parametrize("row, message", [
    ("C,2026-03-01,100\n", "3 cells where the header has 10"),                 # cut short: read as a perfect 100
    ("B,2026-03-01,1,234,80,10,5,3,2,1,20\n", "11 cells where the header has 10"),   # every column shifted
    ("A,2026-03-01,2.9,0,0,0,0,0,0.9,0\n", "orders: not a whole count: '2.9'"),  # cut to 2, the complaint to 0
    ("A,2026-03-01,10,0,0,0,0,0,-0.5,0\n", "complaints: negative count '-0.5'"),  # said "negative count 0"
])
def test_shop_score_refuses_a_ragged_row_or_a_fractional_count(tmp_path, row, message):
    from qa.shopscore import read_stats
    path = tmp_path / "s.csv"
    path.write_text(HEADER + row, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"s.csv:2: {message}")):
        read_stats(path)


def test_shop_score_reads_thousands_separators_and_blank_trailing_cells(tmp_path):
    from qa.shopscore import read_stats
    path = tmp_path / "s.csv"
    path.write_text(HEADER + 'A,2026-03-01,"1,234",80,10,5,3,2,1,\n', encoding="utf-8")
    assert read_stats(path)[0] | {"shop": "A"} == {"shop": "A", "day": "2026-03-01", "orders": 1234, "reviews_5": 80,
                                                  "reviews_4": 10, "reviews_3": 5, "reviews_2": 3, "reviews_1": 2,
                                                  "complaints": 1, "refunds": 0}


# ---------------------------------------------------------------- staffing

def test_erlang_c_by_hand():
    # A = 2 erlangs, 3 servers: A³/3!·3/(3−2) = 4; Σ_{k<3} A^k/k! = 1 + 2 + 2 = 5 → C = 4/9
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)
    # 12 chats/h × 600 s = 2 erlangs; target 180 s: SL(3) = 1 − 4/9·e^(−0.3) = 0.6707, SL(4) = 0.9046
    assert service_level(3, 2.0, 600, 180) == pytest.approx(0.67073, abs=1e-4)
    assert service_level(4, 2.0, 600, 180) == pytest.approx(0.90457, abs=1e-4)
    assert servers_needed(12, 600, 180, 0.8) == 4
    assert servers_needed(0, 600, 180, 0.8) == 0 and erlang_c(2, 2.0) == 1.0


def staffing_chats() -> list[Chat]:
    return [
        chat("c1", "A", [("customer", "10:00", "在吗 发什么快递"), ("agent", "10:01", "默认中通哦"),
                         ("customer", "10:05", "能发顺丰吗"), ("agent", "10:10", "可以补差价")]),
        chat("c2", "A", [("customer", "10:02", "有发票吗"), ("agent", "10:05", "可以开的"),
                         ("customer", "10:20", "怎么开")]),
        chat("c3", "B", [("customer", "10:50", "尺码准吗"), ("agent", "11:10", "标准码"),
                         ("customer", "11:12", "好的"), ("agent", "11:14", "有问题随时找我")]),
        chat("c4", "A", [("customer", "11:30", "人呢")]),
    ]


def test_staffing_by_hand(rub):
    rows = {r["hour"]: r for r in staffing(staffing_chats(), rubric=rub, profile="douyin")}
    assert len(rows) == 24
    h10, h11 = rows[10], rows[11]
    # arrivals: c1, c2, c3 at 10:xx; c4 at 11:30; one day
    assert (h10["arrivals"], h11["arrivals"], h10["days"], h10["arrivals_per_day"]) == (3, 1, 1, 3.0)
    # first waits 60, 180, 1200 s → mean 480; fails: 180 > 120 and 1200 (c2, c3); c4 unanswered at 11
    assert h10["first_wait_mean_s"] == 480.0 and h10["first_fail"] == 2 and h10["first_unanswered"] == 0
    assert (h11["first_fail"], h11["first_unanswered"], h11["first_wait_mean_s"]) == (1, 1, None)
    # p90 of [60, 180, 1200]: position 1.8 → 180 + 0.8 × 1020 = 996
    assert h10["first_wait_p90_s"] == 996.0
    # runs at 10: c1 10:00 (60 ok), c1 10:05 (300 fail), c2 10:02 (180 ok), c2 10:20 (never), c3 10:50 (1200)
    # at 11: c4 11:30 (never); c3's 好的 needs no reply, as the KPIs count it
    assert (h10["reply_runs"], h10["reply_fail"]) == (5, 3) and (h11["reply_runs"], h11["reply_fail"]) == (1, 1)
    # agents with a message in the hour: A at 10, B at 11
    assert (h10["agents_active_mean"], h11["agents_active_mean"], h10["agents_active_max"]) == (1.0, 1.0, 1)
    # A open [10:01, 10:10] and [10:05, 10:20]: 240 s × 1 + 300 s × 2 + 600 s × 1 = 1440 over 1140 busy s
    assert h10["concurrency_peak"] == 2 and h10["concurrency_mean"] == pytest.approx(1440 / 1140, abs=1e-3)
    assert (h11["concurrency_peak"], h11["concurrency_mean"]) == (1, 1.0)     # B [11:10, 11:14]
    # AHT = (540 + 900 + 240) / 3 = 560 s; shop concurrency 1680/1380 = 1.22 → 1 chat per agent
    assert h10["aht_s"] == 560.0 and h10["chats_per_agent"] == 1
    # 10:00 → λ = 3/h, a = 3 × 560 / 3600 = 0.4667: SL(1) = 1 − a·e^(−(1−a)·180/560) = 0.607 < 0.8,
    # SL(2) = 1 − 0.0883·e^(−1.5333·180/560) = 0.946 → 2 agents (1 active: understaffed)
    assert h10["recommended_agents"] == 2 and h10["service_level"] == pytest.approx(0.9461, abs=1e-3)
    assert h10["understaffed"] is True
    # 11:00 → λ = 1/h, a = 0.1556: SL(1) = 1 − 0.1556·e^(−0.8444·0.3214) = 0.881 → 1 agent
    assert h11["recommended_agents"] == 1 and h11["understaffed"] is False
    # failures at 10: 2 + 3 = 5 of 3 + 5 = 8 (62.5 % ≥ 50 %) cluster; at 11 only 2 failures
    assert h10["fail_cluster"] is True and h11["fail_cluster"] is False
    assert rows[3]["recommended_agents"] == 0 and rows[3]["arrivals"] == 0


# ---------------------------------------------------------------- alerts

def test_alerts_newest_first_with_reason_and_evidence(rub):
    cs = staffing_chats()
    cs[0].stars = 1
    cs[1].label, cs[1].human_service, cs[1].first_response_ok, cs[1].first_response_s = "失望", True, False, 180.0
    cs[1].unanswered_runs = 1
    cs[3].human_service, cs[3].first_response_ok, cs[3].unanswered_runs = True, False, 1
    rows = alerts(cs, rubric=rub)
    assert [r["id"] for r in rows] == ["c4", "c2", "c1"]          # agent A, newest last message first
    c2 = rows[1]
    assert c2["kinds"] == "rating;slow" and c2["reason"] == "差评: 失望; 首响 180s > 120s; 1 次未回复"
    assert "「怎么开」" in c2["evidence"] and "无人回复" in c2["evidence"]
    assert rows[0]["reason"] == "无人工回复; 1 次未回复" and "「人呢」 无人回复" in rows[0]["evidence"]
    assert rows[2]["reason"] == "差评: 1★" and "03-02 10:05 「能发顺丰吗」" in rows[2]["evidence"]


def test_alerts_times_are_on_the_shops_clock_whatever_offset_the_results_carry(rub):
    """A customer's 00:09 (Beijing) given in UTC showed as '03-03 16:09'; staffing converted, alerts did not."""
    utc = dt.timezone.utc
    for zone in (TZ, utc):
        at = dt.datetime(2026, 3, 3, 16, 9, tzinfo=utc).astimezone(zone)
        c = Chat(id="n", shop="S", agent="A", day="2026-03-04", stars=1,
                 messages=[Msg("customer", "text", "晚安", at)])
        row = alerts([c], rubric=rub)[0]
        assert row["time"] == "2026-03-04T00:09:00+08:00" and "客户 03-04 00:09 「晚安」" in row["evidence"]


# ---------------------------------------------------------------- topics

def topic_chats() -> list[Chat]:
    qs = [("能开发票吗", 5, "可以开的 下单后填抬头和税号"), ("能开发票吗？", 4, "能开发票 电子发票24小时内发您邮箱"),
          ("可以开专票吗 发票", None, None), ("电子发票在哪下载", 3, "订单详情里下载电子发票"),
          ("衣服有色差吗", 5, "实物和图片基本一致 自然光拍摄"), ("实物色差大不大", None, "有一点点色差 正常范围"),
          ("在吗 颜色有色差没", 2, "每个显示器不一样哦")]
    out = []
    for i, (q, stars, a) in enumerate(qs):
        msgs = [("customer", "10:00", q)] + ([("agent", "10:01", "亲亲您好~"), ("agent", "10:02", a)] if a else [])
        out.append(chat(f"t{i}", "A", msgs, stars=stars, score=80.0 + i))
    return out


def test_topics_dedupe_terms_faq():
    from qa.topics import build_topics

    res = build_topics(topic_chats(), k=2, backend="lsa")
    assert (res.questions, res.distinct, res.k) == (7, 6, 2)     # 能开发票吗 and 能开发票吗？ are one question
    inv, col = res.rows
    assert inv["conversations"] == 4 and inv["share"] == pytest.approx(4 / 7, abs=1e-4)
    assert inv["examples"].split(" | ")[0] == "能开发票吗" and len(inv["examples"].split(" | ")) == 3
    assert "发票" in inv["key_terms"] and "色差" in col["key_terms"]
    # rated 5, 4, 3 of 4 → 满意 2 of 3; one unanswered of 4; FAQ: the 5★ answer (not the greeting)
    assert inv["good_review_rate"] == pytest.approx(2 / 3, abs=1e-4) and inv["unanswered_rate"] == 0.25
    assert inv["faq_answer"] == "可以开的 下单后填抬头和税号" and inv["faq_rating"] == "5★"
    assert set(col["examples"].split(" | ")) == {"衣服有色差吗", "实物色差大不大", "颜色有色差没"}  # 在吗 stripped
    assert any(r["question"] == "颜色有色差没" for r in res.assignments)
    assert res.rows[1]["mean_score"] == pytest.approx((84 + 85 + 86) / 3, abs=0.01)


@pytest.mark.parametrize("text, question", [
    ("hi, high heels", "high heels"), ("history of my order", "history of my order"),   # hi stripped from history
    ("宝宝几个月能穿", "宝宝几个月能穿"), ("亲子装有没有大码", "亲子装有没有大码"), ("宝贝什么时候发货", "宝贝什么时候发货"),
    ("客服电话多少", "客服电话多少"), ("亲，能发顺丰吗", "能发顺丰吗"), ("美女在吗 有货吗", "有货吗"),
    ("客服 在吗?怎么退货", "怎么退货"),
])
def test_topics_greetings_are_stripped_only_as_whole_words(text, question):
    from qa.topics.questions import clean_question
    assert clean_question(text) == question


def test_topics_read_traditional_chinese_as_simplified():
    """怎麼退貨 and 怎么退货 were two questions with the key terms 退貨 and 退货."""
    from qa.topics import build_topics

    qs = ["怎么退货", "怎麼退貨", "怎么退货呀", "怎麼退貨呀", "什么时候发货", "什麼時候發貨"]
    chats = [chat(f"q{i}", "A", [("customer", "10:00", q), ("agent", "10:01", "好的亲")]) for i, q in enumerate(qs)]
    res = build_topics(chats, k=2, backend="lsa")
    assert res.distinct == 3
    terms = " ".join(r["key_terms"] for r in res.rows)
    assert "退货" in terms and "退貨" not in terms and "發貨" not in terms


# ---------------------------------------------------------------- report sections

def result_record(c: Chat, rub) -> dict:
    from qa.schema import Conversation
    from qa.timing import compute_timing

    conv = Conversation(id=c.id, shop=c.shop, agent=c.agent, messages=[
        {"role": m.role, "type": "text", "text": m.text, "ts": m.ts.isoformat()} for m in c.messages])
    t = compute_timing(conv, rub).as_dict()
    t["human_start"] = str(t["human_start"])
    return {"id": c.id, "platform": "douyin", "shop": c.shop, "agent": c.agent, "customer": "u", "day": c.day,
            "profile": "douyin", "rubric": "default", "model": None, "score": c.score or 70.0, "band": "合格",
            "failed": False, "dimensions": {}, "findings": [], "deductions": [], "timing": t,
            "rating": {"stars": c.stars, "label": c.label} if (c.stars or c.label) else None,
            "messages": [{"role": m.role, "type": "text", "text": m.text, "ts": m.ts.isoformat()}
                         for m in c.messages], "warnings": []}


@pytest.fixture(scope="module")
def shop_report(tmp_path_factory, rub):
    from qa.report import build_report

    tmp = tmp_path_factory.mktemp("shopviews")
    cs = staffing_chats() + topic_chats()
    cs[0].stars = 1
    for c in cs[4:]:
        c.shop = "T"
    path = tmp / "results.jsonl"
    path.write_text("".join(json.dumps(result_record(c, rub), ensure_ascii=False) + "\n" for c in cs),
                    encoding="utf-8")
    stats = tmp / "stats.csv"
    stats.write_text(",".join(STATS) + "\n" + ",".join(str(v) for v in STATS.values()) + "\n", encoding="utf-8")
    return build_report([path], tmp / "out", topics=True, topics_backend="lsa", shop_stats=stats)


def test_report_shop_sections_and_csv(shop_report):
    rep = shop_report
    html = rep.files["html"].read_text(encoding="utf-8")
    for anchor in ('id="alerts"', 'id="topics"', 'id="shop-score"', 'id="staffing"'):
        assert anchor in html
    assert html.split('<h2 id="alerts"')[1].count("<svg") == 5   # alert bars, topic bars, score bars, 2 heat maps
    assert 'class="cell hot"' in html and "77.88" in html
    for name in ("alerts", "staffing", "topics", "topic_shops", "shop_score"):
        assert rep.files[name].is_file(), name
    with open(rep.files["staffing"], encoding="utf-8-sig") as f:
        staff = list(csv.DictReader(f))
    assert len(staff) == 48 and staff[10]["shop"] == "S" and staff[10]["arrivals"] == "3" and staff[10]["recommended_agents"] == "2"
    with open(rep.files["alerts"], encoding="utf-8-sig") as f:
        al = list(csv.DictReader(f))
    assert al[0]["id"] == "c4" and {"c1", "c2", "c3", "c4"} <= {r["id"] for r in al}


CHROMIUM = next((Path(p) for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")
def test_report_shop_sections_render_in_chromium(shop_report, tmp_path):
    page = shop_report.files["html"].resolve().as_uri()
    common = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              f"--user-data-dir={tmp_path / 'profile'}"]
    res = subprocess.run(common + ["--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    for anchor in ('id="alerts"', 'id="topics"', 'id="shop-score"', 'id="staffing"'):
        assert anchor in dom
    assert dom.split('<h2 id="alerts"')[1].count("<svg") == 5 and 'class="cell hot"' in dom and "排班建议" in dom
    shot = tmp_path / "shot.png"
    res = subprocess.run(common + ["--window-size=1400,6000", f"--screenshot={shot}", page],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and shot.is_file() and shot.stat().st_size > 20_000
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def test_shop_view_cells_go_through_the_safety_policy(tmp_path):
    """CSV cells masked (shop and agent names too) and neutralised; HTML table cells neutralised and escaped."""
    import html as html_lib

    from qa.report.shop_views import _table, write_rows

    path = tmp_path / "alerts.csv"
    write_rows(path, [{"shop": "=1+1", "agent": "客服-13812345678", "id": "=HYPERLINK(\"x\")",
                       "time": "2026-03-02T10:00:00+08:00", "hour": 10}], ("shop", "agent", "id", "time", "hour"))
    with open(path, encoding="utf-8-sig") as f:
        row = next(csv.DictReader(f))
    assert row == {"shop": "'=1+1", "agent": "客服-138****5678", "id": "'=HYPERLINK(\"x\")",
                   "time": "2026-03-02T10:00:00+08:00", "hour": "10"}
    page = html_lib.unescape(_table(["店铺", "客服"], [[("=1+1", ""), ("@SUM(A1)", "n")]]))
    assert "<td>'=1+1</td>" in page and "<td class=\"n\">'@SUM(A1)</td>" in page



@pytest.mark.parametrize("day,kept", [("2026/3/2", "2026-03-02"), ("2026年3月2日", "2026-03-02"), ("", "unknown")])
def test_shop_stats_days_are_read_as_dates(tmp_path, day, kept):
    from qa.shopscore import read_stats
    p = tmp_path / "s.csv"
    p.write_text("shop,day,orders,reviews_5,reviews_4,reviews_3,reviews_2,reviews_1,complaints,refunds\n"
                 f"店A,{day},10,1,0,0,0,0,0,0\n", encoding="utf-8")
    assert read_stats(p)[0]["day"] == kept


@pytest.mark.parametrize("day", ["13912345678 王小明", "110101199003071234", "2026-13-01"])
def test_shop_stats_day_that_is_no_date_is_refused_not_printed(tmp_path, day):
    from qa.errors import InputError
    from qa.shopscore import read_stats
    p = tmp_path / "s.csv"
    p.write_text("shop,day,orders,reviews_5,reviews_4,reviews_3,reviews_2,reviews_1,complaints,refunds\n"
                 f"店A,{day},10,1,0,0,0,0,0,0\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2|:2:") as e:
        read_stats(p)
    assert "not a day" in str(e.value) and e.value.field == "day"


def test_topics_reads_each_id_once_and_writes_its_rejects(tmp_path, capsys):
    """The same chat given twice was two chats in every count, and unreadable lines were only counted."""
    from tests.conftest import ROOT, run_main
    lines = (ROOT / "data" / "samples" / "samples.jsonl").read_text("utf-8").splitlines()
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("\n".join(lines[:12]) + "\n", encoding="utf-8")
    b.write_text("\n".join([lines[3], "{bad"]) + "\n", encoding="utf-8")
    code, out, err = run_main(capsys, "topics", a, b, "--backend", "lsa", "--out", tmp_path / "t")
    assert code == 0, err
    rejects = [json.loads(ln) for ln in (tmp_path / "t" / "rejects.jsonl").read_text("utf-8").splitlines()]
    assert [(r["file"], r["line"]) for r in rejects] == [(str(b), 1), (str(b), 2)]
    assert f"first read at {a}:4" in rejects[0]["reason"] and "12 chats (2 rejected)" in " ".join(out.split())
