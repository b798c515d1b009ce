"""qa.score: the pure grading core — arithmetic per profile, red lines, renormalised weights, what a chat
with nobody to grade gets; the Grade record round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from qa.analysis import analyse
from qa.grade import Grade, arrow_schema, band
from qa.model.predict import DimensionPrediction
from qa.rules.base import Finding
from qa.rules.engine import RuleEngine
from qa.score import grade
from tests.conftest import ROOT, make_conv

PROFILES = ("douyin", "kuaishou", "tiktok", "taobao")
MODEL_DIMS = ("attitude", "etiquette", "professionalism", "clarity")


def _pred(**levels) -> dict:
    out = {}
    for d in MODEL_DIMS:
        lv = levels.get(d, 5)
        probs = {k: (0.7 if k == lv else 0.1) for k in (5, 4, 3, 2)}
        out[d] = DimensionPrediction(probs, lv, sum(k * p for k, p in probs.items()), 0.7, [1])
    return out


def _conv():
    return make_conv(("customer", "在吗 这件有M码吗", 0), ("agent", "亲亲您好 有M码的哦", 30),
                     ("customer", "好的谢谢", 60), ("agent", "感谢您的支持 祝您生活愉快", 80))


def _finding(rule, severity="major", message=1):
    return Finding(rule, severity, rule, "测试", message, (0, 2), "亲亲")


def _grade(conv, rubric, profile="douyin", findings=(), prediction=None):
    a = dataclasses.replace(analyse(conv, rubric), findings=tuple(findings))
    return grade(conv, rubric, a, profile=profile, prediction=prediction).to_record()


@pytest.mark.parametrize("profile", PROFILES)
def test_score_all_best_is_100(rubric, profile):
    r = _grade(_conv(), rubric, profile, prediction=_pred())
    assert r["score"] == pytest.approx(100) and r["band"] == "优秀" and not r["failed"]
    assert r["deductions"] == [] and r["not_graded"] == {}
    assert sum(d["weight"] for d in r["dimensions"].values()) == pytest.approx(100)


def test_caps_come_before_deducts_whatever_the_findings_order(rubric):
    """unanswered_question caps resolution at 3, vague_reply takes a level off it: together 2, in either order."""
    both = [_finding("vague_reply", message=1), _finding("unanswered_question", message=0)]
    a, b = (_grade(_conv(), rubric, findings=f, prediction=_pred()) for f in (both, both[::-1]))
    assert a["dimensions"]["resolution"]["level"] == b["dimensions"]["resolution"]["level"] == 2
    assert a["score"] == b["score"]
    lost = [(d["rule"], d["dimension"], d["points"]) for d in a["deductions"][1:] if d["dimension"] == "resolution"]
    assert [r for r, _, _ in lost] == ["unanswered_question", "vague_reply"]     # the cap is listed first


@pytest.mark.parametrize("profile", PROFILES)
def test_score_model_level_and_rule_effects(rubric, profile):
    w = rubric.profile(profile).weights
    r = _grade(_conv(), rubric, profile, [_finding("vague_reply"), _finding("vague_reply", message=3)],
               _pred(attitude=4))
    # attitude 4 on 5/4/3/2 keeps 2/3 of its weight; vague_reply caps professionalism at 3 (keeps 1/3) and takes
    # one level off resolution (keeps 2/3) — once per conversation, however many findings
    lost = w["attitude"] / 3 + w["professionalism"] * 2 / 3 + w["resolution"] / 3
    assert r["score"] == pytest.approx(100 - lost, abs=0.02)
    assert r["dimensions"]["professionalism"]["level"] == 3 and r["dimensions"]["resolution"]["level"] == 4
    assert sum(d["points"] for d in r["deductions"]) == pytest.approx(lost, abs=0.03)
    rule_rows = [d for d in r["deductions"] if d["rule"] == "vague_reply"]
    assert {d["dimension"] for d in rule_rows} == {"professionalism", "resolution"}
    assert all(d["message"] == 1 and d["span"] == [0, 2] for d in rule_rows)
    model_row = next(d for d in r["deductions"] if d["source"] == "model")
    assert model_row["dimension"] == "attitude" and model_row["confidence"] == 0.7


def test_a_deduct_on_a_model_dimension_counts_from_the_top(rubric):
    """missing_greeting and missing_closing each take one step off etiquette: from the top on a model dimension
    (at most 4, then at most 3), so a model level already at or below that bound loses nothing more; a rule
    dimension (resolution) still moves down from where it is."""
    greet, close = _finding("missing_greeting", "minor", 0), _finding("missing_closing", "minor", 3)
    top = _grade(_conv(), rubric, findings=[greet], prediction=_pred())
    assert top["dimensions"]["etiquette"]["level"] == 4
    both = _grade(_conv(), rubric, findings=[greet, close], prediction=_pred())
    assert both["dimensions"]["etiquette"]["level"] == 3
    assert [d["rule"] for d in both["deductions"] if d["dimension"] == "etiquette"] == ["missing_greeting",
                                                                                        "missing_closing"]
    low = _grade(_conv(), rubric, findings=[greet, close], prediction=_pred(etiquette=3))
    assert low["dimensions"]["etiquette"]["level"] == 3                     # the model's 3 already counts them
    assert [d["source"] for d in low["deductions"] if d["dimension"] == "etiquette"] == ["model"]
    lower = _grade(_conv(), rubric, findings=[greet], prediction=_pred(etiquette=2))
    assert lower["dimensions"]["etiquette"]["level"] == 2
    res = _grade(_conv(), rubric, findings=[_finding("vague_reply")], prediction=_pred())
    assert res["dimensions"]["resolution"]["level"] == 4                    # rules-sourced: one step down


def test_score_red_line_fails_the_conversation(rubric):
    r = _grade(_conv(), rubric, findings=[_finding("off_platform_diversion", "red_line")], prediction=_pred())
    assert r["failed"] and r["score"] == 0 and r["band"] == "不合格"
    assert r["deductions"][0]["rule"] == "off_platform_diversion" and r["deductions"][0]["dimension"] is None
    assert r["dimensions"]["professionalism"]["level"] == 2


def test_score_without_model_spreads_weights_over_the_rest(rubric):
    r = _grade(_conv(), rubric)
    assert set(r["dimensions"]) == {"reply_speed", "chat_time", "resolution"}
    assert r["not_graded"] == {d: "no_model" for d in MODEL_DIMS}
    assert r["score"] == pytest.approx(100)
    r2 = _grade(_conv(), rubric, findings=[_finding("unanswered_question")])
    # resolution capped at 3 → keeps 1/3 of its weight 10, out of 30 weighted points, scaled to 100
    assert r2["score"] == pytest.approx(100 - 10 * 2 / 3 * 100 / 30, abs=0.02)


def test_score_customer_only_chat_gets_no_model_grades(rubric):
    """Nobody answered: the model dimensions would grade an agent who never spoke. They are left out
    (not_graded: no_reply_turn); the chat is scored on timing — unanswered is the worst level — and rules."""
    conv = make_conv(("customer", "在吗", 0), ("customer", "有人吗？？", 600))
    r = _grade(conv, rubric, prediction=_pred())
    assert r["not_graded"] == {d: "no_reply_turn" for d in MODEL_DIMS}
    assert not set(MODEL_DIMS) & set(r["dimensions"])
    assert r["dimensions"]["reply_speed"]["level"] == 2 and r["dimensions"]["reply_speed"]["value"] is None
    assert r["dimensions"]["chat_time"]["level"] == 2
    assert r["score"] < 60 and r["band"] == "不合格"
    assert any("未回复" in d["reason"] for d in r["deductions"])


def test_score_bot_only_answer_counts_as_an_instant_reply(rubric):
    conv = make_conv(("customer", "发什么快递", 0), ("bot", "亲，默认中通快递哦", 2))
    r = _grade(conv, rubric, prediction=_pred())
    assert r["dimensions"]["reply_speed"]["level"] == 5 and "attitude" in r["dimensions"]


def test_score_bands():
    assert [band(s) for s in (95, 90, 80, 60, 59.9)] == ["优秀", "优秀", "良好", "合格", "不合格"]
    assert band(99, failed=True) == "不合格"


def test_score_real_rules_on_samples(rubric):
    from qa.io.read import read_path
    engine = RuleEngine(rubric)
    for conv in read_path(ROOT / "data" / "samples" / "samples.jsonl"):
        a = analyse(conv, rubric, engine)
        g = grade(conv, rubric, a, profile="douyin", prediction=_pred())
        assert 0 <= g.score <= 100
        assert g.failed == any(x.severity == "red_line" for x in a.findings)
        if not g.failed:
            assert g.score == pytest.approx(100 - sum(d.points for d in g.deductions), abs=0.1)
        rec = g.to_record()
        assert Grade.from_record(json.loads(json.dumps(rec, ensure_ascii=False))).to_record() == rec


def test_grade_record_without_messages_and_schema(rubric):
    conv = _conv()
    g = grade(conv, rubric, analyse(conv, rubric), profile="douyin", prediction=_pred(), messages=False)
    rec = g.to_record()
    assert rec["messages"] is None and Grade.from_record(rec) == g
    assert arrow_schema().names == list(rec)
    with pytest.raises(ValueError, match="score"):
        Grade.from_record({**rec, "score": "high"})


def test_score_stays_within_100_after_rounding_each_dimension(rubric):
    """Seven equal weights: each dimension earns 100/7 = 14.2857… → 14.29 points, seven of them 100.03; the score
    is clamped to 100 (and the band stays 优秀)."""
    from qa.rubric import Profile

    even = Profile(name="even", weights={d: 100 / 7 for d in rubric.profile("douyin").weights})
    assert len(even.weights) == 7
    rub = rubric.model_copy(update={"profiles": {**rubric.profiles, "even": even}})
    r = _grade(_conv(), rub, "even", prediction=_pred())
    assert sum(d["points"] for d in r["dimensions"].values()) > 100          # the rounding this test is about
    assert r["score"] == 100 and r["band"] == "优秀" and not r["failed"]


def test_score_a_chat_without_times_is_not_timed_and_says_so(rubric):
    """Customer messages without times left the timing dimensions out as `no_customer`: the chat has a customer."""
    from qa.schema import Conversation
    from qa.score import weights_for

    def chat(msgs):
        return Conversation.model_validate({"id": "x", "platform": "douyin", "messages": msgs})
    untimed = chat([{"role": "customer", "text": "在吗 这个有货吗"}, {"role": "agent", "text": "您好 有货的亲"}])
    alone = chat([{"role": "agent", "text": "您好 有货的亲", "ts": "2026-03-02T10:00:00+08:00"}])
    for conv, why in ((untimed, "no_timestamps"), (alone, "no_customer")):
        g = grade(conv, rubric, analyse(conv, rubric), profile="douyin")
        timed = [d for d in weights_for(rubric, "douyin") if rubric.dimensions[d].source == "timing"]
        assert timed and all(g.not_graded[d] == why for d in timed)
