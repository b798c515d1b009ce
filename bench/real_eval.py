"""Grades on labelled real chats: the model against each labeller, and labeller against labeller.

    python scripts/build_real_sets.py                       # joins labels with text in $QA_CACHE/real/
    python bench/real_eval.py ~/.cache/qa/real/real_eval_stc3.jsonl [--model models/default] [--agreement] \
        [--by-platform] [--graded]

For every dimension: QWK and exact agreement of the model with the labellers (each chat's every review
counts: a chat with two labellers is scored against both). ``--agreement``: QWK between the two labellers
of each double-labelled chat and their rule-flag micro-F1 (one as gold, the other as prediction).
``--by-platform``: the model's figures again for each platform's chats (the stack's offsets are per platform).
``--graded``: the levels ``qa grade`` writes (the model's level after the rule findings' caps and deducts, the
grading core ``qa.grader.Grader``) in place of the model's own.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from qa.io import Reject, read_many
from qa.model.metrics import grade_metrics
from qa.rubric import load_rubric


def reviews(conv):
    return [r for r in (conv.labels or {}).get("reviews") or [] if isinstance(r, dict) and r.get("grades")]


def agreement(convs, dims, levels) -> list[str]:
    pairs = [(a, b) for c in convs for a, b in itertools.combinations(reviews(c), 2)]
    lines = [f"human agreement on {len(pairs)} double-labelled chats"]
    for d in dims:
        ref = [a["grades"][d] for a, b in pairs]
        pred = [b["grades"][d] for a, b in pairs]
        m = grade_metrics(references=ref, predictions=pred, levels=levels)
        lines.append(f"  {d:16s} QWK {m['qwk']:.3f}  exact {m['accuracy']:.3f}")
    tp = sum(len(set(a.get("rules", [])) & set(b.get("rules", []))) for a, b in pairs)
    fp = sum(len(set(b.get("rules", [])) - set(a.get("rules", []))) for a, b in pairs)
    fn = sum(len(set(a.get("rules", [])) - set(b.get("rules", []))) for a, b in pairs)
    lines.append(f"  rule flags micro-F1 {2 * tp / max(1, 2 * tp + fp + fn):.3f} (tp {tp}, only A {fn}, only B {fp})")
    return lines


def model_vs_labels(convs, model: str, dims, levels, by_platform: bool = False, graded: bool = False) -> list[str]:
    preds = chat_levels(convs, model, graded)
    what = "graded levels (rule effects applied)" if graded else "model levels"
    lines = [f"model {model} on {len(convs)} chats ({sum(len(reviews(c)) for c in convs)} reviews), {what}"]
    lines += scored(convs, preds, dims, levels)
    if by_platform:
        for plat in sorted({c.platform for c in convs}):
            mine = [(c, p) for c, p in zip(convs, preds) if c.platform == plat]
            lines.append(f"platform {plat}: {len(mine)} chats")
            lines += scored([c for c, _ in mine], [p for _, p in mine], dims, levels)
    return lines


def chat_levels(convs, model: str, graded: bool = False) -> list[dict[str, int]]:
    """Per chat, dimension → the level ``qa grade`` writes (``graded``: after the rule findings' caps and deducts) or
    the classifier's own (its ``base_level``), both from the grading core. A chat with no agent turn has no model
    dimension graded: it counts as missing."""
    from qa.grader import Grader, GradeSettings
    grader = Grader.from_settings(GradeSettings(model=model, messages=False))
    return [{d: r.level if graded else r.base_level for d, r in g.dimensions.items()}
            for g in grader.grade_batch(list(convs))]


def scored(convs, preds, dims, levels) -> list[str]:
    """Per dimension, the model's levels against every review of each chat."""
    lines = []
    for d in dims:
        ref, pred = [], []
        for c, p in zip(convs, preds):
            for r in reviews(c):
                if d in p:
                    ref.append(r["grades"][d])
                    pred.append(p[d])
        m = grade_metrics(references=ref, predictions=pred, levels=levels)
        bias = float(np.mean(pred) - np.mean(ref))
        lines.append(f"  {d:16s} QWK {m['qwk']:.3f}  exact {m['accuracy']:.3f}  within-one {m['within_one']:.3f}"
                     f"  mean(model − label) {bias:+.2f}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--agreement", action="store_true")
    ap.add_argument("--no-model", action="store_true")
    ap.add_argument("--by-platform", action="store_true", help="also each platform's chats on their own")
    ap.add_argument("--graded", action="store_true", help="score qa grade's levels (rule effects applied)")
    a = ap.parse_args()
    rubric = load_rubric()
    dims, levels = rubric.model_dimensions, list(rubric.scale)
    convs = [c for c in read_many(a.files) if not isinstance(c, Reject) and reviews(c)]
    if a.agreement:
        print("\n".join(agreement(convs, dims, levels)))
    if not a.no_model:
        print("\n".join(model_vs_labels(convs, a.model, dims, levels, a.by_platform, a.graded)))


if __name__ == "__main__":
    main()
