"""Two ways a real export differs from the chats the model learnt on, and what grading makes of them:
word-segmented text (both sides spaced word by word, as corpus exports are) is joined back on read, and an
agent's reply split over several messages is read by the model as one message."""

from __future__ import annotations

import json

import jieba
import pytest

from qa.grader import Grader, GradeSettings
from qa.io import read_path
from qa.model.inputs import joined
from qa.schema import Conversation
from qa.text import unsegment, word_segmented
from tests.conftest import SAMPLES


def _chat(customer: list[str], agent: list[str]) -> dict:
    msgs = []
    for c, a in zip(customer, agent):
        msgs += [{"role": "customer", "text": c}, {"role": "agent", "text": a}]
    return {"id": "x", "platform": "taobao", "messages": msgs}


def test_a_word_segmented_chat_is_joined_back_on_read():
    conv = Conversation.model_validate(_chat(["这个 外套 有 M码 吗", "几天 能 到"],
                                             ["有 的 亲 M码 还有 货 哦", "拍下 后 72 小时 内 发货 哦 亲"]))
    assert [m.text for m in conv.messages] == ["这个外套有M码吗", "有的亲M码还有货哦", "几天能到", "拍下后72小时内发货哦亲"]
    assert "word_segmented" in conv.warnings
    assert conv.messages[3].norm == "拍下后72小时内发货哦亲"


@pytest.mark.parametrize("customer, agent", [
    # the written chats' spaced-out agent (a clarity problem the model must still see): the customer types normally
    (["买的这个标签打印机手机连不上蓝牙", "App叫什么名字"], ["连 蓝 牙 要 先 下 那 个 app", "说 明 书 上 二 维 码 扫 就 有"]),
    # a few spaces as pauses, as shoppers type them
    (["在吗 这个有货吗", "好的 谢谢"], ["在的亲 有货的", "不客气 有需要再联系"]),
    # too little Chinese on one side to judge
    (["ok", "?"], ["有 的 亲 M码 还有 货 哦", "拍下 后 72 小时 内 发货"]),
])
def test_a_typed_chat_keeps_its_spaces(customer, agent):
    conv = Conversation.model_validate(_chat(customer, agent))
    assert [m.text for m in conv.messages][1::2] == agent and "word_segmented" not in conv.warnings


def test_unsegment_keeps_latin_words_apart():
    assert unsegment("iPhone 8 的 壳 有 吗") == "iPhone 8的壳有吗"
    assert unsegment("ok ok  好 的") == "ok ok好的"
    assert not word_segmented(["在吗"], ["有 的"])


def _segmented(rec: dict) -> dict:
    """``rec`` with every text message cut into words by jieba, as a corpus export writes it."""
    msgs = [{**m, "text": " ".join(w for w in jieba.cut(m["text"]) if w.strip())}
            if m.get("type", "text") == "text" and m.get("text") else m for m in rec["messages"]]
    return {**rec, "messages": msgs}


def _split(rec: dict) -> dict:
    """``rec`` with each agent message of two clauses or more sent as one message a clause."""
    msgs = []
    for m in rec["messages"]:
        parts = [p for p in __import__("re").split(r"(?<=[。！？!?，,~])", m.get("text") or "") if p.strip()]
        if m["role"] == "agent" and m.get("type", "text") == "text" and len(parts) > 1:
            msgs += [{**m, "text": p} for p in parts]
        else:
            msgs.append(m)
    return {**rec, "messages": msgs}


@pytest.fixture(scope="module")
def samples() -> list[dict]:
    recs = [json.loads(x) for x in (SAMPLES / "samples.jsonl").read_text(encoding="utf-8").splitlines()][:16]
    # without the spaces of their own next to Chinese, so that unsegmenting gives them back exactly
    return [{**r, "messages": [{**m, "text": unsegment(m["text"])} if m.get("text") else m for m in r["messages"]]}
            for r in recs]


@pytest.fixture(scope="module")
def grader() -> Grader:
    return Grader.from_settings(GradeSettings(messages=False))


def _graded(grader, recs):
    convs = [Conversation.model_validate(r) for r in recs]
    return [g.to_record() for g in grader.grade_batch(convs)]


