"""The shipped default on short real-shop chats: brevity that gives the fact asked is not poor service."""

from __future__ import annotations

from qa.io import read_path
from tests.conftest import ROOT


def test_default_model_does_not_read_short_factual_replies_as_poor_professionalism():
    from qa.model.predict import Classifier
    convs = list(read_path(ROOT / "tests" / "data" / "short_replies.jsonl"))
    assert len(convs) == 4
    preds = Classifier(ROOT / "models" / "default").predict(convs)
    for conv, p in zip(convs, preds):
        assert p["professionalism"].level >= 4, (conv.id, p["professionalism"].level)
        assert min(p[d].level for d in ("attitude", "etiquette", "professionalism", "clarity")) >= 3, conv.id
