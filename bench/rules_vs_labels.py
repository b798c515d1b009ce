"""Rule-flag precision/recall against reviewers' flags in labelled chats: the rule checks alone, or rules plus
the classifier's flags (``--model``), with micro-F1 over all rules.

    python bench/rules_vs_labels.py data/labelled/eval/*.jsonl [--model models/default] [--show RULE]

Each conversation's gold flags are its first review's ``rules`` (``--reviewer NAME``: that reviewer's); a rule
"fires" when it has any finding. Chats without timestamps are not scored on slow_first_response.
"""

from __future__ import annotations

import argparse

from qa.analysis import analyse
from qa.grader import Grader
from qa.io import Reject, read_many
from qa.model.flag_scores import counts, gold_flags, scores
from qa.rubric import load_rubric
from qa.rules import RuleEngine


def table(tp, fp, fn, rules) -> list[str]:
    sc = scores(tp, fp, fn, rules)
    nan = float("nan")
    lines = [f"{'rule':28s} {'gold':>5s} {'pred':>5s} {'prec':>6s} {'recall':>6s} {'f1':>6s}"]
    for r in rules:
        m = sc[r]
        lines.append(f"{r:28s} {m['gold']:5d} {m['predicted']:5d} {m['precision'] if m['precision'] is not None else nan:6.2f} "
                     f"{m['recall'] if m['recall'] is not None else nan:6.2f} "
                     f"{m['f1'] if m['f1'] is not None and m['precision'] and m['recall'] else nan:6.2f}")
    m = sc["micro"]
    lines.append(f"{'micro':28s} {m['gold']:5d} {m['predicted']:5d} {m['precision'] or 0:6.2f} {m['recall'] or 0:6.2f} "
                 f"{m['f1'] or 0:6.3f}")
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
    analyses = [analyse(c, rubric, engine) for c in convs]
    if args.model:   # the grading core's own combination: the model's raised flags added, the vetoes applied
        from qa.model.predict import Classifier
        grader = Grader(rubric, engine=engine, classifier=Classifier(args.model))
        analyses = grader.with_model(convs, analyses)[0]
    tp, fp, fn = counts(convs, [{f.rule for f in a.findings} for a in analyses], list(rubric.rules), args.reviewer)
    for conv, a in zip(convs, analyses) if args.show else ():
        gold, fs = gold_flags(conv, args.reviewer), [f for f in a.findings if f.rule == args.show]
        if (args.show in gold) != bool(fs):
            print(f"--- {'FP' if fs else 'FN'} {conv.id}: {conv.labels['reviews'][0].get('reason')}")
            for f in fs:
                print("   finding:", f.source, f.explanation, f"(msg {f.message})")
            for i, m in enumerate(conv.messages):
                print(f"   {i:2d} {m.role:8s} {m.type:12s} {(m.text or m.event or '')[:80]}")
    print(f"{len(convs)} labelled conversations" + (f"; rules + model {args.model}" if args.model else "; rules only"))
    print("\n".join(table(tp, fp, fn, list(rubric.rules))))


if __name__ == "__main__":
    main()
