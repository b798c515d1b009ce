"""Fine-tuning: ``train(args)`` trains a rubric classifier on labelled chats and writes a model directory.

Seeded; a dev split for early stopping, temperature calibration and the decision rule; a checkpoint after every
epoch (``--resume`` continues from it); the best epoch's weights are what gets saved.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qa.errors import ModelError
from qa.model.flag_scores import check_rules
from qa.resources import data_root
from qa.rubric import load_rubric

log = logging.getLogger(__name__)
DEFAULT_BASE = "models/base"


@dataclasses.dataclass
class TrainArgs:
    data: list[str]
    out: str
    rubric: str | None = None
    base_model: str | None = DEFAULT_BASE   # local dir or hub id; None → a small encoder from scratch
    epochs: int = 8
    batch_size: int = 16
    lr: float = 3e-4                          # head, context layer and n-gram channel
    encoder_lr: float = 1e-4
    weight_decay: float = 0.01
    ngram_l2: float = 1e-4                   # extra L2 on the n-gram weights when trained jointly
    ngram_init: str = "lr"                   # "lr": fit the n-gram channel as a soft-label logistic
                                             # regression first and keep it fixed; "joint": learn it with the rest
    dev_fraction: float = 0.1
    dev: list[str] | None = None             # explicit dev files instead of a random split
    dev_ids: str | None = None               # a file of conversation ids (one a line): those chats of the data
                                             # are the dev split, so retrains with more files keep the same one
    weights: dict[str, float] | None = None  # glob pattern of data files → weight of their chats in the loss and
                                             # in the dev scores (explicit dev files too)
    patience: int = 2
    seed: int = 13
    use_encoder: bool = True
    use_ngrams: bool = True
    use_features: bool = True
    max_ngrams: int = 30000
    max_tokens: int = 64
    max_messages: int = 40
    augment: float = 0.0                     # share of training chats that also train as a real-looking copy
    excerpt: float = 0.0                     # share that also train without their greeting and/or closing
    excerpt_dim: str = "etiquette"           # the dimension an excerpt's lost greeting/closing lowers
    max_steps: int | None = None             # stop early (tests, smoke runs)
    resume: bool = False
    threads: int | None = None
    device: str = "auto"                     # auto | cpu | cuda (bf16 autocast on CUDA)
    from_model: str | None = None            # a trained model: keep its network, refit the ridge channel,
                                             # flag thresholds, temperatures and decision on this data's dev split
    ridge_on: list[str] | None = None        # glob patterns of training files whose chats fit the ridge channel
    teacher: str | None = None               # teacher vectors (.npz) for the ridge channel's projection (without
                                             # one, a from_model's projection is kept)
    turns_on: list[str] | None = None        # glob patterns of training files whose chats' turn labels also fit the
                                             # turn-level flag models (beside the ridge chats'); they then apply
                                             # to every chat, not through the ridge gate
    keep_beta: bool = False                  # with from_model: keep its ridge tilt strengths, do not re-choose
    keep_decision: bool = False              # with from_model: keep its temperatures, decision rule and cutpoints
                                             # (its grades); only the flag thresholds are chosen again

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("no training data given")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError("epochs, batch_size and patience must be ≥ 1")
        for name, low in (("lr", ">"), ("encoder_lr", ">"), ("weight_decay", "≥"), ("ngram_l2", "≥")):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (value == 0 and low == ">"):
                raise ValueError(f"{name} must be a finite number {low} 0, not {value}")
        if any(not math.isfinite(w) or w < 0 for w in (self.weights or {}).values()):
            raise ValueError("weights must be finite numbers ≥ 0")
        if not 0 <= self.dev_fraction < 1:
            raise ValueError("dev_fraction must be in [0, 1)")
        if self.ngram_init not in ("lr", "joint"):
            raise ValueError("ngram_init must be 'lr' or 'joint'")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError("device must be auto, cpu or cuda")
        if not 0 <= self.augment <= 1:
            raise ValueError("augment must be in [0, 1]")
        if not 0 <= self.excerpt <= 1:
            raise ValueError("excerpt must be in [0, 1]")
        if not (self.use_encoder or self.use_ngrams or self.use_features):
            raise ValueError("at least one of encoder, n-grams and features must be used")
        if self.dev and self.dev_ids:
            raise ValueError("give dev files or dev ids, not both")
        if self.teacher and not self.ridge_on:
            raise ValueError("teacher is used by the ridge channel: give ridge_on too")
        if self.turns_on and not self.ridge_on:
            raise ValueError("turns_on adds to the ridge channel's turn-level flag models: give ridge_on too")
        if self.keep_beta and not self.from_model:
            raise ValueError("keep_beta keeps a trained model's tilt strengths: give from_model too")
        if self.keep_decision and not self.from_model:
            raise ValueError("keep_decision keeps a trained model's grade decision: give from_model too")
        if self.threads is not None and self.threads < 1:
            raise ValueError("threads must be ≥ 1")


def check_split(train_ex, dims: dict) -> None:
    """``ModelError`` for a training split nothing can be learnt from: empty, weighing nothing, or with no usable
    grade for a dimension (its head would be left untrained and grade at random)."""
    if not train_ex:
        raise ModelError("the training split is empty: every labelled chat is in the dev split (--dev-ids, --dev)")
    if not any(e.weight > 0 for e in train_ex):
        raise ModelError("every training chat weighs 0 (--weight): there is nothing to learn from")
    ungraded = [d for d in dims if not any(d in e.targets and e.weight > 0 for e in train_ex)]
    if ungraded:
        raise ModelError(f"no training chat has a usable grade for {', '.join(ungraded)} (each must be one of "
                         f"{'/'.join(map(str, next(iter(dims.values()))))}): its head would be left untrained")


def _seed(seed: int) -> None:
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _load_base(args: TrainArgs):
    """(tokenizer, encoder) from ``base_model``, or a fresh tiny BERT over a char vocab from the train texts."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from qa.model.modeling import auto_encoder
    from qa.model.vocab import ensure_role_tokens
    hf_logging.set_verbosity_error()   # the MLM head we drop is expected, not news
    hf_logging.disable_progress_bar()  # nor is loading a few megabytes from disk
    base = base_source(args.base_model)
    try:
        tok = AutoTokenizer.from_pretrained(base)
        enc = auto_encoder(path=base)
    except OSError as e:
        raise ModelError(f"cannot load base model {base!r}: {e}") from e
    if ensure_role_tokens(tok):
        enc.resize_token_embeddings(len(tok))
    return tok, enc


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")   # owner/name, as the Hugging Face Hub spells one


