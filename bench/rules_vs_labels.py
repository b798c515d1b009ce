"""Rule precision/recall against reviewers' rule flags in labelled chats.

    python bench/rules_vs_labels.py data/labelled/eval/*.jsonl [--show RULE]

Each conversation's flags are its first review's ``rules``; a rule "fires" when it has any finding.
"""

from __future__ import annotations

import argparse
import collections

from qa.io import Reject, read_many
from qa.rubric import load_rubric
from qa.rules import RuleEngine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--show", help="print the disagreements for this rule")
    args = ap.parse_args()
    rubric = load_rubric()
    engine = RuleEngine(rubric)
    tp, fp, fn = collections.Counter(), collections.Counter(), collections.Counter()
    n = 0
    for conv in read_many(args.files):
        if isinstance(conv, Reject) or not (conv.labels or {}).get("reviews"):
            continue
        n += 1
        gold = set(conv.labels["reviews"][0].get("rules", []))
        findings = engine.check(conv)
        pred = {f.rule for f in findings}
        for r in rubric.rules:
            if r in gold and r in pred:
                tp[r] += 1
            elif r in pred:
                fp[r] += 1
            elif r in gold:
                fn[r] += 1
            if args.show == r and (r in gold) != (r in pred):
                kind = "FP" if r in pred else "FN"
                print(f"--- {kind} {conv.id}: {conv.labels['reviews'][0].get('reason')}")
                for f in findings:
                    if f.rule == r:
                        print("   finding:", f.explanation, f"(msg {f.message})")
                for i, m in enumerate(conv.messages):
                    print(f"   {i:2d} {m.role:8s} {m.type:12s} {(m.text or m.event or '')[:80]}")
    print(f"{n} labelled conversations")
    print(f"{'rule':28s} {'gold':>5s} {'pred':>5s} {'prec':>6s} {'recall':>6s} {'f1':>6s}")
    for r in rubric.rules:
        p = tp[r] / (tp[r] + fp[r]) if tp[r] + fp[r] else float("nan")
        rc = tp[r] / (tp[r] + fn[r]) if tp[r] + fn[r] else float("nan")
        f1 = 2 * p * rc / (p + rc) if p == p and rc == rc and p + rc else float("nan")
        print(f"{r:28s} {tp[r] + fn[r]:5d} {tp[r] + fp[r]:5d} {p:6.2f} {rc:6.2f} {f1:6.2f}")


if __name__ == "__main__":
    main()
