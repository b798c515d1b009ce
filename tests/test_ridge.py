"""The ridge channel and its sentence-vector projection: fitting, ranking, files, and `qa train --ridge-on`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.conftest import ROOT

pytest.importorskip("sklearn")

from qa.io import read_path  # noqa: E402
from qa.model.inputs import joined  # noqa: E402
from qa.model.projection import Projection, load_teacher  # noqa: E402
from qa.model.ridge import RidgeChannel, agent_text, centred, sem_features  # noqa: E402
from qa.text import normalize  # noqa: E402

HAND = ROOT / "data" / "labelled" / "hand" / "train_hand-a.jsonl"


def _teacher(tmp_path, n=300):
    """Texts about delivery or refunds (or neither); vectors: one axis per topic plus noise."""
    rng = np.random.default_rng(0)
    words = {"发货": 0, "快递": 0, "物流": 0, "退款": 1, "退货": 1, "售后": 1}
    filler = ["亲", "您好", "请问", "这个", "今天", "谢谢", "好的", "麻烦", "一下"]
    texts, vecs = [], []
    for i in range(n):
        w = list(words)[i % 6] if i % 7 else None
        t = "".join(rng.choice(filler, 3)) + (w or "") + "".join(rng.choice(filler, 2)) + str(i)
        v = rng.normal(0, 0.05, 16)
        if w:
            v[words[w]] += 1
        texts.append(t)
        vecs.append(v / np.linalg.norm(v))
    path = tmp_path / "teacher.npz"
    np.savez(path, texts=np.array(texts), vectors=np.array(vecs, dtype=np.float32))
    return path


def test_projection_learns_the_teachers_geometry_from_ngrams(tmp_path):
    texts, vectors = load_teacher(_teacher(tmp_path), exclude=set())
    proj = Projection.fit(texts, vectors, dims=4, max_features=2000)
    a, b, c = proj.embed(["亲快递什么时候发货", "物流到哪了", "我要退款"])
    assert np.allclose(np.linalg.norm(proj.embed(["你好"]), axis=1), 1, atol=1e-5)
    assert a @ b > a @ c + 0.3            # delivery ~ delivery, far from refunds
    assert proj.embed([]).shape == (0, 4)
    # n-gram rows are the vectorizer's, whatever the previous call left in the memo
    for texts in (["物流到哪了", "我要退款"], ["我要退款", "新的一句", "我要退款"], ["新的一句"]):
        assert (proj.ngram_rows(texts) != proj.vec.transform(texts)).nnz == 0


def test_teacher_file_errors_name_the_file(tmp_path):
    from qa.errors import ModelError
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip", encoding="utf-8")
    with pytest.raises(ModelError, match="bad.npz"):
        load_teacher(bad)


def _labelled():
    convs = [c for c in read_path(HAND) if hasattr(c, "messages")][:120]
    y = np.array([[np.mean([r["grades"]["attitude"] for r in c.labels["reviews"]]) - 3.5] for c in convs])
    return convs, y.astype(np.float32)


def test_ridge_channel_ranks_unseen_chats_and_round_trips(tmp_path):
    from scipy.stats import spearmanr
    convs, y = _labelled()
    texts, vectors = load_teacher(_teacher(tmp_path))
    proj = Projection.fit(texts, vectors, dims=4, max_features=2000)
    ch = RidgeChannel.fit(convs[:90], y[:90], ["attitude"], proj)
    s = ch.scores(convs[90:])
    assert s.shape == (30, 1) and np.isfinite(s).all()
    assert spearmanr(s[:, 0], y[90:, 0])[0] > 0.2       # learnt something about attitude from the agents' text
    assert sem_features(convs[:3], proj).shape == (3, 8)
    ch.beta = {"attitude": 0.5}
    ch.stack = {"attitude": {"level": 0.2, "parts": [-0.1, -0.2], "bias": 0.7}}
    ch.save(tmp_path)
    back = RidgeChannel.load(tmp_path)
    assert back.beta == {"attitude": 0.5} and back.dims == ["attitude"] and back.stack == ch.stack
    assert np.allclose(back.scores(convs[90:]), s, atol=1e-2)      # coefficients are stored as float16
    tilt = back.tilts(convs[90:92], {"attitude": 4})["attitude"]
    assert tilt.shape == (2, 4) and np.allclose(tilt.sum(1), 0, atol=1e-5)   # a tilt, not a shift
    assert list(centred(4)) == [1.5, 0.5, -0.5, -1.5]
    assert RidgeChannel.load(tmp_path / "nothing") is None


def test_train_with_ridge_on_writes_the_channel_and_the_classifier_uses_it(tmp_path):
    pytest.importorskip("torch")
    from qa.model.predict import Classifier
    from qa.model.train import TrainArgs, train
    lines = HAND.read_text(encoding="utf-8").splitlines()
    (tmp_path / "a.jsonl").write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    (tmp_path / "real_b.jsonl").write_text("\n".join(lines[40:100]) + "\n", encoding="utf-8")
    teacher = _teacher(tmp_path)
    metrics = train(TrainArgs(data=[str(tmp_path / "a.jsonl"), str(tmp_path / "real_b.jsonl")],
                              out=str(tmp_path / "m"), base_model="none", epochs=1, batch_size=8, max_steps=2,
                              dev_fraction=0.3, seed=1, use_encoder=False, ridge_on=["real_*"],
                              teacher=str(teacher)))
    info = metrics["ridge"]
    assert info["files"] == ["real_*"] and 30 <= info["chats"] <= 60        # only the matching file's chats
    assert set(info["beta"]) == {"attitude", "etiquette", "professionalism", "clarity"}
    assert (tmp_path / "m" / "ridge.json").is_file() and (tmp_path / "m" / "ridge.safetensors").is_file()
    meta = json.loads((tmp_path / "m" / "ridge.json").read_text(encoding="utf-8"))
    assert set(meta["info"]["dev_weighted_qwk_by_beta"]["attitude"]) == {"0.0", "0.25", "0.5", "0.75", "1.0",
                                                                            "1.5", "2.0"}
    assert set(info["struct_oof_spearman"]) == set(info["beta"])            # the structure part was weighed
    clf = Classifier(tmp_path / "m")
    assert clf.ridge is not None and clf.ridge.needs_findings
    convs = [c for c in read_path(HAND) if hasattr(c, "messages")][100:104]
    alone = clf.predict(convs)                    # no findings passed: the classifier analyses the chats itself
    for grades in alone:
        for p in grades.values():
            assert abs(sum(p.probs.values()) - 1) < 1e-4
    from qa.analysis import analyse, default_engine
    an = [analyse(c, clf.rubric, default_engine(clf.rubric)) for c in convs]
    given = clf.predict(convs, findings=[a.findings for a in an], timings=[a.timing for a in an])
    assert [{d: p.probs for d, p in g.items()} for g in given] == [{d: p.probs for d, p in g.items()} for g in alone]


def test_teacher_needs_ridge_on_and_no_matching_file_fits_no_channel(tmp_path):
    pytest.importorskip("torch")
    from qa.model.train import TrainArgs, train
    with pytest.raises(ValueError, match="ridge_on"):
        TrainArgs(data=["x.jsonl"], out="m", teacher="t.npz")
    (tmp_path / "a.jsonl").write_text("\n".join(HAND.read_text(encoding="utf-8").splitlines()[:40]) + "\n",
                                      encoding="utf-8")
    metrics = train(TrainArgs(data=[str(tmp_path / "a.jsonl")], out=str(tmp_path / "m"), base_model="none",
                              epochs=1, batch_size=8, max_steps=1, dev_fraction=0.25, seed=1, use_encoder=False,
                              ridge_on=["*real_*"]))
    assert "ridge" not in metrics and not (tmp_path / "m" / "ridge.json").exists()


def _two_files(tmp_path) -> dict:
    """Tiny training arguments over two files cut from a hand batch: ``a.jsonl`` and ``real_b.jsonl``."""
    lines = HAND.read_text(encoding="utf-8").splitlines()
    (tmp_path / "a.jsonl").write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    (tmp_path / "real_b.jsonl").write_text("\n".join(lines[40:100]) + "\n", encoding="utf-8")
    return dict(data=[str(tmp_path / "a.jsonl"), str(tmp_path / "real_b.jsonl")], base_model="none", epochs=1,
                batch_size=8, max_steps=2, dev_fraction=0.3, seed=1, use_encoder=False)


def test_from_model_keeps_the_network_and_refits_the_channel(tmp_path):
    pytest.importorskip("torch")
    from qa.errors import ModelError
    from qa.model.train import TrainArgs, train
    common = _two_files(tmp_path)
    train(TrainArgs(out=str(tmp_path / "net"), **common))
    metrics = train(TrainArgs(out=str(tmp_path / "plus"), from_model=str(tmp_path / "net"), ridge_on=["real_*"],
                              **common))
    assert metrics["history"] == [] and "ridge" in metrics                     # nothing trained, channel fitted
    a = (tmp_path / "net" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "plus" / "model.safetensors").read_bytes()        # the network, byte for byte
    with pytest.raises(ModelError, match="not a model|cannot load"):
        train(TrainArgs(out=str(tmp_path / "x"), from_model=str(tmp_path / "a.jsonl"), **common))


def test_keep_beta_keeps_the_trained_models_tilt_strengths(tmp_path):
    pytest.importorskip("torch")
    from qa.model.train import TrainArgs, train
    common = dict(_two_files(tmp_path), ridge_on=["real_*"])
    with pytest.raises(ValueError, match="from_model"):
        TrainArgs(out="m", keep_beta=True, **common)
    train(TrainArgs(out=str(tmp_path / "net"), **common))
    kept = RidgeChannel.load(tmp_path / "net")
    kept.beta = {d: 1.5 for d in kept.dims}          # as scripts/pooled_betas.py writes them
    kept.info["beta_source"] = {"chats": 60}
    kept.save(tmp_path / "net")
    metrics = train(TrainArgs(out=str(tmp_path / "plus"), from_model=str(tmp_path / "net"), keep_beta=True,
                              **common))
    info = metrics["ridge"]
    assert info["beta"] == {d: 1.5 for d in kept.dims}                           # kept, not chosen again
    assert info["beta_kept_from"] == {"model": "net", "beta_source": {"chats": 60}}
    assert set(info["dev_weighted_qwk_by_beta"]["attitude"]) >= {"0.0", "1.5"}   # the dev curve still reported
    again = train(TrainArgs(out=str(tmp_path / "free"), from_model=str(tmp_path / "net"), **common))
    assert all(b in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0) for b in again["ridge"]["beta"].values())


def test_keep_decision_keeps_the_grades_and_rechooses_only_flag_thresholds(tmp_path):
    pytest.importorskip("torch")
    import json
    from qa.model.train import TrainArgs, train
    common = dict(_two_files(tmp_path), ridge_on=["real_*"])
    with pytest.raises(ValueError, match="from_model"):
        TrainArgs(out="m", keep_decision=True, **common)
    train(TrainArgs(out=str(tmp_path / "net"), **common))
    cfg_path = tmp_path / "net" / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg.update(decision="cutpoints", temperatures={d: 1.7 for d in cfg["temperatures"]},
               cutpoints={d: [0.5, 1.5, 2.5] for d in cfg["temperatures"]},
               cutpoints_ungated={d: [0.4, 1.4, 2.4] for d in cfg["temperatures"]})
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")    # as scripts/pooled_betas.py leaves a model
    metrics = train(TrainArgs(out=str(tmp_path / "plus"), from_model=str(tmp_path / "net"), keep_decision=True,
                              **common))
    out = json.loads((tmp_path / "plus" / "config.json").read_text(encoding="utf-8"))
    for key in ("decision", "temperatures", "cutpoints", "cutpoints_ungated"):
        assert out[key] == cfg[key], key                                       # kept, not chosen again
    assert metrics["decision_kept_from"] == "net" and metrics["temperatures"] == cfg["temperatures"]
    free = json.loads((tmp_path / "net" / "config.json").read_text(encoding="utf-8"))
    train(TrainArgs(out=str(tmp_path / "free"), from_model=str(tmp_path / "net"), **common))
    again = json.loads((tmp_path / "free" / "config.json").read_text(encoding="utf-8"))
    assert again["temperatures"] != free["temperatures"]                       # without it: chosen on the dev split


def test_normalised_texts_in_teacher(tmp_path):
    texts, _ = load_teacher(_teacher(tmp_path, 10))
    assert all(t == normalize(t) for t in texts)


def test_cli_rejects_a_from_model_that_is_not_a_model_and_a_missing_teacher(tmp_path):
    from typer.testing import CliRunner

    from qa.cli import app
    data = tmp_path / "a.jsonl"
    data.write_text(HAND.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    def said(r):   # the message, without the box rich draws around it
        return re.sub(r"[\s│╭╮╰╯─]+", "", r.output)
    r = CliRunner().invoke(app, ["train", str(data), "--out", str(tmp_path / "m"), "--from-model", str(tmp_path)])
    assert r.exit_code == 2 and "notamodeldirectory" in said(r) and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["train", str(data), "--out", str(tmp_path / "m"), "--ridge-on", "*",
                                 "--teacher", str(tmp_path / "none.npz")])
    assert r.exit_code == 2 and "none.npz" in said(r) and not (tmp_path / "m").exists()


def test_the_default_grades_written_chats_with_their_own_cutpoints():
    """The shipped default carries cutpoints for the chats its gate does not claim; each chat's level is where
    its expected index falls among the gate-blended thresholds."""
    pytest.importorskip("torch")
    from qa.model.decision import chat_cuts
    from qa.model.predict import Classifier
    clf = Classifier()
    ungated = clf.config.cutpoints_ungated
    assert clf.config.decision == "cutpoints" and ungated and clf.ridge.gate is not None
    convs = [c for c in read_path(ROOT / "data" / "samples" / "samples.jsonl") if hasattr(c, "messages")]
    convs += [c for c in read_path(HAND) if hasattr(c, "messages")][:40]
    convs = [joined(c)[0] for c in convs]   # as the model reads them: agent runs joined
    gate = clf.ridge.gate_probs(convs)
    preds = clf.predict_all(convs, batch_size=len(convs))
    findings = [a.findings for a in clf.analyse(convs)]
    differ = 0
    for d, levels in clf.dimensions.items():
        idx = np.array([sum(j * p.grades[d].probs[lv] for j, lv in enumerate(levels)) for p in preds])
        shift = clf.ridge.stack_shift(convs, d, idx, findings)     # the real-side stack moves the index
        cuts = chat_cuts(clf.config.cutpoints[d], ungated.get(d), gate)
        want = (cuts <= (idx + shift)[:, None]).sum(1)
        assert [levels.index(p.grades[d].level) for p in preds] == list(want)
        assert np.allclose([p.grades[d].expected for p in preds], levels[0] - idx - shift, atol=1e-4)
        shared = np.searchsorted(clf.config.cutpoints[d], idx, side="right")
        differ += int((shared != want).sum())
    assert differ > 0        # on these written chats the second set decides some levels differently


def test_stack_shift_moves_real_chats_and_leaves_chats_without_agent_text():
    """shift = g · (s − idx), s = bias + level · idx + parts · g·z; 0 for a chat with no agent text or no stack."""
    pytest.importorskip("torch")
    from qa.model.predict import Classifier
    from qa.schema import Conversation
    ridge = Classifier().ridge
    assert set(ridge.stack) == {"attitude", "etiquette", "professionalism", "clarity"}   # the default has one
    convs = [c for c in read_path(ROOT / "data" / "samples" / "samples.jsonl") if hasattr(c, "messages")][:12]
    convs.append(Conversation.model_validate({"id": "bot-only", "messages": [
        {"role": "customer", "type": "text", "text": "在吗"}, {"role": "bot", "type": "text", "text": "您好"}]}))
    findings = [[] for _ in convs]
    idx = np.linspace(0, 3, len(convs))
    g = ridge.gate_probs(convs)
    saved = dict(ridge.stack)
    try:
        ridge.stack = {"attitude": {"level": 1.0, "parts": [0.0, 0.0, 0.0], "bias": 0.0}}     # s = idx: no move
        assert np.allclose(ridge.stack_shift(convs, "attitude", idx, findings), 0)
        assert ridge.stack_shift(convs, "clarity", idx, findings) is None
        ridge.stack = {"attitude": {"level": 0.0, "parts": [0.0, 0.0, 0.0], "bias": 1.0}}     # s = 1
        got = ridge.stack_shift(convs, "attitude", idx, findings)
        talks = np.array([bool(agent_text(c)) for c in convs])
        assert not talks[-1] and talks.sum() >= 8
        assert np.allclose(got, g * (1 - idx) * talks)
        convs = [c.model_copy(update={"platform": "taobao"}) if k % 2 else c for k, c in enumerate(convs)]
        plats = [c.platform for c in convs]
        ridge.stack = {"attitude": {"level": 1.0, "parts": [0.0, 0.0, 0.0], "bias": 0.0,
                                    "platform": {"taobao": -0.5}}}                           # s = idx − 0.5 on taobao
        got = ridge.stack_shift(convs, "attitude", idx, findings)
        assert np.allclose(got, -0.5 * g * talks * np.array([p == "taobao" for p in plats]))
    finally:
        ridge.stack = saved


def test_struct_features_count_rules_and_run_on_replies():
    from qa.model.ridge import struct_features, style_counts
    from qa.rules.base import Finding
    from tests.conftest import make_conv
    run_on = "亲这款是纯棉的面料穿着很舒服的而且不起球不掉色的您放心购买哦我们家都是七天无理由退换的"
    conv = make_conv(("customer", "这件衣服什么面料", 0), ("agent", run_on, 30),
                     ("agent", "好的，稍等。", 40))
    found = [Finding("vague_reply", "minor", "敷衍", "x", 1)] * 5 + [Finding("missing_closing", "minor", "x", "x", 2)]
    x = struct_features(conv, found, ["vague_reply", "missing_closing", "overpromise"])
    assert x[:10] == style_counts(conv)
    assert x[10:13] == [3, 1, 0]                                   # counts, capped at 3; rules not fired → 0
    assert np.isclose(x[13], np.log1p(len(run_on))) and np.isclose(x[14], np.log1p(2))
    assert np.isclose(x[15], np.log1p(len(run_on))) and x[16] == 0.5   # one of two replies is one long clause
    assert len(struct_features(make_conv(("customer", "在吗", 0)), None, ["vague_reply"])) == 16


def test_struct_part_is_fitted_kept_where_it_ranks_better_and_round_trips(tmp_path):
    """Chats graded by how often a rule fired: the structure part sees it, the text parts barely do."""
    from qa.rules import RuleEngine
    from qa.rubric import load_rubric
    from qa.timing import compute_timing
    convs = [c for c in read_path(HAND) if hasattr(c, "messages")][:150]
    rubric = load_rubric()
    engine = RuleEngine(rubric)
    findings = [engine.check(c, compute_timing(c, rubric)) for c in convs]
    y = np.array([[-float(len(f))] for f in findings], np.float32)       # fewer findings = better
    ch = RidgeChannel.fit(convs[:120], y[:120], ["attitude"], findings=findings[:120], rules=list(rubric.rules))
    assert ch.needs_findings and ch.struct["use"][0] == 1
    info = ch.info["struct_oof_spearman"]["attitude"]
    assert info["kept"] and info["with"] >= info["without"] + 0.02
    with pytest.raises(ValueError, match="findings"):
        ch.scores(convs[120:])
    from scipy.stats import spearmanr
    s = ch.scores(convs[120:], findings[120:])
    assert spearmanr(s[:, 0], y[120:, 0])[0] > 0.5
    ch.save(tmp_path)
    back = RidgeChannel.load(tmp_path)
    assert back.struct["rules"] == list(rubric.rules) and np.allclose(back.r_std, ch.r_std)
    assert np.allclose(back.scores(convs[120:], findings[120:]), s, atol=1e-2)
    # without findings, no structure part, and scores are averaged text (and vector) parts as before
    plain = RidgeChannel.fit(convs[:120], y[:120], ["attitude"])
    assert plain.struct is None and not plain.needs_findings and plain.part_weights().shape == (1, 1)


class _FixedTurnFlags:
    """Stands in for ``TurnFlags``: each chat's unanswered probability comes from a table."""

    def __init__(self, probs: dict[str, float]):
        self.probs, self.calls, self.info, self.combine = probs, 0, {}, "or"

    def chat_probs(self, convs):
        self.calls += 1
        return {"unanswered_question": (np.array([self.probs[c.id] for c in convs], np.float32), [None] * len(convs))}

    def both_probs(self, convs):
        probs = self.chat_probs(convs)
        return probs, probs, {}


