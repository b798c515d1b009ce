"""The pretraining corpus as memory-mapped Arrow datasets, tokenised for whole-word masking.

``scripts/build_corpus.py`` writes the corpus folder (default ``$QA_CACHE/corpus``, ``QA_CACHE`` defaulting to
``~/.cache/qa``): ``train/<source>-NNNNN.txt`` shards, ``heldout/<source>.txt`` (1 %) and ``manifest.json`` with
each source's sampling weight. Here each source's shards are loaded with ``datasets.Dataset.from_text`` (Arrow files
cached under ``<corpus>/arrow``), cut into chunks of at most ``max_len - 2`` characters, segmented into words with
jieba and tokenised with the char tokenizer in ``Dataset.map(batched=True, num_proc=2)``. Each row keeps its
``input_ids`` and ``word_ids`` (the jieba word each token belongs to), so masking whole words is a gather at batch
time. Source weights are applied to the tokenised rows: a weight of 3 repeats a source three times, 0.5 keeps a
fixed half of it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from qa.errors import ModelError

NUM_PROC = 2
TOKENISE_VERSION = 2          # part of the Arrow cache key: bump when the tokenised rows change


def cache_root() -> Path:
    return Path(os.environ.get("QA_CACHE") or Path.home() / ".cache" / "qa")


def default_corpus_dir() -> Path:
    return cache_root() / "corpus"


def load_manifest(corpus: str | Path) -> dict:
    path = Path(corpus) / "manifest.json"
    if not path.is_file():
        raise ModelError(f"no pretraining corpus at {corpus} (manifest.json missing): build it with "
                         "`python scripts/build_corpus.py` (see docs/corpus.md)")
    return json.loads(path.read_text(encoding="utf-8"))


def source_files(corpus: str | Path, manifest: dict) -> dict[str, list[str]]:
    train = Path(corpus) / "train"
    return {name: [str(train / f) for f in s.get("shards", [])] for name, s in manifest["sources"].items()
            if s.get("shards")}


def char_counts(corpus: str | Path, manifest: dict, extra: Iterable[str] = ()) -> Counter:
    """Character counts over the training shards, each source's counts multiplied by its weight (so the
    vocabulary follows what pretraining sees), plus ``extra`` texts."""
    total: Counter = Counter()
    for name, files in source_files(corpus, manifest).items():
        c: Counter = Counter()
        for f in files:
            with open(f, encoding="utf-8") as fh:
                for line in fh:
                    c.update(line.rstrip("\n").lower())
        w = float(manifest["sources"][name].get("weight", 1.0))
        for ch, n in c.items():
            total[ch] += n * w
    for t in extra:
        total.update(t.lower())
    return total


def vocab_from_counts(counts: Counter, size: int, min_count: float = 2) -> list[str]:
    """``qa.model.vocab.vocab_from_counts`` (kept here for the pretraining code that counts the corpus)."""
    from qa.model.vocab import vocab_from_counts as build
    return build(counts, size, min_count)


def chunk_spans(n: int, size: int) -> list[tuple[int, int]]:
    """(start, end) of even pieces of at most ``size`` characters covering ``n`` characters."""
    if n <= size:
        return [(0, n)]
    k = -(-n // size)                       # even pieces rather than a long one and a stub
    step = -(-n // k)
    return [(s, min(n, s + step)) for s in range(0, n, step)]


def chunk_text(text: str, size: int) -> list[str]:
    """Pieces of at most ``size`` characters (a chat message or a passage cut where it must be)."""
    text = text.strip()
    return [p for a, b in chunk_spans(len(text), size) if len(p := text[a:b].strip()) >= 2]


def char_word_ids(text: str, jieba_mod) -> list[int]:
    """For each character of ``text``, the index of the jieba word it belongs to (one jieba call per text)."""
    cw: list[int] = []
    for i, w in enumerate(jieba_mod.cut(text, HMM=False)):
        cw.extend([i] * len(w))
    return cw


class Tokenise:
    """A picklable batched ``map`` function: text → chunks → ``input_ids`` / ``word_ids``.

    Each text is segmented by jieba once; its chunks of at most ``max_len - 2`` characters keep the word ids of
    their characters, so a word cut by a chunk boundary is still one word on each side."""

    def __init__(self, tokenizer_dir: str, max_len: int, prefix_field: str | None = None):
        self.tokenizer_dir, self.max_len, self.prefix_field = tokenizer_dir, max_len, prefix_field
        self._tok = None

    def __call__(self, batch: dict) -> dict:
        import jieba
        jieba.setLogLevel(60)
        if self._tok is None:
            from transformers import AutoTokenizer
            self._tok = AutoTokenizer.from_pretrained(self.tokenizer_dir)
        size = self.max_len - 2
        pieces, prefixes, words_of = [], [], []
        roles = batch.get(self.prefix_field) if self.prefix_field else None
        for i, text in enumerate(batch["text"]):
            text = (text or "").strip()
            if len(text) < 2:
                continue
            pre = roles[i] if roles else ""
            cw = char_word_ids(text, jieba)
            for a, b in chunk_spans(len(text), size - (1 if pre else 0)):
                if b - a >= 2:
                    pieces.append(text[a:b])
                    prefixes.append(pre)
                    words_of.append(cw[a:b])
        if not pieces:
            return {"input_ids": [], "word_ids": []}
        enc = self._tok(pieces, truncation=True, max_length=self.max_len, return_offsets_mapping=True)
        ids_out, words_out = [], []
        for pre, cw, ids, offs in zip(prefixes, words_of, enc["input_ids"], enc["offset_mapping"]):
            last = len(cw) - 1
            words = [-1 if a == b else cw[min(a, last)] for a, b in offs]
            if pre:                                  # the role marker stays unmasked, like [CLS]
                ids = [ids[0], self._tok.convert_tokens_to_ids(pre)] + ids[1:self.max_len - 1]
                words = [-1, -1] + words[1:self.max_len - 1]
            ids_out.append(ids)
            words_out.append(words)
        return {"input_ids": ids_out, "word_ids": words_out}


def _fingerprint(*parts) -> str:
    return hashlib.sha1(json.dumps([TOKENISE_VERSION, *parts], sort_keys=True, default=str).encode()).hexdigest()[:16]


def tokenise_files(files: list[str], tokenizer_dir: str, max_len: int, cache: Path, key: str,
                   num_proc: int = NUM_PROC):
    """One source's shards → tokenised ``datasets.Dataset`` (memory-mapped, cached by ``key``)."""
    from datasets import Dataset
    cache.mkdir(parents=True, exist_ok=True)
    ds = Dataset.from_text(files, cache_dir=str(cache / "text"))
    fn = Tokenise(tokenizer_dir, max_len)
    nproc = num_proc if len(ds) >= 20_000 else None
    return ds.map(fn, batched=True, batch_size=1000, num_proc=nproc, remove_columns=ds.column_names,
                  cache_file_name=str(cache / f"tok-{key}.arrow"), new_fingerprint=key,
                  desc=f"tokenise {Path(files[0]).stem.rsplit('-', 1)[0]}")


