"""Masked-language-model pretraining of the project's char BERT on the corpus ``scripts/build_corpus.py`` builds.

Corpus: the folder of ``build_corpus.py`` (default ``$QA_CACHE/corpus``; sources, licences and weights in
``docs/corpus.md``), loaded and tokenised with ``datasets`` (``qa.model.corpus``), plus the messages of the given
conversation files (each with its role marker) as an extra source. Passages are cut into chunks of at most
``max_len - 2`` characters — the classifier reads one chat message at a time, so short sequences are what it needs.

Training: whole-word masking over jieba words (15 % of words; of their tokens 80 % → ``[MASK]``, 10 % → a random
token, 10 % kept), the loss only on masked positions (the hidden states of those positions are gathered before the
vocabulary projection), AdamW with linear warm-up and linear decay (the decay horizon follows ``--minutes`` when a
time budget is given), bf16 autocast on CUDA. The held-out 1 % is scored every ``eval_every`` steps and at the end:
masked-token accuracy and perplexity with a fixed mask (all chosen tokens → ``[MASK]``).

The result is a standard Hugging Face directory (``BertForMaskedLM`` weights + ``BertTokenizerFast``), loaded by
``qa train --base-model DIR`` through ``AutoModel`` / ``AutoTokenizer``, with ``pretrain.json`` and
``MODEL_CARD.md`` beside it. A checkpoint (``DIR/checkpoint/``) is written every ``save_every`` steps and at the
end; ``resume=True`` continues from it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from qa.errors import ModelError
from qa.model.distil import Teacher, distil_loss

log = logging.getLogger(__name__)

# float fields → (low, high, low excluded): the values a run can use (``qa pretrain`` checks its options by it)
FLOAT_LIMITS: dict[str, tuple[float, float | None, bool]] = {
    "lr": (0.0, None, True), "warmup": (0.0, 1.0, False), "weight_decay": (0.0, None, False),
    "minutes": (0.0, None, True), "mask_prob": (0.0, 1.0, True), "chat_weight": (0.0, None, False),
    "teacher_weight": (0.0, None, False)}


@dataclasses.dataclass
class PretrainArgs:
    out: str
    corpus: str | None = None             # corpus folder (default $QA_CACHE/corpus)
    conversations: list[str] = dataclasses.field(default_factory=list)
    vocab_size: int = 8000
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    intermediate: int | None = None       # feed-forward width (default 4 × hidden)
    max_len: int = 64
    batch_size: int = 128
    lr: float = 5e-4
    warmup: float = 0.05                  # share of the decay horizon spent warming up
    weight_decay: float = 0.01
    steps: int = 20000
    minutes: float | None = None          # stop after this much wall time (whichever comes first)
    mask_prob: float = 0.15
    chat_weight: float = 2.0              # repeats of the conversation messages
    eval_every: int = 500
    eval_size: int = 4096                 # held-out sequences scored (all of them if fewer)
    save_every: int = 1000
    resume: bool = False
    device: str = "auto"                  # auto | cpu | cuda
    seed: int = 13
    threads: int | None = None
    num_proc: int = 2
    pack: str | None = None               # write the tokenised corpus as a pack folder here and stop
    pack_max_rows: int | None = None      # at most this many stored rows per general source (weight ≤ 1)
    from_pack: str | None = None          # train from a pack folder (needs neither datasets nor jieba)
    init_from: str | None = None          # start from this pretrained model directory's weights (same vocab)
    teacher: str | None = None            # .npz of texts and teacher sentence vectors to distil (qa.model.distil)
    teacher_weight: float = 1.0           # weight of the distillation loss beside the MLM loss

    def __post_init__(self) -> None:
        if self.pack and self.from_pack:
            raise ValueError("--pack and --from-pack cannot be used together")
        if self.hidden % self.heads:
            raise ValueError(f"--hidden {self.hidden} must be a multiple of --heads {self.heads}")
        if self.max_len < 8:
            raise ValueError("max_len must be at least 8")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError("device must be auto, cpu or cuda")
        for name, (low, high, above) in FLOAT_LIMITS.items():
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or (v <= low if above else v < low)
                                  or (high is not None and v > high)):
                raise ValueError(f"{name} must be a finite number {'>' if above else '≥'} {low:g}"
                                 + (f" and ≤ {high:g}" if high is not None else "") + f", not {v}")


def resolve_device(name: str):
    import torch
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda but no CUDA device is available")
    return torch.device(name)


def autocast(device):
    """bf16 autocast on CUDA, nothing on CPU."""
    import torch
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def conversation_texts(paths: list[str]) -> tuple[list[str], list[str]]:
    """(texts, role markers) of the text messages of the given conversation files. What was read is logged
    (``read N · accepted A · rejected R``, the first rejects with file, line and reason); files that give no
    conversation at all are a ``ModelError``, not a corpus silently without them."""
    from qa.io.build import Reject
    from qa.io.read import ReadStats, read_many
    from qa.model.inputs import ROLE_TOKENS
    texts, roles, stats, rejects = [], [], ReadStats(), []
    for item in read_many(paths, stats):
        if isinstance(item, Reject):
            rejects.append(item)
            continue
        for m in item.messages:
            if m.type == "text" and m.text and m.role in ROLE_TOKENS:
                texts.append(m.norm)
                roles.append(ROLE_TOKENS[m.role])
    for r in rejects[:5]:
        log.warning("rejected %s: %s%s", ":".join(str(x) for x in (r.file, r.line) if x is not None),
                    f"{r.field}: " if r.field else "", r.reason)
    log.info("chats: read %d · accepted %d · rejected %d · %d text messages", stats.read, stats.accepted,
             stats.rejected, len(texts))
    if not stats.accepted:
        first = f" (e.g. {rejects[0].reason})" if rejects else ""
        raise ModelError(f"{', '.join(map(str, paths))}: no conversation could be read{first}")
    return texts, roles


def make_model(args: PretrainArgs, vocab: int, pad_id: int):
    from transformers import BertConfig, BertForMaskedLM
    cfg = BertConfig(vocab_size=vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                     num_attention_heads=args.heads, intermediate_size=args.intermediate or 4 * args.hidden,
                     max_position_embeddings=max(128, args.max_len), pad_token_id=pad_id)
    return BertForMaskedLM(cfg)


def mlm_inputs(ids: np.ndarray, words: np.ndarray, tok_info: dict, prob: float, rng: np.random.Generator,
               train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) with whole words masked; labels −100 outside the masked positions."""
    from qa.model.corpus import whole_word_mask
    mask = whole_word_mask(words, prob, rng)
    labels = np.where(mask, ids, -100)
    inputs = ids.copy()
    if train:
        r = rng.random(ids.shape)
        inputs[mask & (r < 0.8)] = tok_info["mask"]
        rnd = mask & (r >= 0.8) & (r < 0.9)
        inputs[rnd] = rng.integers(tok_info["first_normal"], tok_info["vocab"], int(rnd.sum()))
    else:
        inputs[mask] = tok_info["mask"]
    return inputs, labels


