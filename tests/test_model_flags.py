"""Rule-flag and turn-label heads: targets, thresholds, a tiny trained model, rules + model findings,
real-looking augmentation, generator turn labels, and the real-set join."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from qa.schema import Conversation
from tests.conftest import ROOT

GEN = ROOT / "data" / "labelled" / "gen" / "gen.jsonl"


def _conv(messages, **labels):
    return Conversation.model_validate({"id": "c1", "messages": messages, "labels": labels})


CHAT = [{"role": "customer", "text": "这个有XL吗"}, {"role": "agent", "text": "我帮您看看"},
        {"role": "customer", "text": "到底有没有"}, {"role": "agent", "text": "有的亲 XL现货"},
        {"role": "customer", "text": "好的"}]


def test_flag_targets_are_the_share_of_reviewers():
    from qa.model.flags import flag_targets
    conv = _conv(CHAT, reviews=[{"grades": {}, "rules": ["vague_reply"]}, {"grades": {}, "rules": []},
                                {"grades": {}}])   # the third review lists no rules: it does not count
    assert flag_targets(conv, ["vague_reply", "privacy_leak"]) == {"vague_reply": 0.5, "privacy_leak": 0.0}
    assert flag_targets(_conv(CHAT, reviews=[{"grades": {}}]), ["vague_reply"]) == {}


def test_turn_targets_average_reviewers_and_derive_unanswered():
    from qa.model.flags import turn_targets
    a = {"customer": [{"i": 0, "request": True, "answered_by": 3}, {"i": 2, "request": True, "answered_by": None}],
         "agent": [{"i": 1, "vague": True, "uncivil": False, "pii": False}]}
    b = {"customer": [{"i": 0, "request": True, "answered_by": None}, {"i": 9, "request": True}],   # 9: no such message
         "agent": [{"i": 1, "vague": False, "uncivil": False, "pii": False}]}
    conv = _conv(CHAT, reviews=[{"grades": {}, "turns": a}, {"grades": {}, "turns": b}])
    t = turn_targets(conv, {"customer": ["request", "unanswered"], "agent": ["vague", "uncivil", "pii"]})
    assert t[0] == {"request": 1.0, "unanswered": 0.5}
    assert t[2] == {"request": 1.0, "unanswered": 1.0}
    assert t[1] == {"vague": 0.5, "uncivil": 0.0, "pii": 0.0}
    assert 9 not in t


def test_best_threshold_maximises_f1_of_rules_or_model():
    from qa.model.flags import best_threshold
    probs = np.array([0.9, 0.8, 0.3, 0.2, 0.1])
    gold = np.array([True, True, False, True, False])
    t, f1 = best_threshold(probs, gold)
    assert (t, round(f1, 3)) == (0.2, 0.857)          # 0.2 catches all three positives with one false alarm
    base = np.array([False, False, False, True, False])   # the rule already finds the third positive
    t, f1 = best_threshold(probs, gold, base)
    assert t == pytest.approx(0.8) and f1 == 1.0
    assert best_threshold(probs, np.zeros(5, bool))[0] > 1     # nothing to find: the model never fires


def test_combine_marks_source_and_keeps_rule_evidence():
    from qa.model.predict import FlagPrediction
    from qa.rubric import load_rubric
    from qa.rules.base import Finding
    from qa.rules.combine import combine
    rubric = load_rubric()
    conv = _conv(CHAT)
    rule = Finding("vague_reply", "major", "敷衍回复", "rule text", 1, (0, 5), "我帮您看看")
    raised = [FlagPrediction("vague_reply", 0.9, 0.5, 1), FlagPrediction("unanswered_question", 0.7, 0.4, 2),
              FlagPrediction("overpromise", 0.99, 0.5, 3)]       # not a model flag of the rubric: ignored
    out = {f.rule: f for f in combine([rule], raised, rubric, conv)}
    assert set(out) == {"vague_reply", "unanswered_question"}
    assert out["vague_reply"].source == "both" and out["vague_reply"].span == (0, 5)
    assert out["unanswered_question"].source == "model" and out["unanswered_question"].message == 2
    assert out["unanswered_question"].evidence == "到底有没有"


def test_best_veto_keeps_rule_findings_the_model_backs():
    from qa.model.flags import best_veto
    probs = np.array([0.9, 0.3, 0.1, 0.05, 0.4])
    gold = np.array([True, True, False, False, False])
    fired = np.array([False, True, True, True, True])
    raised = np.array([True, False, False, False, False])
    v, f1 = best_veto(probs, gold, fired, raised)
    assert v == pytest.approx(0.15) and f1 == pytest.approx(0.8)   # drops 0.1 and 0.05, keeps the backed 0.3
    assert best_veto(probs, gold, fired | True, raised | True)[0] == 0.0   # nothing to gain: no veto


def test_rule_finding_below_the_models_veto_is_dropped_but_never_a_red_line():
    from qa.model.predict import FlagPrediction
    from qa.rubric import load_rubric
    from qa.rules.base import Finding
    from qa.rules.combine import combine
    rubric = load_rubric()
    conv = _conv(CHAT)
    vague = Finding("vague_reply", "major", "敷衍回复", "rule text", 1, (0, 5), "我帮您看看")
    rude = Finding("uncivil_language", "red_line", "不文明用语", "rule text", 3, None, None)
    vetoes = {"vague_reply": 0.45, "uncivil_language": 0.45}
    low = {"vague_reply": 0.2, "uncivil_language": 0.01}
    assert [f.rule for f in combine([vague, rude], [], rubric, conv, probs=low, vetoes=vetoes)] == ["uncivil_language"]
    assert len(combine([vague], [], rubric, conv, probs={"vague_reply": 0.45}, vetoes=vetoes)) == 1   # at the veto
    assert len(combine([vague], [], rubric, conv, probs=low)) == 1                                  # no vetoes
    backed = combine([vague], [FlagPrediction("vague_reply", 0.3, 0.3, 1)], rubric, conv, probs=low, vetoes=vetoes)
    assert [(f.rule, f.source) for f in backed] == [("vague_reply", "both")]   # raised below the veto: kept


def test_shipped_model_drops_a_lexicon_only_vague_reply_on_a_dev_chat():
    """hand-al-0039 (dev split; reviewers raised no flag): the lexicon finds a vague reply and an unanswered
    question, the model gives both far below their vetoes, so ``qa grade`` keeps neither; ``qa check`` (rules
    alone) still reports them."""
    from qa.analysis import analyse
    from qa.grader import Grader, GradeSettings
    from qa.io import read_many
    conv = next(c for c in read_many([ROOT / "data" / "labelled" / "hand" / "train_hand-al.jsonl"])
                if getattr(c, "id", None) == "hand-al-0039")
    grader = Grader.from_settings(GradeSettings(messages=False))
    rules = {f.rule for f in analyse(conv, grader.rubric, grader.engine).findings}
    assert {"vague_reply", "unanswered_question"} <= rules
    graded = {f["rule"] for f in grader.grade_batch([conv])[0].findings}
    assert not graded & {"vague_reply", "unanswered_question"}


def test_model_only_privacy_flag_is_vetoed_on_a_warning_or_a_need():
    """A privacy flag only the model raised is dropped when its evidence message warns the customer against giving
    data or names a need for it (rubric ``model_flags -> privacy_leak -> veto``); a rule finding is never vetoed."""
    from qa.model.predict import FlagPrediction
    from qa.rubric import ModelFlag, RubricError, load_rubric
    from qa.rules import RuleEngine
    from qa.rules.base import Finding
    from qa.rules.combine import combine
    rubric = load_rubric()
    engine = RuleEngine(rubric)
    conv = Conversation.model_validate({"id": "v", "messages": [
        {"role": "customer", "text": "有人加我说是你们客服 让我报验证码"},
        {"role": "agent", "text": "亲千万别给 我们不会找您要验证码 那是骗子"},
        {"role": "customer", "text": "保税仓发的面膜 要填什么"},
        {"role": "agent", "text": "跨境商品清关需要订购人身份证号 下单页面填就行"},
        {"role": "agent", "text": "您把银行卡号发我一下"}]})
    flags = lambda m: [FlagPrediction("privacy_leak", 0.9, 0.5, m)]   # noqa: E731
    assert combine([], flags(1), rubric, conv, engine) == []          # a warning
    assert combine([], flags(3), rubric, conv, engine) == []          # customs: a need
    kept = combine([], flags(4), rubric, conv, engine)
    assert [(f.rule, f.source, f.message) for f in kept] == [("privacy_leak", "model", 4)]
    assert len(combine([], flags(1), rubric, conv)) == 1                # no engine: nothing to veto with
    rule = Finding("privacy_leak", "red_line", "泄露隐私", "rule text", 1, None, None)
    assert [f.source for f in combine([rule], flags(1), rubric, conv, engine)] == ["both"]
    flag = ModelFlag(turn="agent.pii", veto=["no_such_category"])
    bad = rubric.model_copy(update={"model_flags": {**rubric.model_flags, "privacy_leak": flag}})
    with pytest.raises(RubricError, match="no_such_category"):
        RuleEngine(bad)


def test_card_pasted_as_text_is_read_as_a_card():
    conv = Conversation.model_validate({"id": "x", "messages": [
        {"role": "customer", "text": "https://item.taobao.com/item.htm?id=612345678901"},
        {"role": "customer", "text": "订单号：260110553281712345"}, {"role": "customer", "text": "我买了2件"},
        {"role": "agent", "text": "https://item.taobao.com/item.htm?id=612345678901"}]})
    assert [m.type for m in conv.messages] == ["product_card", "order_card", "text", "text"]
    assert "card_from_text:0" in conv.warnings


def test_realistic_copy_keeps_labels_and_first_last_agent_wording():
    from qa.model.augment import realistic
    rows = [json.loads(line) for line in GEN.read_text(encoding="utf-8").splitlines()[:60]]
    rng = random.Random(3)
    made = 0
    for r in rows:
        r = {**r, "labels": {"reviews": r["labels"]["reviews"]}}   # turn labels would pin the messages
        conv = Conversation.model_validate(r)
        copy = realistic(conv, rng)
        if copy is None:
            continue
        made += 1
        assert copy.labels == conv.labels and copy.id == conv.id + "~real"
        agent = [m.text for m in conv.messages if m.role == "agent" and m.type == "text"]
        new = [m.text for m in copy.messages if m.role == "agent" and m.type == "text"]
        assert sum(map(len, new)) <= sum(map(len, agent))
    assert made > 30


def _excerpt_chat(rules=()):
    return Conversation.model_validate({"id": "x", "platform": "taobao", "messages": [
        {"role": "customer", "type": "product_card", "text": "603345678901"},
        {"role": "agent", "text": "在的亲"},
        {"role": "customer", "text": "这个几天能到 江苏"},
        {"role": "agent", "text": "您好 亲 江苏一般2天到 今天4点前拍当天发"},
        {"role": "customer", "text": "好的"},
        {"role": "agent", "text": "好的亲 有事随时找我哈"}],
        "labels": {"reviews": [{"grades": {"attitude": 5, "etiquette": 5}, "rules": list(rules)}], "turns": {
            "customer": [{"i": 2, "request": True, "answered_by": 3}],
            "agent": [{"i": 3, "vague": False}, {"i": 5, "vague": False}]}}})


def test_excerpt_drops_greeting_and_closing_but_keeps_content_and_turns():
    from qa.model.augment import excerpt
    copy, lost = excerpt(_excerpt_chat(), random.Random(0), p_greeting=1.0, p_closing=1.0)
    assert lost == ["greeting", "closing"] and copy.id == "x~excerpt"
    texts = [m.text for m in copy.messages]
    assert "在的亲" not in texts                                   # a greeting-only message goes
    assert texts[2] == "您好 亲 江苏一般2天到 今天4点前拍当天发"    # not the first agent message: kept whole
    assert texts[-1] == "好的亲"                                   # the closing clause goes, the reply stays
    turn = copy.labels["turns"]["customer"][0]
    assert (turn["i"], turn["answered_by"]) == (1, 2)              # turn labels follow their messages
    assert copy.messages[turn["answered_by"]].text.startswith("您好 亲 江苏")


def test_excerpt_keeps_what_a_reviewer_already_found_missing():
    from qa.model.augment import excerpt
    got = excerpt(_excerpt_chat(["missing_greeting"]), random.Random(0), p_greeting=1.0, p_closing=1.0)
    assert got is not None and got[1] == ["closing"] and got[0].messages[1].text == "在的亲"
    assert excerpt(_excerpt_chat(["missing_greeting", "missing_closing"]), random.Random(0),
                   p_greeting=1.0, p_closing=1.0) is None


def test_excerpt_copies_lower_only_etiquette():
    from qa.model.augment import lower_etiquette
    from qa.model.data import Example
    from qa.model.train import excerpts
    assert lower_etiquette([1.0, 0.0, 0.0, 0.0], 1) == [0.0, 1.0, 0.0, 0.0]
    assert lower_etiquette([0.5, 0.3, 0.1, 0.1], 2) == [0.0, 0.0, 0.9, 0.1]   # never below 3 for this alone
    targets = {"attitude": [1.0, 0.0, 0.0, 0.0], "etiquette": [1.0, 0.0, 0.0, 0.0]}
    out = excerpts([Example(_excerpt_chat(), targets, weight=2.0)] * 40, 1.0, 0, "etiquette")
    assert len(out) > 20
    for e in out:
        lost = ("在的亲" not in [m.text for m in e.conv.messages]) + (e.conv.messages[-1].text == "好的亲")
        assert e.targets["attitude"] == [1.0, 0.0, 0.0, 0.0] and e.weight == 2.0
        assert e.targets["etiquette"] == lower_etiquette([1.0, 0.0, 0.0, 0.0], lost) and lost >= 1


def test_realistic_copy_moves_turn_labels_with_their_messages():
    from qa.model.augment import realistic
    conv = Conversation.model_validate({"id": "t", "messages": [
        {"role": "customer", "text": "这款有几个颜色，什么时候发货"},
        {"role": "agent", "text": "您好亲，欢迎光临~"},
        {"role": "customer", "text": "在吗"},
        {"role": "agent", "text": "亲亲，这款有黑白灰三个颜色，今天下午4点前拍下当天就能发出哦，快递默认中通"},
        {"role": "agent", "text": "感谢您的支持，祝您生活愉快~"}],
        "labels": {"reviews": [{"grades": {"professionalism": 5}, "rules": []}], "turns": {
            "customer": [{"i": 0, "request": True, "answered_by": 3}, {"i": 2, "request": False, "answered_by": None}],
            "agent": [{"i": 1, "vague": False}, {"i": 3, "vague": True}, {"i": 4, "vague": False}]}}})
    seen_split = False
    for seed in range(40):
        copy = realistic(conv, random.Random(seed), p_split=1.0, p_terse=0.0)
        if copy is None:
            continue
        t = copy.labels["turns"]
        answer = t["customer"][0]["answered_by"]
        assert copy.messages[answer].text.startswith("亲亲")            # still points at the answering message
        vague = [a["i"] for a in t["agent"] if a["vague"]]
        assert all(copy.messages[i].role == "agent" for i in vague)
        seen_split |= len(copy.messages) == 6 and len(vague) == 2       # both pieces of the split reply
    assert seen_split


def test_generated_chats_carry_turn_labels_that_agree_with_their_flags():
    rows = [json.loads(line) for line in GEN.read_text(encoding="utf-8").splitlines()[:400]]
    agree = 0
    for r in rows:
        t = r["labels"]["turns"]
        flags = set(r["labels"]["reviews"][0]["rules"])
        n = len(r["messages"])
        assert all(0 <= x["i"] < n and r["messages"][x["i"]]["role"] == "customer" for x in t["customer"])
        assert all(r["messages"][x["i"]]["role"] in ("agent", "bot") for x in t["agent"])
        assert all(x["answered_by"] is None or x["answered_by"] > x["i"] for x in t["customer"])
        unanswered = any(x["request"] and x["answered_by"] is None for x in t["customer"])
        vague = any(x["vague"] for x in t["agent"])
        agree += (unanswered == ("unanswered_question" in flags)) and (vague == ("vague_reply" in flags))
    assert agree == len(rows)


@pytest.fixture(scope="module")
def flag_model(tmp_path_factory):
    pytest.importorskip("torch")
    from qa.model.train import TrainArgs, train
    d = tmp_path_factory.mktemp("flags")
    data = d / "train.jsonl"
    data.write_text("\n".join(GEN.read_text(encoding="utf-8").splitlines()[:80]) + "\n", encoding="utf-8")
    metrics = train(TrainArgs(data=[str(data)], out=str(d / "model"), base_model="none", epochs=1, batch_size=8,
                              max_steps=3, dev_fraction=0.3, seed=2, augment=0.3))
    return d / "model", metrics


def test_flag_model_learns_thresholds_and_predicts_flags_turns_and_evidence(flag_model):
    from qa.io.read import read_path
    from qa.model.predict import Classifier
    path, metrics = flag_model
    cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    assert cfg["flags"] == ["unanswered_question", "vague_reply", "uncivil_language", "privacy_leak",
                            "negative_emotion_unsoothed"]
    assert cfg["turn_labels"] == {"customer": ["request", "unanswered"], "agent": ["vague", "uncivil", "pii"]}
    assert set(cfg["flag_thresholds"]) <= set(cfg["flags"]) and cfg["flag_thresholds"]
    assert set(metrics["dev_flags"]) == set(cfg["flag_thresholds"])
    vetoes = metrics["dev_flag_vetoes"]     # chosen on the dev split for every flag with a positive, no red line
    assert vetoes and not set(vetoes) & {"uncivil_language", "privacy_leak"}
    assert all(r["f1"] >= r["f1_without"] for r in vetoes.values())
    assert cfg.get("flag_vetoes", {}) == {f: r["veto"] for f, r in vetoes.items() if r["veto"] > 0}
    clf = Classifier(path)
    convs = list(read_path(ROOT / "data" / "samples" / "samples.jsonl"))[:6]
    for conv, p in zip(convs, clf.predict_all(convs, batch_size=4)):
        assert set(p.flags) == set(cfg["flags"]) and all(0 <= v <= 1 for v in p.flags.values())
        for i, m in enumerate(conv.messages):
            if p.turns[i] is not None:
                role = "customer" if m.role == "customer" else "agent"
                assert set(p.turns[i]) == set(cfg["turn_labels"][role])
        for r in p.raised:
            assert r.prob >= r.threshold and r.message is not None
            want = "customer" if r.rule == "unanswered_question" else "agent"
            assert (conv.messages[r.message].role == "customer") == (want == "customer")


def test_build_real_sets_joins_labels_with_text_and_keeps_eval_apart(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("build_real_sets", ROOT / "scripts" / "build_real_sets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "ecom_ids_eval.txt").write_text("e2\n", encoding="utf-8")
    rows = [{"id": "e1", "source": "ecom", "reviewer": "r1", "grades": {"attitude": 5}, "rules": []},
            {"id": "e2", "source": "ecom", "reviewer": "r1", "grades": {"attitude": 4}, "rules": ["vague_reply"]},
            {"id": "e2", "source": "ecom", "reviewer": "r2", "grades": {"attitude": 3}, "rules": []},
            {"id": "gone", "source": "ecom", "reviewer": "r1", "grades": {"attitude": 3}, "rules": []}]
    (labels / "labels_ecom_x.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    cache = tmp_path / "cache"
    (cache / "real").mkdir(parents=True)
    chats = [{"id": i, "platform": "taobao", "meta": {"source": "jddc"},
              "messages": [{"role": "customer", "text": "在吗"}, {"role": "agent", "text": "在的"}]} for i in ("e1", "e2")]
    (cache / "real" / "chats.jsonl").write_text("\n".join(json.dumps(c) for c in chats) + "\n", encoding="utf-8")
    counts = mod.build(labels, cache, tmp_path / "no-stc3.json")
    assert counts == {"real_eval_stc3": 0, "real_eval_ecom": 1, "real_train_ecom": 1, "missing_text": 1}
    ev = json.loads((cache / "real" / "real_eval_ecom.jsonl").read_text(encoding="utf-8"))
    assert [r["reviewer"] for r in ev["labels"]["reviews"]] == ["r1", "r2"]
    assert ev["messages"][0]["text"] == "在吗"


def test_grader_turns_raised_model_flags_into_findings_that_cap_grades(flag_model):
    from qa.grader import Grader, GradeSettings
    from qa.io.read import read_path
    grader = Grader.from_settings(GradeSettings(model=str(flag_model[0])))
    flags = grader.classifier.config.flags
    grader.classifier.config.flag_thresholds = {f: 0.0 for f in flags}   # every flag raised: the path is exercised
    convs = [c for c in read_path(ROOT / "data" / "samples" / "samples.jsonl")][:8]
    for conv, g in zip(convs, grader.grade_batch(convs)):
        rec = g.to_record()
        if not rec["dimensions"].get("attitude"):
            continue                                     # nobody answered: no model, so no model flags
        found = {f["rule"]: f for f in rec["findings"]}
        assert set(flags) <= set(found)
        for f in flags:
            assert found[f]["source"] in ("model", "both") and found[f]["message"] is not None
        assert rec["dimensions"]["attitude"]["level"] <= 2          # uncivil_language caps attitude at 2
        assert any(d["dimension"] == "attitude" or d.get("rule") == "uncivil_language" for d in rec["deductions"])


def test_turn_flag_thresholds_blend_the_real_side_by_the_gate(tmp_path):
    pytest.importorskip("torch")
    from qa.model.predict import Classifier
    from qa.model.turnflags import TurnFlags
    tf = Classifier(ROOT / "models" / "default").ridge.turn_flags
    assert tf.thresholds_real and set(tf.thresholds_real) <= set(tf.thresholds)   # the default has a real side
    flag = next(iter(tf.thresholds_real))
    t = tf.chat_thresholds(np.array([0.0, 1.0, 0.5]))
    low, high = tf.thresholds[flag], tf.thresholds_real[flag]
    assert np.allclose(t[flag], [low, high, (low + high) / 2])
    other = [f for f in tf.thresholds if f not in tf.thresholds_real]
    assert all(np.allclose(t[f], tf.thresholds[f]) for f in other)            # no real side: one threshold
    tf.save(tmp_path)
    back = TurnFlags.load(tmp_path, tf.projection)
    assert back.thresholds_real == tf.thresholds_real and back.thresholds == tf.thresholds
    tf.thresholds_real = {}
    tf.save(tmp_path)
    assert "thresholds_real" not in json.loads((tmp_path / "turnflags.json").read_text(encoding="utf-8"))


def test_flag_votes_gather_probability_gold_and_rule_per_flag():
    """What choosing a flag's threshold reads (``scripts/refit_turnflags.py``, ``pooled_betas.py calibrate``): only
    chats whose gold names the flag count; gold is most reviews; the rule column says whether the rules fired."""
    from types import SimpleNamespace as NS
    from qa.model.flags import add_flag_votes
    preds = [NS(flags={"vague_reply": 0.7, "uncivil_language": 0.2}), NS(flags={"vague_reply": 0.1})]
    findings = [[NS(rule="vague_reply")], []]
    votes = add_flag_votes({}, preds, findings, [{"vague_reply": 0.5}, {"vague_reply": 0.0, "uncivil_language": 1}])
    assert votes == {"vague_reply": ([0.7, 0.1], [True, False], [True, False])}   # chat 2 has no uncivil prob
    add_flag_votes(votes, preds[:1], [[]], [{"uncivil_language": 1.0}])
    assert votes["uncivil_language"] == ([0.2], [True], [False]) and len(votes["vague_reply"][0]) == 2


def test_qa_predict_writes_flag_probabilities_and_turn_labels_per_message(tmp_path):
    """``qa predict`` with the shipped model: beside the grades, every model flag's probability, the flags the model
    raises alone with their evidence message, and per message its role's turn-label probabilities."""
    from qa.cli.predict import predict
    src = ROOT / "data" / "samples" / "samples.jsonl"
    out = tmp_path / "p.jsonl"
    predict([src], out)
    convs = {c["id"]: c for c in map(json.loads, src.read_text(encoding="utf-8").splitlines())}
    recs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == len(convs)
    cfg = json.loads((ROOT / "models" / "default" / "config.json").read_text(encoding="utf-8"))
    for r in recs:
        assert set(r["flags"]) == set(cfg["flags"]) and all(0 <= v <= 1 for v in r["flags"].values())
        msgs = convs[r["id"]]["messages"]
        assert len(r["turns"]) == len(msgs)
        for m, t in zip(msgs, r["turns"]):
            if t is not None:
                assert set(t) == set(cfg["turn_labels"]["customer" if m["role"] == "customer" else "agent"])
        for x in r["raised"]:
            assert x["prob"] >= x["threshold"] and 0 <= x["message"] < len(msgs)
    privacy = next(r for r in recs if r["id"] == "tb-0011")   # asks for a bank card number (the samples' red line)
    pii = [(t or {}).get("pii", -1) for t in privacy["turns"]]   # the turn-level privacy model's, per agent message
    asks = max(range(len(pii)), key=pii.__getitem__)
    assert "银行卡号" in convs["tb-0011"]["messages"][asks]["text"] and pii[asks] > 0.5
    greeting = convs["tb-0011"]["messages"].index(next(m for m in convs["tb-0011"]["messages"] if m["role"] == "agent"))
    assert pii[greeting] < 0.1                                                  # 您好，我是西西: no personal data
