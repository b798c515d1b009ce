"""The classifier: a tiny model trained for a few steps, save/load, custom-rubric label maps, eval metrics."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import ROOT

pytest.importorskip("torch")
pytest.importorskip("transformers")

from qa.model.data import Example, load_examples, targets  # noqa: E402
from qa.model.metrics import grade_metrics  # noqa: E402

HAND = ROOT / "data" / "labelled" / "hand" / "train_hand-a.jsonl"


def _subset(tmp_path, n=24, src=HAND):
    lines = src.read_text(encoding="utf-8").splitlines()[:n]
    p = tmp_path / "train.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from qa.model.train import TrainArgs, train
    d = tmp_path_factory.mktemp("tiny")
    data = _subset(d)
    metrics = train(TrainArgs(data=[str(data)], out=str(d / "model"), base_model="none", epochs=2, batch_size=4,
                              max_steps=4, dev_fraction=0.25, seed=1))
    return d / "model", metrics


def test_model_train_writes_a_complete_directory(tiny_model):
    path, metrics = tiny_model
    for name in ("config.json", "model.safetensors", "tokenizer.json", "ngrams.json", "labels.json",
                 "metrics.json", "training_args.json", "MODEL_CARD.md", "rubric.yaml"):
        assert (path / name).is_file(), name
    assert not (path / "checkpoint").exists()
    assert json.loads((path / "labels.json").read_text()) == {d: [5, 4, 3, 2] for d in
                                                              ("attitude", "etiquette", "professionalism", "clarity")}
    assert metrics["train_examples"] == 18 and metrics["dev_examples"] == 6
    assert metrics["decision"] in ("argmax", "expected", "cutpoints")
    assert "attitude" in (path / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_model_predictions_are_distributions_with_agent_evidence(tiny_model):
    from qa.io.read import read_path
    from qa.model.predict import Classifier
    clf = Classifier(tiny_model[0])
    convs = [c for c in read_path(ROOT / "data" / "samples" / "samples.jsonl")][:5]
    preds = clf.predict(convs, batch_size=2)
    assert len(preds) == 5
    for conv, p in zip(convs, preds):
        assert list(p) == ["attitude", "etiquette", "professionalism", "clarity"]
        for d in p.values():
            assert abs(sum(d.probs.values()) - 1) < 1e-5
            assert d.level in (5, 4, 3, 2) and 2 <= d.expected <= 5
            assert d.confidence == pytest.approx(d.probs[d.level])
            assert d.evidence and all(conv.messages[i].role != "customer" for i in d.evidence)


def test_model_save_load_round_trip_gives_identical_outputs(tiny_model, tmp_path):
    from qa.io.read import read_path
    from qa.model.predict import Classifier
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model[0], copy)
    convs = [c for c in read_path(ROOT / "data" / "samples" / "samples.jsonl")][:4]
    a = Classifier(tiny_model[0]).predict(convs)
    b = Classifier(copy).predict(convs)
    for x, y in zip(a, b):
        for d in x:
            assert x[d].probs == pytest.approx(y[d].probs, abs=1e-6)
            assert x[d].evidence == y[d].evidence


def test_model_resume_continues_from_checkpoint(tmp_path):
    from qa.model.train import TrainArgs, train
    data = _subset(tmp_path, 12)
    args = dict(data=[str(data)], out=str(tmp_path / "m"), base_model="none", batch_size=4, dev_fraction=0.25,
                patience=5, seed=3)
    first = train(TrainArgs(epochs=1, **args))
    assert len(first["history"]) == 1
    # a run killed after epoch 1 leaves its checkpoint; fake that by training one epoch and keeping it
    import torch  # noqa: F401
    (tmp_path / "m" / "checkpoint").mkdir()
    from qa.model import train as train_mod
    saved = {}
    orig = train_mod.shutil.rmtree
    train_mod.shutil.rmtree = lambda p, **k: saved.setdefault("kept", p)
    try:
        train(TrainArgs(epochs=1, **args))
    finally:
        train_mod.shutil.rmtree = orig
    from qa.errors import ModelError
    for other in ({"batch_size": 2}, {"seed": 4}):          # another run's checkpoint: refused, not mixed in
        with pytest.raises(ModelError, match="other data, dev split or options"):
            train(TrainArgs(epochs=2, resume=True, **{**args, **other}))
    resumed = train(TrainArgs(epochs=2, resume=True, **args))
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]


def test_model_checkpoint_is_renamed_into_place_and_a_damaged_one_is_named(tmp_path, monkeypatch):
    """torch.save wrote straight onto state.pt: a Ctrl-C mid-write left a truncated file that --resume crashed on."""
    from qa.errors import ModelError
    from qa.model import train as train_mod
    from qa.model.train import TrainArgs, train
    data = _subset(tmp_path, 12)
    args = dict(data=[str(data)], out=str(tmp_path / "m"), base_model="none", batch_size=4, dev_fraction=0.25,
                patience=5, seed=3)
    real = train_mod.os.replace

    def interrupted(src, dst):                             # Ctrl-C as the first checkpoint is put in place
        real(src, dst)
        raise KeyboardInterrupt
    monkeypatch.setattr(train_mod.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(TrainArgs(epochs=2, **args))
    monkeypatch.setattr(train_mod.os, "replace", real)
    ckpt = tmp_path / "m" / "checkpoint"
    assert sorted(p.name for p in ckpt.iterdir()) == ["state.pt"]
    good = (ckpt / "state.pt").read_bytes()
    (ckpt / "state.pt").write_bytes(good[:len(good) // 3])
    with pytest.raises(ModelError, match="cannot be read"):
        train(TrainArgs(epochs=2, resume=True, **args))
    (ckpt / "state.pt").write_bytes(good)
    assert [h["epoch"] for h in train(TrainArgs(epochs=2, resume=True, **args))["history"]] == [1, 2]


def test_model_label_map_follows_a_custom_rubric(tmp_path):
    from qa.model.train import TrainArgs, train
    rubric = tmp_path / "mini.yaml"
    rubric.write_text(
        "name: mini\nscale: [3, 2, 1]\n"
        "dimensions:\n"
        "  warmth: {name: 温度, source: model, levels: {3: 热情, 2: 一般, 1: 冷淡}}\n"
        "  speed: {name: 速度, source: rules, levels: {3: 快, 2: 中, 1: 慢}}\n", encoding="utf-8")
    rows = []
    for i, (text, grade) in enumerate([("亲亲在的呢~很高兴为您服务", 3), ("有", 1), ("您好 请稍等", 2)] * 4):
        rows.append({"id": f"m{i}", "messages": [{"role": "customer", "text": "在吗"}, {"role": "agent", "text": text}],
                     "labels": {"reviews": [{"reviewer": "r1", "grades": {"warmth": grade}}]}})
    data = tmp_path / "mini.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    train(TrainArgs(data=[str(data)], out=str(tmp_path / "m"), rubric=str(rubric), base_model="none", epochs=1,
                    batch_size=4, use_features=False))
    assert json.loads((tmp_path / "m" / "labels.json").read_text()) == {"warmth": [3, 2, 1]}
    from qa.model.predict import Classifier
    from qa.io.read import read_path
    p = Classifier(tmp_path / "m").predict([c for c in read_path(data)][:2])
    assert set(p[0]) == {"warmth"} and set(p[0]["warmth"].probs) == {3, 2, 1}


def test_eval_metrics_match_a_hand_computed_case():
    # ref 5 4 3 2 5, pred 5 4 2 2 4 → indexes ref [0,1,2,3,0], pred [0,1,3,3,1]
    # observed weighted disagreement: two off-by-one cells, weight 1/9 each → (2/9)/5 = 10/225
    # expected: Σ (i−j)² r_i c_j = 74 (r = 2,1,1,1; c = 1,2,0,2) → 74/9/25 = 74/225 ⇒ QWK = 1 − 10/74
    m = grade_metrics(references=[5, 4, 3, 2, 5], predictions=[5, 4, 2, 2, 4], levels=[5, 4, 3, 2])
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["within_one"] == pytest.approx(1.0)
    assert m["qwk"] == pytest.approx(1 - 10 / 74)
    assert m["macro_f1"] == pytest.approx((2 / 3 * 3 + 0) / 4)   # classes 5, 4, 2: F1 2/3; class 3: 0
    assert m["confusion"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]]


def test_soft_targets_from_several_reviewers(tmp_path):
    from tests.conftest import make_conv
    conv = make_conv(("customer", "在吗", 0), ("agent", "在的", 5),
                     labels={"reviews": [{"reviewer": "a", "grades": {"attitude": 5}},
                                         {"reviewer": "b", "grades": {"attitude": 4, "clarity": 3}},
                                         {"reviewer": "c", "grades": {"attitude": "4"}}]})
    t = targets(conv, {"attitude": [5, 4, 3, 2], "clarity": [5, 4, 3, 2], "etiquette": [5, 4, 3, 2]})
    assert t["attitude"] == pytest.approx([1 / 3, 2 / 3, 0, 0])
    assert t["clarity"] == [0, 0, 1, 0] and "etiquette" not in t
    assert Example(conv, t).majority("attitude", [5, 4, 3, 2]) == 4


def test_ngram_channel_round_trips(tmp_path):
    from qa.model.ngrams import Ngrams
    n = Ngrams.fit(["客:在吗 服:亲亲在的", "客:发货了吗 服:已经发货了哦", "客:在吗 服:在"] * 2)
    n.save(tmp_path)
    m = Ngrams.load(tmp_path)
    a, b = n.transform(["服:亲亲已经发货"]), m.transform(["服:亲亲已经发货"])
    assert np.abs((a - b).toarray()).max() < 1e-5 and a.nnz > 0


def test_evaluate_reports_model_and_both_baselines(tiny_model, tmp_path):
    from qa.model.evaluate import evaluate
    held_out = tmp_path / "held.jsonl"
    held_out.write_text("\n".join(HAND.read_text(encoding="utf-8").splitlines()[30:42]) + "\n", encoding="utf-8")
    report = evaluate(tiny_model[0], [str(held_out)])
    assert report["n"] == 12 and set(report["systems"]) == {"model", "majority", "ngram_lr"}
    for system in report["systems"].values():
        for d in ("attitude", "etiquette", "professionalism", "clarity"):
            m = system[d]
            assert m["n"] == 12 and 0 <= m["accuracy"] <= m["within_one"] <= 1
            assert sum(map(sum, m["confusion"])) == 12
    # the majority baseline predicts one level everywhere: one non-empty confusion column
    cm = report["systems"]["majority"]["attitude"]["confusion"]
    assert sum(1 for j in range(4) if any(row[j] for row in cm)) == 1


def _dialeval_file(path, n=12):
    """Made-up helpdesk dialogues in the DialEval layout, three annotators each (not STC-3 data)."""
    talks = [(["快递三天没动了", "帮我查一下"], ["您好，已为您催促快递，预计明天到"], "CNUG*", "HNUG*", 2),
             (["退款怎么还没到"], ["请耐心等待"], "CNUG0", "HNaN", -1),
             (["你好"], ["您好，请问有什么可以帮您？"], "CNaN", "HNUG", 0)]
    dialogues = []
    for i in range(n):
        cus, agt, cn, hn, q = talks[i % 3]
        turns = [{"sender": "customer", "utterances": cus}, {"sender": "helpdesk", "utterances": agt},
                 {"sender": "customer", "utterances": ["好的谢谢"]}]
        anns = [{"quality": {"A": q, "S": q, "E": q}, "nugget": [cn, hn, "CNaN" if k else "CNUG"]} for k in range(3)]
        dialogues.append({"id": f"d{i}", "turns": turns, "annotations": anns})
    path.write_text(json.dumps(dialogues, ensure_ascii=False), encoding="utf-8")
    return path


def test_nugget_head_trains_and_writes_dialeval_submission(tmp_path):
    from typer.testing import CliRunner

    from qa.cli import app
    from qa.model.train import TrainArgs, train
    data = _dialeval_file(tmp_path / "dch.json")
    rubric = str(ROOT / "rubrics" / "stc3.yaml")
    train(TrainArgs(data=[str(data)], out=str(tmp_path / "m"), rubric=rubric, base_model="none", epochs=1,
                    batch_size=4, use_features=False, use_ngrams=False, dev_fraction=0.25))
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["nuggets"] == {"customer": ["CNUG0", "CNUG", "CNUG*", "CNaN"], "agent": ["HNUG", "HNUG*", "HNaN"]}
    # a softmax temperature per role, chosen on the dev turns: never worse there than none
    from qa.model.train import NUGGET_TEMPERATURES
    assert set(cfg["nugget_temperatures"]) == {"customer", "agent"}
    assert set(cfg["nugget_temperatures"].values()) <= set(NUGGET_TEMPERATURES)
    fit = json.loads((tmp_path / "m" / "metrics.json").read_text())["dev_nugget_jsd"]
    assert all(v["jsd"] <= v["jsd_t1"] for v in fit.values())
    from qa.io import read_path
    from qa.model.predict import Classifier
    clf = Classifier(tmp_path / "m")
    conv = next(c for c in read_path(data) if hasattr(c, "messages"))

    def entropy(t):
        clf.config.nugget_temperatures = {"customer": t, "agent": t}
        p = np.array(list(clf.predict_full([conv])[0][1][0].values()))
        return float(-(p * np.log(p)).sum())
    assert entropy(0.5) < entropy(1.0) < entropy(2.0)     # a lower temperature sharpens
    # the submission is made for input that carries no annotations
    bare = json.loads(data.read_text())
    for d in bare:
        del d["annotations"]
    (tmp_path / "bare.json").write_text(json.dumps(bare, ensure_ascii=False), encoding="utf-8")
    r = CliRunner().invoke(app, ["predict", str(tmp_path / "bare.json"), "--model", str(tmp_path / "m"),
                                 "--format", "dialeval", "--out", str(tmp_path / "sub.json")])
    assert r.exit_code == 0, r.output
    sub = json.loads((tmp_path / "sub.json").read_text())
    assert [s["id"] for s in sub] == [d["id"] for d in bare]
    for s in sub:
        assert set(s["quality"]) == {"A", "S", "E"}
        assert set(s["quality"]["A"]) == {"2", "1", "0", "-1", "-2"}
        assert len(s["nugget"]) == 3
        assert set(s["nugget"][0]) == {"CNUG0", "CNUG", "CNUG*", "CNaN"}
        assert set(s["nugget"][1]) == {"HNUG", "HNUG*", "HNaN"}
        for dist in [*s["quality"].values(), *s["nugget"]]:
            assert sum(dist.values()) == pytest.approx(1, abs=1e-4)


def test_nugget_targets_from_reviewers():
    from qa.model.data import nugget_targets
    from tests.conftest import make_conv
    conv = make_conv(("customer", "退款呢", 0), ("agent", "马上处理", 5),
                     labels={"reviews": [{"grades": {}, "nuggets": ["CNUG0", "HNUG"]},
                                         {"grades": {}, "nuggets": ["CNUG*", "HNUG"]}]})
    t = nugget_targets(conv, {"customer": ["CNUG0", "CNUG", "CNUG*", "CNaN"], "agent": ["HNUG", "HNUG*", "HNaN"]})
    assert t == {0: [0.5, 0, 0.5, 0], 1: [1.0, 0, 0]}


def test_file_weights_follow_glob_patterns_and_keep_order(tmp_path):
    from qa.model.data import file_weight, load_examples
    a, b = _subset(tmp_path, 5), tmp_path / "gen.jsonl"
    b.write_text("\n".join(HAND.read_text(encoding="utf-8").splitlines()[5:8]) + "\n", encoding="utf-8")
    assert file_weight(str(b), {"*/gen.jsonl": 0.3}) == 0.3 and file_weight(str(a), {"*/gen.jsonl": 0.3}) == 1.0
    dims = {"attitude": [5, 4, 3, 2]}
    plain = load_examples([str(a), str(b)], dims)
    weighted = load_examples([str(a), str(b)], dims, weights={"gen.jsonl": 0.3})
    assert [e.conv.id for e in weighted] == [e.conv.id for e in plain]
    assert [e.weight for e in weighted] == [1.0] * 5 + [0.3] * 3


def test_model_resume_with_no_epochs_left_finishes_without_refitting(tmp_path, monkeypatch):
    from qa.model import train as train_mod
    from qa.model.train import TrainArgs, train
    data = _subset(tmp_path, 12)
    args = dict(data=[str(data)], out=str(tmp_path / "m"), base_model="none", batch_size=4, dev_fraction=0.25,
                seed=3)
    monkeypatch.setattr(train_mod.shutil, "rmtree", lambda p, **k: None)   # keep the checkpoint, as a killed run would
    first = train(TrainArgs(epochs=1, **args))
    calls = []
    real = train_mod._fit_ngram_channel
    monkeypatch.setattr(train_mod, "_fit_ngram_channel", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = train(TrainArgs(epochs=1, resume=True, **args))
    assert calls == [] and again["history"] == first["history"]
    assert (tmp_path / "m" / "model.safetensors").is_file()


def test_ngram_fit_is_cached_and_parallel_fits_agree(tmp_path, monkeypatch):
    """A second run on the same data reuses the cached n-gram fit (same weights, no refit); the fit's result
    does not depend on how many processes run it."""
    from qa.model import ngrams as ngrams_mod
    from qa.model.train import TrainArgs, train
    monkeypatch.setenv("QA_NGRAM_CACHE", str(tmp_path / "fits"))
    data = _subset(tmp_path, 16)
    args = dict(data=[str(data)], base_model="none", batch_size=4, dev_fraction=0.25, seed=5, epochs=1,
                use_encoder=False)
    train(TrainArgs(out=str(tmp_path / "a"), **args))
    assert len(list((tmp_path / "fits").glob("*.npz"))) == 1
    calls = []
    real = ngrams_mod.fit_soft_lr
    monkeypatch.setattr(ngrams_mod, "fit_soft_lr", lambda *a, **k: calls.append(1) or real(*a, **k))
    train(TrainArgs(out=str(tmp_path / "b"), **args))
    assert calls == []
    from safetensors.numpy import load_file
    wa, wb = (load_file(tmp_path / d / "model.safetensors") for d in "ab")
    assert np.array_equal(wa["ngram.weight"], wb["ngram.weight"])
    train(TrainArgs(out=str(tmp_path / "c"), **{**args, "seed": 6}))       # other data split: a new fit
    assert calls and len(list((tmp_path / "fits").glob("*.npz"))) == 2

    x = np.random.default_rng(0).random((60, 8))
    t = np.eye(3)[np.random.default_rng(1).integers(0, 3, 60)]
    one = real(x, t, seed=2, folds=3, jobs=1)
    two = real(x, t, seed=2, folds=3, jobs=2)
    assert one[2] == two[2] and np.allclose(one[0], two[0]) and np.allclose(one[3], two[3])


def test_explicit_dev_files_take_their_file_weights(tmp_path, monkeypatch):
    """--weight patterns apply to --dev files too, so dev scores count generated chats as the loss does."""
    from qa.model import train as train_mod
    from qa.model.train import TrainArgs, train
    data = _subset(tmp_path, 12)
    dev = tmp_path / "dev_gen.jsonl"
    dev.write_text("\n".join(HAND.read_text(encoding="utf-8").splitlines()[12:18]) + "\n", encoding="utf-8")
    seen = []
    real = train_mod.choose_decision
    monkeypatch.setattr(train_mod, "choose_decision", lambda lg, ex, *a: seen.extend(e.weight for e in ex)
                        or real(lg, ex, *a))
    train(TrainArgs(data=[str(data)], dev=[str(dev)], out=str(tmp_path / "m"), base_model="none", batch_size=4,
                    epochs=1, seed=3, use_encoder=False, weights={"*dev_gen.jsonl": 0.3}))
    assert seen == [0.3] * 6


def test_dev_ids_pick_the_dev_split_whatever_files_are_added(tmp_path):
    """--dev-ids: the listed chats are the dev split, the same one when more training files come."""
    from qa.errors import ModelError
    from qa.model.data import load_examples, split_by_ids
    from qa.model.train import TrainArgs
    a, b = _subset(tmp_path, 10), tmp_path / "more.jsonl"
    b.write_text("\n".join(HAND.read_text(encoding="utf-8").splitlines()[10:16]) + "\n", encoding="utf-8")
    dims = {"attitude": [5, 4, 3, 2]}
    ids = [e.conv.id for e in load_examples([str(a)], dims)]
    (tmp_path / "dev_ids.txt").write_text(f"# two chats\n{ids[3]}\n{ids[7]}  # a comment\n\n", encoding="utf-8")
    for files in ([str(a)], [str(a), str(b)]):
        tr, dev = split_by_ids(load_examples(files, dims), str(tmp_path / "dev_ids.txt"))
        assert [e.conv.id for e in dev] == [ids[3], ids[7]]
        assert len(tr) == len(load_examples(files, dims)) - 2
    (tmp_path / "other.txt").write_text("no-such-chat\n", encoding="utf-8")
    with pytest.raises(ModelError, match="none of its 1 ids"):
        split_by_ids(load_examples([str(a)], dims), str(tmp_path / "other.txt"))
    with pytest.raises(ValueError, match="not both"):
        TrainArgs(data=[str(a)], out=str(tmp_path / "m"), dev=[str(b)], dev_ids=str(tmp_path / "dev_ids.txt"))


def test_train_resume_into_a_finished_model_folder_is_refused(tmp_path, capsys):
    """A finished (or calibrated) model keeps no checkpoint: --resume trained a new model over it."""
    from tests.conftest import run_main
    done = tmp_path / "m"
    shutil.copytree(ROOT / "models" / "default", done)
    code, _, err = run_main(capsys, "train", ROOT / "data" / "labelled" / "eval" / "eval_eval-f.jsonl", "--out", done,
                            "--resume")
    assert code == 2 and "holds no checkpoint" in " ".join(err.split())
    assert (done / "model.safetensors").read_bytes() == (ROOT / "models" / "default" / "model.safetensors").read_bytes()


def test_fit_soft_lr_survives_a_fold_without_a_rare_flags_positive():
    """A flag raised in 1 of 60 chats: the C search's hold-out split or a fold kept no positive, and scikit-learn
    stopped the whole training run (some seeds only)."""
    from scipy import sparse

    from qa.model.ngrams import fit_soft_lr
    rng = np.random.default_rng(0)
    x = sparse.csr_matrix(rng.random((60, 8)))
    y = np.zeros((60, 2), dtype=np.float32)
    y[:, 0] = 1
    y[7] = (0, 1)
    for seed in range(6):
        coef, inter, c, oof = fit_soft_lr(x, y, seed=seed, folds=5, jobs=1)
        assert coef.shape == (2, 8) and oof.shape == (60, 2) and np.isfinite(oof).all()


def test_split_keeps_a_conversations_copies_on_one_side():
    """Two reviewers' files of the same chats: copies landed on both sides, and dev QWK scored trained-on chats."""
    from qa.model.data import split
    ex = load_examples([str(ROOT / "data" / "labelled" / "eval" / "eval_eval-f.jsonl")] * 2,
                       {d: [5, 4, 3, 2] for d in ("attitude", "etiquette", "professionalism", "clarity")})
    train_ex, dev_ex = split(ex, 0.2, 3)
    assert len(dev_ex) == round(len(ex) * 0.2) and not {e.conv.id for e in train_ex} & {e.conv.id for e in dev_ex}