def mlm_loss(model, inputs, attn, labels):
    """Cross-entropy over the masked positions only: their hidden states are gathered before ``model.cls``."""
    import torch
    hidden = model.bert(input_ids=inputs, attention_mask=attn).last_hidden_state
    sel = labels != -100
    logits = model.cls(hidden[sel])
    target = labels[sel]
    loss = torch.nn.functional.cross_entropy(logits.float(), target)
    return loss, logits, target


class Batches:
    """Shuffled batches of the train dataset, epoch after epoch, padded and masked in a background thread."""

    def __init__(self, ds, batch_size: int, pad_id: int, tok_info: dict, prob: float, seed: int,
                 epoch: int = 0, pos: int = 0, prefetch: int = 4):
        self.ds, self.bs, self.pad, self.tok_info, self.prob, self.seed = ds, batch_size, pad_id, tok_info, prob, seed
        self.epoch, self.pos = epoch, pos
        self.rng = np.random.default_rng([seed, epoch, pos])
        self.q: queue.Queue = queue.Queue(maxsize=prefetch)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.ds))

    def _run(self) -> None:
        from qa.model.corpus import pad_batch
        epoch, pos = self.epoch, self.pos
        order = self._order(epoch)
        try:
            while not self.stop.is_set():
                if pos + self.bs > len(order):
                    epoch, pos = epoch + 1, 0
                    order = self._order(epoch)
                idx = np.sort(order[pos:pos + self.bs])
                ids, words = pad_batch(self.ds[idx.tolist()], self.pad)
                inputs, labels = mlm_inputs(ids, words, self.tok_info, self.prob, self.rng)
                pos += self.bs
                item = (inputs, (ids != self.pad), labels, epoch, pos)
                while not self.stop.is_set():
                    try:
                        self.q.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
        except Exception as e:  # noqa: BLE001 — surfaced in the training loop
            self.q.put(e)

    def __iter__(self) -> Iterator:
        while True:
            item = self.q.get()
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        self.stop.set()


