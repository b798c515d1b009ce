"""Every rule against hand-written positive and negative cases (tests/data/rule_cases.yaml)."""

import collections
import datetime as dt
from pathlib import Path

import pytest
import yaml

from qa.rules import RuleEngine
from qa.schema import Conversation
from tests.conftest import T0

CASES = yaml.safe_load((Path(__file__).parent / "data" / "rule_cases.yaml").read_text(encoding="utf-8"))


def case_conversation(case: dict, n: int) -> Conversation:
    msgs = []
    for k, m in enumerate(case["messages"]):
        role, mtype, text = m[0], m[1], str(m[2])
        sec = m[3] if len(m) > 3 else 30 * k
        msg = {"role": role, "type": mtype, "ts": (T0 + dt.timedelta(seconds=sec)).isoformat()}
        if mtype == "event":
            msg["event"] = text
        else:
            msg["text"] = text
        msgs.append(msg)
    return Conversation.model_validate({"id": f"case-{n}", "platform": "douyin", "messages": msgs})


# Known limits of the lexical/sequence rules: a reply that answers a different question than the one asked
# (topic matching is the classifier's job). strict=True: a case that starts passing must be moved out.
KNOWN_MISSES = {
    ("unanswered_question", "一条消息两个问题，床垫没回答"),
    ("unanswered_question", "连发三个问题，只回答最后一个"),
    ("unanswered_question", "转人工后客服答了别的问题"),
}


@pytest.fixture(scope="module")
def engine(rubric):
    return RuleEngine(rubric)


def test_rules_cases_cover_every_rule_both_ways(rubric):
    count = collections.Counter((c["rule"], c["expect"]) for c in CASES)
    for rule in rubric.rules:
        assert count[(rule, True)] >= 5 and count[(rule, False)] >= 5, rule


@pytest.mark.parametrize("n", range(len(CASES)), ids=[f"{c['rule']}-{'pos' if c['expect'] else 'neg'}-{i}"
                                                      for i, c in enumerate(CASES)])
def test_rules_case(engine, n, request):
    case = CASES[n]
    if (case["rule"], case.get("note")) in KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(strict=True, reason="topic-level miss, see KNOWN_MISSES"))
    conv = case_conversation(case, n)
    findings = [f for f in engine.check(conv) if f.rule == case["rule"]]
    assert bool(findings) == case["expect"], (case.get("note"), findings)
