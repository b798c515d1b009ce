import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from qa.rubric import Hours
from qa.timing import compute_timing, service_seconds
from tests.conftest import ROOT, make_conv

CST = dt.timezone(dt.timedelta(hours=8))


def at(h, m=0, day=2, s=0):
    return dt.datetime(2026, 3, day, h, m, s, tzinfo=CST)


@pytest.mark.parametrize("a,b,expected", [
    (at(10), at(10, 5), 300),                     # inside hours
    (at(22, 58), at(23, 3), 120),                 # closes at 23:00: only 2 min count
    (at(7, 55), at(8, 5), 300),                   # opens at 08:00: 5 min count
    (at(23, 30), at(7, 50, day=3), 0),            # night wait entirely outside hours
    (at(22, 0), at(9, 0, day=3), 7200),           # 22–23 and 08–09
    (at(10), at(10, day=4), 2 * 15 * 3600),       # two full service days
    (at(10, 5), at(10), 0),                       # reversed
])
def test_timing_service_seconds_edges(a, b, expected):
    assert service_seconds(a, b, Hours()) == expected


def test_timing_service_seconds_window_wrapping_midnight():
    night = Hours(start=dt.time(20), end=dt.time(2))
    assert service_seconds(at(19), at(3, day=3), night) == 6 * 3600
    assert service_seconds(at(1), at(1, 30), night) == 1800


def test_timing_service_seconds_all_day_when_start_equals_end():
    assert service_seconds(at(23, 30), at(0, 30, day=3), Hours(start=dt.time(0), end=dt.time(0))) == 3600


def test_timing_first_response_from_first_customer_message(rubric):
    c = make_conv(("customer", "在吗", 0), ("customer", "这个有货吗", 20), ("agent", "亲在的", 90),
                  ("customer", "好的", 100), ("agent", "有货哦", 400))
    t = compute_timing(c, rubric)
    assert t.human_start_source == "first_customer"
    assert t.first_response_s == 90 and t.first_response_ok
    # 好的 only acknowledges (the platforms' 无需回复): no reply run of its own
    assert t.reply_runs == 1 and t.reply_delays_s == (90,)
    assert t.replies_ok == 1 and t.avg_reply_s == 90
    assert t.responded_24h and t.handle_s == 400
    assert t.reply_speed_level == 5 and t.chat_time_level == 5


def test_timing_transfer_to_human_starts_human_service(rubric):
    c = make_conv(("customer", "退货", 0), ("bot", "您好，我是智能助手", 2),
                  ("system", "transfer_to_human", 600), ("agent", "您好亲", 780))
    t = compute_timing(c, rubric)
    assert t.human_start_source == "transfer"
    assert t.first_response_s == 180 and t.first_response_ok is False
    assert t.reply_runs == 0  # the run before the transfer belongs to the bot


def test_timing_a_transfer_without_a_customer_message_is_no_human_service(rubric):
    """It counted as human service and as a failed first response: 2 good chats + 2 such gave a 2-minute rate 0.5."""
    for c in (make_conv(("system", "transfer_to_human", 0)),
              make_conv(("system", "transfer_to_human", 0), ("agent", "您好亲", 400))):
        t = compute_timing(c, rubric)
        assert t.human_service is False and t.first_response_ok is None


def test_timing_a_closing_thanks_needs_no_reply_and_a_bot_answer_thanked_is_a_response(rubric):
    """好的 谢谢 at the end was an unanswered run (a 3-minute reply rate of 50 % for a chat answered in 20 s), and after
    a bot's answer it made the chat 'never responded' (reply speed and chat time at the worst level)."""
    c = make_conv(("customer", "几天发货", 0), ("agent", "亲 48小时内发货哦", 20), ("customer", "好的 谢谢[比心]", 40))
    t = compute_timing(c, rubric)
    assert (t.reply_runs, t.unanswered_runs, t.replies_ok) == (1, 0, 1)
    c = make_conv(("customer", "几天发货", 0), ("bot", "亲 48小时内发货哦", 2), ("customer", "ok 收到", 10))
    t = compute_timing(c, rubric)
    assert t.responded_24h and t.reply_speed_level == 5 and t.chat_time_level == 5
    c = make_conv(("customer", "几天发货", 0), ("bot", "亲 48小时内发货哦", 2), ("customer", "那能发顺丰吗", 10))
    assert compute_timing(c, rubric).responded_24h is False   # a new question the bot left open
    for bye in ("晚安", "88", "我考虑下", "好吧 那我再看看", "不用了谢谢"):   # signing off asks nothing either
        c = make_conv(("customer", "几天发货", 0), ("agent", "48小时内", 20), ("customer", bye, 40))
        assert compute_timing(c, rubric).unanswered_runs == 0, bye


