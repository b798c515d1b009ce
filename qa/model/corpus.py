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
import math
import os
import zipfile
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
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not all(isinstance(s.get("chars"), int) for s in manifest["sources"].values()) or \
                not isinstance(manifest["total"]["chars"], int):
            raise ValueError("each source and the total need a whole number of chars")
        for name, s in manifest["sources"].items():
            shards, w = s.get("shards", []), s.get("weight", 1.0)
            if not isinstance(shards, list) or not all(isinstance(f, str) for f in shards):
                raise ValueError(f"sources.{name}.shards: a list of file names, not {shards!r:.40}")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ValueError(f"sources.{name}.weight: a finite number ≥ 0, not {w!r:.40}")
            for f in shards:   # a shard lost or left empty by an interrupted build
                shard = Path(corpus) / "train" / f
                if not shard.is_file() or shard.stat().st_size == 0:
                    raise ValueError(f"sources.{name}: its shard {shard} is {'empty' if shard.is_file() else 'missing'}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ModelError(f"{path}: not a corpus manifest ({type(e).__name__}: {e}); build the corpus again with "
                         "`python scripts/build_corpus.py`") from None
    return manifest


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
            try:
                with open(f, encoding="utf-8") as fh:
                    for line in fh:
                        c.update(line.rstrip("\n").lower())
            except UnicodeDecodeError as e:   # a shard saved again in another encoding (GB18030 on Windows)
                raise ModelError(f"{f}: not UTF-8 text ({e.reason}); build the corpus "
                                 "again with `python scripts/build_corpus.py`") from None
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


def source_datasets(corpus: str | Path, tokenizer_dir: str, max_len: int, *, vocab_key: str,
                    chats: tuple[list[str], list[str]] | None = None, chat_weight: float = 2.0,
                    num_proc: int = NUM_PROC) -> dict[str, tuple]:
    """Per source (and ``chats`` for the chat messages) its tokenised dataset and sampling weight."""
    corpus = Path(corpus)
    manifest = load_manifest(corpus)
    cache = corpus / "arrow"
    out = {}
    for name, files in source_files(corpus, manifest).items():
        key = _fingerprint(name, manifest["sources"][name].get("chars"), manifest.get("built"), vocab_key, max_len)
        out[name] = (tokenise_files(files, tokenizer_dir, max_len, cache, key, num_proc),
                     float(manifest["sources"][name].get("weight", 1.0)))
    if chats and chats[0]:
        out["chats"] = (tokenise_texts(chats[0], chats[1], tokenizer_dir, max_len), chat_weight)
    if not out:
        raise ModelError(f"the corpus at {corpus} has no training shards")
    return out


def build_datasets(corpus: str | Path, tokenizer_dir: str, max_len: int, *, vocab_key: str,
                   chats: tuple[list[str], list[str]] | None = None, chat_weight: float = 2.0,
                   seed: int = 13, num_proc: int = NUM_PROC, log=print) -> tuple:
    """(train dataset, held-out dataset, per-source row counts) for pretraining."""
    from datasets import concatenate_datasets
    corpus = Path(corpus)
    parts, rows = [], {}
    for name, (ds, w) in source_datasets(corpus, tokenizer_dir, max_len, vocab_key=vocab_key, chats=chats,
                                         chat_weight=chat_weight, num_proc=num_proc).items():
        wd = weighted(ds, w, seed)
        rows[name] = {"rows": len(ds), "weighted_rows": len(wd), "weight": w}
        parts.append(wd)
        log(f"corpus source {name}: {len(ds):,} sequences × {w} → {len(wd):,}")
    train = concatenate_datasets(parts)
    manifest = load_manifest(corpus)
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


PACK_VERSION = 1