def base_source(base: str) -> str:
    """Where ``base_model`` loads from: a local folder; the default (``models/base``) is also looked up in the
    checkout or installed package when the working folder has none; anything else must read as a hub id
    (``owner/name``), which alone reaches the network. A missing path fails at once, without a download attempt."""
    if Path(base).is_dir():
        return base
    if base == DEFAULT_BASE and (data_root() / DEFAULT_BASE).is_dir():
        return str(data_root() / DEFAULT_BASE)
    if base != DEFAULT_BASE and HUB_ID.fullmatch(base) and not Path(base.split("/")[0]).exists():
        why = _hub_unreachable()
        if why:   # one line now, not a minute of the hub client's retries
            raise ModelError(f"base model {base!r} is no local folder here, and the Hugging Face Hub cannot be "
                             f"reached ({why}): give a local folder in save_pretrained layout (a misspelt path "
                             "reads as a hub id)")
        log.warning("base model %r is no local folder: fetching it from the Hugging Face Hub", base)
        return base
    raise ModelError(f"base model {base!r} not found: no such folder here (a local folder, or a hub id such as "
                     "hfl/rbt3); run `qa pretrain` to build the default one")


def _hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the Hub (``$HF_ENDPOINT``, e.g. a mirror, else huggingface.co) cannot be reached, or None."""
    import socket
    from urllib.parse import urlparse
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                                       "all_proxy")):
        return None   # reached through a proxy: only the hub client can tell
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlparse(endpoint if "://" in endpoint else "https://" + endpoint)
    try:
        socket.create_connection((url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)),
                                 timeout=timeout).close()
    except OSError as e:
        return f"{url.hostname}: {e.strerror or e}"
    return None


def scratch_encoder(texts, hidden: int = 64, layers: int = 1):
    """A small char-level BERT with random weights (for tests and ``--base-model none``)."""
    from transformers import BertConfig, BertModel

    from qa.model.vocab import char_vocab, make_tokenizer
    tok = make_tokenizer(char_vocab(texts, min_count=1))
    cfg = BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=max(1, hidden // 32), intermediate_size=hidden * 2,
                     max_position_embeddings=128)
    return tok, BertModel(cfg, add_pooling_layer=False)


def _predict_logits(model, batcher, examples, feats, batch_size=64, with_flags: bool = False):
    """Per dimension the logits [N, levels]; with ``with_flags`` also the flag logits [N, F] (or None)."""
    import torch

    from qa.model.pretrain import autocast
    device = next(model.parameters()).device
    model.eval()
    out = {d: [] for d in model.config.dimensions}
    flags = []
    with torch.inference_mode():
        for s in range(0, len(examples), batch_size):
            chunk = examples[s:s + batch_size]
            batch, _ = batcher([e.conv for e in chunk], findings=feats[0][s:s + batch_size],
                               timings=feats[1][s:s + batch_size])
            with autocast(device):
                res = model(**{k: v.to(device) for k, v in batch.items()})
            for d in out:
                out[d].append(res["logits"][d].float().cpu())
            if "flags" in res:
                flags.append(res["flags"].float().cpu())
    logits = {d: torch.cat(v).numpy() for d, v in out.items()}
    if with_flags:
        return logits, (torch.cat(flags).numpy() if flags else None)
    return logits


def _copies(examples, share: float, rng: random.Random, make) -> list:
    """``make(example, rng)`` (a new Example, or None) for a seeded ``share`` of ``examples``."""
    return [c for e in examples if rng.random() < share and (c := make(e, rng)) is not None]


def augmented(examples, share: float, seed: int) -> list:
    """Real-looking copies (``qa.model.augment.realistic``) of a seeded ``share`` of ``examples``, same labels."""
    from qa.model.augment import realistic
    from qa.model.data import Example

    def make(e, rng):
        conv = realistic(e.conv, rng)
        return None if conv is None else Example(conv, e.targets, {}, e.weight)
    out = _copies(examples, share, random.Random(seed * 7919 + 1), make)
    log.info("augment: %d real-looking copies of %d training chats", len(out), len(examples))
    return out


def excerpts(examples, share: float, seed: int, dim: str, lexicon=None) -> list:
    """Copies of a seeded ``share`` of ``examples`` without their greeting and/or closing
    (``qa.model.augment.excerpt``): ``dim`` a level lower per element lost, the other grades kept."""
    from qa.model.augment import excerpt, lower_etiquette
    from qa.model.data import Example

    def make(e, rng):
        got = excerpt(e.conv, rng, lexicon=lexicon)
        if got is None:
            return None
        targets = {d: lower_etiquette(t, len(got[1])) if d == dim else t for d, t in e.targets.items()}
        return Example(got[0], targets, {}, e.weight)
    out = _copies(examples, share, random.Random(seed * 7919 + 2), make)
    log.info("excerpt: %d copies without greeting or closing of %d training chats", len(out), len(examples))
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits [N, k]."""
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def dev_scores(logits, examples, dims, temperatures=None, decision="argmax", cutpoints=None, ungated=None,
               gate=None) -> dict:
    """Per-dimension metrics of ``logits`` against the examples' majority grades."""
    from qa.model.decision import chat_cuts, decide_all
    from qa.model.metrics import grade_metrics
    out = {}
    for d, levels in dims.items():
        rows = [i for i, e in enumerate(examples) if d in e.targets]
        if not rows:
            continue
        p = softmax(logits[d][rows] / (temperatures or {}).get(d, 1.0))
        cuts = (cutpoints or {}).get(d)
        if cuts and gate is not None:
            cuts = chat_cuts(cuts, (ungated or {}).get(d), np.asarray(gate)[rows])
        pred = [levels[int(k)] for k in decide_all(p, decision, cuts)]
        out[d] = grade_metrics(references=[examples[i].majority(d, levels) for i in rows], predictions=pred,
                               levels=levels)
    return out


