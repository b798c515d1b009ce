"""Agreement figures on an ordinal scale: exact / within-one, Cohen's kappa (plain, linear, quadratic),
Fleiss' kappa and Krippendorff's alpha (nominal, ordinal, interval).

Every function returns ``None`` where the figure is undefined (no data, or no variation to agree on: a
kappa's expected disagreement is zero), instead of NaN and a warning.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence

import numpy as np

Weights = str | None   # None (plain kappa) | "linear" | "quadratic"


def _index(values: Sequence[Hashable], labels: Sequence[Hashable]) -> np.ndarray:
    pos = {v: i for i, v in enumerate(labels)}
    return np.array([pos[v] for v in values], dtype=int)


def exact(a: Sequence, b: Sequence) -> float | None:
    """Share of pairs with the same grade."""
    return float(np.mean([x == y for x, y in zip(a, b, strict=True)])) if len(a) else None


def within_one(a: Sequence, b: Sequence, labels: Sequence) -> float | None:
    """Share of pairs at most one step apart on the scale ``labels``."""
    if not len(a):
        return None
    return float(np.mean(np.abs(_index(a, labels) - _index(b, labels)) <= 1))


def _disagreement(k: int, weights: Weights) -> np.ndarray:
    i, j = np.indices((k, k))
    if weights is None:
        return (i != j).astype(float)
    d = np.abs(i - j) / max(k - 1, 1)
    if weights == "linear":
        return d
    if weights == "quadratic":
        return d ** 2
    raise ValueError(f"unknown weights {weights!r}: use None, 'linear' or 'quadratic'")


def cohen_kappa(a: Sequence, b: Sequence, labels: Sequence, weights: Weights = None,
                sample_weight: Sequence[float] | None = None) -> float | None:
    """Cohen's kappa of two raters over the same items: 1 − Σ w·observed / Σ w·expected (chance from the
    raters' own marginals). ``weights="quadratic"`` gives the quadratic weighted kappa (QWK);
    ``sample_weight``: how much each item counts (default 1)."""
    if len(a) != len(b):
        raise ValueError("both raters need the same items")
    if not len(a):
        return None
    k = len(labels)
    obs = np.zeros((k, k))
    np.add.at(obs, (_index(a, labels), _index(b, labels)), 1 if sample_weight is None else np.asarray(sample_weight))
    exp = np.outer(obs.sum(1), obs.sum(0)) / obs.sum()
    w = _disagreement(k, weights)
    denom = float((w * exp).sum())
    return None if denom == 0 else float(1 - (w * obs).sum() / denom)


def fleiss_kappa(items: Sequence[Sequence], labels: Sequence) -> float | None:
    """Fleiss' kappa over items rated by two raters or more (items with fewer are left out). Items may have
    different numbers of ratings: each item's agreement is over its own pairs."""
    rows = [r for r in items if len(r) >= 2]
    if not rows:
        return None
    counts = np.zeros((len(rows), len(labels)))
    for i, r in enumerate(rows):
        np.add.at(counts[i], _index(r, labels), 1)
    n = counts.sum(1)
    p_item = ((counts * (counts - 1)).sum(1) / (n * (n - 1))).mean()
    p_cat = counts.sum(0) / n.sum()
    p_exp = float((p_cat ** 2).sum())
    return None if p_exp == 1 else float((p_item - p_exp) / (1 - p_exp))


def _delta2(values: np.ndarray, n_c: np.ndarray, metric: str) -> np.ndarray:
    """Squared distances between the (sorted) values under ``metric``."""
    i, j = np.indices((len(values), len(values)))
    if metric == "nominal":
        return (i != j).astype(float)
    if metric == "interval":
        return (values[i] - values[j]) ** 2
    if metric == "ordinal":   # Krippendorff: (Σ_{g=c..k} n_g − (n_c + n_k) / 2)²
        cum = np.concatenate([[0], np.cumsum(n_c)])
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        return (cum[hi + 1] - cum[lo] - (n_c[i] + n_c[j]) / 2) ** 2
    raise ValueError(f"unknown metric {metric!r}: use 'nominal', 'ordinal' or 'interval'")


def krippendorff_alpha(units: Sequence[Sequence[float]], metric: str = "ordinal") -> float | None:
    """Krippendorff's alpha: 1 − D_o / D_e over the coincidence matrix of pairable values. ``units`` holds each
    unit's values (missing ones simply absent); units with fewer than two values are left out."""
    units = [list(u) for u in units if len(u) >= 2]
    if not units:
        return None
    values = np.array(sorted({v for u in units for v in u}), dtype=float)
    pos = {v: i for i, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for u in units:
        for x, y in itertools.permutations(u, 2):
            o[pos[x], pos[y]] += 1 / (len(u) - 1)
    n_c = o.sum(1)
    n = n_c.sum()
    d2 = _delta2(values, n_c, metric)
    d_e = float((np.outer(n_c, n_c) * d2).sum())
    return None if d_e == 0 else float(1 - (n - 1) * (o * d2).sum() / d_e)


def ordinal_pair_stats(a: Sequence[int], b: Sequence[int], labels: Sequence[int]) -> dict[str, float | int | None]:
    """Flat figures for two graders of the same items: n, exact, within_one, kappa, qwk, mean_diff (a − b)."""
    return {"n": len(a), "exact": exact(a, b), "within_one": within_one(a, b, labels),
            "kappa": cohen_kappa(a, b, labels), "qwk": cohen_kappa(a, b, labels, "quadratic"),
            "mean_diff": float(np.mean(np.subtract(a, b))) if len(a) else None}