def test_a_segmented_export_grades_as_the_plain_chats(samples, grader):
    plain, seg = _graded(grader, samples), _graded(grader, [_segmented(r) for r in samples])
    assert len(samples) >= 10
    for a, b in zip(plain, seg):
        assert b["dimensions"] == a["dimensions"] and b["findings"] == a["findings"] and b["score"] == a["score"]


def test_a_reply_split_into_messages_is_read_as_one(samples, grader):
    split = [_split(r) for r in samples]
    moved = [(a, b) for a, b in zip(samples, split) if len(b["messages"]) > len(a["messages"])]
    assert len(moved) >= 5
    for a, b in moved:
        view, where = joined(Conversation.model_validate(b))
        plain = Conversation.model_validate(a)
        # the view joins the pieces back (with a space where the sentences met)
        assert [m.role for m in view.messages] == [m.role for m in joined(plain)[0].messages]
        assert sorted(i for w in where for i in w) == list(range(len(b["messages"])))
    for rec in _graded(grader, [b for _, b in moved]):
        n = len(next(b for _, b in moved if b["id"] == rec["id"])["messages"])
        for dim in rec["dimensions"].values():   # every evidence index is a message of the chat as sent
            assert all(0 <= i < n for i in dim.get("evidence") or ())


def test_the_joined_view_maps_evidence_and_turn_labels_back(grader):
    conv = Conversation.model_validate({"id": "t", "platform": "taobao", "messages": [
        {"role": "customer", "text": "我要退差价"},
        {"role": "agent", "text": "您好，我是西西"},
        {"role": "agent", "text": "可以给您退差价的哈"},
        {"role": "agent", "text": "麻烦提供一下您的银行卡号和身份证号，我们打款给您"},
        {"role": "customer", "text": "好的"}]})
    view, where = joined(conv)
    assert len(view.messages) == 3 and where == [[0], [1, 2, 3], [4]]
    clf = grader.classifier
    p = clf.predict_all([conv])[0]
    assert len(p.turns) == 5
    pii = [(t or {}).get("pii", 0.0) for t in p.turns]
    assert max(range(5), key=pii.__getitem__) == 3 and pii[1] < 0.5   # per message, not the run's
    for f in p.raised:
        assert f.message is None or 0 <= f.message < 5
    assert all(0 <= i < 5 for g in p.grades.values() for i in g.evidence)


def test_a_chat_without_runs_is_read_as_it_is():
    conv = next(c for c in read_path(SAMPLES / "samples.jsonl") if hasattr(c, "messages") and not any(
        a.role == b.role == "agent" for a, b in zip(c.messages, c.messages[1:])))
    view, where = joined(conv)
    assert view is conv and where == [[i] for i in range(len(conv.messages))]


def test_a_run_as_long_as_a_chat_may_be_is_joined_in_one_pass():
    """10,000 agent messages in a row (the schema's limit) join into one message without copying the text per
    message (a quadratic join took minutes)."""
    msgs = [{"role": "customer", "text": "在吗"}] + [{"role": "agent", "text": f"第{i}条回复"} for i in range(9_999)]
    view, where = joined(Conversation.model_validate({"id": "big", "messages": msgs}))
    assert len(view.messages) == 2 and len(where[1]) == 9_999
    assert view.messages[1].text.startswith("第0条回复 第1条回复") and view.messages[1].text.endswith("第9998条回复")


def test_export_forms_rewrite_texts_and_keep_labels(samples):
    """bench/export_forms.py: each form keeps the chat's labels and rewrites only what it says."""
    import random

    from bench.export_forms import FORMS
    rec = {**samples[0], "labels": {"reviews": [{"grades": {"attitude": 4}}]}}
    out = {name: FORMS[name](json.loads(json.dumps(rec)), random.Random(1)) for name in FORMS}
    assert all(o["labels"] == rec["labels"] for o in out.values())
    seg = Conversation.model_validate(out["segmented"])
    assert "word_segmented" in seg.warnings
    assert [m.text for m in seg.messages] == [m.text for m in Conversation.model_validate(rec).messages]
    agents = [m for m in out["split_clauses"]["messages"] if m["role"] == "agent"]
    assert len(agents) > sum(m["role"] == "agent" for m in rec["messages"])
    ts = [m["ts"] for m in out["timestamps"]["messages"]]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    assert not any(c in m.get("text", "") for m in out["no_punct"]["messages"] if m.get("type", "text") == "text"
                   for c in "，。？！ ")
