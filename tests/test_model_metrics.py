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


def test_reviewer_distribution_one_definition_strict_and_lenient():
    from qa.model.dist_metrics import soft_labels
    reviews = [{"grades": {"a": 5}}, {"grades": {"a": "4"}}, {"grades": {"a": 4.0}}, {"grades": {"a": 9}}, {}]
    assert soft_labels(reviews, "a", LEVELS, strict=False).tolist() == pytest.approx([1 / 3, 2 / 3, 0, 0])
    assert soft_labels(reviews, "b", LEVELS, strict=False) is None
    with pytest.raises(ValueError, match="not on the scale"):
        soft_labels(reviews, "a", LEVELS)