def eval_batches(held, n: int, batch_size: int, pad_id: int, tok_info: dict, prob: float, seed: int = 1234):
    """Fixed masked batches of the first ``n`` held-out sequences (same masks at every evaluation)."""
    from qa.model.corpus import pad_batch
    if held is None or not len(held):
        return []
    rng = np.random.default_rng(seed)
    m = min(n, len(held))
    out = []
    for s in range(0, m, batch_size):
        ids, words = pad_batch(held[s:min(m, s + batch_size)], pad_id)
        inputs, labels = mlm_inputs(ids, words, tok_info, prob, rng, train=False)
        out.append((inputs, ids != pad_id, labels))
    return out


def evaluate(model, batches, device) -> dict:
    """Masked-token accuracy and perplexity (exp of the mean cross-entropy over masked tokens)."""
    import torch
    if not batches:
        return {}
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad(), autocast(device):
        for inputs, attn, labels in batches:
            inputs_t = torch.as_tensor(inputs, device=device)
            attn_t = torch.as_tensor(attn, device=device).long()
            labels_t = torch.as_tensor(labels, device=device)
            hidden = model.bert(input_ids=inputs_t, attention_mask=attn_t).last_hidden_state
            sel = labels_t != -100
            logits = model.cls(hidden[sel]).float()
            target = labels_t[sel]
            total += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(-1) == target).sum())
            n += int(target.numel())
    model.train()
    loss = total / max(n, 1)
    return {"masked_acc": round(correct / max(n, 1), 4), "perplexity": round(math.exp(min(loss, 50)), 2),
            "loss": round(loss, 4), "masked_tokens": n}


def _vocab_key(vocab: list[str]) -> str:
    return hashlib.sha1("\n".join(vocab).encode("utf-8")).hexdigest()[:16]


def command_line(args: PretrainArgs) -> str:
    """The ``qa pretrain`` call that reproduces ``args``."""
    defaults = PretrainArgs(out=args.out)
    parts = ["qa pretrain", *args.conversations]
    for f in dataclasses.fields(PretrainArgs):
        if f.name in ("out", "conversations", "threads", "num_proc"):
            continue
        v = getattr(args, f.name)
        if v == getattr(defaults, f.name):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(v, bool):
            parts.append(flag if v else "--no-" + flag[2:])
        else:
            parts.append(f"{flag} {v}")
    parts.append(f"--out {args.out}")
    return " ".join(parts)


def _save_checkpoint(path: Path, model, opt, state: dict) -> None:
    import torch
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "state.pt.part"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), **state}, tmp)
    tmp.replace(path / "state.pt")