class PackedRows:
    """Tokenised rows in flat numpy arrays — ids as uint16, each token's word as two bits (starts a new word /
    belongs to none) — a compact stand-in for the Arrow datasets that needs neither ``datasets`` nor jieba.

    ``qa pretrain --pack DIR`` writes one (what travels to a GPU machine); ``--from-pack DIR`` trains from it.
    ``index`` maps the rows training sees to stored rows (source weights are repeats of stored rows)."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, starts: np.ndarray, special: np.ndarray,
                 index: np.ndarray | None = None):
        self.ids, self.offsets, self.starts, self.special = ids, offsets, starts, special
        self.index = np.arange(len(offsets) - 1) if index is None else index

    def __len__(self) -> int:
        return len(self.index)

    def row(self, i: int) -> tuple[list[int], list[int]]:
        a, b = self.offsets[i], self.offsets[i + 1]
        special = self.special[a:b]
        words = np.cumsum(self.starts[a:b]) - 1
        return self.ids[a:b].tolist(), np.where(special, -1, words).tolist()

    def __getitem__(self, key) -> dict:
        rows = self.index[key] if isinstance(key, slice) else self.index[np.asarray(key, dtype=np.int64)]
        ids, words = zip(*(self.row(int(i)) for i in rows)) if len(rows) else ((), ())
        return {"input_ids": list(ids), "word_ids": list(words)}

    def select(self, index: np.ndarray) -> "PackedRows":
        return PackedRows(self.ids, self.offsets, self.starts, self.special, self.index[index])

    @classmethod
    def from_rows(cls, ds, chunk: int = 20_000) -> "PackedRows":
        """From anything with ``len`` and slices giving ``input_ids``/``word_ids`` (a tokenised dataset)."""
        ids, starts, special, lengths = [], [], [], []
        for s in range(0, len(ds), chunk):
            part = ds[s:s + chunk]
            for x, w in zip(part["input_ids"], part["word_ids"]):
                w = np.asarray(w, dtype=np.int64)
                sp = w < 0
                # a token starts a word when its word differs from the previous word token's
                last_word = np.maximum.accumulate(np.where(sp, -2, w))
                prev_word = np.concatenate([[-2], last_word[:-1]])
                ids.append(np.asarray(x, dtype=np.uint16))
                starts.append(~sp & (w != prev_word))
                special.append(sp)
                lengths.append(len(x))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        cat = (lambda xs, dt: np.concatenate(xs).astype(dt)) if ids else (lambda xs, dt: np.zeros(0, dt))
        return cls(cat(ids, np.uint16), offsets, cat(starts, bool), cat(special, bool))

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, version=PACK_VERSION, ids=self.ids, offsets=self.offsets,
                            starts=np.packbits(self.starts), special=np.packbits(self.special), index=self.index)

    @classmethod
    def load(cls, path: str | Path) -> "PackedRows":
        z = np.load(path)
        if int(z["version"]) != PACK_VERSION:
            raise ModelError(f"{path}: pack version {int(z['version'])}, expected {PACK_VERSION}")
        n = len(z["ids"])
        return cls(z["ids"], z["offsets"], np.unpackbits(z["starts"])[:n].astype(bool),
                   np.unpackbits(z["special"])[:n].astype(bool), z["index"])


def weighted_index(n: int, weight: float, seed: int) -> np.ndarray:
    """The row indexes ``weighted`` keeps: ``floor(weight)`` repeats plus a fixed fraction."""
    whole, frac = int(weight), weight - int(weight)
    parts = [np.arange(n)] * whole
    if frac > 1e-9 and n:
        parts.append(np.sort(np.random.RandomState(seed).permutation(n)[:max(1, int(round(frac * n)))]))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def write_pack(out: str | Path, sources: dict[str, tuple], held, tokenizer, manifest: dict, meta: dict,
               max_rows: dict[str, int] | None = None, seed: int = 13) -> dict:
    """A pack folder: per source its stored rows (the fraction a weight < 1 keeps; a general source — weight
    ≤ 1 — capped at ``max_rows[source]`` rows, a seeded sample) and the weight still to apply, the held-out
    rows, the tokenizer and the corpus manifest. Returns the pack's ``pack.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out / "tokenizer")
    info = {"version": PACK_VERSION, "sources": {}, **meta}
    for name, (ds, weight) in sources.items():
        keep = weighted_index(len(ds), min(weight, 1.0), seed) if weight < 1 else np.arange(len(ds))
        cap = (max_rows or {}).get(name) if weight <= 1 else None
        if cap is not None and len(keep) > cap:
            keep = np.sort(np.random.default_rng([seed, 3]).permutation(keep)[:cap])
        packed = PackedRows.from_rows(ds.select(keep) if hasattr(ds, "select") else ds)
        packed.save(out / f"train-{name}.npz")
        info["sources"][name] = {"rows": len(ds), "stored_rows": len(keep), "weight": max(1.0, weight),
                                 "tokens": int(len(packed.ids))}
    if held is not None:
        PackedRows.from_rows(held).save(out / "heldout.npz")
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    (out / "pack.json").write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    return info


def read_pack(pack: str | Path, seed: int = 13):
    """(train rows with source weights applied, held-out rows or None, per-source row counts, manifest); a pack
    that is damaged anywhere (its JSON, a weight, a shard) is a ``ModelError`` naming it."""
    pack = Path(pack)
    if not (pack / "pack.json").is_file():
        raise ModelError(f"{pack} is not a corpus pack (pack.json missing): write one with `qa pretrain --pack`")
    try:
        return _read_pack(pack, seed)
    except ModelError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as e:
        raise ModelError(f"{pack}: a damaged corpus pack ({type(e).__name__}: {e}); write it again with "
                         "`qa pretrain --pack`") from None


def read_pack_info(pack: str | Path) -> dict:
    """A pack's ``pack.json``; ``ModelError`` when it is not a JSON object."""
    path = Path(pack) / "pack.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: not a pack description ({type(e).__name__}: {e}); write the pack again with "
                         "`qa pretrain --pack`") from None
    if not isinstance(info, dict):
        raise ModelError(f"{path}: not a pack description (a JSON object); write the pack again with `qa pretrain --pack`")
    return info


def _read_pack(pack: Path, seed: int):
    info = read_pack_info(pack)
    parts, rows, offset = [], {}, 0
    arrays = {"ids": [], "offsets": [], "starts": [], "special": []}
    tok_base = 0
    for name, s in info["sources"].items():
        p = PackedRows.load(pack / f"train-{name}.npz")
        idx = weighted_index(len(p), float(s["weight"]), seed)
        parts.append(idx + offset)
        offset += len(p)
        arrays["ids"].append(p.ids)
        arrays["starts"].append(p.starts)
        arrays["special"].append(p.special)
        arrays["offsets"].append(p.offsets[:-1] + tok_base)
        tok_base += len(p.ids)
        rows[name] = {"rows": s["rows"], "weighted_rows": len(idx), "weight": s["weight"],
                      "stored_rows": s["stored_rows"]}
    train = PackedRows(np.concatenate(arrays["ids"]), np.concatenate(arrays["offsets"] + [[tok_base]]),
                       np.concatenate(arrays["starts"]), np.concatenate(arrays["special"]),
                       np.concatenate(parts))
    held = PackedRows.load(pack / "heldout.npz") if (pack / "heldout.npz").is_file() else None
    manifest = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
    return train, held, rows, manifest
