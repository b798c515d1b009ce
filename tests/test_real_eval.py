"""bench/real_eval.py: the model against labelled chats, overall and per platform."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

pytest.importorskip("torch")


def test_by_platform_scores_each_platforms_chats_on_their_own():
    from bench.real_eval import model_vs_labels, reviews
    from qa.io import Reject, read_many
    from qa.rubric import load_rubric
    rubric = load_rubric()
    convs = [c for c in read_many([ROOT / "data" / "labelled" / "eval" / "eval_eval-f.jsonl"])
             if not isinstance(c, Reject) and reviews(c)][:60]
    plats = {c.platform for c in convs}
    assert len(plats) >= 3
    lines = model_vs_labels(convs, str(ROOT / "models" / "default"), rubric.model_dimensions,
                            list(rubric.scale), by_platform=True)
    heads = [line for line in lines if line.startswith("platform ")]
    assert [h.split()[1].rstrip(":") for h in heads] == sorted(plats)
    assert sum(int(re.search(r"(\d+) chats", h).group(1)) for h in heads) == len(convs)
    assert len(lines) == 1 + len(rubric.model_dimensions) * (1 + len(plats)) + len(plats)
    assert all("QWK" in line for line in lines if line.startswith("  "))


def test_graded_levels_are_the_levels_qa_grade_writes():
    """``--graded`` scores the level after the rule findings' caps and deducts, as the grading core writes it;
    without it, the classifier's own level."""
    from bench.real_eval import chat_levels
    from qa.grader import Grader, GradeSettings
    from qa.io import Reject, read_many
    from qa.model.predict import Classifier
    from qa.rules import RuleEngine
    from qa.timing import compute_timing
    convs = [c for c in read_many([ROOT / "data" / "labelled" / "eval" / "eval_eval-f.jsonl"])
             if not isinstance(c, Reject)][:40]
    model = str(ROOT / "models" / "default")
    got, own = chat_levels(convs, model, graded=True), chat_levels(convs, model)
    grades = Grader.from_settings(GradeSettings(model=model)).grade_batch(convs)
    assert got == [{d: r.level for d, r in g.dimensions.items()} for g in grades]
    clf = Classifier(model)      # the classifier on its own gives the same levels as the ungraded run
    engine, timings = RuleEngine(clf.rubric), [compute_timing(c, clf.rubric) for c in convs]
    preds = clf.predict(convs, findings=[engine.check(c, t) for c, t in zip(convs, timings)], timings=timings)
    assert all(own[i][d] == p[d].level for i, p in enumerate(preds) for d in clf.rubric.model_dimensions)
    capped = [(i, d) for i, g in enumerate(grades) for d in clf.rubric.model_dimensions if got[i][d] != own[i][d]]
    assert capped, "no rule moved any level in 40 written chats"
    assert all(got[i][d] < own[i][d] for i, d in capped)   # rule effects only lower a level
