"""Rule-flag precision/recall against reviewers' flags in labelled chats: the rule checks alone, or rules plus
the classifier's flags (``--model``), with micro-F1 over all rules.

    python bench/rules_vs_labels.py data/labelled/eval/*.jsonl [--model models/default] [--show RULE]

Each conversation's gold flags are its first review's ``rules`` (``--reviewer NAME``: that reviewer's); a rule
"fires" when it has any finding. Chats without timestamps are not scored on slow_first_response.
"""

from __future__ import annotations

import argparse
import collections

from qa.io import Reject, read_many
from qa.rubric import load_rubric
from qa.rules import RuleEngine
from qa.timing import compute_timing


def gold_flags(conv, reviewer: str | None) -> set[str] | None:
    reviews = [r for r in (conv.labels or {}).get("reviews") or [] if isinstance(r, dict) and "rules" in r]
    if reviewer:
        reviews = [r for r in reviews if r.get("reviewer") == reviewer]
    return set(reviews[0]["rules"]) if reviews else None


def table(tp, fp, fn, rules) -> list[str]:
    lines = [f"{'rule':28s} {'gold':>5s} {'pred':>5s} {'prec':>6s} {'recall':>6s} {'f1':>6s}"]
    for r in rules:
        p = tp[r] / (tp[r] + fp[r]) if tp[r] + fp[r] else float("nan")
        rc = tp[r] / (tp[r] + fn[r]) if tp[r] + fn[r] else float("nan")
        f1 = 2 * p * rc / (p + rc) if p == p and rc == rc and p + rc else float("nan")
        lines.append(f"{r:28s} {tp[r] + fn[r]:5d} {tp[r] + fp[r]:5d} {p:6.2f} {rc:6.2f} {f1:6.2f}")
    t, f_, n_ = sum(tp.values()), sum(fp.values()), sum(fn.values())
    lines.append(f"{'micro':28s} {t + n_:5d} {t + f_:5d} {t / max(1, t + f_):6.2f} {t / max(1, t + n_):6.2f} "
                 f"{2 * t / max(1, 2 * t + f_ + n_):6.3f}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--model", help="add the classifier's flags (rules + model)")
    ap.add_argument("--reviewer", help="gold flags from this reviewer (default: the first review)")
    ap.add_argument("--show", help="print the disagreements for this rule")
    args = ap.parse_args()
    rubric = load_rubric()
    engine = RuleEngine(rubric)
    convs = [c for c in read_many(args.files)
             if not isinstance(c, Reject) and gold_flags(c, args.reviewer) is not None]
    timings = [compute_timing(c, rubric) for c in convs]
    findings = [engine.check(c, t) for c, t in zip(convs, timings)]
    if args.model:
        from qa.model.predict import Classifier
        from qa.rules.combine import combine
        clf = Classifier(args.model)
        preds = clf.predict_all(convs, findings=findings, timings=timings)
        findings = [combine(f, p.raised, rubric, c, engine, p.flags, clf.config.flag_vetoes)
                    for f, p, c in zip(findings, preds, convs)]
    tp, fp, fn = collections.Counter(), collections.Counter(), collections.Counter()
    for conv, fs, t in zip(convs, findings, timings):
        gold = gold_flags(conv, args.reviewer)
        pred = {f.rule for f in fs}
        timed = any(m.ts is not None for m in conv.messages)
        for r in rubric.rules:
            if r == "slow_first_response" and not timed:
                continue
            if r in gold and r in pred:
                tp[r] += 1
            elif r in pred:
                fp[r] += 1
            elif r in gold:
                fn[r] += 1
            if args.show == r and (r in gold) != (r in pred):
                kind = "FP" if r in pred else "FN"
                print(f"--- {kind} {conv.id}: {conv.labels['reviews'][0].get('reason')}")
                for f in fs:
                    if f.rule == r:
                        print("   finding:", f.source, f.explanation, f"(msg {f.message})")
                for i, m in enumerate(conv.messages):
                    print(f"   {i:2d} {m.role:8s} {m.type:12s} {(m.text or m.event or '')[:80]}")
    print(f"{len(convs)} labelled conversations" + (f"; rules + model {args.model}" if args.model else "; rules only"))
    print("\n".join(table(tp, fp, fn, list(rubric.rules))))


if __name__ == "__main__":
    main()
