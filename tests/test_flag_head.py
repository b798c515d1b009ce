"""scripts/refit_flag_head.py: its copy of a flag's head is the network's own, and a refit moves that flag only —
every grade and every other flag stays as it was."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from refit_flag_head import Head, grow, refit, turn_inputs  # noqa: E402

from qa.io import read_path  # noqa: E402
from qa.model.inputs import flat_text, joined  # noqa: E402
from qa.model.predict import Classifier  # noqa: E402

SAMPLES = ROOT / "data/samples/samples.jsonl"


def _network_probs(clf, convs):
    """Flag → [n] the network's own probability (the prediction's is its mean with the turn model's, where the
    flag has one)."""
    preds = clf.predict_all(convs)
    turn = clf.ridge.turn_flag_probs(convs)
    return preds, {f: np.array([2 * p.flags[f] for p in preds]) - turn[f][0] if f in turn
                   else np.array([p.flags[f] for p in preds]) for f in clf.config.flags}


def test_the_head_is_the_networks_own():
    clf = Classifier(ROOT / "models/default")
    convs = [joined(c)[0] for c in list(read_path(str(SAMPLES)))[:24]]   # as the model reads them: agent runs joined
    vecs, feats = turn_inputs(clf, convs, batch_size=10)
    _, net = _network_probs(clf, convs)
    x = clf.batcher.ngrams.transform([flat_text(c) for c in convs])
    start = sum(len(v) for v in clf.config.dimensions.values())
    for j, f in enumerate(clf.config.flags):
        w = clf.model.ngram.weight[start + j].detach().numpy()
        ng = torch.from_numpy(np.asarray(x @ w + clf.model.ngram.bias[start + j].item(), np.float32).ravel())
        with torch.no_grad():
            p = torch.sigmoid(Head(clf.model, f).logits(vecs, torch.from_numpy(feats).float(), ng)).numpy()
        assert np.allclose(p, net[f], atol=2e-5), f


def _relabelled(src: Path, out: Path) -> Path:
    """The chats of ``src`` with uncivil_language set exactly where an agent message says 亲: a rule the old head
    does not follow, so a refit must beat it on the dev chats."""
    rows = []
    for line in src.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        hit = any(m.get("role") == "agent" and "亲" in (m.get("text") or "") for m in r["messages"])
        for rev in r["labels"]["reviews"]:
            rules = [x for x in rev.get("rules") or [] if x != "uncivil_language"]
            rev["rules"] = rules + (["uncivil_language"] if hit else [])
        rows.append(json.dumps(r, ensure_ascii=False))
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def _model_on(tmp_path, files: list[str]) -> Path:
    """A copy of the default model whose training chats are ``files``, the first 40 of them its dev split."""
    model = tmp_path / "m"
    shutil.copytree(ROOT / "models/default", model)
    dev = tmp_path / "dev_ids.txt"
    dev.write_text("\n".join(json.loads(line)["id"] for line in Path(files[0]).read_text(encoding="utf-8")
                             .splitlines()[:40]), encoding="utf-8")
    args = json.loads((model / "training_args.json").read_text(encoding="utf-8"))
    (model / "training_args.json").write_text(json.dumps({**args, "data": files, "dev_ids": str(dev)}),
                                              encoding="utf-8")
    return model


def test_a_refit_moves_its_flag_only(tmp_path):
    data = _relabelled(ROOT / "data/labelled/hand/train_hand-a.jsonl", tmp_path / "a.jsonl")
    model = _model_on(tmp_path, [str(data)])
    convs = list(read_path(str(SAMPLES)))
    before, net_before = _network_probs(Classifier(model), convs)
    report, dev_ex = refit(model, ["uncivil_language"], [], log=lambda *_: None)
    r = report["uncivil_language"]
    assert len(dev_ex) == 40 and r["chats"] == 170 and "kept" not in r
    assert r["dev_logloss"]["after"] < r["dev_logloss"]["before"]
    after, net_after = _network_probs(Classifier(model), convs)
    for a, b in zip(before, after):
        for d in a.grades:
            assert a.grades[d].probs == pytest.approx(b.grades[d].probs, abs=1e-6)
            assert a.grades[d].level == b.grades[d].level
    for f in net_before:
        moved = not np.allclose(net_before[f], net_after[f], atol=1e-6)
        assert moved == (f == "uncivil_language"), f
    says = [any("亲" in (m.text or "") for m in c.messages if m.role == "agent") for c in convs]
    new = net_after["uncivil_language"]
    assert new[np.array(says)].mean() > new[~np.array(says)].mean() + 0.2   # it learnt the new labels
    info = json.loads((model / "turnflags.json").read_text(encoding="utf-8"))["info"]["head_refit"]
    assert info["flags"][-1] == "uncivil_language" and info["chats"] == 170
    assert all(f in info for f in info["flags"])   # earlier refits of other flags stay on record


def test_a_refit_no_better_on_dev_keeps_the_old_head(tmp_path):
    """On 170 chats under the guide's labels the refit does not beat the shipped head on the dev chats: kept."""
    model = _model_on(tmp_path, [str(ROOT / "data/labelled/hand/train_hand-a.jsonl")])
    weights = (model / "model.safetensors").read_bytes()
    report, _ = refit(model, ["uncivil_language"], [], log=lambda *_: None)
    assert report["uncivil_language"].get("kept") is True
    assert (model / "model.safetensors").read_bytes() == weights


