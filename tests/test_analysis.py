"""qa.analysis: one analysis per conversation; the timing levels the model reads are the ones graded."""

from __future__ import annotations

import sys

from qa.analysis import analyse
from qa.io.read import read_path
from qa.model.features import feature_names, feature_vector
from qa.rules.engine import RuleEngine
from tests.conftest import SAMPLES, make_conv


def test_analysis_timing_levels_agree_with_timing_on_samples(rubric):
    """For the default rubric the levels equal the ones qa.timing reports (reply_speed_level, chat_time_level)."""
    for conv in read_path(SAMPLES / "samples.jsonl"):
        a = analyse(conv, rubric)
        assert a.timing_levels == {"reply_speed": a.timing.reply_speed_level,
                                   "chat_time": a.timing.chat_time_level}, conv.id


def test_analysis_features_use_the_graded_levels(rubric):
    names = feature_names(rubric)
    unanswered = analyse(make_conv(("customer", "在吗", 0)), rubric)
    bot = analyse(make_conv(("customer", "发什么快递", 0), ("bot", "默认中通哦", 2)), rubric)
    vec = dict(zip(names, feature_vector(names, rubric, unanswered)))
    assert vec["timing.reply_speed"] == 0.0 and unanswered.timing_levels["reply_speed"] == rubric.worst
    assert not unanswered.has_reply
    vec = dict(zip(names, feature_vector(names, rubric, bot)))
    assert vec["timing.reply_speed"] == 1.0 and bot.timing_levels["reply_speed"] == rubric.best


def test_analysis_findings_from_the_engine(rubric):
    conv = make_conv(("customer", "在吗", 0), ("agent", "加我微信 wx123456 私下便宜", 30))
    a = analyse(conv, rubric, RuleEngine(rubric))
    assert "off_platform_diversion" in a.fired


def test_model_package_does_not_import_the_rule_engine():
    import subprocess
    # batching (which imports torch, slow) takes its rule/timing inputs from qa.analysis like features does
    code = ("import sys, qa.analysis, qa.model.features, qa.model.predict, qa.model.inputs; "
            "print(any(m.startswith('qa.rules') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_shape_features_describe_the_chat(rubric):
    """``shape.*``: chat length, agent share and lengths, pasted order data, repeats — all in [0, 1]; a
    feature list without them (an older model's config) gets the same values as before."""
    names = feature_names(rubric)
    short = make_conv(("customer", "发什么快递", 0), ("agent", "中通哦亲", 20))
    long = make_conv(*[("customer", "到底什么时候发货", 10 * i) for i in range(6)],
                     ("agent", "订单号 2024051812345678 已出库 20240520", 70), ("agent", "亲稍等", 80),
                     ("agent", "亲稍等", 90), ("system", "会话结束", 100, "event", "end"), cid="c2")
    a, b = (dict(zip(names, feature_vector(names, rubric, analyse(c, rubric), c))) for c in (short, long))
    assert all(0.0 <= v <= 1.0 for v in [*a.values(), *b.values()])
    assert b["shape.messages"] > a["shape.messages"] and a["shape.agent_share"] == 0.5
    assert b["shape.agent_share"] == 3 / 9                     # events are not messages
    assert b["shape.customer_repeats"] == 1.0 and b["shape.agent_repeats"] == 1 / 3
    assert b["shape.agent_digits"] > 0.5 > a["shape.agent_digits"] == 0.0
    assert a["shape.agent_len"] == 4 / 60
    old = [n for n in names if not n.startswith("shape.")]
    assert feature_vector(old, rubric, analyse(long, rubric), long) == feature_vector(old, rubric, analyse(long, rubric))