def dev_nmd(logits, examples, dims) -> dict[str, float]:
    """Per dimension, mean normalised match distance between predicted and reviewers' distributions."""
    from qa.model.dist_metrics import nmd
    out = {}
    for d in dims:
        rows = [i for i, e in enumerate(examples) if d in e.targets]
        if rows:
            p = softmax(logits[d][rows])
            out[d] = float(np.mean([nmd(p[j], examples[i].targets[d]) for j, i in enumerate(rows)]))
    return out


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises dev cross-entropy against the reviewers' grade distributions (one-hot
    for a single reviewer, so then plain NLL); a grid search, robust on small dev sets."""
    if targets.ndim == 1:  # level indexes
        targets = np.eye(logits.shape[1])[targets]
    best, best_t = None, 1.0
    for t in np.exp(np.linspace(np.log(0.25), np.log(4.0), 61)):
        z = logits / t
        z = z - z.max(1, keepdims=True)
        nll = -(targets * (z - np.log(np.exp(z).sum(1, keepdims=True)))).sum(1).mean()
        if best is None or nll < best:
            best, best_t = nll, float(t)
    return best_t


def train(args: TrainArgs, progress: Callable | None = None) -> dict:
    """Train, calibrate, save; returns the metrics written to ``metrics.json``."""
    import torch

    from qa.model.batching import Batcher
    from qa.model.data import load_examples, matches, split, split_by_ids
    from qa.model.features import feature_names
    from qa.model.flags import flag_targets, flag_tensors, turn_targets, turn_tensors
    from qa.model.inputs import flat_text
    from qa.model.modeling import RubricConfig, RubricModel
    from qa.model.ngrams import Ngrams
    from qa.rules.engine import RuleEngine
    from qa.timing import compute_timing

    if args.threads:
        torch.set_num_threads(args.threads)
    _seed(args.seed)
    started = time.time()
    rubric = load_rubric(args.rubric)
    dims = {d: list(rubric.scale) for d in rubric.model_dimensions}
    if not dims:
        raise ModelError(f"rubric {rubric.name!r} has no model dimensions to train")
    if args.excerpt and args.excerpt_dim not in (*dims, "none"):
        raise ModelError(f"excerpt_dim {args.excerpt_dim!r} is not a dimension of rubric {rubric.name!r} "
                         f"({', '.join(dims)}) or none")
    unmatched = [w for w in args.weights or {} if not any(matches(f, w) for f in [*args.data, *(args.dev or [])])]
    if unmatched:   # it would weigh nothing, and the card would say it did
        raise ModelError(f"--weight {unmatched[0]!r} matches none of the training files ({', '.join(args.data[:3])}"
                         f"{' …' if len(args.data) > 3 else ''}): a pattern matches a file's path as given or its "
                         "name, e.g. 'data/gen/*' or 'gen*.jsonl'")
    rejects: list = []
    examples = load_examples(args.data, dims, rejects=rejects, nuggets=rubric.nuggets, weights=args.weights)
    if args.dev:
        train_ex, dev_ex = examples, load_examples(args.dev, dims, nuggets=rubric.nuggets, weights=args.weights)
    elif args.dev_ids:
        train_ex, dev_ex = split_by_ids(examples, args.dev_ids)
    else:
        train_ex, dev_ex = split(examples, args.dev_fraction, args.seed)
    check_split(train_ex, dims)
    check_rules(train_ex + dev_ex, rubric.rules)
    original_train = train_ex
    if args.augment or args.excerpt:
        train_ex = (train_ex + (augmented(train_ex, args.augment, args.seed) if args.augment else [])
                    + (excerpts(train_ex, args.excerpt, args.seed, args.excerpt_dim, RuleEngine(rubric).lexicon)
                       if args.excerpt else []))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    engine = RuleEngine(rubric) if args.use_features and rubric.rules else None

    def feats(exs):
        ts = [compute_timing(e.conv, rubric) for e in exs]
        fs = [engine.check(e.conv, t) if engine else [] for e, t in zip(exs, ts)]
        return fs, ts

    train_feats, dev_feats = feats(train_ex), feats(dev_ex)
    flags = list(rubric.model_flags)
    for e in train_ex + dev_ex:
        e.flags = flag_targets(e.conv, flags)
        e.turns = turn_targets(e.conv, rubric.turn_labels) if args.use_encoder else {}
    if not any(e.flags for e in train_ex):
        flags = []
    turn_labels = rubric.turn_labels if args.use_encoder and any(e.turns for e in train_ex) else {}
    if args.from_model:   # keep a trained network: fit only what comes after training
        model, tok, ngrams = _load_trained(args.from_model, dims)
        config, flags = model.config, list(model.config.flags)
    else:
        try:
            ngrams = Ngrams.fit([flat_text(e.conv) for e in train_ex], args.max_ngrams) if args.use_ngrams else None
        except ValueError:   # scikit-learn: too few chats, or no n-gram two of them share
            raise ModelError(f"the char n-gram channel needs n-grams that training chats share; {len(train_ex)} "
                             "training chat(s) have none: give more labelled chats, or --no-ngrams") from None
        tok = encoder = None
        if args.use_encoder:
            if args.base_model in (None, "", "none"):
                tok, encoder = scratch_encoder([flat_text(e.conv) for e in train_ex])
            else:
                tok, encoder = _load_base(args)
        config = RubricConfig(encoder=encoder.config.to_dict() if encoder is not None else {}, dimensions=dims,
                              feature_names=feature_names(rubric) if args.use_features else [],
                              n_ngrams=ngrams.size if ngrams else 0, use_encoder=args.use_encoder,
                              max_messages=args.max_messages, max_tokens=args.max_tokens, rubric=rubric.name,
                              nuggets=rubric.nuggets if args.use_encoder and any(e.nuggets for e in train_ex) else None,
                              flags=flags, flag_turns={f: rubric.model_flags[f].turn for f in flags},
                              turn_labels=turn_labels)
        model = RubricModel(config, encoder=encoder)
    batcher = Batcher(config, tok, ngrams, rubric)
    from qa.model.pretrain import autocast, resolve_device
    device = resolve_device(args.device)

    oof = None   # out-of-fold n-gram logits: what the rest of the model learns to correct
    done = _checkpoint_epoch(out / "checkpoint") if args.resume else 0
    if done >= args.epochs and model.ngram is not None:   # nothing left to train: the checkpoint has the
        for p in model.ngram.parameters():                # channel's weights, so skip the (slow) fit
            p.requires_grad_(False)
    elif model.ngram is not None and args.ngram_init == "lr" and not args.from_model:
        chosen, oof = _fit_ngram_channel(model, ngrams, train_ex, dims, args.seed, flags)
        log.info("n-gram channel fitted as logistic regression (C per dimension: %s)", chosen)
    model.to(device)
    enc_params = list(model.encoder.parameters()) if args.use_encoder else []
    enc_ids = {id(p) for p in enc_params}
    ngram_params = [p for p in model.ngram.parameters() if p.requires_grad] if model.ngram is not None else []
    ngram_ids = {id(p) for p in ngram_params}
    rest = [p for p in model.parameters() if id(p) not in enc_ids | ngram_ids]
    groups = [{"params": rest, "lr": args.lr, "weight_decay": args.weight_decay}]
    if enc_params:
        groups.append({"params": enc_params, "lr": args.encoder_lr, "weight_decay": args.weight_decay})
    if ngram_params:
        groups.append({"params": ngram_params, "lr": args.lr * 10, "weight_decay": 0.0})
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.AdamW(groups or [{"params": [torch.nn.Parameter(torch.zeros(1))]}])
    steps_per_epoch = (len(train_ex) + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, total // 20)) * max(0.05, 1 - s / max(1, total)))

    ckpt = out / "checkpoint"
    state = {"epoch": 0, "step": 0, "best": None, "bad": 0, "history": []}
    best_state = None
    run_key = _run_key(args, train_ex, dev_ex)
    if args.resume and (ckpt / "state.pt").is_file():
        saved = _load_checkpoint(ckpt, device)
        if saved.get("run") not in (None, run_key):
            raise ModelError(f"cannot resume: {ckpt / 'state.pt'} was written by a run with other data, dev split or "
                             "options (files, their order, --batch-size, --lr, --seed…); resume with the same "
                             "command, or train into a new folder")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        best_state = saved["best_state"]
        state = saved["state"]
        random.setstate(saved["rng"]["python"])
        np.random.set_state(saved["rng"]["numpy"])
        torch.set_rng_state(saved["rng"]["torch"])
        log.info("resumed from epoch %d", state["epoch"])

    def step_batch(idx):
        chunk = [train_ex[i] for i in idx]
        batch, all_turns = batcher([e.conv for e in chunk], findings=[train_feats[0][i] for i in idx],
                           timings=[train_feats[1][i] for i in idx], targets=[e.targets for e in chunk],
                           nuggets=[e.nuggets for e in chunk])
        batch["sample_weight"] = torch.tensor([e.weight for e in chunk], dtype=torch.float)  # moved with the batch
        if flags:
            batch["flag_labels"], batch["flag_mask"] = flag_tensors([e.flags for e in chunk], flags)
        if turn_labels:
            batch["turn_targets"], batch["turn_mask"] = turn_tensors(all_turns, [e.turns for e in chunk], turn_labels)
        if oof is not None:
            batch["ngram_logits"] = torch.from_numpy(oof[idx])
        with autocast(device):
            res = model(**{k: v.to(device) for k, v in batch.items()})
        loss = res["loss"]
        if model.ngram is not None and args.ngram_l2 and model.ngram.weight.requires_grad:
            loss = loss + args.ngram_l2 * model.ngram.weight.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        return float(res["loss"].detach())

    # early stopping: mean QWK against the majority grade, or — when most dev labels are distributions
    # (several reviewers who disagree, as in STC-3) — mean NMD against the distribution
    soft_dev = sum(any(max(t) < 1 for t in e.targets.values()) for e in dev_ex) > len(dev_ex) / 2
    stop = False
    trainable = any(p.requires_grad for p in model.parameters()) and not args.from_model
    for epoch in range(state["epoch"], args.epochs if trainable else 0):
        model.train()
        order = list(range(len(train_ex)))
        random.Random(args.seed + epoch).shuffle(order)
        losses = []
        for s in range(0, len(order), args.batch_size):
            losses.append(step_batch(order[s:s + args.batch_size]))
            state["step"] += 1
            if progress:
                progress(epoch, state["step"], steps_per_epoch * (epoch + 1), losses[-1])
            if args.max_steps and state["step"] >= args.max_steps:
                stop = True
                break
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else None}
        if dev_ex:
            dev_logits = _predict_logits(model, batcher, dev_ex, dev_feats)
            scores = dev_scores(dev_logits, dev_ex, dims)
            record["dev_qwk"] = {d: round(m["qwk"], 4) for d, m in scores.items()}
            record["dev_mean_qwk"] = round(float(np.mean(list(record["dev_qwk"].values()))), 4)
            if soft_dev:   # several reviewers: select on how well the grade distributions match (NMD)
                record["dev_nmd"] = {d: round(v, 4) for d, v in dev_nmd(dev_logits, dev_ex, dims).items()}
                score = -float(np.mean(list(record["dev_nmd"].values())))
            else:
                score = record["dev_mean_qwk"]
        else:
            score = -record["train_loss"] if losses else 0.0
        state["history"].append(record)
        log.info("epoch %s", record)
        if state["best"] is None or score > state["best"]:
            state["best"], state["bad"] = score, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            state["bad"] += 1
        state["epoch"] = epoch + 1
        ckpt.mkdir(exist_ok=True)
        # written whole to a temporary name, then renamed: a Ctrl-C mid-write left a truncated state.pt that no
        # --resume could read, in place of the last good one
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "best_state": best_state, "state": state, "run": run_key,
                    "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                            "torch": torch.get_rng_state()}}, ckpt / "state.pt.tmp")
        os.replace(ckpt / "state.pt.tmp", ckpt / "state.pt")
        if stop or state["bad"] >= args.patience:
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    metrics = {"train_examples": len(train_ex), "train_conversations": len(original_train),
               "train_copies": len(train_ex) - len(original_train), "dev_examples": len(dev_ex),
               "rejected": len(rejects),
               "history": state["history"], "seconds": round(time.time() - started, 1)}
    from qa.model.ridge import RidgeChannel
    ridge = (fit_ridge(args, original_train, dev_ex, dims, config.flag_turns,
                       train_feats[0][:len(original_train)] if engine else None, list(rubric.rules))
             if args.ridge_on else None)
    whole = ridge is None and args.from_model is not None   # no --ridge-on: the model's own channel, as it is
    if whole:
        ridge = RidgeChannel.load(args.from_model)
        if ridge is not None:
            ridge.info["kept_from"] = Path(args.from_model).name
    if dev_ex:
        logits, flag_logits = _predict_logits(model, batcher, dev_ex, dev_feats, with_flags=True)
        if ridge is not None:
            kept = RidgeChannel.load(args.from_model) if args.keep_beta or whole else None
            logits = choose_ridge_beta(ridge, logits, dev_ex, dims, dev_feats[0],
                                       fixed=kept.beta if kept is not None else None)
            if kept is not None:
                ridge.info["beta_kept_from"] = {"model": Path(args.from_model).name,
                                                "beta_source": kept.info.get("beta_source")}
        if flags and flag_logits is not None:
            fired = [{x.rule for x in fs} for fs in dev_feats[0]]
            config.flag_thresholds, metrics["dev_flags"] = choose_flag_thresholds(flag_logits, dev_ex, flags, fired)
            if ridge is not None and ridge.turn_flags is not None:
                metrics["dev_turn_flags"] = choose_turn_thresholds(ridge, flag_logits, config.flag_thresholds,
                                                                   dev_ex, flags, fired)
        temps = {}
        for d, levels in dims.items():
            rows = [i for i, e in enumerate(dev_ex) if d in e.targets]
            if rows:
                temps[d] = fit_temperature(logits[d][rows], np.array([dev_ex[i].targets[d] for i in rows]))
        config.temperatures = temps
        if config.nuggets and any(e.nuggets for e in dev_ex):
            config.nugget_temperatures, metrics["dev_nugget_jsd"] = fit_nugget_temperatures(
                model, batcher, dev_ex, dev_feats)
        if args.keep_decision:   # the from_model's grades; the dev split chooses only the flag thresholds (above)
            kept = json.loads((Path(args.from_model) / "config.json").read_text(encoding="utf-8"))
            for key in ("temperatures", "decision", "cutpoints", "cutpoints_ungated", "cutpoints_real_chats"):
                if key in kept:
                    setattr(config, key, kept[key])
            temps, weighted = config.temperatures, {}
            metrics["decision_kept_from"] = Path(args.from_model).name
        else:
            config.cutpoints, weighted = choose_decision(logits, dev_ex, dims, temps)
            config.decision, config.cutpoints_ungated = max(weighted, key=weighted.get), {}
        gate = None
        if config.decision == "cutpoints" and ridge is not None and ridge.gate is not None:
            gate = ridge.gate_probs([e.conv for e in dev_ex])
            if not args.keep_decision:
                config.cutpoints_ungated, metrics["cutpoints_ungated"] = choose_ungated_cutpoints(
                    logits, dev_ex, dims, temps, config.cutpoints, gate)
        by_rule = dev_scores(logits, dev_ex, dims, temps, config.decision, config.cutpoints,
                             config.cutpoints_ungated, gate)
        metrics["dev"] = {d: {k: v for k, v in m.items() if k != "confusion"} for d, m in by_rule.items()}
        metrics["decision"], metrics["temperatures"] = config.decision, temps
        metrics["decision_dev_weighted_qwk"] = {r: round(v, 4) for r, v in weighted.items()}
        metrics["cutpoints"] = config.cutpoints
    if ridge is not None:
        metrics["ridge"] = {**ridge.info, "beta": ridge.beta}
    save(model.cpu(), tok, ngrams, rubric, out, metrics, args)
    if ridge is not None:
        ridge.save(out)
    if dev_ex and flags and rubric.rules:
        metrics["dev_flag_vetoes"] = choose_flag_vetoes(out, dev_ex, rubric, dev_feats[1])
        (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
        from qa.model.card import write_card
        write_card(out)
    shutil.rmtree(ckpt, ignore_errors=True)
    return metrics


def choose_flag_vetoes(out: Path, dev_ex, rubric, timings) -> dict:
    """The saved model graded on the dev split as ``qa grade`` would (rule findings, then the model): per model flag
    that is no red line, the veto on rule findings it did not raise (``qa.model.flags.choose_vetoes``), written to
    ``config.json`` as ``flag_vetoes`` where one helps."""
    from qa.model.flags import add_veto_votes, choose_vetoes, flag_targets
    from qa.model.predict import Classifier
    from qa.rules.engine import RuleEngine
    clf = Classifier(out)
    convs = [e.conv for e in dev_ex]
    engine = RuleEngine(rubric)
    findings = [engine.check(c, t) for c, t in zip(convs, timings)]
    preds = clf.predict_all(convs, findings=findings, timings=timings)
    flags = list(clf.config.flags)
    votes = add_veto_votes({}, preds, findings, [flag_targets(c, flags) for c in convs])
    report = choose_vetoes(votes, rubric, [f for f in flags if f in rubric.rules])
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["flag_vetoes"] = {f: r["veto"] for f, r in report.items() if r["veto"] > 0}
    cfg_path.write_text(json.dumps(cfg, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return report


NUGGET_TEMPERATURES = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0)


def fit_nugget_temperatures(model, batcher, dev_ex, feats, batch_size: int = 64) -> tuple[dict, dict]:
    """Per role, the nugget head's softmax temperature (``NUGGET_TEMPERATURES``) with the lowest mean
    Jensen–Shannon divergence from the dev turns' label distributions; and that divergence before and after."""
    import torch

    from qa.model.dist_metrics import jsd
    model.eval()
    device = next(model.parameters()).device
    rows: dict[str, tuple[list, list]] = {}
    with torch.inference_mode():
        for s in range(0, len(dev_ex), batch_size):
            chunk = dev_ex[s:s + batch_size]
            batch, all_turns = batcher([e.conv for e in chunk], findings=feats[0][s:s + batch_size],
                                       timings=feats[1][s:s + batch_size])
            res = model(**{k: v.to(device) for k, v in batch.items()})
            for role, logits in (res.get("nuggets") or {}).items():
                logits = logits.float().cpu().numpy()
                for b, (e, ts) in enumerate(zip(chunk, all_turns)):
                    for j, t in enumerate(ts):
                        if ("customer" if t.role == "customer" else "agent") == role and t.index in e.nuggets:
                            rows.setdefault(role, ([], []))[0].append(logits[b, j])
                            rows[role][1].append(e.nuggets[t.index])
    temps, report = {}, {}
    for role, (logits, gold) in rows.items():
        z = np.array(logits)
        def score(t):
            return float(np.mean([jsd(p, q) for p, q in zip(softmax(z / t), gold)]))
        scores = {t: score(t) for t in NUGGET_TEMPERATURES}
        temps[role] = min(scores, key=lambda t: (round(scores[t], 5), abs(t - 1.0)))
        report[role] = {"turns": len(gold), "jsd_t1": round(scores[1.0], 5), "jsd": round(scores[temps[role]], 5),
                        "temperature": temps[role]}
    return temps, report


