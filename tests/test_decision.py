"""The decision rule: cutpoints on the expected level index, fitted for QWK."""

from __future__ import annotations

import numpy as np

from qa.model.decision import chat_cuts, decide, decide_all, fit_cutpoints, weighted_qwk


def test_weighted_qwk_matches_sklearn_and_weights_count():
    from sklearn.metrics import cohen_kappa_score
    g = np.array([0, 1, 1, 2, 2, 0, 1])
    p = np.array([0, 1, 2, 2, 1, 1, 1])
    assert abs(weighted_qwk(g, p, 3) - cohen_kappa_score(g, p, weights="quadratic")) < 1e-9
    w = np.array([1, 1, 3, 1, 1, 1, 1.0])
    assert abs(weighted_qwk(g, p, 3, w) - cohen_kappa_score(g, p, weights="quadratic", sample_weight=w)) < 1e-9


def test_cutpoints_give_back_the_spread_argmax_collapses():
    """Every chat's most likely level is the middle one, but the expected index still ranks them: thresholds
    fitted for QWK recover the three levels that argmax collapses to one."""
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 300)
    shift = (gold - 1) * 0.1 + rng.normal(0, 0.02, 300)
    probs = np.stack([0.25 - shift, np.full(300, 0.5), 0.25 + shift], 1)
    assert set(decide_all(probs, "argmax")) == {1}
    cuts = fit_cutpoints(probs @ np.arange(3), gold, 3)
    pred = decide_all(probs, "cutpoints", cuts)
    assert weighted_qwk(gold, pred, 3) > 0.8 > weighted_qwk(gold, decide_all(probs, "argmax"), 3)
    assert cuts == sorted(cuts) and decide(probs[0], "cutpoints", cuts) == pred[0]
    assert decide(np.array([0.1, 0.2, 0.7]), "expected") == 2 and decide(np.array([0.5, 0.2, 0.3]), "argmax") == 0


def test_chat_cuts_blend_by_gate_and_decide_all_takes_one_row_per_chat():
    cuts, ungated = [0.5, 1.5], [1.0, 1.8]
    rows = chat_cuts(cuts, ungated, np.array([1.0, 0.0, 0.5]))
    assert np.allclose(rows, [[0.5, 1.5], [1.0, 1.8], [0.75, 1.65]])
    assert np.allclose(chat_cuts(cuts, None, np.array([0.2, 0.9])), [cuts, cuts])   # no second set: one set
    probs = np.array([[0.3, 0.6, 0.1], [0.3, 0.6, 0.1], [0.3, 0.6, 0.1]])          # expected index 0.8
    assert list(decide_all(probs, "cutpoints", rows)) == [1, 0, 1]
    assert list(decide_all(probs, "cutpoints", cuts)) == [1, 1, 1]


def test_ungated_cutpoints_fit_the_written_chats_and_leave_the_gated_ones():
    """Two kinds of chat whose expected index maps to grades differently: one set of cutpoints fitted on all
    of them serves neither; a second set fitted on the ungated chats, blended by the gate, lifts them."""
    from types import SimpleNamespace

    from qa.model.train import choose_ungated_cutpoints
    rng = np.random.default_rng(1)
    n = 400
    gate = np.r_[np.full(n // 2, 0.95), np.full(n // 2, 0.05)]
    gold = rng.integers(0, 3, n)
    idx = gold * 0.5 + rng.normal(0, 0.1, n) + np.where(gate < 0.5, 0.6, 0.0)   # written chats sit higher
    logits = {"d": np.log(np.stack([np.clip(1 - idx / 2, 1e-3, 1), np.full(n, 1e-3), np.clip(idx / 2, 1e-3, 1)],
                                   1))}
    p = np.exp(logits["d"]) / np.exp(logits["d"]).sum(1, keepdims=True)
    levels = ["a", "b", "c"]
    dev = [SimpleNamespace(targets={"d": None}, weight=1.0, majority=lambda d, lv, g=g: lv[g]) for g in gold]
    shared = fit_cutpoints(p @ np.arange(3), gold, 3)
    own, report = choose_ungated_cutpoints(logits, dev, {"d": levels}, {}, {"d": shared}, gate)
    before, after = report["d"]["dev_qwk_before_after"]["ungated"]
    assert report["d"]["kept"] and own["d"] == report["d"]["cutpoints"] and after > before + 0.05
    g_before, g_after = report["d"]["dev_qwk_before_after"]["gated"]
    assert g_after >= g_before - 0.02
