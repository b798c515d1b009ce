"""Turn-level flag models: a message's context, fitting on turn labels, files, and grading with them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import ROOT

pytest.importorskip("sklearn")

from qa.io import read_path  # noqa: E402
from qa.model.inputs import joined  # noqa: E402
from qa.model.projection import Projection  # noqa: E402
from qa.model.turnflags import TurnFlags, contexts, later_replies  # noqa: E402
from qa.schema import Conversation  # noqa: E402

GEN = ROOT / "data" / "labelled" / "gen" / "gen.jsonl"
FLAG_TURNS = {"unanswered_question": "customer.unanswered", "vague_reply": "agent.vague",
              "missing_greeting": None}


def _gen(n: int):
    return [c for c in read_path(GEN) if hasattr(c, "messages")][:n]


def _projection(convs, dims=16):
    """A projection whose n-gram vocabulary covers the chats (vectors: random, the geometry is not tested here)."""
    texts = sorted({m.norm for c in convs for m in c.messages if m.text})
    rng = np.random.default_rng(0)
    return Projection.fit(texts, rng.normal(size=(len(texts), dims)).astype(np.float32), dims=dims,
                          max_features=5000)


def _train_setup(tmp_path, first: str, n: int):
    """The first 300 generated chats as two training files (``first``: the first ``n``; ``real_b.jsonl``: the
    rest, which the ridge channel fits on), a random teacher over their texts, and the quick training arguments."""
    lines = GEN.read_text(encoding="utf-8").splitlines()
    (tmp_path / first).write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")
    (tmp_path / "real_b.jsonl").write_text("\n".join(lines[n:300]) + "\n", encoding="utf-8")
    convs = _gen(300)
    texts = sorted({m.text for c in convs for m in c.messages if m.text})
    np.savez(tmp_path / "teacher.npz", texts=np.array(texts),
             vectors=np.random.default_rng(0).normal(size=(len(texts), 16)).astype(np.float32))
    return convs, dict(data=[str(tmp_path / first), str(tmp_path / "real_b.jsonl")], base_model="none", epochs=1,
                       batch_size=16, max_steps=2, dev_fraction=0.25, seed=1, use_encoder=False,
                       ridge_on=["real_*"], teacher=str(tmp_path / "teacher.npz"))


def test_contexts_read_the_other_sides_reply_and_the_customers_next_message():
    conv = Conversation.model_validate({"id": "c", "messages": [
        {"role": "customer", "text": "几号发货"}, {"role": "agent", "text": "亲"},
        {"role": "bot", "text": "48小时内发货"}, {"role": "customer", "text": "好的"},
        {"role": "customer", "type": "product_card", "text": "123456789012"},
        {"role": "agent", "text": "收到"}]})
    cust = contexts(conv, "customer")
    assert [i for i, _ in cust] == [0, 3]        # text messages only: the card is context, not a focus
    assert cust[0][1] == ["几号发货", "", "亲 48小时内发货", "好的"]
    assert cust[1][1][1:] == ["亲 48小时内发货", "收到", ""]    # past its own card: the reply it got
    agent = contexts(conv, "agent")
    assert [i for i, _ in agent] == [1, 2, 5]    # agent and bot messages are one side
    assert agent[0][1][1:] == ["几号发货", "好的", "收到"] and agent[2][1][1:] == ["好的", "", ""]


def test_later_replies_pair_a_question_with_later_runs_about_the_same_matter():
    conv = Conversation.model_validate({"id": "c", "messages": [
        {"role": "customer", "text": "水壶内胆是304吗"}, {"role": "agent", "text": "材质都是食品级的，放心用"},
        {"role": "customer", "text": "我问是不是304"}, {"role": "agent", "text": "是304的亲"},
        {"role": "agent", "text": "冲奶粉更建议恒温壶"}, {"role": "customer", "text": "好"},
        {"role": "bot", "text": "请问还有什么可以帮您"}, {"role": "customer", "text": "没有了"}]})
    rows = later_replies(conv)
    # the first question with the run that answered the re-ask (a shared "304"); not the reply right after it,
    # which ``contexts`` reads, and not the bot's closing offer (nothing shared but the asking frame)
    assert rows == [(0, ["水壶内胆是304吗", "", "是304的亲 冲奶粉更建议恒温壶", "好"], [0, 2])]   # and the re-ask
    assert later_replies(Conversation.model_validate({"id": "d", "messages": [
        {"role": "customer", "text": "这个可以吗"}, {"role": "agent", "text": "您好"},
        {"role": "customer", "text": "什么时候发"}, {"role": "agent", "text": "这个可以的"}]})) == []


def test_later_replies_pair_a_question_with_a_later_answer_of_its_kind():
    from qa.rubric import load_rubric
    from qa.rules.checks import answer_kinds
    kinds = answer_kinds(load_rubric().rules["unanswered_question"].params["answer_types"])
    conv = Conversation.model_validate({"id": "k", "messages": [
        {"role": "customer", "text": "这个收纳箱多大尺寸啊"}, {"role": "agent", "text": "亲 这款很结实的"},
        {"role": "customer", "text": "我要具体的数"}, {"role": "agent", "text": "长50 宽35 高28厘米"},
        {"role": "customer", "text": "好的"}, {"role": "agent", "text": "明天发货哦"}]})
    assert later_replies(conv) == []    # no word shared with the size that answers it
    # a size asked, a size given: read with that run (and the re-ask before it, which asks for no kind, is not
    # covered); not with the later run that gives a time
    assert later_replies(conv, kinds=kinds) == [(0, ["这个收纳箱多大尺寸啊", "", "长50 宽35 高28厘米", "好的"], [0])]


def test_a_classifier_pairs_its_turn_models_questions_by_its_rubrics_answer_kinds():
    from qa.model.predict import Classifier
    clf = Classifier(ROOT / "models" / "default")
    kinds = clf.ridge.turn_flags.kinds
    assert kinds is not None and kinds.any_ask.search("多大尺寸") and not kinds.any_ask.search("是正品吗")


def test_fitted_on_turn_labels_it_finds_unseen_chats_flags_and_round_trips(tmp_path):
    from sklearn.metrics import roc_auc_score
    convs = _gen(500)
    proj = _projection(convs)
    tf = TurnFlags.fit(convs[:400], proj, FLAG_TURNS)
    assert tf is not None and set(tf.flags) == {"unanswered_question", "vague_reply"}   # no turn label: no model
    test = convs[400:]
    out = tf.chat_probs(test)
    for flag, role in (("unanswered_question", "customer"), ("vague_reply", "agent")):
        probs, where = out[flag]
        gold = [np.mean([flag in r["rules"] for r in c.labels["reviews"]]) >= 0.5 for c in test]
        assert roc_auc_score(gold, probs) > 0.75, flag
        for c, i in zip(test, where):       # the evidence is a message of the flag's side
            assert i is None or (c.messages[i].role == "customer") == (role == "customer")
    tf.thresholds = {"vague_reply": 0.5}
    tf.save(tmp_path)
    back = TurnFlags.load(tmp_path, proj)
    assert back.thresholds == {"vague_reply": 0.5} and back.flags == tf.flags
    assert np.allclose(back.chat_probs(test)["vague_reply"][0], out["vague_reply"][0], atol=1e-2)  # float16 coefs
    assert TurnFlags.load(tmp_path, None) is None and TurnFlags.load(tmp_path / "none", proj) is None


def test_the_focus_vocabulary_reads_what_the_projection_misses_and_old_files_still_load(tmp_path, monkeypatch):
    """A projection fitted on few n-grams misses most of a message's words; the turn models' own vocabulary of the
    labelled messages gives them back. A file written without one (before session 25) loads and scores as before."""
    import qa.model.turnflags as tfm
    from sklearn.metrics import roc_auc_score
    convs = _gen(500)
    texts = sorted({m.norm for c in convs for m in c.messages if m.text})
    narrow = Projection.fit(texts, np.random.default_rng(0).normal(size=(len(texts), 8)).astype(np.float32), dims=8,
                            max_features=40)
    test = convs[400:]
    gold = [np.mean(["vague_reply" in r["rules"] for r in c.labels["reviews"]]) >= 0.5 for c in test]
    with_focus = TurnFlags.fit(convs[:400], narrow, {"vague_reply": "agent.vague"})
    assert set(with_focus.focus) == {"agent"} and len(with_focus.focus["agent"].vocabulary_) > 1000
    monkeypatch.setattr(tfm, "FOCUS_NGRAMS", 0)
    without = TurnFlags.fit(convs[:400], narrow, {"vague_reply": "agent.vague"})
    assert without.focus == {}
    auc = {name: roc_auc_score(gold, m.chat_probs(test)["vague_reply"][0])
           for name, m in (("with", with_focus), ("without", without))}
    assert auc["with"] > auc["without"] + 0.03, auc
    without.save(tmp_path)
    assert "focus" not in json.loads((tmp_path / "turnflags.json").read_text(encoding="utf-8"))
    back = TurnFlags.load(tmp_path, narrow)
    assert back.focus == {}
    assert np.allclose(back.chat_probs(test)["vague_reply"][0], without.chat_probs(test)["vague_reply"][0], atol=1e-2)


def test_frozen_models_feed_the_stack_while_the_refitted_ones_raise_flags(tmp_path):
    """A flag model refitted after the ridge channel (scripts/refit_turnflags.py) raises the flag; the model the
    channel's structure part was fitted on keeps feeding it, through a save and a load. The refit keeps the
    focus vocabulary the frozen models read."""
    convs = _gen(500)
    proj = _projection(convs)
    first = TurnFlags.fit(convs[:150], proj, FLAG_TURNS)
    second = TurnFlags.fit(convs[:400], proj, FLAG_TURNS, focus=first.focus)
    assert second.focus == first.focus
    tf = TurnFlags(proj, second.models, focus=second.focus, frozen={"vague_reply": first.models["vague_reply"]})
    test = convs[400:]
    flags, struct, each = tf.both_probs(test)
    assert np.allclose(flags["vague_reply"][0], second.chat_probs(test)["vague_reply"][0])
    assert np.allclose(struct["vague_reply"][0], first.chat_probs(test)["vague_reply"][0])
    assert not np.allclose(flags["vague_reply"][0], struct["vague_reply"][0])
    assert np.allclose(struct["unanswered_question"][0], flags["unanswered_question"][0])   # not refitted: one model
    for f, (probs, where) in flags.items():   # per message: the chat's probability is its likeliest message's
        for b, per in enumerate(each[f]):
            assert (where[b] is None) == (not per)
            if per:
                assert max(per, key=per.get) == where[b] and per[where[b]] == pytest.approx(float(probs[b]))
    tf.save(tmp_path)
    back_flags, back_struct, _ = TurnFlags.load(tmp_path, proj).both_probs(test)
    assert np.allclose(back_struct["vague_reply"][0], struct["vague_reply"][0], atol=1e-2)
    assert np.allclose(back_flags["vague_reply"][0], flags["vague_reply"][0], atol=1e-2)


def test_too_few_labelled_turns_fit_no_model():
    convs = [c for c in _gen(200) if not any(
        t.get("vague") for r in c.labels["reviews"] for t in (r.get("turns") or {}).get("agent", []))][:60]
    tf = TurnFlags.fit(convs, _projection(convs), {"vague_reply": "agent.vague"})
    assert tf is None


def test_train_fits_turn_flags_with_the_ridge_channel_and_grading_raises_them(tmp_path):
    pytest.importorskip("torch")
    from qa.model.predict import Classifier
    from qa.model.train import TrainArgs, train
    convs, args = _train_setup(tmp_path, "a.jsonl", 40)
    metrics = train(TrainArgs(out=str(tmp_path / "m"), **args))
    fitted = set(metrics["ridge"]["turn_flags"]["turns"])   # the generated chats also label uncivil turns
    assert {"unanswered_question", "vague_reply"} <= fitted and set(metrics["dev_turn_flags"]) == fitted
    meta = json.loads((tmp_path / "m" / "turnflags.json").read_text(encoding="utf-8"))
    assert set(meta["thresholds"]) == fitted
    clf = Classifier(tmp_path / "m")
    assert clf.ridge.turn_flags is not None
    preds = clf.predict_all(convs[40:140])
    for c, p in zip(convs[40:140], preds):
        for r in p.raised:
            assert r.prob >= r.threshold
            assert r.message is None or 0 <= r.message < len(c.messages)
    # with the network's thresholds out of reach, what is raised is exactly the gated turn model's verdict
    clf.config.flag_thresholds = {f: 1.01 for f in clf.config.flag_thresholds}
    clf.ridge.turn_flags.thresholds = {f: 0.5 for f in clf.ridge.turn_flags.flags}
    chats = [joined(c)[0] for c in convs[40:140]]   # as the model reads them: agent runs joined
    probs = clf.ridge.turn_flag_probs(chats)
    want = {(i, f, probs[f][1][i]) for f in probs for i in range(len(chats)) if probs[f][0][i] >= 0.5}
    got = {(i, r.rule, r.message) for i, p in enumerate(clf.predict_all(chats)) for r in p.raised}
    assert want and got == want


def test_turns_on_adds_other_files_turns_and_the_models_then_apply_ungated(tmp_path):
    pytest.importorskip("torch")
    from qa.model.predict import Classifier
    from qa.model.train import TrainArgs, train
    convs, args = _train_setup(tmp_path, "hand.jsonl", 200)
    metrics = train(TrainArgs(out=str(tmp_path / "m"), turns_on=["*hand*"], **args))
    info = metrics["ridge"]["turn_flags"]
    assert info["gated"] is False and 120 <= info["extra_chats"] <= 200    # the hand file's training chats
    clf = Classifier(tmp_path / "m")
    chats = [joined(c)[0] for c in convs[:50]]   # as the model reads them: agent runs joined
    ungated = clf.ridge.turn_flags.chat_probs(chats)
    assert all(np.allclose(p, ungated[f][0]) for f, (p, _) in clf.ridge.turn_flag_probs(chats).items())
    clf.ridge.turn_flags.thresholds = {f: 0.5 for f in clf.ridge.turn_flags.flags}
    assert clf.ridge.turn_flags.combine == "mean"
    for p, (i, c) in zip(clf.predict_all(chats), enumerate(chats)):   # raised: the mean of the two past 0.5
        for f in clf.ridge.turn_flags.flags:
            got = [r for r in p.raised if r.rule == f]
            assert bool(got) == (p.flags[f] >= 0.5) and all(r.message == ungated[f][1][i] for r in got)
    assert info["turns"]["unanswered_question"]["rows"] > sum(     # more turns than the ridge chats hold
        len([t for r in c.labels["reviews"] for t in (r.get("turns") or {}).get("customer", [])])
        for c in convs[200:300])
    with pytest.raises(ValueError, match="ridge_on"):
        TrainArgs(data=["x.jsonl"], out="o", turns_on=["*"])


def test_the_card_says_how_turn_models_vote():
    from qa.model.card import _turn_line
    turns = {"vague_reply": {"rows": 10, "positive": 3}}
    gated = _turn_line({"turns": turns}, {"vague_reply": {"threshold": 0.6}})
    assert "the same chats' turn labels" in gated and "gated turn model" in gated and "threshold 0.6" in gated
    mean = _turn_line({"turns": turns, "gated": False, "extra_chats": 7}, None)
    assert "7 other training chats" in mean and "the mean of the network's" in mean
    assert _turn_line({"turns": {}}, None) is None
    # a threshold set by hand in turnflags.json is the one the card shows, with the dev split's choice beside it
    kept = _turn_line({"turns": turns}, {"vague_reply": {"threshold": 1.01}}, {"vague_reply": 0.55})
    assert "threshold 0.55; the dev split chose 1.01" in kept
    assert "threshold 0.6)" in _turn_line({"turns": turns}, {"vague_reply": {"threshold": 0.6}}, {"vague_reply": 0.6})
    # refitted after training (scripts/refit_turnflags.py): the card says so, and the training run's choice is gone
    refit = {"turns": turns, "gated": False, "extra_chats": 7,
             "refit": {"flags": ["vague_reply"], "added": ["a.jsonl"], "chats": 20, "date": "2026-12-06",
                       "thresholds": {"chosen_on": ["dev", "probe.jsonl"], "vague_reply": {"threshold": 0.4}}}}
    line = _turn_line(refit, {"vague_reply": {"threshold": 0.6}}, {"vague_reply": 0.4})
    assert "threshold 0.4)" in line and "dev split chose" not in line
    assert "refitted on 2026-12-06" in line and "chosen on dev, probe.jsonl" in line and "structure part" in line
    # a later refit of another flag (session 35): the earlier one stays on the card, with its flag's threshold
    later = {**refit, "refit": {"flags": ["unanswered_question"], "added": ["b.jsonl"], "chats": 30, "date": "2026-12-07",
                                "thresholds": {"chosen_on": ["dev"], "unanswered_question": {"threshold": 0.45}}},
             "refits_before": [refit["refit"]]}
    line = _turn_line(later, {"vague_reply": {"threshold": 0.6}}, {"vague_reply": 0.4})
    assert "threshold 0.4)" in line and "dev split chose" not in line
    assert "`vague_reply` was refitted on 2026-12-06" in line and "`unanswered_question` was refitted on 2026-12-07" in line


def test_later_replies_stay_linear_in_a_long_chat():
    """A chat of thousands of turns on one matter (every question shares grams with every reply) reads each question
    (and looks for partial answers, ``partial_misses``) with at most ``LATER_RUNS`` later runs: 9,000 messages in about a second, where pairing every question with every
    later run took minutes."""
    from tests.conftest import run_bounded
    code = ("import sys, json; from qa.schema import Conversation; from qa.model.turnflags import later_replies, "
            "LATER_RUNS; n = json.loads(sys.stdin.read()); ms = []\n"
            "for k in range(n): ms += [{'role': 'customer', 'text': f'杯子能装开水吗 {k}'}, "
            "{'role': 'agent', 'text': '杯子开水可以的'}]\n"
            "ms += [{'role': 'customer', 'text': f'杯子能装开水吗{k}'} for k in range(n)] + [{'role': 'agent', 'text': "
            "'杯子可以'}]\n"
            "c = Conversation.model_validate({'id': 'h', 'messages': ms}); rows = later_replies(c)\n"
            "assert len(rows) <= 2 * n * LATER_RUNS and all(len(r[2]) <= LATER_RUNS + 1 for r in rows)\n"
            "from qa.model.turnflags import partial_misses; partial_misses(c)\n"
            "print(len(rows))")
    assert int(run_bounded(code, 3000, timeout=60)) > 0


def test_partial_misses_find_the_question_left_beside_one_answered():
    """Written for this check (session 38, `tests/data/partial_answer_cases.jsonl`): two things asked in one message or
    in two (A不A and X不 count as asking), the agent taking up only one (part-*), or both (whole-*)."""
    from qa.model.turnflags import partial_misses
    convs = {c.id: c for c in read_path(ROOT / "tests" / "data" / "partial_answer_cases.jsonl")}
    assert {k: partial_misses(c) for k, c in convs.items()} == {
        "part-1": [0], "part-2": [1], "part-3": [1], "part-4": [0], "whole-1": [], "whole-2": []}
    # nothing taken up at all is no partial answer (the turn model's matter), nor is one question alone
    lone = Conversation.model_validate({"id": "l", "messages": [
        {"role": "customer", "text": "充绒量多少克 机洗会不会跑绒"}, {"role": "agent", "text": "亲 您好"}]})
    one = Conversation.model_validate({"id": "o", "messages": [
        {"role": "customer", "text": "机洗会不会跑绒"}, {"role": "agent", "text": "亲 羽绒服很暖和"}]})
    assert partial_misses(lone) == [] and partial_misses(one) == []