def graded_rows(dev_ex, d: str, levels) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The dev examples graded on ``d``: their indexes, majority level indexes and training weights (what the
    decision rule, the cutpoints and the tilt strength are all chosen on)."""
    rows = [i for i, e in enumerate(dev_ex) if d in e.targets]
    gold = np.array([levels.index(dev_ex[i].majority(d, levels)) for i in rows], dtype=int)
    return rows, gold, np.array([dev_ex[i].weight for i in rows], dtype=float)


def choose_decision(logits, dev_ex, dims, temps) -> tuple[dict, dict]:
    """Cutpoints per dimension fitted on the dev split (``qa.model.decision``), and each decision rule's mean
    dev QWK, every chat counting its training weight (so real and reviewed chats outweigh generated ones)."""
    from qa.model.decision import decide_all, fit_cutpoints, weighted_qwk
    cuts, per_rule = {}, {"argmax": [], "expected": [], "cutpoints": []}
    for d, levels in dims.items():
        rows, gold, w = graded_rows(dev_ex, d, levels)
        if not rows:
            continue
        p = softmax(logits[d][rows] / temps.get(d, 1.0))
        cuts[d] = fit_cutpoints(p @ np.arange(len(levels)), gold, len(levels), w)
        for r in per_rule:
            per_rule[r].append(weighted_qwk(gold, decide_all(p, r, cuts[d]), len(levels), w))
    return cuts, {r: float(np.mean(v)) for r, v in per_rule.items() if v}


def choose_ungated_cutpoints(logits, dev_ex, dims, temps, cuts: dict, gate: np.ndarray) -> tuple[dict, dict]:
    """Per dimension, cutpoints fitted on the dev chats weighted by their training weight × (1 − gate): the
    thresholds for chats the ridge gate does not claim (``qa.model.decision``). Kept for a dimension when, blended
    by the gate, they raise the mean of two dev QWKs: over the chats weighted by 1 − gate and over those weighted
    by the gate (the pooled QWK of two kinds of chat with different grade spreads would judge neither kind);
    returns them and both QWKs without and with them."""
    from qa.model.decision import chat_cuts, decide_all, fit_cutpoints, weighted_qwk
    out, report = {}, {}
    for d, levels in dims.items():
        rows, gold, w = graded_rows(dev_ex, d, levels)
        if not rows or d not in cuts:
            continue
        p = softmax(logits[d][rows] / temps.get(d, 1.0))
        g = np.asarray(gate, dtype=float)[rows]
        own = fit_cutpoints(p @ np.arange(len(levels)), gold, len(levels), w * (1 - g))
        was, now = decide_all(p, "cutpoints", cuts[d]), decide_all(p, "cutpoints", chat_cuts(cuts[d], own, g))
        side = {name: [round(weighted_qwk(gold, x, len(levels), w * s), 4) for x in (was, now)]
                for name, s in (("ungated", 1 - g), ("gated", g))}
        keep = side["ungated"][1] + side["gated"][1] > side["ungated"][0] + side["gated"][0] + 1e-4
        report[d] = {"cutpoints": own, "dev_qwk_before_after": side, "kept": bool(keep)}
        if keep:
            out[d] = own
    return out, report


RIDGE_BETAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def _load_trained(path: str, dims: dict):
    """A trained model directory's network, tokenizer and n-grams (``--from-model``), loaded as for grading."""
    from qa.model.predict import Classifier
    clf = Classifier(path)
    if {d: list(v) for d, v in clf.dimensions.items()} != {d: list(v) for d, v in dims.items()}:
        raise ModelError(f"{path}: its dimensions {list(clf.dimensions)} are not the rubric's {list(dims)}")
    return clf.model, clf.batcher.tokenizer, clf.batcher.ngrams


