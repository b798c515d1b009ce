"""Char n-gram TF-IDF rows at grading speed: ``transform(vec, texts)`` gives exactly what a fitted sklearn
``TfidfVectorizer``'s ``transform`` gives (char 1–3-grams, sublinear tf, l2 norm: every vectorizer the model
reads), about 1.7× faster. sklearn counts each n-gram in a Python loop; here the n-grams are built and looked up
by ``map`` (string joins and dict lookups in C) and counted by scipy. Any other kind of vectorizer is passed to
its own ``transform``. Measured: ``docs/benchmarks.md``, "Session 26".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain, repeat
from operator import add

import numpy as np

_WS = re.compile(r"\s\s+")   # sklearn's char analyzer folds runs of white space into one space


def _fast(vec) -> bool:
    return (getattr(vec, "analyzer", None) == "char" and vec.ngram_range[0] >= 1 and vec.ngram_range[1] <= 3
            and vec.preprocessor is None and not vec.strip_accents and vec.norm == "l2" and vec.use_idf
            and not vec.binary and hasattr(vec, "idf_"))


def _ids(get, text: str, lo: int, hi: int):
    """The vocabulary index (−1: not in it) of each of ``text``'s char n-grams, lo ≤ n ≤ hi."""
    parts: list = [text] if lo == 1 else []
    if hi >= 2:
        bi = list(map(add, text, text[1:]))
        if lo <= 2:
            parts.append(bi)
        if hi >= 3:
            parts.append(map(add, bi, text[2:]))
    return map(get, chain.from_iterable(parts), repeat(-1))


def transform(vec, texts: Sequence[str]):
    """``vec.transform(texts)`` as a CSR matrix."""
    from scipy import sparse
    from sklearn.preprocessing import normalize
    texts = list(texts)
    if not texts:
        return sparse.csr_matrix((0, len(vec.vocabulary_)), dtype=vec.dtype)
    if not _fast(vec):
        return sparse.csr_matrix(vec.transform(texts))
    lo, hi = vec.ngram_range
    get, ids, lens = vec.vocabulary_.get, [], []
    for t in texts:
        t = _WS.sub(" ", t.lower() if vec.lowercase else t)
        start = len(ids)
        ids.extend(_ids(get, t, lo, hi))
        lens.append(len(ids) - start)
    col = np.array(ids, dtype=np.int32)
    indptr = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(lens, out=indptr[1:])
    known = col >= 0
    if not known.all():
        indptr = np.r_[0, np.cumsum(known)][indptr]
        col = col[known]
    x = sparse.csr_matrix((np.ones(len(col), vec.dtype), col, indptr), shape=(len(texts), len(vec.vocabulary_)))
    x.sum_duplicates()                       # counts per row, indices sorted
    if vec.sublinear_tf:
        np.log(x.data, x.data)
        x.data += 1.0
    x.data *= vec.idf_[x.indices]
    return normalize(x, norm="l2", copy=False)
