"""The char n-gram channel: a TF-IDF vocabulary fitted on the training chats, saved as JSON in the model dir."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from qa.model import tfidf

FILE = "ngrams.json"


def vectorizer(vocabulary: dict[str, int] | None = None, max_features: int | None = 30000) -> TfidfVectorizer:
    """Char 1–3-grams, sublinear tf, l2-normalised — the same settings as the n-gram baseline."""
    return TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True,
                           max_features=None if vocabulary else max_features, vocabulary=vocabulary,
                           dtype=np.float32)


class Ngrams:
    """Fitted n-gram vocabulary + idf weights; ``transform`` gives a sparse CSR matrix."""

    def __init__(self, vec: TfidfVectorizer):
        self.vec = vec

    @classmethod
    def fit(cls, texts: Sequence[str], max_features: int = 30000) -> "Ngrams":
        return cls(vectorizer(max_features=max_features).fit(texts))

    @property
    def size(self) -> int:
        return len(self.vec.vocabulary_)

    def transform(self, texts: Sequence[str]):
        return tfidf.transform(self.vec, texts)

    def save(self, directory: str | Path) -> None:
        data = {"vocabulary": {k: int(v) for k, v in self.vec.vocabulary_.items()},
                "idf": [round(float(x), 5) for x in self.vec.idf_]}
        (Path(directory) / FILE).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "Ngrams | None":
        path = Path(directory) / FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        vec = vectorizer(vocabulary=data["vocabulary"])
        vec.fit(["x"])  # sets up the fixed vocabulary; idf is replaced below
        vec.idf_ = np.asarray(data["idf"], dtype=np.float32)
        return cls(vec)


def n_jobs() -> int:
    """Processes for the n-gram fits: ``$QA_JOBS``, else every core."""
    return max(1, int(os.environ.get("QA_JOBS") or os.cpu_count() or 1))


def fit_soft_lr(x, targets: np.ndarray, c_grid: Sequence[float] = (3.0, 10.0, 30.0), seed: int = 0, folds: int = 0,
                weights: np.ndarray | None = None, jobs: int | None = None):
    """Multinomial logistic regression on soft labels (each row repeated per level, weighted by its
    probability); C picked by log-loss on a seeded 20 % hold-out. Returns (coef [k, n], intercept [k], C,
    out-of-fold logits [rows, k] from ``folds``-fold cross-fitting, or None when ``folds`` < 2). ``weights``:
    one per row (its share of the loss). The fits of the C grid, and the final fit with the folds, run in
    ``jobs`` processes (default ``n_jobs()``); the result does not depend on it."""
    from joblib import Parallel, delayed
    from sklearn.linear_model import LogisticRegression
    jobs = jobs or n_jobs()

    k = targets.shape[1]

    def expand(rows):  # one row per (chat, level it got), weighted by that level's share × the chat's weight
        i, ys = np.nonzero(targets[rows] > 0)
        idx = np.asarray(rows)[i]
        ws = targets[idx, ys] * (1.0 if weights is None else weights[idx])
        return x[idx], ys, ws

    def fit(rows, c):
        xs, ys, ws = expand(rows)
        if len(np.unique(ys)) < 2:   # a hold-out or fold of a rare flag's chats kept none of its positives
            return _Constant(int(ys[0]) if len(ys) else 0, x.shape[1])
        clf = LogisticRegression(C=c, max_iter=2000)
        clf.fit(xs, ys, sample_weight=ws)
        return clf

    rows = np.arange(x.shape[0])
    seen = np.flatnonzero(targets.sum(0) > 0)
    if len(seen) < 2:  # one level only: a constant prediction
        inter = np.full(k, -10.0, dtype=np.float32)
        inter[seen] = 0.0
        return np.zeros((k, x.shape[1]), dtype=np.float32), inter, None, (np.tile(inter, (x.shape[0], 1))
                                                                          if folds >= 2 else None)
    best = c_grid[len(c_grid) // 2]
    if len(rows) >= 50 and len(c_grid) > 1:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(rows)
        cut = len(rows) // 5
        held, rest = perm[:cut], perm[cut:]
        losses = {}
        fits = Parallel(n_jobs=min(jobs, len(c_grid)))(delayed(fit)(rest, c) for c in c_grid)
        for c, clf in zip(c_grid, fits):
            p = np.full((len(held), k), 1e-9)
            p[:, clf.classes_] = np.clip(clf.predict_proba(x[held]), 1e-9, None)
            w = np.ones(len(held)) if weights is None else weights[held]
            losses[c] = float((-(targets[held] * np.log(p)).sum(1) * w).sum() / w.sum())
        best = min(losses, key=losses.get)
    oof = None
    if folds >= 2 and len(rows) >= 2 * folds:
        perm = np.random.default_rng(seed + 1).permutation(rows)
        helds = [perm[f::folds] for f in range(folds)]
        fits = Parallel(n_jobs=min(jobs, folds + 1))(
            delayed(fit)(r, best) for r in [rows] + [np.setdiff1d(rows, h) for h in helds])
        coef, inter = _weights(fits[0], k, x.shape[1])
        oof = np.zeros((len(rows), k), dtype=np.float32)
        for held, clf in zip(helds, fits[1:]):
            w, b = _weights(clf, k, x.shape[1])
            oof[held] = x[held] @ w.T + b
        return coef, inter, best, oof
    coef, inter = _weights(fit(rows, best), k, x.shape[1])
    if folds >= 2:
        oof = x @ coef.T + inter
    return coef, inter, best, oof


class _Constant:
    """``fit_soft_lr``'s fit of rows that hold one level only: that level, whatever the input."""

    def __init__(self, level: int, n: int):
        self.classes_ = np.array([level])
        self.coef_, self.intercept_ = np.zeros((1, n), dtype=np.float32), np.zeros(1, dtype=np.float32)

    def predict_proba(self, x) -> np.ndarray:
        return np.ones((x.shape[0], 1))


def _weights(clf, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(coef [k, n], intercept [k]) of a fitted sklearn LR over level indexes 0..k-1."""
    coef = np.zeros((k, n), dtype=np.float32)
    inter = np.full(k, -10.0, dtype=np.float32)  # a level never seen in training stays improbable
    if len(clf.classes_) == 2:  # sklearn keeps one row for two classes
        a, b = clf.classes_
        coef[b], inter[b] = clf.coef_[0] / 2, clf.intercept_[0] / 2
        coef[a], inter[a] = -clf.coef_[0] / 2, -clf.intercept_[0] / 2
    else:
        coef[clf.classes_], inter[clf.classes_] = clf.coef_, clf.intercept_
    return coef, inter