def fit_ridge(args: TrainArgs, train_ex, dev_ex, dims, flag_turns: dict | None = None, findings=None,
              rules: list[str] | None = None):
    """The ridge channel (``qa.model.ridge``) on the training chats from files matching ``args.ridge_on``; its
    projection fitted on the teacher's texts less every dev chat's messages; with ``findings`` (per training
    example its rule findings), a structure part; with a projection, the turn-level flag models
    (``qa.model.turnflags``) on the same chats' turn labels, and on those of the training files matching
    ``args.turns_on`` (then ungated). None when no chat matches."""
    from qa.model.data import matches
    from qa.model.projection import Projection, load_teacher
    from qa.model.ridge import RidgeChannel, centred
    picked = [i for i, e in enumerate(train_ex) if e.source and any(matches(e.source, p) for p in args.ridge_on)]
    chosen = [train_ex[i] for i in picked]
    if len(chosen) < 20:
        log.warning("ridge channel: only %d training chats match %s; not fitted", len(chosen), args.ridge_on)
        return None
    y = np.full((len(chosen), len(dims)), np.nan, dtype=np.float32)
    for j, (d, levels) in enumerate(dims.items()):
        for i, e in enumerate(chosen):
            if d in e.targets:
                y[i, j] = float(np.asarray(e.targets[d]) @ centred(len(levels)))
    projection, info = None, {"chats": len(chosen), "files": list(args.ridge_on)}
    kept = RidgeChannel.load(args.from_model) if args.from_model and not args.teacher else None
    if kept is not None and kept.projection is not None:   # no teacher given: keep the trained model's projection
        projection = kept.projection
        info.update({k: kept.info[k] for k in ("teacher", "teacher_texts", "projection_dims", "projection_ngrams")
                     if k in kept.info}, projection_from=Path(args.from_model).name)
    elif args.teacher:
        held = {m.text for e in dev_ex for m in e.conv.messages if m.text}
        texts, vectors = load_teacher(args.teacher, exclude=held)
        projection = Projection.fit(texts, vectors, seed=args.seed)
        info.update(teacher=Path(args.teacher).name, teacher_texts=len(texts), projection_dims=projection.dims,
                    projection_ngrams=len(projection.vec.vocabulary_))
    convs = [e.conv for e in chosen]
    own = {id(e) for e in chosen}
    extra = [e.conv for e in train_ex if id(e) not in own and e.source
             and any(matches(e.source, p) for p in args.turns_on or ())]
    flag_probs = (oof_flag_probs(convs, projection, flag_turns, seed=args.seed, extra=extra)
                  if projection is not None and flag_turns and findings is not None else None)
    log.info("ridge channel: fitting on %d chats%s", len(chosen), " with a projection" if projection else "")
    channel = RidgeChannel.fit(convs, y, list(dims), projection, seed=args.seed, info=info,
                               findings=[findings[i] for i in picked] if findings is not None else None,
                               rules=rules or (), flag_probs=flag_probs)
    other = [e.conv for e in train_ex if id(e) not in own]
    if other:   # every training chat is the channel's own: no gate (it applies to every chat fully)
        channel.fit_gate([e.conv for e in chosen], other)
    channel.info["gate"] = channel.gate is not None
    if projection is not None and flag_turns:
        from qa.model.turnflags import TurnFlags
        channel.turn_flags = TurnFlags.fit(convs + extra, projection, flag_turns,
                                           info={"gated": not extra, "extra_chats": len(extra)})
        channel.info["turn_flags"] = channel.turn_flags.info if channel.turn_flags else None
    return channel


