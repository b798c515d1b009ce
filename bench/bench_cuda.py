"""Pretrain and classifier-train steps on a CUDA GPU (bf16 autocast): step time and tokens/s.

    python bench/bench_cuda.py [--layers 4 --hidden 256 --heads 4 --max-len 64] [--batch 512] [--steps 30]
                               [--corpus DIR] [--device cuda]

Pretrain step: the step ``qa pretrain`` runs (``qa.model.pretrain.mlm_loss``: whole-word-masked inputs, the loss on
masked positions only, AdamW), on batches from the corpus folder when one is built (``scripts/build_corpus.py``),
else on random character ids of the same shape. Classifier step: forward and backward of ``qa.model.modeling``'s
``RubricModel`` (the network ``qa train`` fits: encoder over every message, context layer, per-dimension heads) on
synthetic batches of 20-message chats — ``qa.model.train`` exposes no single step, so this times the network the
same way. Prints one JSON line per measurement. Without a CUDA device it says so and exits 0; ``--device cpu``
runs the same measurement on the CPU (small ``--steps`` there).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def corpus_batches(corpus: str | None, max_len: int, batch: int, vocab: int, pad_id: int, n: int):
    """(ids, words) arrays: the first ``n`` batches of the corpus shards (chars as tokens) or random ids."""
    import numpy as np
    rng = np.random.default_rng(0)
    lines = []
    if corpus:
        for f in sorted((Path(corpus) / "train").glob("*.txt"))[:3]:
            with open(f, encoding="utf-8") as fh:
                for i, line in enumerate(fh):
                    if i >= batch * n:
                        break
                    lines.append(line.strip())
    out = []
    for b in range(n):
        if lines:
            rows = [lines[(b * batch + i) % len(lines)][:max_len - 2] for i in range(batch)]
            width = max(map(len, rows)) + 2
            ids = np.full((batch, width), pad_id, dtype=np.int64)
            words = np.full((batch, width), -1, dtype=np.int64)
            for i, r in enumerate(rows):
                ids[i, 0], ids[i, len(r) + 1] = 2, 3
                ids[i, 1:len(r) + 1] = [10 + (ord(c) % (vocab - 10)) for c in r]
                words[i, 1:len(r) + 1] = np.arange(len(r)) // 2          # two-character "words"
        else:
            ids = rng.integers(10, vocab, (batch, max_len))
            words = np.tile(np.arange(max_len) // 2, (batch, 1))
            ids[:, 0], ids[:, -1], words[:, 0], words[:, -1] = 2, 3, -1, -1
        out.append((ids, words))
    return out


def bench_pretrain(args, device) -> dict:
    import numpy as np
    import torch

    from qa.model.pretrain import PretrainArgs, autocast, make_model, mlm_inputs, mlm_loss
    pa = PretrainArgs(out="-", layers=args.layers, hidden=args.hidden, heads=args.heads, max_len=args.max_len,
                      intermediate=args.intermediate)
    vocab, pad = args.vocab, 0
    model = make_model(pa, vocab, pad).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, fused=device.type == "cuda")
    tok_info = {"mask": 4, "vocab": vocab, "first_normal": 8}
    rng = np.random.default_rng(0)
    batches = corpus_batches(args.corpus, args.max_len, args.batch, vocab, pad, 4)
    prepared = []
    for ids, words in batches:
        inputs, labels = mlm_inputs(ids, words, tok_info, 0.15, rng)
        prepared.append((torch.as_tensor(inputs, device=device), torch.as_tensor(ids != pad, device=device).long(),
                         torch.as_tensor(labels, device=device), int((ids != pad).sum())))

    def step(i):
        inputs, attn, labels, _ = prepared[i % len(prepared)]
        with autocast(device):
            loss, _, _ = mlm_loss(model, inputs, attn, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    for i in range(args.warmup):
        step(i)
    _sync(device)
    t0 = time.perf_counter()
    tokens = 0
    for i in range(args.steps):
        step(i)
        tokens += prepared[i % len(prepared)][3]
    _sync(device)
    dt = time.perf_counter() - t0
    return {"bench": "pretrain_step", "device": _name(device), "layers": args.layers, "hidden": args.hidden,
            "heads": args.heads, "max_len": args.max_len, "batch": args.batch, "steps": args.steps,
            "params": sum(p.numel() for p in model.parameters()), "step_ms": round(1000 * dt / args.steps, 2),
            "tokens_per_s": round(tokens / dt), "data": "corpus" if args.corpus else "random",
            "peak_mem_mb": _peak(device)}


def bench_train(args, device) -> dict:
    """Forward + backward + AdamW of RubricModel on synthetic 20-message chats (``args.chats`` per batch)."""
    import torch
    from transformers import BertConfig

    from qa.model.modeling import RubricConfig, RubricModel
    from qa.model.pretrain import autocast
    enc = BertConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                     num_attention_heads=args.heads, intermediate_size=args.intermediate or 4 * args.hidden,
                     max_position_embeddings=max(128, args.max_len)).to_dict()
    dims = {"attitude": ["good", "ok", "bad"], "etiquette": ["good", "ok", "bad"],
            "professionalism": ["good", "ok", "bad"], "clarity": ["good", "ok", "bad"]}
    cfg = RubricConfig(encoder=enc, dimensions=dims, max_tokens=args.max_len)
    model = RubricModel(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    b, m, t = args.chats, 20, min(args.max_len, 48)
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(4, t + 1, (b * m,), generator=g)
    ids = torch.randint(10, args.vocab, (b * m, t), generator=g)
    mask = (torch.arange(t)[None, :] < lengths[:, None]).long()
    ids = ids * mask
    turn_map = torch.arange(b * m).view(b, m)
    roles = torch.randint(0, 2, (b, m), generator=g)
    labels = torch.zeros(b, len(dims), 3)
    labels[..., 0] = 1.0
    batch = {k: v.to(device) for k, v in dict(input_ids=ids, attention_mask=mask, turn_map=turn_map,
                                                turn_roles=roles, labels=labels,
                                                label_mask=torch.ones(b, len(dims), dtype=torch.bool)).items()}
    tokens = int(mask.sum())

    def step():
        with autocast(device):
            loss = model(**batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    dt = time.perf_counter() - t0
    return {"bench": "train_step", "device": _name(device), "layers": args.layers, "hidden": args.hidden,
            "chats_per_batch": b, "messages_per_chat": m, "steps": args.steps,
            "step_ms": round(1000 * dt / args.steps, 2), "tokens_per_s": round(tokens * args.steps / dt),
            "chats_per_s": round(b * args.steps / dt, 1), "peak_mem_mb": _peak(device)}


def _name(device) -> str:
    import torch
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"


def _peak(device):
    import torch
    return round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=None)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--batch", type=int, default=512, help="pretrain sequences per step")
    ap.add_argument("--chats", type=int, default=32, help="classifier chats per step")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--corpus", default=None, help="corpus folder (default: $QA_CACHE/corpus when built)")
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args(argv)
    import torch
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to measure (run with --device cpu for the CPU figures)")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.corpus is None:
        from qa.model.corpus import default_corpus_dir
        d = default_corpus_dir()
        args.corpus = str(d) if (d / "manifest.json").is_file() else None
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    print(json.dumps(bench_pretrain(args, device)), flush=True)
    if not args.skip_train:
        print(json.dumps(bench_train(args, device)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