def test_struct_part_reads_turn_flag_probabilities_and_round_trips(tmp_path):
    """Chats graded by a turn model's unanswered probability: with it in the structure part the channel ranks
    unseen chats by it; grading reads it from ``turn_flags`` once per batch (the flags ask for it again)."""
    convs = [c for c in read_path(HAND) if hasattr(c, "messages")][:150]
    p = np.random.default_rng(3).uniform(0.02, 0.98, len(convs)).astype(np.float32)
    y = -p[:, None]                                                    # a likely unanswered question = worse
    fixed = _FixedTurnFlags({c.id: float(q) for c, q in zip(convs, p)})
    ch = RidgeChannel.fit(convs[:120], y[:120], ["professionalism"], findings=[()] * 120, rules=[],
                          flag_probs={"unanswered_question": p[:120]})
    assert ch.struct["flags"] == ["unanswered_question"] and ch.struct["use"][0] == 1
    ch.turn_flags = fixed
    from scipy.stats import spearmanr
    s = ch.scores(convs[120:], [()] * 30)
    without = RidgeChannel.fit(convs[:120], y[:120], ["professionalism"], findings=[()] * 120, rules=[])
    rho, rho_without = (spearmanr(x[:, 0], y[120:, 0])[0] for x in (s, without.scores(convs[120:], [()] * 30)))
    assert rho > 0.5 and rho > rho_without + 0.3 and fixed.calls == 1
    ch.turn_flag_probs(convs[120:])
    assert fixed.calls == 1                                            # the batch's probabilities were kept
    ch.turn_flags = None                                               # the stand-in has no files
    ch.save(tmp_path)
    back = RidgeChannel.load(tmp_path)
    assert back.struct["flags"] == ["unanswered_question"]
    back.turn_flags = fixed
    assert np.allclose(back.scores(convs[120:], [()] * 30), s, atol=1e-2)