def test_timing_an_agent_reply_to_a_chat_that_then_only_thanks_is_timed_by_it(rubric):
    """Transfer, agent replies in 12 s, the customer only says 好的: no reply run, and the reply speed read 未回复."""
    c = make_conv(("customer", "退货", 0), ("system", "transfer_to_human", 5), ("agent", "您好 我来帮您", 17),
                  ("customer", "好的", 30))
    t = compute_timing(c, rubric)
    assert t.reply_runs == 0 and t.avg_reply_s == 12 and t.reply_speed_level == 5


def test_timing_first_response_exactly_two_minutes_passes(rubric):
    c = make_conv(("customer", "在吗", 0), ("agent", "在的", 120))
    assert compute_timing(c, rubric).first_response_ok is True
    c = make_conv(("customer", "在吗", 0), ("agent", "在的", 121))
    assert compute_timing(c, rubric).first_response_ok is False


def test_timing_night_wait_not_counted(rubric):
    start = dt.datetime(2026, 3, 2, 23, 50, tzinfo=CST)
    c = make_conv(("customer", "在吗", 0), ("agent", "早上好亲", 8 * 3600 + 11 * 60), start=start)
    t = compute_timing(c, rubric)
    assert t.first_response_s == 60 and t.first_response_ok  # 23:50 → 08:01: only 08:00–08:01 counts
    assert t.first_response_wall_s == 8 * 3600 + 11 * 60
    assert t.night_messages == 1


def test_timing_chat_spanning_midnight(rubric):
    start = dt.datetime(2026, 3, 2, 22, 58, tzinfo=CST)
    c = make_conv(("customer", "还在吗", 0), ("agent", "在的亲", 60), ("customer", "发货没", 90),
                  ("agent", "明天发", 300), start=start)
    t = compute_timing(c, rubric)
    assert t.reply_delays_s == (60, 30)  # second run: 22:59:30 → 23:00 counted, 23:00 → 23:03 not
    assert t.first_response_ok


def test_timing_bot_only_chat_counts_as_responded(rubric):
    c = make_conv(("customer", "几天发货", 0), ("bot", "48小时内发货哦", 3))
    t = compute_timing(c, rubric)
    assert t.bot_only and not t.human_service
    assert t.first_response_ok is None and t.reply_runs == 0
    assert t.responded_24h is True and t.reply_speed_level == 5


def test_timing_bot_answer_with_follow_up_is_not_a_response(rubric):
    c = make_conv(("customer", "几天发货", 0), ("bot", "48小时内发货哦", 3), ("customer", "能今天发吗", 30))
    assert compute_timing(c, rubric).responded_24h is False


def test_timing_customer_only_chat(rubric):
    c = make_conv(("customer", "在吗", 0), ("customer", "有人吗", 600))
    t = compute_timing(c, rubric)
    assert t.human_service and t.first_response_ok is False
    assert t.reply_runs == 1 and t.unanswered_runs == 1 and t.avg_reply_s is None
    assert t.responded_24h is False and t.reply_speed_level == 2 and t.chat_time_level == 2


def test_timing_agent_only_chat_has_no_customer_figures(rubric):
    c = make_conv(("agent", "亲，您的订单已发货", 0))
    t = compute_timing(c, rubric)
    assert t.human_start is None and t.first_response_ok is None and t.responded_24h is None
    assert t.reply_speed_level is None


def test_timing_response_after_24_hours(rubric):
    c = make_conv(("customer", "在吗", 0), ("agent", "在的", 25 * 3600))
    t = compute_timing(c, rubric)
    assert t.responded_24h is False
    assert t.chat_time_level == 4  # handled in 24–48 h


def test_timing_missing_timestamps_are_left_out(rubric):
    c = make_conv(("customer", "在吗", 0), ("agent", "在的", None), ("agent", "请问有什么可以帮您", 50))
    assert "missing_ts:1" in c.warnings
    t = compute_timing(c, rubric)
    assert t.first_response_s == 50


def test_timing_out_of_order_messages_are_sorted(rubric):
    c = make_conv(("customer", "在吗", 0), ("customer", "有货吗", 60), ("agent", "在的亲", 30))
    assert "out_of_order_ts" in c.warnings
    assert [m.text for m in c.messages] == ["在吗", "在的亲", "有货吗"]
    assert compute_timing(c, rubric).first_response_s == 30
    c = make_conv(("agent", "在的亲", 30), ("customer", "在吗", 0))   # every time earlier than the one before
    assert "newest_first" in c.warnings and [m.role for m in c.messages] == ["customer", "agent"]