def pretrain(args: PretrainArgs, progress: Callable | None = None) -> dict:
    import torch
    from transformers import AutoTokenizer

    from qa.model import corpus as C

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    ckpt_dir = out / "checkpoint"
    corpus_dir = Path(args.from_pack or args.corpus or C.default_corpus_dir())
    pack_info = None
    if args.from_pack:
        pack_info = C.read_pack_info(corpus_dir) if (corpus_dir / "pack.json").is_file() else None
        manifest = None
        chats = ([], [])
    else:
        manifest = C.load_manifest(corpus_dir)
        chats = conversation_texts(args.conversations) if args.conversations else ([], [])

    state = None
    if args.resume and (ckpt_dir / "state.pt").is_file():
        state = torch.load(ckpt_dir / "state.pt", map_location="cpu", weights_only=False)  # our own file
        tok = AutoTokenizer.from_pretrained(ckpt_dir / "tokenizer")
        log.info("resuming from step %s", state["step"])
    elif args.from_pack:
        tok = AutoTokenizer.from_pretrained(corpus_dir / "tokenizer")
        tok.save_pretrained(ckpt_dir / "tokenizer")
    else:
        from qa.model.vocab import make_tokenizer   # (needs qa.schema; a run from a pack does not)
        counts = C.char_counts(corpus_dir, manifest, extra=chats[0])
        tok = make_tokenizer(C.vocab_from_counts(counts, args.vocab_size))
        tok.save_pretrained(ckpt_dir / "tokenizer")
    vocab = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    tok_dir = str(ckpt_dir / "tokenizer")
    tok_info = {"mask": tok.mask_token_id, "vocab": len(tok),
                "first_normal": max(tok.all_special_ids) + 1 if max(tok.all_special_ids) < 20 else 5}
    if args.pack:
        srcs = C.source_datasets(corpus_dir, tok_dir, args.max_len, vocab_key=_vocab_key(vocab), chats=chats,
                                 chat_weight=args.chat_weight, num_proc=args.num_proc)
        held = C.heldout_dataset(corpus_dir, manifest, tok_dir, args.max_len, _vocab_key(vocab), args.seed,
                                 args.num_proc)
        caps = {n: args.pack_max_rows for n in srcs} if args.pack_max_rows else None
        return C.write_pack(args.pack, srcs, held, tok, manifest, seed=args.seed, max_rows=caps,
                            meta={"max_len": args.max_len, "chat_messages": len(chats[0]),
                                  "chat_chars": sum(map(len, chats[0])), "conversations": args.conversations})
    if args.from_pack:
        train_ds, held_ds, rows, manifest = C.read_pack(corpus_dir, args.seed)
    else:
        train_ds, held_ds, rows = C.build_datasets(corpus_dir, tok_dir, args.max_len, vocab_key=_vocab_key(vocab),
                                                   chats=chats, chat_weight=args.chat_weight, seed=args.seed,
                                                   num_proc=args.num_proc, log=log.info)
    if len(train_ds) < args.batch_size:
        raise ModelError(f"only {len(train_ds)} training sequences for batch size {args.batch_size}")
    if args.from_pack and len(train_ds.ids) and int(train_ds.ids.max()) >= len(tok):
        raise ModelError(f"{corpus_dir}: the pack holds token ids up to {int(train_ds.ids.max())}, past the "
                         f"vocabulary's {len(tok)}: it was packed with another tokenizer; pack it again")
    prep_seconds = round(time.time() - started, 1)
    # the chat messages in the corpus: counted here, or by the pack that holds them
    chat_messages, chat_chars = ((pack_info.get("chat_messages", 0), pack_info.get("chat_chars", 0)) if pack_info
                                 else (len(chats[0]), sum(map(len, chats[0]))))

    model = make_model(args, len(tok), tok.pad_token_id)
    before = None
    if args.init_from and state is None:
        from transformers import BertForMaskedLM
        if not Path(args.init_from).is_dir():
            raise ModelError(f"--init-from {args.init_from}: not a model folder (save_pretrained layout)")
        init = BertForMaskedLM.from_pretrained(args.init_from)
        if init.config.vocab_size != len(tok):
            raise ModelError(f"--init-from {args.init_from}: vocabulary {init.config.vocab_size} ≠ {len(tok)}")
        model.load_state_dict(init.state_dict())
        prev = Path(args.init_from) / "pretrain.json"
        try:   # what the earlier run said of itself: only reported, so a damaged file costs the report only
            before = json.loads(prev.read_text(encoding="utf-8")) if prev.is_file() else None
        except (OSError, ValueError):
            before = None
        before = before if isinstance(before, dict) else None
    model = model.to(device)
    teacher, proj = None, None
    if args.teacher:
        teacher = Teacher(args.teacher, tok, args.max_len, args.seed)
        proj = torch.nn.Linear(args.hidden, teacher.dim).to(device)
        log.info("distilling %s teacher vectors (%s held out)", f"{len(teacher):,}", len(teacher.held_ids))
    params = list(model.named_parameters()) + (list(proj.named_parameters(prefix="proj")) if proj else [])
    decay = [p for n, p in params if p.ndim >= 2 and "embeddings" not in n]
    no_decay = [p for n, p in params if not (p.ndim >= 2 and "embeddings" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98),
                            eps=1e-6, fused=device.type == "cuda")
    sched_state = {"horizon": args.steps, "fixed": args.minutes is None}

    def lr_factor(s: int) -> float:
        h = max(1, sched_state["horizon"])
        warm = max(1, int(args.warmup * h))
        if s < warm:
            return (s + 1) / warm
        return max(0.0, (h - s) / max(1, h - warm))

    step, epoch, pos, history, evals, trained_s = 0, 0, 0, [], [], 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        if proj is not None and state.get("proj"):
            proj.load_state_dict(state["proj"])
        opt.load_state_dict(state["opt"])
        step, epoch, pos = state["step"], state["epoch"], state["pos"]
        history, evals, trained_s = state["history"], state["evals"], state.get("trained_seconds", 0.0)
        sched_state.update(state["sched"])
        if args.minutes is None:                      # a new step count sets the new horizon
            sched_state.update(horizon=args.steps, fixed=True)
        else:                                         # a new time budget: fit the horizon again
            sched_state.update(horizon=args.steps, fixed=False)
        torch.set_rng_state(state["torch_rng"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    for g in opt.param_groups:
        g["lr"] = g["initial_lr"] * lr_factor(step)
    sched.last_epoch = step

    eval_set = eval_batches(held_ds, args.eval_size, 256, tok.pad_token_id, tok_info, args.mask_prob)
    batches = Batches(train_ds, args.batch_size, tok.pad_token_id, tok_info, args.mask_prob, args.seed, epoch, pos)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s params on %s; %s train sequences; %s held-out batches", f"{n_params:,}", device,
             f"{len(train_ds):,}", len(eval_set))

    def checkpoint():
        _save_checkpoint(ckpt_dir, model, opt, {
            "step": step, "epoch": epoch, "pos": pos, "history": history, "evals": evals,
            "sched": dict(sched_state), "torch_rng": torch.get_rng_state(), "args": dataclasses.asdict(args),
            "trained_seconds": trained_s + (time.time() - loop_start),
            "proj": proj.state_dict() if proj is not None else None})

    model.train()
    start_step = step
    loop_start = time.time()
    tokens_seen, masked_seen, win = 0, 0, []
    last_save = step
    try:
        for inputs, attn, labels, b_epoch, b_pos in batches:
            if step >= sched_state["horizon"] or step >= args.steps:
                break
            if args.minutes and time.time() - started > args.minutes * 60:
                break
            t0 = time.time()
            inputs_t = torch.as_tensor(inputs, device=device, dtype=torch.long)
            attn_t = torch.as_tensor(attn, device=device, dtype=torch.long)
            labels_t = torch.as_tensor(labels, device=device, dtype=torch.long)
            with autocast(device):
                loss, logits, target = mlm_loss(model, inputs_t, attn_t, labels_t)
                total = loss
                if teacher is not None:
                    t_ids, t_attn, t_vec = teacher.batch(args.batch_size)
                    d_loss = distil_loss(model.bert, proj, torch.as_tensor(t_ids, device=device),
                                         torch.as_tensor(t_attn, device=device), torch.as_tensor(t_vec, device=device))
                    total = loss + args.teacher_weight * d_loss
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
            opt.step()
            sched.step()
            step, epoch, pos = step + 1, b_epoch, b_pos
            tokens_seen += int(attn.sum())
            masked_seen += int(target.numel())
            win.append(time.time() - t0)
            done = step - start_step
            if done == 20:
                t20 = time.time()
            if not sched_state["fixed"] and done in (20, 100):   # fit the decay horizon to the time budget
                # (steps 20–100 once known: the first steps are slow while CUDA warms up)
                per_step = (time.time() - loop_start) / done if done == 20 else (time.time() - t20) / 80
                left = args.minutes * 60 - (time.time() - started)
                sched_state["horizon"] = min(args.steps, step + max(1, int(left / per_step * 0.97)))
                sched_state["fixed"] = done >= 100
            if step % 50 == 0 or step == 1:
                acc = float((logits.argmax(-1) == target).float().mean())
                history.append({"step": step, "loss": round(float(loss.detach()), 4), "masked_acc": round(acc, 4),
                                **({"distil_loss": round(float(d_loss.detach()), 4)} if teacher is not None else {}),
                                "lr": round(sched.get_last_lr()[0], 7),
                                "step_ms": round(1000 * float(np.median(win[-50:])), 1)})
                log.info("step %s", history[-1])
            if args.eval_every and step % args.eval_every == 0 and eval_set:
                evals.append({"step": step, **evaluate(model, eval_set, device),
                              **(teacher.evaluate(model.bert, proj, device) if teacher is not None else {})})
                log.info("held-out %s", evals[-1])
            if args.save_every and step - last_save >= args.save_every:
                checkpoint()
                last_save = step
            if progress:
                progress(step, sched_state["horizon"], float(loss.detach()))
    finally:
        batches.close()
    train_seconds = time.time() - loop_start
    final = evaluate(model, eval_set, device) if eval_set else {}
    if teacher is not None:
        final.update(teacher.evaluate(model.bert, proj, device))
    if final and (not evals or evals[-1]["step"] != step):
        evals.append({"step": step, **final})
    checkpoint()

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    srcs = manifest["sources"]
    info = {
        "corpus": {"dir": str(corpus_dir), "built": manifest.get("built"), "total": manifest.get("total"),
                   "sources": {k: {"chars": v["chars"], "weight": v["weight"], "domain": v.get("domain"),
                                   "licence": v.get("licence"), "url": v.get("url"), "version": v.get("version")}
                               for k, v in srcs.items()},
                   "rows": rows, "chat_messages": chat_messages, "chat_chars": chat_chars,
                   "pack": str(args.from_pack) if args.from_pack else None},
        "model": {"layers": args.layers, "hidden": args.hidden, "heads": args.heads,
                  "intermediate": args.intermediate or 4 * args.hidden, "max_len": args.max_len,
                  "vocab": len(tok), "params": n_params},
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
                                 f" ({torch.get_num_threads()} threads)"),
        "steps": step, "horizon": sched_state["horizon"], "batch_size": args.batch_size,
        "tokens_this_run": tokens_seen, "masked_tokens_this_run": masked_seen,
        "train_seconds": round(trained_s + train_seconds, 1), "prep_seconds": prep_seconds,
        "seconds": round(time.time() - started, 1),
        "step_ms_median": round(1000 * float(np.median(win)), 1) if win else None,
        "heldout": final, "evals": evals, "history": history, "args": dataclasses.asdict(args),
        "init_from": ({"dir": args.init_from, "steps": before.get("steps"), "device": before.get("device"),
                       "train_seconds": before.get("train_seconds"), "heldout": before.get("heldout")}
                      if before else None),
        "command": command_line(args),
        "teacher": ({"file": args.teacher, "texts": len(teacher) + len(teacher.held_ids), "dim": teacher.dim,
                     "weight": args.teacher_weight} if teacher is not None else None),
        # the figures older readers look for
        "corpus_chars": manifest["total"]["chars"] + chat_chars, "vocab": len(tok),
    }
    (out / "pretrain.json").write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    write_card(out, info)
    return info


