"""Does the model mark attitude down for a missing greeting or closing? Each chat is graded as written and as an
excerpt without its greeting and closing (``qa.model.augment.excerpt``); the mean change of the expected grade
per dimension is printed.

    python bench/courtesy_bias.py data/labelled/hand/train_hand-p.jsonl … [--model models/default]

The grading guide marks a missing greeting or closing under etiquette (one element missing: 4, several: 3);
attitude, professionalism and clarity should not move. Real chats are often excerpts of a longer session, or
come from busy Taobao agents who skip both, and are graded as warm by their reviewers.
"""

from __future__ import annotations

import argparse
import random

import numpy as np

from qa.io import Reject, read_many


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--model", default=None, help="model directory (default: the shipped default)")
    a = ap.parse_args()
    from qa.model.augment import excerpt
    from qa.model.predict import Classifier
    pairs = []
    for c in read_many(a.files):
        if isinstance(c, Reject):
            continue
        got = excerpt(c, random.Random(0), p_greeting=1.0, p_closing=1.0)
        if got is not None:
            pairs.append((c, *got))
    if not pairs:
        raise SystemExit("no chat with a greeting or closing to take away")
    clf = Classifier(a.model)
    before = clf.predict_all([p[0] for p in pairs])
    after = clf.predict_all([p[1] for p in pairs])
    lost = [tuple(p[2]) for p in pairs]
    kinds = sorted(set(lost), key=len)
    print(f"{len(pairs)} chats; lost: " + ", ".join(f"{'+'.join(k)} {lost.count(k)}" for k in kinds))
    print(f"  {'dimension':16s} mean change of the expected grade (excerpt − as written)")
    for d in clf.dimensions:
        delta = np.array([y.grades[d].expected - x.grades[d].expected for x, y in zip(before, after)])
        by = "  ".join(f"{'+'.join(k)} {np.mean([v for v, l in zip(delta, lost) if l == k]):+.2f}" for k in kinds)
        print(f"  {d:16s} {delta.mean():+.2f}   ({by})")


if __name__ == "__main__":
    main()
