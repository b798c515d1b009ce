"""Bounds that keep hostile sizes from hanging a run: a 10,000-message cap per conversation, exclude and negation
lookups by bisection in the lexicon scan (not a scan of every span per hit)."""

from __future__ import annotations

import json
import random

from qa.io import read_path
from qa.io.build import Reject
from qa.rules.lexicon import _by_message, _Spans
from qa.schema import MAX_MESSAGES


def test_a_conversation_over_the_message_cap_is_a_reject_naming_messages(tmp_path):
    msgs = [{"role": "customer" if k % 2 == 0 else "agent", "text": f"第{k}条", "ts": 1_772_330_400 + k}
            for k in range(MAX_MESSAGES + 1)]
    src = tmp_path / "big.jsonl"
    src.write_text(json.dumps({"id": "big", "platform": "douyin", "messages": msgs[:MAX_MESSAGES]}) + "\n"
                   + json.dumps({"id": "bigger", "platform": "douyin", "messages": msgs}) + "\n", encoding="utf-8")
    items = list(read_path(str(src)))
    assert [type(x).__name__ for x in items] == ["Conversation", "Reject"]
    assert isinstance(items[1], Reject) and items[1].field == "messages" and items[1].line == 2


def test_exclude_spans_answer_as_a_scan_of_every_span_would():
    rng = random.Random(7)
    spans = [(rng.randrange(3), s, s + rng.randrange(1, 9)) for s in (rng.randrange(60) for _ in range(40))]
    index = _Spans(spans)
    for _ in range(2000):
        i, s = rng.randrange(4), rng.randrange(70)
        e = s + rng.randrange(1, 6)
        assert index.covers(i, s, e) == any(j == i and xs <= s and e <= xe for j, xs, xe in spans)
    assert not _Spans(None) and _by_message([(1, 5, 7), (0, 3, 4), (1, 2, 3)]) == {0: [(3, 4)], 1: [(2, 3), (5, 7)]}


def test_negation_looks_only_within_the_window_and_clause():
    from qa.rules.lexicon import Lexicon
    negs = [(0, 2), (10, 12), (20, 22)]
    assert Lexicon._negated("不要" + "x" * 20, 14, negs, 6)        # 10-12 ends before 14, starts within 6
    assert not Lexicon._negated("x" * 30, 19, negs, 6)             # 10-12 starts before 13: out of the window
    assert not Lexicon._negated("x" * 12 + "。" + "x" * 10, 15, negs, 6)   # a clause ends between