@pytest.mark.parametrize("delay,level", [(600, 5), (601, 4), (1800, 4), (3600, 3), (3601, 2)])
def test_timing_reply_speed_levels(rubric, delay, level):
    c = make_conv(("customer", "在吗", 0), ("agent", "在的", delay))
    assert compute_timing(c, rubric).reply_speed_level == level


def test_timing_per_shop_service_hours(rubric):
    custom = rubric.model_copy(update={"timing": rubric.timing.model_copy(
        update={"shop_hours": {"夜猫店": Hours(start=dt.time(0), end=dt.time(0))}})})
    start = dt.datetime(2026, 3, 2, 23, 50, tzinfo=CST)
    c = make_conv(("customer", "在吗", 0), ("agent", "在的", 600), start=start, shop="夜猫店")
    assert compute_timing(c, custom).first_response_s == 600
    assert compute_timing(c, rubric).first_response_s == 0


def test_slow_first_response_counts_the_wall_clock_unless_the_rubric_says_service(rubric, tmp_path):
    """The guide's slow_first_response: more than 2 minutes by the clock a reviewer reads, night or day (the KPI's
    service-hours seconds stay in the timing); ``clock: service`` gives the platform's reading; a bad clock is a
    rubric error."""
    from qa.errors import RubricError
    from qa.rubric import DEFAULT_RUBRIC, load_rubric
    from qa.rules import RuleEngine
    start = dt.datetime(2026, 3, 2, 23, 52, tzinfo=CST)
    late = make_conv(("customer", "在吗 退款怎么还没到", 0), ("agent", "抱歉久等了亲", 8 * 60), start=start)
    night = make_conv(("customer", "在吗", 0), ("agent", "早上好亲", 8 * 3600 + 11 * 60),
                      start=dt.datetime(2026, 3, 2, 23, 50, tzinfo=CST))
    quick = make_conv(("customer", "在吗", 0), ("agent", "在的", 90), start=start)

    def slow(r, c):
        return [f.explanation for f in RuleEngine(r).check(c, compute_timing(c, r)) if f.rule == "slow_first_response"]
    assert compute_timing(late, rubric).first_response_ok            # 8 minutes, 23:52 → 00:00: not in the KPI
    assert slow(rubric, late) == ["人工客服首次响应用了 480 秒，超过 120 秒"]
    assert slow(rubric, night) == ["人工客服首次响应用了 8 小时 11 分，超过 120 秒"]
    assert slow(rubric, quick) == []
    text = DEFAULT_RUBRIC.read_text("utf-8").replace("lexicon: lexicon/zh.yaml",
                                                     f"lexicon: {DEFAULT_RUBRIC.parent / 'lexicon' / 'zh.yaml'}")
    assert "params: {clock: wall}" in text
    (tmp_path / "service.yaml").write_text(text.replace("params: {clock: wall}", "params: {clock: service}"), "utf-8")
    service = load_rubric(tmp_path / "service.yaml")
    assert slow(service, late) == [] and slow(service, night) == []
    (tmp_path / "bad.yaml").write_text(text.replace("params: {clock: wall}", "params: {clock: sundial}"), "utf-8")
    with pytest.raises(RubricError, match=r"params -> clock\] wall or service, not .sundial"):
        RuleEngine(load_rubric(tmp_path / "bad.yaml"))


# -- daylight saving (fuzzing, session 41): epoch and naive times read in a zone that changes its clock ----------

def _utc(*a) -> int:
    return int(dt.datetime(*a, tzinfo=dt.timezone.utc).timestamp())


def test_timing_across_a_clock_change_is_absolute_time(tmp_path):
    """--tz America/New_York: a 90 s reply over the spring change read 3,690 s; four messages sent in order on the
    night the clock goes back were flagged out of order and re-sorted; a reply 23.5 real hours later missed 24 h."""
    import json

    from typer.testing import CliRunner

    from qa.cli import app
    s, f, t0 = _utc(2026, 3, 8, 6, 59), _utc(2026, 11, 1, 5, 50), _utc(2026, 3, 7, 12, 0)
    chats = [{"id": "spring", "messages": [{"role": "customer", "text": "hi", "ts": s},
                                           {"role": "agent", "text": "hello", "ts": s + 90}]},
             {"id": "back", "messages": [{"role": "customer", "text": "Q1", "ts": f},
                                         {"role": "agent", "text": "A1", "ts": f + 60},
                                         {"role": "customer", "text": "Q2", "ts": f + 900},
                                         {"role": "agent", "text": "A2", "ts": f + 960}]},
             {"id": "day", "messages": [{"role": "customer", "text": "hi", "ts": t0},
                                        {"role": "agent", "text": "sorry", "ts": t0 + 23 * 3600 + 1800}]}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(c) + "\n" for c in chats), "utf-8")
    r = CliRunner().invoke(app, ["metrics", str(src), "--out", str(tmp_path / "m"), "--tz", "America/New_York"])
    assert r.exit_code == 0, r.output
    got = {t["id"]: t for t in map(json.loads, (tmp_path / "m" / "timing.jsonl").read_text("utf-8").splitlines())}
    assert got["spring"]["first_response_wall_s"] == 90 and got["spring"]["handle_s"] == 90
    assert got["back"]["handle_s"] == 960 and got["back"]["human_start"] == "2026-11-01T01:50:00-04:00"
    assert not got["back"].get("warnings")
    assert got["day"]["responded_24h"] is True


