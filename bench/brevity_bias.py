"""Does the model grade short replies harsher than the reviewers do? Mean (model level − reviews' mean) per
dimension, by quantile of the agent's mean text-message length (shortest first).

    python bench/brevity_bias.py ~/.cache/qa/real/real_eval_ecom.jsonl [--model models/default] [--bins 3]

The issue's failure mode on real shops: short but adequate replies (一组2包的, 拍下后72小时内发货哦亲) graded a
level lower. A model free of it shows no trend across the bins. Only chats with reviews and agent text count.
"""

from __future__ import annotations

import argparse

import numpy as np

from qa.io import Reject, read_many


def agent_length(conv) -> float:
    texts = [len(m.text) for m in conv.messages if m.role == "agent" and m.type == "text" and m.text]
    return float(np.mean(texts)) if texts else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--model", default=None, help="model directory (default: the shipped default)")
    ap.add_argument("--bins", type=int, default=3)
    a = ap.parse_args()
    from qa.model.predict import Classifier
    convs = [c for c in read_many(a.files) if not isinstance(c, Reject)
             and any(r.get("grades") for r in (c.labels or {}).get("reviews") or []) and agent_length(c) > 0]
    clf = Classifier(a.model)
    preds = clf.predict_all(convs)
    length = np.array([agent_length(c) for c in convs])
    edges = np.quantile(length, np.linspace(0, 1, a.bins + 1))
    bins = np.clip(np.searchsorted(edges, length, side="right") - 1, 0, a.bins - 1)
    print(f"{len(convs)} chats; agent mean message length bins (chars): "
          + " | ".join(f"{edges[k]:.0f}–{edges[k + 1]:.0f} ({(bins == k).sum()})" for k in range(a.bins)))
    for d in clf.dimensions:
        res = []
        for p, c in zip(preds, convs):
            marks = [r["grades"][d] for r in c.labels["reviews"] if isinstance(r.get("grades", {}).get(d), (int, float))]
            res.append(p.grades[d].level - np.mean(marks) if marks and d in p.grades else np.nan)
        res = np.array(res, dtype=float)
        cells = [np.nanmean(res[bins == k]) if np.isfinite(res[bins == k]).any() else np.nan for k in range(a.bins)]
        print(f"  {d:16s} " + "  ".join(f"{x:+.2f}" for x in cells) + f"   (all {np.nanmean(res):+.2f})")


if __name__ == "__main__":
    main()