def tokenise_texts(texts: list[str], roles: list[str] | None, tokenizer_dir: str, max_len: int):
    """In-memory texts (chat messages, optionally with role markers) → tokenised ``datasets.Dataset``."""
    from datasets import Dataset
    data = {"text": list(texts)}
    if roles is not None:
        data["role"] = list(roles)
    ds = Dataset.from_dict(data)
    fn = Tokenise(tokenizer_dir, max_len, prefix_field="role" if roles is not None else None)
    return ds.map(fn, batched=True, batch_size=1000, remove_columns=ds.column_names, desc="tokenise chats")


def weighted(ds, weight: float, seed: int):
    """``ds`` repeated ``floor(weight)`` times plus a fixed fraction of it (or only that fraction if < 1)."""
    from datasets import concatenate_datasets
    whole, frac = int(weight), weight - int(weight)
    parts = [ds] * whole
    if frac > 1e-9 and len(ds):
        idx = np.sort(np.random.RandomState(seed).permutation(len(ds))[:max(1, int(round(frac * len(ds))))])
        parts.append(ds.select(idx))
    if not parts:
        return ds.select([])
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


def build_datasets(corpus: str | Path, tokenizer_dir: str, max_len: int, *, vocab_key: str,
                   chats: tuple[list[str], list[str]] | None = None, chat_weight: float = 2.0,
                   seed: int = 13, num_proc: int = NUM_PROC, log=print) -> tuple:
    """(train dataset, held-out dataset, per-source row counts) for pretraining."""
    from datasets import concatenate_datasets
    corpus = Path(corpus)
    manifest = load_manifest(corpus)
    cache = corpus / "arrow"
    parts, rows = [], {}
    for name, files in source_files(corpus, manifest).items():
        key = _fingerprint(name, manifest["sources"][name].get("chars"), manifest.get("built"), vocab_key, max_len)
        ds = tokenise_files(files, tokenizer_dir, max_len, cache, key, num_proc)
        w = float(manifest["sources"][name].get("weight", 1.0))
        wd = weighted(ds, w, seed)
        rows[name] = {"rows": len(ds), "weighted_rows": len(wd), "weight": w}
        parts.append(wd)
        log(f"corpus source {name}: {len(ds):,} sequences × {w} → {len(wd):,}")
    if chats and chats[0]:
        cds = tokenise_texts(chats[0], chats[1], tokenizer_dir, max_len)
        wd = weighted(cds, chat_weight, seed)
        rows["chats"] = {"rows": len(cds), "weighted_rows": len(wd), "weight": chat_weight}
        parts.append(wd)
    if not parts:
        raise ModelError(f"the corpus at {corpus} has no training shards")
    train = concatenate_datasets(parts)
    return train, heldout_dataset(corpus, manifest, tokenizer_dir, max_len, vocab_key, seed, num_proc), rows