def test_service_seconds_in_a_zone_with_daylight_saving_match_a_minute_count():
    from qa.rubric import Hours
    from qa.timing import service_seconds
    zone = ZoneInfo("America/New_York")
    hours = Hours(start=dt.time(20), end=dt.time(4), tz="America/New_York")
    utc = dt.timezone.utc
    for a, b in ((dt.datetime(2026, 3, 7, 18, 0, tzinfo=utc), dt.datetime(2026, 3, 9, 12, 0, tzinfo=utc)),
                 (dt.datetime(2026, 10, 31, 18, 0, tzinfo=utc), dt.datetime(2026, 11, 2, 12, 0, tzinfo=utc))):
        minutes = sum(1 for k in range(int((b - a).total_seconds() // 60))
                      if not dt.time(4) <= (a + dt.timedelta(minutes=k)).astimezone(zone).time() < dt.time(20))
        assert service_seconds(a, b, hours) == minutes * 60


@pytest.mark.parametrize("text,ack", [("好的 谢谢", True), ("谢谢亲", True), ("[捂脸]", True), ("👍", True), ("哈哈", True),
                                      ("？", False), ("？？", False), ("亲？", False), ("嗯？", False), ("那呢？", False),
                                      ("亲", False), ("[语音]", False), ("[文件]", False), ("[位置]", False)])
def test_a_nudge_or_a_placeholder_needs_a_reply(rubric, text, ack):
    """？, 亲？ and [语音] were read as acknowledgements: the customer's chase opened no run, and the 3-minute reply
    rate rose."""
    from qa.timing import is_acknowledgement
    assert is_acknowledgement("text", text) is ack
    c = make_conv(("customer", "这个有货吗", 0), ("agent", "有的", 30), ("customer", text, 60))
    t = compute_timing(c, rubric)
    assert (t.reply_runs, t.unanswered_runs) == ((1, 0) if ack else (2, 1))


def test_a_bot_only_chat_is_handled_until_the_bots_last_answer(rubric):
    """The customer wrote on after the bot's last answer: the handling time was empty and chat time the worst."""
    c = make_conv(("customer", "几天发货", 0), ("bot", "48小时内发货哦", 3), ("customer", "能今天发吗", 30),
                  ("bot", "亲，今天16点前下单当天发", 40), ("customer", "那我再想想吧 能便宜吗", 90))
    t = compute_timing(c, rubric)
    assert t.bot_only and t.handle_s == 40 and t.chat_time_level == rubric.best


def test_a_shops_hours_without_a_zone_are_on_the_service_hours_clock(tmp_path):
    from qa.rubric import load_rubric
    text = (ROOT / "rubrics" / "default.yaml").read_text(encoding="utf-8")
    text = text.replace("lexicon: lexicon/zh.yaml", f"lexicon: {ROOT / 'rubrics' / 'lexicon' / 'zh.yaml'}")
    text = text.replace("shop_hours: {}", 'shop_hours: {"NY Store": {start: "09:00", end: "21:00"}}')
    text = text.replace("tz: Asia/Shanghai", "tz: America/New_York", 1)
    (tmp_path / "ny.yaml").write_text(text, encoding="utf-8")
    r = load_rubric(tmp_path / "ny.yaml")
    ny = r.timing.shop_hours["NY Store"]                   # the shop's own hours, not the service hours' fallback
    assert (ny.start, ny.tz) == (dt.time(9), "America/New_York") == (ny.start, r.timing.service_hours.tz)


def test_kpis_of_platform_other_are_judged_under_the_default_profile(rubric):
    """qa metrics showed no thresholds for platform `other` while qa report judged the same group under douyin."""
    from qa.kpis import KpiTable
    table = KpiTable(rubric)
    c = make_conv(("customer", "在吗", 0), ("agent", "在的", 30)).model_copy(update={"platform": "other"})
    table.add(c, compute_timing(c, rubric))
    row = next(r for r in table.rows() if r["level"] == "platform")
    want = rubric.profile(rubric.default_profile).kpis["first_response_rate_2min"]
    assert row["first_response_rate_2min_threshold"] == str(want) and row["first_response_rate_2min_pass"] is True
