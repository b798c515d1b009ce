"""The decision rule: from a dimension's level probabilities (best level first) to one level.

- ``argmax``: the most probable level;
- ``expected``: the level nearest the expected grade;
- ``cutpoints``: thresholds on the expected level index Σ j·p_j (0 = best), chosen on the dev split to maximise
  QWK (weighted like the training loss, so reviewed and real chats count more than generated ones). Ordinal
  classifiers trained on mostly-4 labels tend to collapse onto the common level; thresholds fitted for QWK
  give back the spread the reviewers use.

A model with a gated ridge channel may carry a second set, ``cutpoints_ungated``, fitted on the dev chats the gate
does not claim (written and generated ones, each weighted by 1 − gate). A chat's thresholds are then
``g · cutpoints + (1 − g) · cutpoints_ungated`` with g its gate probability (``chat_cuts``): real-looking chats
keep the thresholds fitted on all dev chats, written ones get their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def decide_all(probs: np.ndarray, rule: str, cuts=None) -> np.ndarray:
    """Level index per row of ``probs`` [N, k] (levels ordinal, best first); ``cuts``: [k-1] thresholds, or
    [N, k-1] (one row per chat, ``chat_cuts``)."""
    idx = probs @ np.arange(probs.shape[1])
    if rule == "cutpoints" and cuts is not None and len(cuts):
        return (np.asarray(cuts, dtype=float) <= idx[:, None]).sum(1)   # how many thresholds it passes
    if rule == "expected":
        return np.clip(np.rint(idx), 0, probs.shape[1] - 1).astype(int)
    return probs.argmax(1)


def chat_cuts(cuts: Sequence[float], ungated: Sequence[float] | None, gate: np.ndarray) -> np.ndarray:
    """[N, k-1]: per chat, ``gate · cuts + (1 − gate) · ungated`` (``cuts`` for every chat without ``ungated``)."""
    g = np.asarray(gate, dtype=float)[:, None]
    c = np.asarray(cuts, dtype=float)[None, :]
    return np.repeat(c, len(g), 0) if not ungated else g * c + (1 - g) * np.asarray(ungated, dtype=float)[None, :]


def decide(p: np.ndarray, rule: str, cuts: Sequence[float] | None = None) -> int:
    """``decide_all`` for one distribution."""
    return int(decide_all(np.asarray(p, dtype=float)[None, :], rule, cuts)[0])


def weighted_qwk(gold: np.ndarray, pred: np.ndarray, k: int, weights: np.ndarray | None = None) -> float:
    """QWK over level indexes 0..k-1, each item counting ``weights`` (``qa.review.agreement.cohen_kappa``;
    0.0 where it is undefined, as in ``grade_metrics``)."""
    from qa.review.agreement import cohen_kappa
    kappa = cohen_kappa(gold, pred, range(k), "quadratic", weights)
    return 0.0 if kappa is None else kappa


def fit_cutpoints(idx: np.ndarray, gold: np.ndarray, k: int, weights: np.ndarray | None = None,
                  passes: int = 3, step: float = 0.02) -> list[float]:
    """Thresholds c_1 ≤ … ≤ c_{k-1} on the expected level index maximising weighted QWK: coordinate search
    from the midpoints (0.5, 1.5, …), each threshold tried on a grid between its neighbours."""
    cuts = [j + 0.5 for j in range(k - 1)]

    def score(c):
        return weighted_qwk(gold, np.searchsorted(np.asarray(c), idx, side="right"), k, weights)

    best = score(cuts)
    for _ in range(passes):
        for j in range(k - 1):
            lo = cuts[j - 1] if j else -0.5
            hi = cuts[j + 1] if j + 1 < k - 1 else k - 0.5
            for v in np.arange(lo, hi + 1e-9, step):
                trial = cuts[:j] + [float(v)] + cuts[j + 1:]
                s = score(trial)
                if s > best + 1e-9:
                    best, cuts = s, trial
    return [round(c, 3) for c in cuts]