def oof_flag_probs(convs, projection, flag_turns: dict, folds: int = 5, seed: int = 0,
                   extra=()) -> dict[str, np.ndarray]:
    """Flag → [n] each chat's turn-level flag model probability (``qa.model.turnflags``), from models fitted on
    the other folds (and on ``extra`` chats, as the final models are): the ridge channel's structure part learns
    from them what grading will read from ``turn_flags`` on new chats. Flags without a model in some fold are
    left out."""
    from qa.model.turnflags import TurnFlags
    fold = np.random.default_rng(seed).permutation(len(convs)) % folds
    per_fold = []
    for f in range(folds):
        te = np.flatnonzero(fold == f)
        model = TurnFlags.fit([c for c, k in zip(convs, fold) if k != f] + list(extra), projection, flag_turns)
        per_fold.append((te, model.chat_probs([convs[i] for i in te]) if model is not None else {}))
    out = {}
    for flag in set.intersection(*(set(probs) for _, probs in per_fold)):
        out[flag] = np.zeros(len(convs), np.float32)
        for te, probs in per_fold:
            out[flag][te] = probs[flag][0]
    return out


def choose_turn_thresholds(ridge, flag_logits, thresholds: dict, dev_ex, flags: list[str], fired) -> dict:
    """Per turn-modelled flag, the threshold on its gated chat probability with the best dev F1 of rules or
    network (at its own threshold) or turn model; for ungated models (``turns_on``), the threshold on the mean of
    the turn model's and the network's probabilities, beside the rules. Sets ``ridge.turn_flags.thresholds`` and
    returns the report."""
    from qa.model.flags import best_threshold
    report = {}
    net = 1 / (1 + np.exp(-np.asarray(flag_logits)))
    mean = ridge.turn_flags.combine == "mean"
    for f, (p, _) in ridge.turn_flag_probs([e.conv for e in dev_ex]).items():
        rows = [i for i, e in enumerate(dev_ex) if f in e.flags]
        if f not in flags or not rows:
            continue
        j = flags.index(f)
        gold = np.array([dev_ex[i].flags[f] >= 0.5 for i in rows])
        if mean:    # one threshold on the mean of the two probabilities, beside the rules
            base = np.array([f in fired[i] for i in rows])
            t, f1 = best_threshold((p[rows] + net[rows, j]) / 2, gold, base)
        else:
            base = np.array([f in fired[i] or net[i, j] >= thresholds.get(f, 1.01) for i in rows])
            t, f1 = best_threshold(p[rows], gold, base)
        ridge.turn_flags.thresholds[f] = round(t, 3)
        report[f] = {"threshold": round(t, 3), "f1": None if np.isnan(f1) else round(float(f1), 4)}
    return report


