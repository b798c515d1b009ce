"""The decision rule: cutpoints on the expected level index, fitted for QWK."""

from __future__ import annotations

import numpy as np

from qa.model.decision import decide, decide_all, fit_cutpoints, weighted_qwk


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
