"""Agreement metrics for ordinal grades: flat dicts, keyword-only arguments (the ``evaluate`` way)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score


def grade_metrics(*, references: Sequence, predictions: Sequence, levels: Sequence) -> dict:
    """Exact accuracy, within-one accuracy (one step on the scale), macro-F1, quadratic weighted kappa and
    the confusion matrix (rows = reference, columns = prediction, both in ``levels`` order)."""
    levels = list(levels)
    ref = np.array([levels.index(r) for r in references])
    pred = np.array([levels.index(p) for p in predictions])
    if len(ref) == 0:
        raise ValueError("no examples to score")
    kappa = cohen_kappa_score(ref, pred, weights="quadratic", labels=list(range(len(levels))))
    return {
        "n": int(len(ref)),
        "accuracy": float(np.mean(ref == pred)),
        "within_one": float(np.mean(np.abs(ref - pred) <= 1)),
        "macro_f1": float(f1_score(ref, pred, labels=list(range(len(levels))), average="macro", zero_division=0)),
        "qwk": 0.0 if np.isnan(kappa) else float(kappa),
        "confusion": confusion_matrix(ref, pred, labels=list(range(len(levels)))).tolist(),
    }


def expected_calibration_error(probs: np.ndarray, references: Sequence[int], bins: int = 10) -> float:
    """ECE of the top-level probability (``references`` are level indexes)."""
    conf, pred = probs.max(1), probs.argmax(1)
    correct = pred == np.asarray(references)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)