def choose_ridge_beta(ridge, logits, dev_ex, dims, findings=None, fixed: dict | None = None) -> dict:
    """Per dimension, the tilt strength (``RIDGE_BETAS``) with the best weighted dev QWK under cutpoints fitted
    for it; sets ``ridge.beta`` and returns the dev logits with the chosen tilts added. ``findings``: per dev
    example its rule findings (needed when the channel has a structure part). ``fixed``: dimension → strength
    to keep instead (``--keep-beta``: the channel's score has unit spread, so a refitted channel can keep a
    trained model's strengths; the dev QWK by strength is still reported)."""
    from qa.model.decision import fit_cutpoints, weighted_qwk
    from qa.model.ridge import centred
    r = ridge.gated_scores([e.conv for e in dev_ex], findings)
    out, report = dict(logits), {}
    for d, levels in dims.items():
        rows, gold, w = graded_rows(dev_ex, d, levels)
        if not rows or d not in ridge.dims:
            continue
        tilt = r[:, ridge.dims.index(d), None] * centred(len(levels))[None, :]
        scores = {}
        for b in RIDGE_BETAS:
            idx = softmax(logits[d][rows] + b * tilt[rows]) @ np.arange(len(levels))
            cuts = fit_cutpoints(idx, gold, len(levels), w)
            scores[b] = weighted_qwk(gold, np.searchsorted(np.asarray(cuts), idx, side="right"), len(levels), w)
        best = max(scores, key=lambda b: (round(scores[b], 4), -b))   # ties → the smaller tilt
        if fixed is not None and d in fixed:
            best = float(fixed[d])
        ridge.beta[d] = best
        report[d] = {str(b): round(v, 4) for b, v in scores.items()}
        out[d] = logits[d] + best * tilt
    ridge.info["dev_weighted_qwk_by_beta"] = report
    return out


def choose_flag_thresholds(flag_logits: np.ndarray, dev_ex, flags: list[str], fired=None) -> tuple[dict, dict]:
    """Per flag, the probability threshold at which rules-or-model has the best dev F1 (gold: most reviewers
    flagged it); ``fired``: per dev example, the rules that fired."""
    from qa.model.flags import best_threshold
    probs = 1 / (1 + np.exp(-flag_logits))
    thresholds, report = {}, {}
    for j, f in enumerate(flags):
        rows = [i for i, e in enumerate(dev_ex) if f in e.flags]
        if not rows:
            continue
        gold = np.array([dev_ex[i].flags[f] >= 0.5 for i in rows])
        base = np.array([f in fired[i] for i in rows]) if fired is not None else None
        t, f1 = best_threshold(probs[rows, j], gold, base)
        thresholds[f] = round(t, 3)
        report[f] = {"threshold": round(t, 3), "f1": None if np.isnan(f1) else round(float(f1), 4),
                     "positives": int(gold.sum()), "n": len(rows)}
    return thresholds, report


def _checkpoint_epoch(ckpt: Path) -> int:
    """Epochs a checkpoint holds (0 when there is none)."""
    if not (ckpt / "state.pt").is_file():
        return 0
    return int(_load_checkpoint(ckpt, "cpu")["state"]["epoch"])


def _load_checkpoint(ckpt: Path, device) -> dict:
    """The checkpoint, or a ``ModelError`` saying it cannot be read (a file cut short by a kill)."""
    import torch
    try:
        saved = torch.load(ckpt / "state.pt", weights_only=False, map_location=device)
        saved["state"]["epoch"]
    except Exception as e:  # noqa: BLE001 — torch raises RuntimeError, EOFError, UnpicklingError… on a bad file
        raise ModelError(f"cannot resume: {ckpt / 'state.pt'} cannot be read ({type(e).__name__}: "
                         f"{str(e)[:200]}); delete {ckpt} to train from the start") from None
    return saved


