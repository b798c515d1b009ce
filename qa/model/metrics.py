"""Agreement metrics for ordinal grades: flat dicts, keyword-only arguments (the ``evaluate`` way).

The figures themselves (exact, within-one, quadratic weighted kappa) are computed by ``qa.review.agreement``,
the one implementation the review loop uses too. Undefined case: a QWK whose expected disagreement is zero
(every reference and prediction on one level) is ``None`` in ``qa.review.agreement``; ``grade_metrics`` reports
it as 0.0 — no evidence of agreement beyond chance — with ``qwk_defined: false``, so that model selection
always has a number to compare.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qa.review.agreement import cohen_kappa, exact, within_one


def grade_metrics(*, references: Sequence, predictions: Sequence, levels: Sequence) -> dict:
    """Exact accuracy, within-one accuracy (one step on the scale), macro-F1, quadratic weighted kappa and
    the confusion matrix (rows = reference, columns = prediction, both in ``levels`` order)."""
    from sklearn.metrics import confusion_matrix, f1_score

    levels = list(levels)
    references, predictions = list(references), list(predictions)
    if not references:
        raise ValueError("no examples to score")
    ref = np.array([levels.index(r) for r in references])
    pred = np.array([levels.index(p) for p in predictions])
    kappa = cohen_kappa(references, predictions, levels, "quadratic")
    return {
        "n": int(len(ref)),
        "accuracy": exact(references, predictions),
        "within_one": within_one(references, predictions, levels),
        # over the levels used (by the reference or the prediction): a level nobody gave is no class scored 0
        "macro_f1": float(f1_score(ref, pred, labels=sorted(set(ref) | set(pred)), average="macro",
                                   zero_division=0)),
        "qwk": 0.0 if kappa is None else kappa,
        "qwk_defined": kappa is not None,
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