def test_oof_flag_probs_come_from_models_fitted_on_the_other_folds(tmp_path):
    """Each generated chat's probability comes from a turn model that never saw it, and the flags it finds rank
    above the chats reviewers did not flag."""
    from sklearn.metrics import roc_auc_score
    from qa.model.train import oof_flag_probs
    gen = ROOT / "data" / "labelled" / "gen" / "gen.jsonl"
    lines = gen.read_text(encoding="utf-8").splitlines()[:400]
    (tmp_path / "g.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    convs = [c for c in read_path(tmp_path / "g.jsonl") if hasattr(c, "messages")]
    proj = Projection.fit(*load_teacher(_teacher(tmp_path)), dims=4, max_features=2000)
    turns = {"unanswered_question": "customer.unanswered", "vague_reply": "agent.vague", "privacy_leak": None}
    out = oof_flag_probs(convs, proj, turns, seed=1)
    assert set(out) == {"unanswered_question", "vague_reply"}
    assert all(v.shape == (len(convs),) and ((v >= 0) & (v <= 1)).all() for v in out.values())
    gold = np.array([any("vague_reply" in r.get("rules", []) for r in c.labels["reviews"]) for c in convs])
    assert gold.any() and roc_auc_score(gold, out["vague_reply"]) > 0.6
    assert np.array_equal(oof_flag_probs(convs, proj, turns, seed=1)["vague_reply"], out["vague_reply"])


def test_from_model_without_a_teacher_keeps_its_projection(tmp_path):
    pytest.importorskip("torch")
    from qa.model.train import TrainArgs, train
    lines = HAND.read_text(encoding="utf-8").splitlines()
    (tmp_path / "a.jsonl").write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    (tmp_path / "real_b.jsonl").write_text("\n".join(lines[40:100]) + "\n", encoding="utf-8")
    common = dict(data=[str(tmp_path / "a.jsonl"), str(tmp_path / "real_b.jsonl")], base_model="none", epochs=1,
                  batch_size=8, max_steps=2, dev_fraction=0.3, seed=1, use_encoder=False, ridge_on=["real_*"])
    train(TrainArgs(out=str(tmp_path / "first"), teacher=str(_teacher(tmp_path)), **common))
    metrics = train(TrainArgs(out=str(tmp_path / "again"), from_model=str(tmp_path / "first"), **common))
    assert metrics["ridge"]["projection_from"] == "first"
    a, b = RidgeChannel.load(tmp_path / "first"), RidgeChannel.load(tmp_path / "again")
    texts = ["亲，今天发货", "退款已经处理"]
    assert np.allclose(a.projection.embed_ngrams(a.projection.ngram_rows(texts)),
                       b.projection.embed_ngrams(b.projection.ngram_rows(texts)))


def test_pooled_betas_prefer_a_tilt_when_the_ridge_score_carries_the_grade():
    import importlib.util

    from qa.model.data import Example
    spec = importlib.util.spec_from_file_location("pooled_betas", ROOT / "scripts" / "pooled_betas.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(0)
    levels = [5, 4, 3, 2]
    truth = rng.normal(size=300)                                   # higher = better
    gold = np.digitize(-truth, [-1.0, 0.0, 1.0])                   # level index, 0 = best
    examples = [Example(conv=None, targets={"attitude": list(np.eye(4)[g])}) for g in gold]
    logits = {"attitude": rng.normal(size=(300, 4)).astype(np.float32)}        # a network that knows nothing
    scores = (truth + rng.normal(0, 0.3, 300)).astype(np.float32)[:, None]     # a ridge score that knows a lot
    table = mod.curves(logits, scores, examples, {"attitude": levels})["attitude"]
    assert set(table) == set(mod.BETAS)
    assert table[0.0][0] < 0.2 < 0.6 < table[2.0][0]               # (QWK, Spearman) per strength
    assert table[2.0][1] > table[0.0][1]


def test_real_stack_learns_the_part_that_carries_the_grade(tmp_path):
    """``calibrate``'s stack, on pooled chats whose grade one ridge part carries: it weights that part, and the
    real-side cutpoints fitted under it grade far better than the network's index alone."""
    import importlib.util

    from qa.model.data import Example
    from qa.model.decision import weighted_qwk
    spec = importlib.util.spec_from_file_location("pooled_betas", ROOT / "scripts" / "pooled_betas.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(1)
    n, truth = 400, rng.normal(size=400)                             # higher = better
    gold = np.digitize(-truth, [-1.0, 0.0, 1.0])
    examples = [Example(conv=None, targets={"attitude": list(np.eye(4)[g])}) for g in gold]
    logits = {"attitude": rng.normal(size=(n, 4)).astype(np.float32)}           # a network that knows nothing
    parts = np.stack([rng.normal(size=n), truth + rng.normal(0, 0.3, n), rng.normal(size=n)], 1)[:, None, :]
    blend = np.ones(n)
    (tmp_path / "config.json").write_text(json.dumps({"dimension_list": [["attitude", [5, 4, 3, 2]]],
                                                       "cutpoints": {"attitude": [0.5, 1.5, 2.5]},
                                                       "temperatures": {"attitude": 1.0}}), encoding="utf-8")
    (tmp_path / "ridge.json").write_text(json.dumps({"dimensions": ["attitude"], "beta": {"attitude": 0.0},
                                                     "info": {}}), encoding="utf-8")
    scores = np.zeros((n, 1), np.float32)
    mod.real_stack(tmp_path, examples, logits, scores, (parts, blend))
    st = json.loads((tmp_path / "ridge.json").read_text(encoding="utf-8"))["stack"]["attitude"]
    assert st["parts"][1] < -0.3 and abs(st["parts"][0]) < 0.1 and abs(st["parts"][2]) < 0.1
    mod.real_cutpoints(tmp_path, examples, logits, scores, (parts, blend))
    cfg = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    idx = st["bias"] + st["level"] * mod.model_index(cfg, {}, "attitude", 0, logits, scores) + parts[:, 0] @ st["parts"]
    level = np.searchsorted(cfg["cutpoints"]["attitude"], idx, side="right")
    assert weighted_qwk(gold, level, 4) > 0.8 and cfg["cutpoints_ungated"]["attitude"] == [0.5, 1.5, 2.5]


def test_platform_offsets_bring_a_platform_graded_apart_back_to_its_reviews(tmp_path):
    """``calibrate``'s per-platform offsets: a platform whose chats the stack grades 0.8 of a level harsher than
    their reviews gets an offset near −0.8 (shrunk toward 0 by the prior); the rest, and a platform with too few
    chats, get none or next to none; the cutpoints then apply it."""
    import importlib.util
    from types import SimpleNamespace

    from qa.model.data import Example
    spec = importlib.util.spec_from_file_location("pooled_betas", ROOT / "scripts" / "pooled_betas.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(2)
    n = 400
    plat = np.array(["other"] * 300 + ["taobao"] * 80 + ["douyin"] * 20)
    gold = rng.integers(0, 4, n)
    examples = [Example(conv=SimpleNamespace(platform=p), targets={"attitude": list(np.eye(4)[g])})
                for p, g in zip(plat, gold)]
    logits = {"attitude": np.zeros((n, 4), np.float32)}
    shown = gold + 0.8 * (plat != "other") + rng.normal(0, 0.2, n)     # taobao and douyin graded 0.8 too harsh
    parts, blend = shown[:, None, None], np.ones(n)
    (tmp_path / "config.json").write_text(json.dumps({"dimension_list": [["attitude", [5, 4, 3, 2]]],
                                                       "cutpoints": {"attitude": [0.5, 1.5, 2.5]},
                                                       "temperatures": {"attitude": 1.0}}), encoding="utf-8")
    stack = {"attitude": {"level": 0.0, "parts": [1.0], "bias": 0.0}}    # s = the harsh index itself
    (tmp_path / "ridge.json").write_text(json.dumps({"dimensions": ["attitude"], "beta": {"attitude": 0.0},
                                                     "info": {}, "stack": stack}), encoding="utf-8")
    mod.real_platform_offsets(tmp_path, examples, logits, np.zeros((n, 1), np.float32), (parts, blend))
    got = json.loads((tmp_path / "ridge.json").read_text(encoding="utf-8"))["stack"]["attitude"]["platform"]
    assert set(got) == {"other", "taobao"}                                 # douyin: under PLATFORM_MIN chats
    assert -0.8 < got["taobao"] < -0.65 and abs(got["other"]) < 0.05
    mod.real_cutpoints(tmp_path, examples, logits, np.zeros((n, 1), np.float32), (parts, blend))
    cuts = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))["cutpoints"]["attitude"]
    idx = shown + np.array([got.get(p, 0.0) for p in plat])
    level = np.searchsorted(cuts, idx, side="right")
    assert np.mean(level[plat == "taobao"] == gold[plat == "taobao"]) > 0.8


def test_cv_reports_the_gain_of_platform_offsets_on_chats_they_were_not_fitted_on(tmp_path, capsys):
    """``pooled_betas.py cv``: with a platform graded 0.8 of a level too harsh, out-of-fold QWK on its chats is
    higher with the offsets than with the stack alone."""
    import importlib.util
    from types import SimpleNamespace

    from qa.model.data import Example
    spec = importlib.util.spec_from_file_location("pooled_betas", ROOT / "scripts" / "pooled_betas.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(3)
    n = 300
    plat = np.array(["other"] * 220 + ["taobao"] * 80)
    truth = rng.normal(size=n)
    gold = np.digitize(-truth, [-1.0, 0.0, 1.0])
    examples = [Example(conv=SimpleNamespace(platform=p), targets={"attitude": list(np.eye(4)[g])})
                for p, g in zip(plat, gold)]
    seen = -truth + 0.8 * (plat == "taobao") + rng.normal(0, 0.3, n)
    (tmp_path / "config.json").write_text(json.dumps({"dimension_list": [["attitude", [5, 4, 3, 2]]],
                                                       "cutpoints": {"attitude": [0.5, 1.5, 2.5]},
                                                       "temperatures": {"attitude": 1.0}}), encoding="utf-8")
    (tmp_path / "ridge.json").write_text(json.dumps({"dimensions": ["attitude"], "beta": {"attitude": 0.0},
                                                     "info": {}}), encoding="utf-8")
    mod.cross_validate(tmp_path, examples, {"attitude": np.zeros((n, 4), np.float32)}, np.zeros((n, 1), np.float32),
                       (seen[:, None, None], np.ones(n)), seeds=(0,))
    out = capsys.readouterr().out
    rows = re.findall(r"taobao\s+QWK ([0-9.]+)", out)
    assert len(rows) == 2 and float(rows[1]) > float(rows[0]) + 0.05