def write_card(out: Path, info: dict) -> None:
    """MODEL_CARD.md of the base encoder, from ``pretrain.json``."""
    m, c, h = info["model"], info["corpus"], info.get("heldout") or {}
    total = c.get("total") or {}
    lines = [
        f"# Model card: {out.name}", "",
        "The project's own Chinese character BERT, the encoder that `qa train --base-model` fine-tunes. "
        "Pretrained by `qa pretrain` (masked-language modelling with whole-word masking over jieba words, loss on "
        "the masked positions only) on the corpus that `scripts/build_corpus.py` builds (`docs/corpus.md`).", "",
        f"- Architecture: BERT, {m['layers']} layers, hidden {m['hidden']}, {m['heads']} heads, feed-forward "
        f"{m['intermediate']}, at most {m['max_len']} tokens per sequence; vocabulary {m['vocab']:,} (characters "
        f"by weighted corpus frequency, ASCII letters and digits with `##` continuations, role markers); "
        f"{m['params']:,} parameters.",
        f"- Corpus: {total.get('chars', 0):,} training characters in {total.get('passages', 0):,} passages from "
        f"{len(c['sources'])} sources (held out: {total.get('heldout_chars', 0):,} characters, 1 % by hash), plus "
        f"{c['chat_messages']:,} chat messages ({c['chat_chars']:,} characters, weight "
        f"{info['args']['chat_weight']}).",
        *([f"- Read from the pack `{c['pack']}` (`qa pretrain --pack`): "
            f"{sum(r.get('stored_rows', r['rows']) for r in c['rows'].values()):,} stored sequences "
            f"(general sources capped or sampled: {', '.join(n for n, r in c['rows'].items() if r.get('stored_rows', r['rows']) < r['rows'] and r['weight'] >= 1) or 'none'}), "
            f"{sum(r['weighted_rows'] for r in c['rows'].values()):,} per epoch after weights."]
          if c.get("pack") else []),
        *([f"- Continued from `{info['init_from']['dir']}`: {info['init_from']['steps']:,} earlier steps on "
           f"{info['init_from']['device']} ({info['init_from']['train_seconds']} s, held-out masked-token accuracy "
           f"{(info['init_from'].get('heldout') or {}).get('masked_acc')})."] if info.get("init_from") else []),
        f"- Training: {info['steps']:,} steps of batch {info['batch_size']} on {info['device']}, "
        f"{info['train_seconds']:,} s; lr {info['args']['lr']} with warm-up and linear decay over "
        f"{info['horizon']:,} steps.",
        f"- Held-out (fixed masks, {h.get('masked_tokens', 0):,} masked tokens): masked-token accuracy "
        f"**{h.get('masked_acc', float('nan')):.3f}**, perplexity {h.get('perplexity', float('nan'))}.",
        *([f"- Distilled: the mean-pooled message vectors learn, through a linear map, the sentence vectors of "
           f"{info['teacher']['texts']:,} texts (`{info['teacher']['file']}`, width {info['teacher']['dim']}, loss "
           f"1 − cosine × {info['teacher']['weight']}, beside the MLM loss): held-out teacher cosine "
           f"**{h.get('teacher_cosine')}**, pairwise-similarity Spearman {h.get('teacher_pair_spearman')} on "
           f"{h.get('teacher_heldout')} held-out texts."] if info.get("teacher") else []),
        f"- Command: `{info['command']}`", "",
        "| source | domain | weight | characters | licence |", "|---|---|---:|---:|---|"]
    for name, s in c["sources"].items():
        lines.append(f"| {name} | {s.get('domain')} | {s['weight']} | {s['chars']:,} | {s.get('licence')} |")
    if info.get("evals"):
        lines += ["", "| step | held-out masked acc | perplexity |", "|---:|---:|---:|"]
        lines += [f"| {e['step']} | {e.get('masked_acc', 0):.3f} | {e.get('perplexity')} |" for e in info["evals"]]
    (out / "MODEL_CARD.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