def test_a_rubric_flag_the_network_lacks_is_grown_and_fitted(tmp_path):
    """A model flag of the rubric with no head (mechanical_repetition here) gets a fresh one: every grade and
    every other flag stays as it was, the new flag is fitted on its labels, and its threshold (no turn model) goes
    to config.json."""
    from refit_turnflags import choose
    model = _model_on(tmp_path, [str(ROOT / "data/labelled/hand/train_hand-a.jsonl")])
    rubric = model / "rubric.yaml"
    rubric.write_text(rubric.read_text(encoding="utf-8").replace(
        "\nmodel_flags:\n", "\nmodel_flags:\n  mechanical_repetition: {}\n"), encoding="utf-8")
    convs = list(read_path(str(SAMPLES)))
    before, net_before = _network_probs(Classifier(model), convs)
    report, dev_ex = refit(model, ["mechanical_repetition"], [], log=lambda *_: None)   # grows it first
    assert report["mechanical_repetition"]["added"] is True
    assert grow(model, ["mechanical_repetition", "uncivil_language"]) == []   # it has one now; uncivil had one
    clf = Classifier(model)
    assert clf.config.flags[-1] == "mechanical_repetition" and clf.config.flag_turns["mechanical_repetition"] is None
    after, net_after = _network_probs(clf, convs)
    for a, b in zip(before, after):
        for d in a.grades:
            assert a.grades[d].probs == pytest.approx(b.grades[d].probs, abs=1e-6)
    for f in net_before:
        assert np.allclose(net_before[f], net_after[f], atol=1e-6), f
    from qa.model.flags import flag_targets
    chats = list(read_path(str(ROOT / "data/labelled/hand/train_hand-a.jsonl")))
    rep = np.array([flag_targets(c, ["mechanical_repetition"])["mechanical_repetition"] >= 0.5 for c in chats])
    _, net = _network_probs(clf, chats)
    assert rep.sum() >= 5 and net["mechanical_repetition"][rep].mean() > net["mechanical_repetition"][~rep].mean() + 0.3
    got = choose(model, ["mechanical_repetition"], dev_ex, [])
    cfg = json.loads((model / "config.json").read_text(encoding="utf-8"))
    assert got["mechanical_repetition"]["network_alone"] is True
    assert cfg["flag_thresholds"]["mechanical_repetition"] == got["mechanical_repetition"]["threshold"]


