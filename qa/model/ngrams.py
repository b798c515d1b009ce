"""The char n-gram channel: a TF-IDF vocabulary fitted on the training chats, saved as JSON in the model dir."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

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
        return self.vec.transform(texts)

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
