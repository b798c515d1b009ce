"""The pretraining corpus: build script (parsing, cleaning, dedupe, held-out split) on a small self-written
fixture, the ``datasets`` loading with whole-word ids, and a few pretraining steps with checkpoint/resume."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "corpus_fixture"


@pytest.fixture(scope="module")
def bc():
    spec = importlib.util.spec_from_file_location("build_corpus", ROOT / "scripts" / "build_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["build_corpus"] = mod          # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


def fixture_sources(bc):
    S = bc.Source
    return [
        S("reviews", "github", "example/reviews", "0" * 40, ("reviews.csv",), "csv", "CC0", "ecommerce", 2.0,
          options=(("column", "review"),)),
        S("qa", "github", "example/qa", "0" * 40, ("qa.jsonl",), "jsonl", "CC0", "qa", 1.0,
          options=(("fields", "question,answer"),)),
        S("news", "pypi", "example-news", "1.0", ("news_tagged.txt",), "tagged", "CC0", "news", 0.5),
    ]


@pytest.fixture(scope="module")
def built(bc, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    local = {"reviews": [FIXTURE / "reviews.csv"], "qa": [FIXTURE / "qa.jsonl"], "news": [FIXTURE / "news_tagged.txt"]}
    manifest = bc.build(out, fixture_sources(bc), local=local, heldout_percent=30, log=lambda *a: None)
    return out, manifest


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_build_parses_cleans_and_dedupes(built):
    out, m = built
    assert not m["failed"]
    train = {name: [ln for f in s["shards"] for ln in _lines(out / "train" / f)] for name, s in m["sources"].items()}
    held = _lines(out / "heldout.txt")
    everything = [ln for v in train.values() for ln in v] + held
    assert len(everything) == len(set(everything))                      # exact duplicates dropped …
    assert m["sources"]["reviews"]["duplicates"] == 1                    # … the repeated review once
    assert m["sources"]["qa"]["duplicates"] == 1                         # … and across sources (first wins)
    assert "等了五天快递还没到,客服说再等等。" in everything              # traditional → simplified, half-width
    assert "衣服 质量不错, 面料舒服,尺码标准。" in everything            # whitespace runs → one space
    assert "ok 收到货了,abc牌子的耳机音质一般般,退货流程还算顺利。" in everything   # full-width → ASCII, lower
    assert "好" not in everything                                         # too short
    assert not any("hello world" in ln for ln in everything)             # mostly non-Chinese
    assert "江浙沪一般两天内送达,其他地区三到五天。" in everything       # list-valued JSON field
    assert "1998年新年讲话受到广泛关注。" in everything                  # POS tags and token spaces removed
    for name, s in m["sources"].items():                                 # manifest counts match the files
        assert s["passages"] == len(train[name])
        assert s["chars"] == sum(map(len, train[name]))
    assert m["total"]["heldout_passages"] == len(held)
    assert m["sources"]["reviews"]["weight"] == 2.0 and m["sources"]["news"]["licence"] == "CC0"


def test_heldout_split_is_by_hash(bc, built):
    out, m = built
    held = _lines(out / "heldout.txt")
    train = [ln for f in (out / "train").glob("*.txt") for ln in _lines(f)]
    assert held and train
    by_source = [ln for s in m["sources"].values() for ln in _lines(out / s["heldout_file"])]
    assert sorted(by_source) == sorted(held)                             # the same passages, by source
    assert all(bc.is_heldout(t, 30) for t in held)
    assert not any(bc.is_heldout(t, 30) for t in train)
    assert bc.is_heldout("物流很快", 1) == bc.is_heldout("物流很快", 1)
    share = np.mean([bc.is_heldout(f"第{i}条评论,质量不错", 1) for i in range(20_000)])
    assert 0.007 < share < 0.013                                         # 1 % by default


def test_forbidden_splits_are_refused(bc):
    for bad in ("datasets/bustm/dev_0.json", "x/test.json", "DRCD_dev.json", "data/valid.tsv", "a/test_public.json"):
        assert bc.forbidden_split(bad)
    for ok in ("datasets/eprstmt/unlabeled.json", "datasets/book_review/train.tsv", "全唐诗/poet.tang.0.json"):
        assert not bc.forbidden_split(ok)
    src = bc.Source("bad", "github", "o/r", "0" * 40, ("data/test.json",), "jsonl", "x", "qa")
    with pytest.raises(ValueError):
        list(bc._expand_github_paths(src, None))
    for s in bc.SOURCES:                                                 # the real table names no such split
        assert not any(bc.forbidden_split(p) for p in s.paths), s.name


def test_split_passage_keeps_sentences(bc):
    text = "这是第一句话。" * 60
    pieces = list(bc.split_passage(text, 50))
    assert "".join(pieces) == text and all(len(p) <= 50 for p in pieces)
    assert all(p.endswith("。") for p in pieces)


def test_whole_word_mask_and_chunks():
    from qa.model.corpus import chunk_text, whole_word_mask
    words = np.array([[-1, 0, 0, 1, 2, 2, 2, -1, -1], [-1, 0, 1, 1, -1, -1, -1, -1, -1]])
    mask = whole_word_mask(words, 0.5, np.random.default_rng(0))
    assert mask.any(1).all()                                             # every row gets a masked word
    for row_w, row_m in zip(words, mask):
        for w in set(row_w[row_w >= 0]):
            assert len(set(row_m[row_w == w])) == 1                      # a word is masked whole or not at all
        assert not row_m[row_w < 0].any()                                # never specials or padding
    assert all(len(p) <= 10 for p in chunk_text("一" * 95, 10)) and len(chunk_text("一" * 95, 10)) == 10


def test_tokenise_keeps_whole_words(tmp_path):
    pytest.importorskip("jieba")
    import jieba

    from qa.model.corpus import Tokenise, char_word_ids
    from qa.model.vocab import char_vocab, make_tokenizer
    texts = ["请问这款手机能退货吗", "快递一般几天能到" * 5]
    make_tokenizer(char_vocab(texts, min_count=1)).save_pretrained(tmp_path)
    out = Tokenise(str(tmp_path), 16, prefix_field="role")({"text": texts, "role": ["[CUS]", "[AGT]"]})
    assert len(out["input_ids"]) == 1 + 4                                # 40 characters in four chunks of ≤ 13
    for ids, words in zip(out["input_ids"], out["word_ids"]):
        assert len(ids) == len(words) <= 16 and words[:2] == [-1, -1] and words[-1] == -1
        inner = words[2:-1]
        assert inner == sorted(inner)                                    # a word's tokens are contiguous
    cw = char_word_ids(texts[0], jieba)
    assert out["word_ids"][0][2:-1] == cw[:len(out["word_ids"][0]) - 3]
    assert out["input_ids"][1][1] != out["input_ids"][0][1]              # role markers [AGT] / [CUS]


def test_pretrain_small_run_loads_like_train(built, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("datasets")
    pytest.importorskip("jieba")
    from transformers import AutoModel, AutoTokenizer

    from qa.model.pretrain import PretrainArgs, pretrain
    corpus, _ = built
    out = tmp_path / "base"
    args = PretrainArgs(out=str(out), corpus=str(corpus), conversations=[str(ROOT / "data" / "samples" / "samples.jsonl")],
                        vocab_size=400, hidden=32, layers=1, heads=2, max_len=16, batch_size=4, steps=4, eval_every=2,
                        save_every=2, threads=1, device="cpu")
    info = pretrain(args)
    assert info["steps"] == 4
    assert 0.0 <= info["heldout"]["masked_acc"] <= 1.0 and info["heldout"]["perplexity"] > 1
    assert [e["step"] for e in info["evals"]] == [2, 4]
    saved = json.loads((out / "pretrain.json").read_text(encoding="utf-8"))
    assert saved["model"]["layers"] == 1 and saved["corpus"]["sources"]["reviews"]["weight"] == 2.0
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "masked-token accuracy" in card and "qa pretrain" in card
    tok = AutoTokenizer.from_pretrained(out)                             # the way qa train --base-model loads it
    enc = AutoModel.from_pretrained(out, add_pooling_layer=False)
    assert enc.config.hidden_size == 32 and "[CUS]" in tok.get_vocab()
    hidden = enc(**tok(["客服态度很好"], return_tensors="pt")).last_hidden_state
    assert hidden.shape[-1] == 32
    # resume: continues from the checkpoint to the new step count
    args2 = PretrainArgs(**{**args.__dict__, "steps": 6, "resume": True})
    info2 = pretrain(args2)
    assert info2["steps"] == 6 and info2["evals"][0]["step"] == 2


def test_packed_rows_round_trip(tmp_path):
    from qa.model.corpus import PackedRows, weighted_index
    rows = {"input_ids": [[2, 10, 11, 12, 3], [2, 4, 20, 21, 22, 23, 3], [2, 30, 3]],
            "word_ids": [[-1, 5, 5, 6, -1], [-1, -1, 7, 8, 8, 8, -1], [-1, 40, -1]]}

    class Rows:
        def __len__(self):
            return 3

        def __getitem__(self, key):
            return {k: v[key] for k, v in rows.items()}

    PackedRows.from_rows(Rows(), chunk=2).save(tmp_path / "p.npz")
    p = PackedRows.load(tmp_path / "p.npz")
    got = p[[0, 1, 2]]
    assert got["input_ids"] == rows["input_ids"]
    # word ids are renumbered from 0 per row: the same tokens share a word, specials stay −1
    assert got["word_ids"] == [[-1, 0, 0, 1, -1], [-1, -1, 0, 1, 1, 1, -1], [-1, 0, -1]]
    assert p[1:2]["input_ids"] == [rows["input_ids"][1]] and len(p.select(np.array([2, 2]))) == 2
    assert list(weighted_index(4, 2.5, 0)[:8]) == [0, 1, 2, 3, 0, 1, 2, 3] and len(weighted_index(4, 2.5, 0)) == 10


def test_pretrain_from_pack_matches_corpus_and_continues(built, tmp_path):
    """``--pack`` writes what ``--from-pack`` trains on (same rows as the Arrow path, weights applied);
    ``init_from`` continues from a saved base."""
    pytest.importorskip("torch")
    pytest.importorskip("datasets")
    pytest.importorskip("jieba")
    from qa.model.corpus import read_pack
    from qa.model.pretrain import PretrainArgs, pretrain
    corpus, _ = built
    common = dict(corpus=str(corpus), vocab_size=400, hidden=32, layers=1, heads=2, max_len=16, batch_size=4,
                  eval_every=0, save_every=100, threads=1, device="cpu")
    pack = tmp_path / "pack"
    info = pretrain(PretrainArgs(out=str(tmp_path / "unused"), pack=str(pack), **common))
    assert info["sources"]["reviews"]["weight"] == 2.0
    train, held, rows, manifest = read_pack(pack)
    assert rows["reviews"]["weighted_rows"] == 2 * rows["reviews"]["rows"]          # weight 2: twice
    assert len(train) == sum(r["weighted_rows"] for r in rows.values()) and held is not None and len(held)
    assert manifest["sources"].keys() == {"reviews", "qa", "news"}
    assert train[[0]]["input_ids"][0][0] == 2                                      # [CLS] first
    first = pretrain(PretrainArgs(out=str(tmp_path / "a"), from_pack=str(pack), steps=3, **common))
    assert first["steps"] == 3 and first["corpus"]["pack"] == str(pack)
    second = pretrain(PretrainArgs(out=str(tmp_path / "b"), from_pack=str(pack), steps=2,
                                   init_from=str(tmp_path / "a"), **common))
    assert second["init_from"]["steps"] == 3 and second["steps"] == 2
    with pytest.raises(ValueError):
        PretrainArgs(out="x", pack="p", from_pack="q")


def test_pretrain_distils_teacher_vectors(built, tmp_path):
    """``teacher``: the student's pooled message vectors move toward the teacher's (held-out cosine rises
    over the run), the figures land in pretrain.json and the card, and the saved encoder loads as before."""
    pytest.importorskip("torch")
    pytest.importorskip("datasets")
    pytest.importorskip("jieba")
    from qa.model.distil import held_out
    from qa.model.pretrain import PretrainArgs, pretrain
    corpus, _ = built
    rng = np.random.default_rng(0)
    words = ["发货", "退款", "快递", "尺码", "颜色", "优惠", "质量", "客服", "地址", "包装"]
    texts = sorted({"".join(rng.choice(words, 3)) for _ in range(400)})
    # a teacher that places a text by which words it holds: learnable from characters
    vecs = np.stack([[t.count(w) for w in words] + [0.5] * 6 for t in texts]).astype(np.float32)
    np.savez(tmp_path / "t.npz", texts=np.array(texts), vectors=vecs)
    assert any(held_out(t) for t in texts) and not all(held_out(t) for t in texts)
    info = pretrain(PretrainArgs(out=str(tmp_path / "d"), corpus=str(corpus), vocab_size=400, hidden=32, layers=1,
                                 heads=2, max_len=16, batch_size=16, steps=60, eval_every=5, save_every=1000,
                                 threads=1, device="cpu", lr=3e-3, teacher=str(tmp_path / "t.npz"),
                                 teacher_weight=2.0))
    first, last = info["evals"][0], info["heldout"]
    assert last["teacher_cosine"] > first["teacher_cosine"] + 0.05 and last["teacher_cosine"] > 0.8
    assert info["teacher"]["texts"] == len(texts) and info["teacher"]["dim"] == 16
    assert "distil_loss" in info["history"][-1]
    assert "teacher" in (tmp_path / "d" / "MODEL_CARD.md").read_text(encoding="utf-8").lower()