def _run_key(args: TrainArgs, train_ex, dev_ex) -> str:
    """What a checkpoint must match to be resumed: the options that shape training and the chats on each side,
    in order (not --epochs, --patience or --max-steps, which a resume may raise)."""
    opts = {k: v for k, v in dataclasses.asdict(args).items()
            if k not in ("resume", "epochs", "patience", "max_steps", "threads", "device", "out")}
    ids = [[e.conv.id for e in train_ex], [e.conv.id for e in dev_ex]]
    return hashlib.sha256(json.dumps([opts, ids], sort_keys=True, default=str).encode()).hexdigest()[:16]


NGRAM_FIT_VERSION = 2    # part of the n-gram fit's cache key: bump when the fit itself changes (C grid, folds…)


def _fit_key(texts: list[str], train_ex, dims, flags, seed: int, size: int) -> str:
    """What the n-gram fit depends on: texts, targets, flag targets, weights, seed and vocabulary size."""
    import hashlib
    h = hashlib.sha1(json.dumps([NGRAM_FIT_VERSION, seed, size, dims, flags or []]).encode())
    for t, e in zip(texts, train_ex):
        h.update(t.encode("utf-8"))
        h.update(json.dumps([{d: np.round(np.asarray(v, dtype=float), 6).tolist() for d, v in e.targets.items()},
                             {f: round(float(v), 6) for f, v in (e.flags or {}).items()}, e.weight],
                            sort_keys=True).encode())
    return h.hexdigest()[:20]


def _fit_ngram_channel(model, ngrams, train_ex, dims, seed: int, flags: list[str] | None = None) -> dict:
    """Fit the n-gram channel per dimension as a soft-label logistic regression, then freeze it. Returns the
    chosen C per dimension and 5-fold out-of-fold logits [train, Σ levels]: training the rest of the model on
    those (not on the in-sample fit, which is overconfident) teaches it what the n-grams miss on unseen chats.

    The fit is the slow part of training and does not depend on the encoder, so it is cached under
    ``$QA_NGRAM_CACHE`` (default ``$QA_CACHE/ngram-fits/``) by a hash of everything it depends on: a second run
    on the same data (another base model, an ablation of the encoder) reuses it."""
    import os

    import torch

    from qa.model.corpus import cache_root
    from qa.model.inputs import flat_text
    from qa.model.ngrams import fit_soft_lr
    texts = [flat_text(e.conv) for e in train_ex]
    folder = Path(os.environ.get("QA_NGRAM_CACHE") or cache_root() / "ngram-fits")
    cache = folder / f"{_fit_key(texts, train_ex, dims, flags, seed, ngrams.size)}.npz"
    if cache.is_file():
        z = np.load(cache)
        with torch.no_grad():
            model.ngram.weight.copy_(torch.from_numpy(z["weight"]))
            model.ngram.bias.copy_(torch.from_numpy(z["bias"]))
        for p in model.ngram.parameters():
            p.requires_grad_(False)
        log.info("n-gram channel: reused the fit cached in %s", cache)
        return json.loads(str(z["chosen"])), z["oof"]
    x = ngrams.transform(texts)
    chosen, start = {}, 0
    oof = np.zeros((len(train_ex), sum(len(v) for v in dims.values()) + len(flags or [])), dtype=np.float32)
    for d, levels in dims.items():
        rows = [i for i, e in enumerate(train_ex) if d in e.targets]
        k = len(levels)
        if rows:
            coef, inter, c, fold_logits = fit_soft_lr(x[rows], np.array([train_ex[i].targets[d] for i in rows]),
                                                      seed=seed, folds=5,
                                                      weights=np.array([train_ex[i].weight for i in rows]))
            with torch.no_grad():
                model.ngram.weight[start:start + k] = torch.from_numpy(coef)
                model.ngram.bias[start:start + k] = torch.from_numpy(inter)
            oof[rows, start:start + k] = fold_logits
            chosen[d] = c
        start += k
    for j, f in enumerate(flags or []):   # binary: the logit is the difference of the two classes'
        rows = [i for i, e in enumerate(train_ex) if f in e.flags]
        pos = sum(train_ex[i].flags[f] > 0 for i in rows)
        if pos < 3 or pos == len(rows):
            continue
        tgt = np.array([[1 - train_ex[i].flags[f], train_ex[i].flags[f]] for i in rows])
        coef, inter, c, fold_logits = fit_soft_lr(x[rows], tgt, seed=seed, folds=5,
                                                  weights=np.array([train_ex[i].weight for i in rows]))
        with torch.no_grad():
            model.ngram.weight[start + j] = torch.from_numpy(coef[1] - coef[0])
            model.ngram.bias[start + j] = float(inter[1] - inter[0])
        oof[rows, start + j] = fold_logits[:, 1] - fold_logits[:, 0]
        chosen[f] = c
    for p in model.ngram.parameters():
        p.requires_grad_(False)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".part.npz")
        np.savez(tmp, weight=model.ngram.weight.detach().numpy(), bias=model.ngram.bias.detach().numpy(),
                 oof=oof, chosen=json.dumps(chosen))
        tmp.replace(cache)
    except OSError as e:   # a read-only cache only costs the next run the fit
        log.warning("n-gram fit not cached (%s)", e)
    return chosen, oof


def save(model, tokenizer, ngrams, rubric, out: Path, metrics: dict, args: TrainArgs) -> None:
    """The model directory: config + safetensors, tokenizer, n-grams, rubric copy, label map, metrics, card."""
    from qa.model.card import write_card
    model.save_pretrained(out, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    if ngrams is not None:
        ngrams.save(out)
    if rubric.path:
        shutil.copy(rubric.path, out / "rubric.yaml")
        if rubric.lexicon:
            lex = out / rubric.lexicon
            lex.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy((rubric.path.parent / rubric.lexicon).resolve(), lex)
    (out / "labels.json").write_text(json.dumps(model.config.dimensions, ensure_ascii=False, indent=1),
                                     encoding="utf-8")
    # with the folder it ran in: `qa eval` finds relative data paths there, wherever it is run from
    (out / "training_args.json").write_text(json.dumps({**dataclasses.asdict(args), "cwd": os.getcwd()},
                                                       ensure_ascii=False, indent=1), encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
    write_card(out)