def test_eval_baselines_train_on_the_models_own_split(tmp_path):
    """--dev-ids was ignored: the baselines trained on the model's dev chats, and a relative path was read from
    wherever qa eval ran."""
    from qa.model.evaluate import training_split
    dims = {d: [5, 4, 3, 2] for d in ("attitude", "etiquette", "professionalism", "clarity")}
    data = ROOT / "data" / "labelled" / "eval" / "eval_eval-f.jsonl"
    shutil.copy(data, tmp_path / "d.jsonl")
    ids = [json.loads(ln)["id"] for ln in data.read_text("utf-8").splitlines()[:30]]
    (tmp_path / "dev.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    model = tmp_path / "m"
    model.mkdir()
    (model / "training_args.json").write_text(json.dumps({"data": ["d.jsonl"], "dev_ids": "dev.txt", "seed": 1,
                                                          "dev_fraction": 0.1, "cwd": str(tmp_path)}), "utf-8")
    got = training_split(model, dims, None)
    assert len(got) == len(data.read_text("utf-8").splitlines()) - 30 and not {e.conv.id for e in got} & set(ids)
    (tmp_path / "gen").mkdir()
    shutil.copy(data, tmp_path / "gen" / "g.jsonl")       # a weight's pattern names the path as training gave it
    (model / "training_args.json").write_text(json.dumps({"data": ["gen/g.jsonl"], "weights": {"gen/*": 0.3},
                                                          "seed": 1, "dev_fraction": 0.1, "cwd": str(tmp_path)}), "utf-8")
    assert {e.weight for e in training_split(model, dims, None)} == {0.3}


def test_train_refuses_a_weight_pattern_that_matches_no_file_and_patience_0(tmp_path, capsys):
    """A --weight pattern that matched nothing weighed nothing while the card said it was applied; --patience 0
    trained one epoch whatever --epochs said."""
    from tests.conftest import run_main
    data = ROOT / "data" / "labelled" / "eval" / "eval_eval-f.jsonl"
    code, _, err = run_main(capsys, "train", data, "--out", tmp_path / "a", "--weight", "./data/x.jsonl=2")
    assert code == 2 and "matches none of the training files" in err and not (tmp_path / "a").exists()
    code, _, err = run_main(capsys, "train", data, "--out", tmp_path / "b", "--patience", "0")
    assert code == 2 and "--patience" in err


def test_macro_f1_leaves_out_a_level_nobody_used():
    from qa.model.metrics import grade_metrics
    m = grade_metrics(references=[5, 4, 5, 4], predictions=[5, 4, 5, 4], levels=[5, 4, 3, 2])
    assert m["macro_f1"] == 1.0 and m["accuracy"] == 1.0


def test_from_model_without_ridge_on_keeps_the_models_channel_and_grades(tmp_path):
    """Without --ridge-on the refit dropped the model's ridge channel and turn models: with --keep-decision ("its
    grades") 10-18 of 80 levels still moved."""
    from qa.model.predict import Classifier
    from qa.model.train import TrainArgs, train
    lines = (ROOT / "data" / "labelled" / "eval" / "eval_eval-g.jsonl").read_text("utf-8").splitlines()
    own = tmp_path / "own.jsonl"
    own.write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    default = ROOT / "models" / "default"
    train(TrainArgs(data=[str(own)], out=str(tmp_path / "m"), from_model=str(default), keep_decision=True, seed=1))
    assert {"ridge.json", "turnflags.json"} <= {p.name for p in (tmp_path / "m").iterdir()}
    convs = [e.conv for e in load_examples([str(own)], {"attitude": [5, 4, 3, 2]})[:20]]
    a, b = Classifier(default).predict_all(convs), Classifier(tmp_path / "m").predict_all(convs)
    assert [{d: g.level for d, g in p.grades.items()} for p in a] == [{d: g.level for d, g in p.grades.items()}
                                                                      for p in b]


@pytest.mark.parametrize("value,level", [("４", 4), (" 4 ", 4), (4.0, 4), ("3.0", 3), (4.5, None), (True, None),
                                         (6, None)])
def test_a_grade_is_read_as_import_review_reads_it(value, level):
    from qa.model.data import _level_key
    assert _level_key(value, [5, 4, 3, 2]) == level


def test_card_command_names_only_options_qa_train_has():
    from qa.model.card import _command
    cmd = _command({"data": ["a.jsonl"], "out": "m", "base_model": None, "max_ngrams": 30000, "max_tokens": 64,
                    "dev_ids": "d.txt", "from_model": "models/default", "keep_decision": True})
    assert "None" not in cmd and "--max-" not in cmd
    assert "--dev-ids d.txt --from-model models/default --keep-decision" in cmd
