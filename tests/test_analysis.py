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
