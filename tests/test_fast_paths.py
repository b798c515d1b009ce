"""The grading fast paths give what the library calls they replace give: qa.model.tfidf.transform against sklearn's
TfidfVectorizer.transform, qa.model.batching.encode against the transformers tokenizer call; on the shipped model's
own vectorizers and tokenizer, the sample chats and crafted texts."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from qa.io import read_path
from qa.model import tfidf
from qa.model.ridge import RidgeChannel
from tests.conftest import ROOT

TEXTS = ["", "亲", "您好  亲，\n\n这款有货吗？", "ABC abc ＡＢＣ", "订单号 4517836444876148 实付¥44 😀😀",
         "\t\u3000空白\r\n混合  ", "完全没见过的字龘靐", "好的好的好的好的"]


def _same(vec, texts):
    a = vec.transform(texts).tocsr()
    b = tfidf.transform(vec, texts)
    assert a.shape == b.shape
    assert (a != b).nnz == 0
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3)])
@pytest.mark.parametrize("sublinear", [True, False])
def test_matches_sklearn_on_crafted_texts(ngram_range, sublinear):
    vec = TfidfVectorizer(analyzer="char", ngram_range=ngram_range, sublinear_tf=sublinear, dtype=np.float32)
    vec.fit(TEXTS[1:5] + ["这款有货，亲", "好的"])
    _same(vec, TEXTS)


def test_matches_sklearn_with_the_shipped_vectorizers():
    chats = list(read_path(ROOT / "data" / "samples" / "samples.jsonl"))
    ridge = RidgeChannel.load(ROOT / "models" / "default")
    texts = [m.norm for c in chats for m in c.messages if m.text] + TEXTS
    for vec in (ridge.text_vec, ridge.gate["vec"], ridge.projection.vec, *ridge.turn_flags.focus.values()):
        _same(vec, texts)


def test_other_vectorizers_go_to_sklearn():
    vec = TfidfVectorizer(analyzer="word", dtype=np.float32).fit(["ab cd", "cd ef"])
    assert (tfidf.transform(vec, ["ab ef", ""]) != vec.transform(["ab ef", ""])).nnz == 0
    assert tfidf.transform(vec, []).shape == (0, 3)


def test_encode_matches_the_tokenizer_call():
    from transformers import AutoTokenizer
    from qa.model.batching import encode
    tok = AutoTokenizer.from_pretrained(ROOT / "models" / "default")
    chats = list(read_path(ROOT / "data" / "samples" / "samples.jsonl"))
    texts = [m.norm for c in chats for m in c.messages if m.text] + [t or "[PAD]" for t in TEXTS] + ["长" * 300]
    for n in (8, 64):
        ids, mask = encode(tok, texts, n)
        enc = tok(texts, truncation=True, max_length=n, padding=True, return_tensors="pt")
        assert ids.shape[1] <= n
        assert ids.equal(enc["input_ids"]) and mask.equal(enc["attention_mask"])
    # the transformers call afterwards is not changed by the backend settings encode leaves
    short, long = tok(["你好", "你好呀呀呀"])["input_ids"]
    assert len(short) + 3 == len(long)
