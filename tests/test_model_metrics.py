"""qa.model.metrics reports the agreement figures of qa.review.agreement (one implementation), with its
documented policy for an undefined QWK."""

from __future__ import annotations

import pytest

from qa.model.metrics import grade_metrics
from qa.review.agreement import cohen_kappa, exact, within_one

LEVELS = [5, 4, 3, 2]


@pytest.mark.parametrize("ref, pred", [([5, 4, 3, 2, 5], [5, 4, 2, 2, 4]), ([2, 2, 3, 5], [3, 2, 2, 4]),
                                       ([5, 5, 5], [5, 4, 3])])
def test_model_metrics_are_the_review_agreement_figures(ref, pred):
    m = grade_metrics(references=ref, predictions=pred, levels=LEVELS)
    assert m["qwk"] == pytest.approx(cohen_kappa(ref, pred, LEVELS, "quadratic")) and m["qwk_defined"]
    assert m["accuracy"] == exact(ref, pred) and m["within_one"] == within_one(ref, pred, LEVELS)


def test_model_metrics_undefined_qwk_is_zero_and_flagged():
    m = grade_metrics(references=[5, 5], predictions=[5, 5], levels=LEVELS)
    assert cohen_kappa([5, 5], [5, 5], LEVELS, "quadratic") is None
    assert m["qwk"] == 0.0 and m["qwk_defined"] is False and m["accuracy"] == 1.0
