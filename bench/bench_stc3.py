"""STC-3 / DialEval dialogue quality (A, S, E) and nugget baselines on the DCH-1 Chinese training set.

    python bench/bench_stc3.py [--data FILE] [--train-model DIR | --model DIR] [--seed 0]

A fixed seeded split (2,500 train / 500 test) of the 3,000 dialogues. DQ: NMD and RSNOD per dimension for
a uniform and a popularity baseline, char n-gram TF-IDF + logistic regression fitted on the 19 annotators'
soft labels (C chosen by 5-fold CV on the training part), and the transformer classifier: ``--train-model DIR``
trains it on the 2,500 training dialogues with ``qa train``'s own code and rubrics/stc3.yaml (timed), ``--model
DIR`` reuses one trained that way. ND: JSD and RNSS of the uniform and popularity baselines and of the
classifier's nugget head.
The data stays in ../shared (research use only); without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qa.io.build import Reject  # noqa: E402
from qa.io.read import read_path  # noqa: E402
from qa.model.dist_metrics import (C_NUGGET_TYPES, H_NUGGET_TYPES, QUALITY_DIMS, QUALITY_SCALE,  # noqa: E402
                                   jsd, mean_nmd, mean_rsnod, nugget_labels, nugget_score, rnss, soft_labels)

DATA = ROOT.parent / "shared" / "data" / "stc3" / "dch1_train_cn_3000.json"
N_TEST = 500
C_GRID = (2, 8, 32, 128)


def split_ids(ids: list[str], seed: int = 0, n_test: int = N_TEST) -> tuple[list[str], list[str]]:
    """(train, test) ids: a seeded permutation of the sorted ids; the first ``n_test`` are the test set."""
    ids = sorted(ids)
    perm = np.random.default_rng(seed).permutation(len(ids))
    test = {ids[i] for i in perm[:n_test]}
    return [i for i in ids if i not in test], [i for i in ids if i in test]


def load(path: Path) -> list:
    return [c for c in read_path(path) if not isinstance(c, Reject) and (c.labels or {}).get("reviews")]


def text_of(conv) -> str:
    return "\n".join(("客：" if m.role == "customer" else "服：") + (m.text or "") for m in conv.messages)


def gold(convs, dim: str) -> np.ndarray:
    return np.array([soft_labels(c.labels["reviews"], dim) for c in convs])


# --- TF-IDF + logistic regression on soft labels --------------------------------------------------------

def _fit(X, Y: np.ndarray, C: float):
    """Multinomial LR on soft labels: each dialogue expands into one row per grade it got, weighted by its share
    (so the loss is the cross-entropy against the annotators' distribution)."""
    from sklearn.linear_model import LogisticRegression

    rows, y = np.nonzero(Y)
    return LogisticRegression(C=C, max_iter=3000).fit(X[rows], y, sample_weight=Y[rows, y])


def _proba(lr, X, k: int) -> np.ndarray:
    out = np.zeros((X.shape[0], k))
    out[:, lr.classes_] = lr.predict_proba(X)
    return out


def _vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, max_features=20000)


