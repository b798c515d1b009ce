"""Distribution measures of the NTCIR-14 STC-3 dialogue quality (DQ) and nugget detection (ND) subtasks.

A system predicts, per dialogue, the distribution of the annotators' grades (DQ, ordinal bins) and,
per turn, the distribution of their nugget labels (ND, nominal bins); these functions compare a
predicted distribution ``p`` with the gold one ``q``. Definitions follow Zeng, Kato, Sakai et al.,
"Overview of the NTCIR-14 Short Text Conversation Task: Dialogue Quality and Nugget Detection
Subtasks" (2019), Sakai, "Towards Automatic Evaluation of Multi-Turn Dialogues" (EVIA 2017), and the
organisers' evaluation script: NMD and RSNOD for DQ, JSD and RNSS for ND. Inputs are renormalised
to sum to 1. Lower is better for all four.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

QUALITY_DIMS = ("A", "S", "E")
QUALITY_SCALE = (2, 1, 0, -1, -2)                      # bin order of the DQ distributions
C_NUGGET_TYPES = ("CNUG0", "CNUG", "CNUG*", "CNaN")    # customer turns: trigger, regular, goal, not-a-nugget
H_NUGGET_TYPES = ("HNUG", "HNUG*", "HNaN")             # helpdesk turns: regular, goal, not-a-nugget


def _pair(p: Sequence[float], q: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.shape != q.shape or p.ndim != 1 or len(p) < 2:
        raise ValueError(f"need two distributions over the same ≥ 2 bins, got shapes {p.shape} and {q.shape}")
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("distributions must be non-negative with a positive sum")
    return p / p.sum(), q / q.sum()


def nmd(p: Sequence[float], q: Sequence[float]) -> float:
    """Normalised Match Distance (STC-3 DQ): Σ_i |P_i − Q_i| / (n − 1), P, Q the cumulative sums.

    The earth mover's distance between ordinal histograms, scaled into [0, 1].
    """
    p, q = _pair(p, q)
    return float(np.abs(np.cumsum(p) - np.cumsum(q)).sum() / (len(p) - 1))


def _od(p: np.ndarray, q: np.ndarray) -> float:
    """Order-aware divergence OD(p‖q) = (1/|B*|) Σ_{i∈B*} DW_i, B* = {i: p_i > 0},
    DW_i = Σ_j |i − j| (p_j − q_j)² (Sakai 2017)."""
    idx = np.arange(len(p))
    sq = (p - q) ** 2
    dw = np.abs(idx[:, None] - idx[None, :]) @ sq   # DW_i for every bin i
    return float(dw[p > 0].mean())


def rsnod(p: Sequence[float], q: Sequence[float]) -> float:
    """Root Symmetric Normalised Order-aware Divergence (STC-3 DQ).

    SNOD = (OD(p‖q) + OD(q‖p)) / 2 and RSNOD = sqrt(SNOD / (n − 1)); see ``_od``.
    """
    p, q = _pair(p, q)
    return float(np.sqrt((_od(p, q) + _od(q, p)) / 2 / (len(p) - 1)))


def jsd(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen–Shannon divergence, base 2 (STC-3 ND): (KL(p‖m) + KL(q‖m)) / 2, m = (p + q) / 2; in [0, 1]."""
    p, q = _pair(p, q)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return (kl(p) + kl(q)) / 2


def rnss(p: Sequence[float], q: Sequence[float]) -> float:
    """Root Normalised Sum of Squares (STC-3 ND): sqrt(Σ (p_i − q_i)² / 2); in [0, 1]."""
    p, q = _pair(p, q)
    return float(np.sqrt(((p - q) ** 2).sum() / 2))


Metric = Callable[[Sequence[float], Sequence[float]], float]


def mean_metric(metric: Metric, preds: Iterable[Sequence[float]], golds: Iterable[Sequence[float]]) -> float:
    """The mean of ``metric`` over paired predicted and gold distributions (the DQ score of a run)."""
    scores = [metric(p, q) for p, q in zip(preds, golds, strict=True)]
    if not scores:
        raise ValueError("no distributions to compare")
    return float(np.mean(scores))


def mean_nmd(preds, golds) -> float:
    return mean_metric(nmd, preds, golds)


def mean_rsnod(preds, golds) -> float:
    return mean_metric(rsnod, preds, golds)


def nugget_score(metric: Metric, preds: Sequence[Sequence[Sequence[float]]],
                 golds: Sequence[Sequence[Sequence[float]]], roles: Sequence[Sequence[str]],
                 alpha: float = 0.5) -> float:
    """The STC-3 ND score: per dialogue, α·mean over customer turns + (1 − α)·mean over helpdesk turns
    of ``metric`` (``roles`` holds "customer" or anything else per turn); then the mean over dialogues.
    A dialogue with turns of only one role scores that role's mean."""
    out = []
    for pd_, gd, rd in zip(preds, golds, roles, strict=True):
        c = [metric(p, q) for p, q, r in zip(pd_, gd, rd, strict=True) if r == "customer"]
        h = [metric(p, q) for p, q, r in zip(pd_, gd, rd, strict=True) if r != "customer"]
        out.append(alpha * np.mean(c) + (1 - alpha) * np.mean(h) if c and h else np.mean(c or h))
    return float(np.mean(out))


def soft_labels(reviews: Iterable[dict[str, Any]], dim: str, scale: Sequence = QUALITY_SCALE, *,
                strict: bool = True) -> np.ndarray | None:
    """The distribution over ``scale`` (in its order) of the reviewers' grades for ``dim`` — the one
    definition of a reviewer label distribution (training targets and STC-3 gold distributions alike).

    ``reviews`` are ``labels.reviews`` entries (``{"grades": {dim: level}}``); reviewers without a
    grade for ``dim`` are left out. Grades match levels by their text (``"5"`` is level 5). ``strict``: raise
    ``ValueError`` when none graded it or a grade is off the scale; otherwise skip off-scale grades and
    return None when nothing is left (what training does with hand-made files).
    """
    index = {str(lvl): i for i, lvl in enumerate(scale)}
    counts = np.zeros(len(scale))
    for r in reviews:
        g = r["grades"].get(dim) if isinstance(r, dict) and isinstance(r.get("grades"), dict) else None
        if g is None:
            continue
        i = index.get(str(g).strip())
        if i is None and isinstance(g, float) and g.is_integer():
            i = index.get(str(int(g)))
        if i is None:
            if strict:
                raise ValueError(f"grade {g!r} for {dim} is not on the scale {list(scale)}")
            continue
        counts[i] += 1
    if not counts.sum():
        if strict:
            raise ValueError(f"no reviewer graded {dim}")
        return None
    return counts / counts.sum()


def nugget_labels(reviews: Sequence[dict[str, Any]], turn: int, types: Sequence[str]) -> np.ndarray:
    """The distribution over ``types`` of the reviewers' nugget labels for turn ``turn``."""
    counts = np.array([sum(r["nuggets"][turn] == t for r in reviews) for t in types], dtype=float)
    if not counts.sum():
        raise ValueError(f"no reviewer labelled turn {turn} with one of {list(types)}")
    return counts / counts.sum()