def test_thresholds_only_moves_a_threshold_and_nothing_else(tmp_path, monkeypatch):
    """``refit_turnflags.py --thresholds-only`` (a threshold gone stale after a lexicon change): no model is
    refitted, every weight stays byte for byte, and the flag's threshold becomes the one ``choose`` finds best on the
    dev chats with the rules as they are."""
    import refit_turnflags
    model = _model_on(tmp_path, [str(ROOT / "data/labelled/hand/train_hand-a.jsonl")])
    out = tmp_path / "out"
    weights = {p.name: p.read_bytes() for p in model.iterdir() if p.suffix == ".safetensors"}
    monkeypatch.setattr(sys, "argv", ["refit_turnflags.py", str(model), "--flags", "uncivil_language",
                                      "--thresholds-only", "--out", str(out)])
    refit_turnflags.main()
    for name, data in weights.items():
        assert (out / name).read_bytes() == data, name
    before = json.loads((model / "turnflags.json").read_text(encoding="utf-8"))
    after = json.loads((out / "turnflags.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in after.items() if k not in ("thresholds", "info")} == \
        {k: v for k, v in before.items() if k not in ("thresholds", "info")}
    assert {f: t for f, t in after["thresholds"].items() if f != "uncivil_language"} == \
        {f: t for f, t in before["thresholds"].items() if f != "uncivil_language"}
    chosen = after["info"]["refit"]["thresholds"]["uncivil_language"]
    assert after["thresholds"]["uncivil_language"] == chosen["threshold"] and chosen["chosen_on"] == ["dev"]
    assert chosen["chats"] == 40   # the dev split of the model's (here: one file's) training chats
    assert after["info"]["refit"]["flags"] == before["info"]["refit"]["flags"]   # what was refitted before stays said


def test_refit_options_given_twice_add_up():
    """``--select A --select B`` selects on both (it kept only B before session 39), as one ``--select A B`` does."""
    import refit_turnflags
    ap = refit_turnflags.arguments("")
    p, q = (str(ROOT / "data/probe" / f) for f in ("unanswered.jsonl", "unanswered_f.jsonl"))
    a = ap.parse_args(["m", "--flags", "unanswered_question", "--select", f"{p}:unanswered_question:odd",
                       "--select", f"{q}:unanswered_question", "--add", "x.jsonl", "--add", "y.jsonl"])
    assert a.select == [(p, "unanswered_question", "odd"), (q, "unanswered_question")]
    assert a.add == ["x.jsonl", "y.jsonl"]
    assert ap.parse_args(["m", "--flags", "vague_reply"]).select == []


def test_refocus_fits_the_agent_vocabulary_again_only_when_no_other_model_reads_it(tmp_path):
    """``refit_turnflags.py --refocus``: n-grams of the added chats (a new batch's insults) get focus
    columns; the customer side's vocabulary and every model not refitted stay as they were; and a refit that would
    leave a model reading the old vocabulary (privacy_leak beside uncivil_language) is refused."""
    import refit_turnflags
    hand = ROOT / "data/labelled/hand"
    model = _model_on(tmp_path, [str(hand / "train_hand-a.jsonl")])
    add = [str(hand / "train_hand-cc.jsonl"), str(hand / "train_hand-cf.jsonl")]
    with pytest.raises(SystemExit, match="privacy_leak"):
        refit_turnflags.refit(model, ["uncivil_language"], add, refocus=True)
    old = Classifier(model).ridge.turn_flags
    assert set(old.focus_readers("agent")) == {"uncivil_language", "privacy_leak"}   # the frozen first fits read none
    assert set(old.focus_readers("customer")) == {"unanswered_question"}
    new, _ = refit_turnflags.refit(model, ["uncivil_language", "privacy_leak"], add, refocus=True)
    before, after = old.focus["agent"].vocabulary_, new.focus["agent"].vocabulary_
    agent_text = "\n".join(m.norm for f in add for c in read_path(f) for m in c.messages
                           if m.role == "agent" and m.text)
    novel = set(after) - set(before)   # fitted here on the added chats alone: each new n-gram is theirs
    assert len(novel) > 100 and all(g in agent_text for g in novel)
    assert new.focus["customer"].vocabulary_ == old.focus["customer"].vocabulary_
    assert np.array_equal(new.focus["customer"].idf_, old.focus["customer"].idf_)
    for f, m in [*((f, new.models[f]) for f in ("vague_reply", "unanswered_question")),
                 *((f"frozen {f}", new.frozen[f]) for f in new.frozen)]:
        o = old.frozen[f.split()[-1]] if f.startswith("frozen") else old.models[f]
        assert np.array_equal(m["coef"], o["coef"]) and m["bias"] == o["bias"], f
    assert new.info["refit"]["refocused"] is True and new.info["refit"]["flags"] == ["uncivil_language", "privacy_leak"]
    chats = list(read_path(str(hand / "train_hand-cc.jsonl")))
    probs = new.chat_probs(chats)["uncivil_language"][0]
    gold = np.array([any("uncivil_language" in r["rules"] for r in c.labels["reviews"]) for c in chats])
    assert probs[gold].mean() > probs[~gold].mean() + 0.4   # chats it was fitted on: a plain sanity bound