def tfidf_lr(train, test, golds_train: dict[str, np.ndarray], seed: int) -> tuple[dict[str, np.ndarray], dict]:
    """Test-set distributions per dimension, and the C chosen per dimension by 5-fold CV on train (mean NMD)."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import KFold

    def fit_predict(Xa, Ya, Xb, C: float) -> np.ndarray:
        return _proba(_fit(Xa, Ya, C), Xb, Ya.shape[1])

    texts = [text_of(c) for c in train]
    folds = []
    for tr, va in KFold(5, shuffle=True, random_state=seed).split(texts):
        vec = _vectorizer()
        folds.append((vec.fit_transform([texts[i] for i in tr]), vec.transform([texts[i] for i in va]), tr, va))
    grid = [(dim, C, f) for dim in QUALITY_DIMS for C in C_GRID for f in range(len(folds))]
    preds = Parallel(n_jobs=-1)(delayed(fit_predict)(folds[f][0], golds_train[dim][folds[f][2]], folds[f][1], C)
                                for dim, C, f in grid)
    cv = defaultdict(list)
    for (dim, C, f), p in zip(grid, preds):
        cv[dim, C].append(mean_nmd(p, golds_train[dim][folds[f][3]]))
    chosen = {dim: min(C_GRID, key=lambda C: np.mean(cv[dim, C])) for dim in QUALITY_DIMS}
    vec = _vectorizer()
    Xtr, Xte = vec.fit_transform(texts), vec.transform([text_of(c) for c in test])
    final = Parallel(n_jobs=-1)(delayed(fit_predict)(Xtr, golds_train[d], Xte, chosen[d]) for d in QUALITY_DIMS)
    return dict(zip(QUALITY_DIMS, final)), chosen


def train_model(data: Path, train_ids: list[str], out: str, threads: int | None,
                base_model: str = "models/base") -> float:
    """Train the classifier on the training split (a DialEval file of those dialogues in a temporary
    directory, never in the repo) with rubrics/stc3.yaml; returns the seconds it took."""
    import json
    import tempfile

    from qa.model.train import TrainArgs, train
    keep = set(train_ids)
    dialogues = [d for d in json.loads(data.read_text(encoding="utf-8")) if str(d["id"]) in keep]
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / "stc3_train_split.json"
        part.write_text(json.dumps(dialogues, ensure_ascii=False), encoding="utf-8")
        t0 = time.perf_counter()
        train(TrainArgs(data=[str(part)], out=out, rubric=str(ROOT / "rubrics" / "stc3.yaml"), epochs=12,
                        batch_size=32, patience=2, threads=threads, base_model=base_model))
        return time.perf_counter() - t0


def model_preds(model_dir: str, test) -> tuple[dict[str, np.ndarray], list | None] | None:
    """The classifier's test-set quality distributions and nugget distributions (None without a nugget head),
    or None (with the reason printed) when it cannot give them."""
    from qa.errors import QAError
    from qa.model.predict import Classifier

    try:
        clf = Classifier(model_dir)
        out = clf.predict_full(test)
    except QAError as e:
        print(f"model row skipped: {e}")
        return None
    if any(d not in clf.dimensions for d in QUALITY_DIMS):
        print(f"model row skipped: {model_dir} does not grade A, S, E (train it on rubrics/stc3.yaml)")
        return None
    quality = {dim: np.array([[float(row[dim].probs.get(lvl, 0.0)) for lvl in QUALITY_SCALE] for row, _ in out])
               for dim in QUALITY_DIMS}
    nuggets = None
    if clf.nuggets:
        nuggets = [[np.array([n[t] for t in _types(m.role)]) if n else np.full(len(_types(m.role)), 1 / len(_types(m.role)))
                    for n, m in zip(nug, c.messages)] for (_, nug), c in zip(out, test)]
    return quality, nuggets


# --- nuggets --------------------------------------------------------------------------------------------

def _types(role: str) -> tuple[str, ...]:
    return C_NUGGET_TYPES if role == "customer" else H_NUGGET_TYPES


def _key(conv, i: int, by_position: bool) -> tuple:
    role = conv.messages[i].role
    return (role, i, i == len(conv.messages) - 1) if by_position else (role,)


def nugget_rows(train, test, extra: list | None = None) -> list[tuple[str, float, float]]:
    roles = [[m.role for m in c.messages] for c in test]
    golds = [[nugget_labels(c.labels["reviews"], i, _types(m.role)) for i, m in enumerate(c.messages)] for c in test]
    rows = [("uniform", [[np.full(len(_types(r)), 1 / len(_types(r))) for r in rs] for rs in roles])]
    for name, by_pos in (("popularity (per role)", False), ("popularity (per role × turn index, last turn)", True)):
        acc: dict[tuple, list] = defaultdict(list)
        for c in train:
            for i in range(len(c.messages)):
                acc[_key(c, i, by_pos)].append(nugget_labels(c.labels["reviews"], i, _types(c.messages[i].role)))
        roles_seen = {k[0] for k in acc}
        role_mean = {r: np.mean([v for k, vs in acc.items() if k[0] == r for v in vs], axis=0) for r in roles_seen}
        pred = [[np.mean(acc[_key(c, i, by_pos)], axis=0) if acc.get(_key(c, i, by_pos)) else role_mean[m.role]
                 for i, m in enumerate(c.messages)] for c in test]
        rows.append((name, pred))
    rows += extra or []
    return [(name, nugget_score(jsd, p, golds, roles), nugget_score(rnss, p, golds, roles)) for name, p in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--model", help="model directory for the classifier row (trained on this split)")
    ap.add_argument("--train-model", metavar="DIR", help="train the classifier on the split into DIR first")
    ap.add_argument("--threads", type=int, help="torch threads for training")
    ap.add_argument("--base-model", default="models/base", help="encoder the classifier fine-tunes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-lr", action="store_true", help="skip the TF-IDF + LR row (the slow one)")
    a = ap.parse_args()
    if not a.data.is_file():
        print(f"skipped: STC-3 data not found at {a.data} (it lives in ../shared, never in the repo)")
        return
    convs = {c.id: c for c in load(a.data)}
    tr_ids, te_ids = split_ids(list(convs), a.seed)
    train, test = [convs[i] for i in tr_ids], [convs[i] for i in te_ids]
    print(f"{a.data.name}: {len(convs)} dialogues, seed {a.seed}: {len(train)} train / {len(test)} test\n")
    g_tr = {d: gold(train, d) for d in QUALITY_DIMS}
    g_te = {d: gold(test, d) for d in QUALITY_DIMS}
    runs = [("uniform", {d: np.full_like(g_te[d], 1 / len(QUALITY_SCALE)) for d in QUALITY_DIMS}),
            ("popularity (train mean)", {d: np.tile(g_tr[d].mean(0), (len(test), 1)) for d in QUALITY_DIMS})]
    if not a.no_lr:
        t0 = time.perf_counter()
        preds, chosen = tfidf_lr(train, test, g_tr, a.seed)
        cs = ", ".join(f"{d} {c:g}" for d, c in chosen.items())
        runs.append((f"char 1–3-gram TF-IDF + soft-label LR (C {cs})", preds))
        print(f"TF-IDF + LR: {time.perf_counter() - t0:.0f} s including the C search")
    nugget_extra = []
    if a.train_model:
        secs = train_model(a.data, tr_ids, a.train_model, a.threads, a.base_model)
        print(f"classifier trained on {len(train)} dialogues in {secs / 60:.1f} min → {a.train_model}")
        a.model = a.train_model
    if a.model:
        mp = model_preds(a.model, test)
        if mp is not None:
            runs.append((f"classifier ({Path(a.model).name})", mp[0]))
            if mp[1] is not None:
                nugget_extra.append((f"classifier nugget head ({Path(a.model).name})", mp[1]))
    print("\nDialogue quality (mean over test dialogues; lower is better)\n")
    print("| run | NMD A | NMD S | NMD E | RSNOD A | RSNOD S | RSNOD E |\n|---|---|---|---|---|---|---|")
    for name, p in runs:
        nm = [mean_nmd(p[d], g_te[d]) for d in QUALITY_DIMS]
        rs = [mean_rsnod(p[d], g_te[d]) for d in QUALITY_DIMS]
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in nm + rs) + " |")
    print("\nNugget detection (α = 0.5 customer/helpdesk; lower is better)\n")
    print("| run | JSD | RNSS |\n|---|---|---|")
    for name, j, r in nugget_rows(train, test, nugget_extra):
        print(f"| {name} | {j:.4f} | {r:.4f} |")


if __name__ == "__main__":
    main()