def heldout_dataset(corpus: Path, manifest: dict, tokenizer_dir: str, max_len: int, vocab_key: str, seed: int,
                    num_proc: int = NUM_PROC):
    """The held-out 1 %, each source weighted as in training (so the score reflects what pretraining is for),
    in a fixed shuffled order; ``None`` when the corpus has none."""
    from datasets import concatenate_datasets
    cache = corpus / "arrow"
    parts = []
    for name, s in manifest["sources"].items():
        path = corpus / s.get("heldout_file", "")
        if not s.get("heldout_file") or not path.is_file() or not path.stat().st_size:
            continue
        key = _fingerprint("heldout", name, manifest.get("built"), s.get("heldout_chars"), vocab_key, max_len)
        ds = tokenise_files([str(path)], tokenizer_dir, max_len, cache, key, num_proc)
        parts.append(weighted(ds, float(s.get("weight", 1.0)), seed))
    if not parts:
        return None
    held = concatenate_datasets(parts)
    return held.select(np.random.default_rng([seed, 7]).permutation(len(held)))


def pad_batch(rows: dict, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``input_ids`` and ``word_ids`` of a batch as padded int arrays (word id −1 on padding)."""
    ids, words = rows["input_ids"], rows["word_ids"]
    width = max(map(len, ids))
    a = np.full((len(ids), width), pad_id, dtype=np.int64)
    w = np.full((len(ids), width), -1, dtype=np.int64)
    for i, (x, y) in enumerate(zip(ids, words)):
        a[i, :len(x)] = x
        w[i, :len(y)] = y
    return a, w


def whole_word_mask(words: np.ndarray, prob: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask [B, T]: each jieba word picked with probability ``prob`` masks all its tokens; every row
    with a word gets at least one."""
    n_words = int(words.max()) + 1 if words.size and words.max() >= 0 else 0
    if n_words == 0:
        return np.zeros(words.shape, dtype=bool)
    pick = rng.random((words.shape[0], n_words)) < prob
    valid = words >= 0
    mask = np.take_along_axis(pick, np.where(valid, words, 0), axis=1) & valid
    empty = ~mask.any(1) & valid.any(1)
    for i in np.nonzero(empty)[0]:                    # rows where nothing was picked: one random word
        choices = np.unique(words[i][valid[i]])
        mask[i] = words[i] == rng.choice(choices)
    return mask
