"""``qa pretrain``: masked-LM pretraining of the default char encoder (corpus folder + chats, see qa.model.pretrain)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from qa.cli.common import at_least, cli_errors, console, fail
from qa.cli.model_common import finite, step_progress


def pretrain_cli(
    conversations: list[Path] = typer.Argument(None, help="Chat files whose messages join the corpus"),
    out: Path = typer.Option(Path("models/base"), "--out", "-o", help="Model directory to write"),
    corpus: Path = typer.Option(None, help="Corpus folder of scripts/build_corpus.py (default $QA_CACHE/corpus)"),
    steps: int = typer.Option(20000, help="Optimizer steps (the most; --minutes may stop earlier)"),
    minutes: float = typer.Option(None, help="Stop after this many minutes; the LR decay is fitted to it"),
    layers: int = typer.Option(4), hidden: int = typer.Option(256), heads: int = typer.Option(4),
    intermediate: int = typer.Option(None, help="Feed-forward width (default 4 × hidden)"),
    max_len: int = typer.Option(64, help="Tokens per sequence (passages are cut to fit)"),
    vocab_size: int = typer.Option(8000, help="Largest character vocabulary"),
    batch_size: int = typer.Option(128), lr: float = typer.Option(5e-4),
    warmup: float = typer.Option(0.05, help="Share of the schedule spent warming up"),
    mask_prob: float = typer.Option(0.15, help="Share of jieba words masked"),
    chat_weight: float = typer.Option(2.0, help="Repeats of the chat messages"),
    eval_every: int = typer.Option(500, help="Score the held-out 1 % every N steps (0: only at the end)"),
    eval_size: int = typer.Option(4096, help="Held-out sequences scored"),
    save_every: int = typer.Option(1000, help="Write a checkpoint every N steps"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint"),
    device: str = typer.Option("auto", help="auto | cpu | cuda (bf16 autocast on CUDA)"),
    seed: int = typer.Option(13),
    threads: int = typer.Option(None, help="Torch CPU threads"),
    num_proc: int = typer.Option(2, help="Processes for tokenising the corpus"),
    pack: Path = typer.Option(None, help="Write the tokenised corpus (+ chats) as a compact pack folder and stop "
                              "(to train elsewhere, e.g. on a GPU machine without datasets/jieba)"),
    pack_max_rows: int = typer.Option(None, help="At most this many sequences per general source (weight ≤ 1) in the pack"),
    from_pack: Path = typer.Option(None, help="Train from a pack folder written by --pack"),
    init_from: Path = typer.Option(None, help="Start from this pretrained encoder's weights (same vocabulary)"),
    teacher: Path = typer.Option(None, help="Distil the sentence vectors in this .npz (scripts/build_teacher.py) "
                                 "beside the MLM loss"),
    teacher_weight: float = typer.Option(1.0, help="Weight of the distillation loss"),
) -> None:
    """Pretrain the char BERT encoder with whole-word-masked language modelling (corpus + your chats)."""
    from qa.model.pretrain import FLOAT_LIMITS, PretrainArgs, pretrain
    floats = {"lr": lr, "warmup": warmup, "minutes": minutes, "mask_prob": mask_prob, "chat_weight": chat_weight,
              "teacher_weight": teacher_weight}
    for name, value in floats.items():
        low, high, above = FLOAT_LIMITS[name]
        finite(f"--{name.replace('_', '-')}", value, low, high, above=above)
    for option, value, low in (("--steps", steps, 1), ("--layers", layers, 1), ("--hidden", hidden, 1),
                               ("--heads", heads, 1), ("--intermediate", intermediate, 1),
                               ("--vocab-size", vocab_size, 1), ("--batch-size", batch_size, 1),
                               ("--eval-every", eval_every, 0), ("--eval-size", eval_size, 1),
                               ("--save-every", save_every, 0), ("--threads", threads, 1),
                               ("--num-proc", num_proc, 1), ("--pack-max-rows", pack_max_rows, 1)):
        at_least(option, value, low)
    logging.basicConfig(format="%(message)s")
    logging.getLogger("qa.model").setLevel(logging.INFO)   # one line per 50 steps and per evaluation
    with cli_errors(out):
        try:
            args = PretrainArgs(out=str(out), corpus=str(corpus) if corpus else None,
                                conversations=[str(p) for p in conversations or []], steps=steps, minutes=minutes,
                                hidden=hidden, layers=layers, heads=heads, intermediate=intermediate, max_len=max_len,
                                vocab_size=vocab_size, batch_size=batch_size, lr=lr, warmup=warmup, mask_prob=mask_prob,
                                chat_weight=chat_weight, eval_every=eval_every, eval_size=eval_size,
                                save_every=save_every, resume=resume, device=device, seed=seed, threads=threads,
                                num_proc=num_proc, pack=str(pack) if pack else None, pack_max_rows=pack_max_rows,
                                from_pack=str(from_pack) if from_pack else None,
                                init_from=str(init_from) if init_from else None,
                                teacher=str(teacher) if teacher else None, teacher_weight=teacher_weight)
        except ValueError as e:                        # e.g. hidden not a multiple of heads
            fail(str(e))
        if pack:
            from qa.model.pretrain import pretrain as run
            info = run(args)
            n = sum(s["stored_rows"] for s in info["sources"].values())
            console.print(f"wrote {pack}: {n:,} sequences from {len(info['sources'])} sources", highlight=False)
            return
        with step_progress("pretrain") as update:
            info = pretrain(args, progress=lambda s, n, loss: update(s, n, loss))
    h = info.get("heldout") or {}
    console.print(f"{info['steps']} steps in {info['train_seconds']} s on {info['device']} "
                  f"({info['corpus_chars']:,} corpus chars, vocab {info['vocab']}); held-out masked acc "
                  f"{h.get('masked_acc')}, perplexity {h.get('perplexity')}"
                  + (f", teacher cosine {h.get('teacher_cosine')}" if info.get("teacher") else "")
                  + f"; wrote {out}", highlight=False)
