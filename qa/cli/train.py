"""``qa train``: fine-tune the rubric classifier on labelled chats and write a model directory."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import typer
from rich.table import Table

from qa.cli.common import RUBRIC, check_inputs, cli_errors, console, err_console
from qa.cli.model_common import step_progress


def train_cli(
    data: list[Path] = typer.Argument(..., help="Labelled chat files (.jsonl with labels.reviews, DialEval .json)"),
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write"),
    rubric: Path = RUBRIC,
    base_model: str = typer.Option("models/base", help="Encoder to fine-tune: a local directory or a hub id "
                                   "(e.g. hfl/rbt3); 'none' = a small encoder from scratch"),
    dev: list[Path] = typer.Option(None, help="Dev files (default: a seeded split of the data); repeatable"),
    dev_ids: Path = typer.Option(None, help="File of conversation ids (one a line): those chats of the data are "
                                 "the dev split, the same one however many files are added"),
    dev_fraction: float = typer.Option(0.1), epochs: int = typer.Option(8), batch_size: int = typer.Option(16),
    lr: float = typer.Option(3e-4), encoder_lr: float = typer.Option(1e-4), patience: int = typer.Option(2, min=1),
    seed: int = typer.Option(13),
    no_encoder: bool = typer.Option(False, "--no-encoder", help="Ablation: n-grams and features only"),
    no_ngrams: bool = typer.Option(False, "--no-ngrams", help="Ablation: no char n-gram channel"),
    no_features: bool = typer.Option(False, "--no-features", help="Ablation: no rule/timing features"),
    weight: list[str] = typer.Option(None, help="PATTERN=W: chats from training (and --dev) files matching the "
                                     "glob count W in the loss and the dev scores (e.g. 'data/labelled/gen/*=0.3'); "
                                     "repeatable"),
    ngram_init: str = typer.Option("lr", help="lr: fit the n-gram channel as a logistic regression first and "
                                   "keep it fixed; joint: learn it with the rest"),
    augment: float = typer.Option(0.0, help="Share of training chats that also train as a real-looking copy "
                                  "(short replies, split messages, no punctuation, pasted links; same labels)"),
    excerpt: float = typer.Option(0.0, help="Share of training chats that also train without their greeting "
                                  "and/or closing (etiquette a level lower per element lost, other grades kept)"),
    excerpt_dim: str = typer.Option("etiquette", help="The dimension --excerpt copies lower (none: keep "
                              "every grade)"),
    max_steps: int = typer.Option(None, help="Stop after this many steps (smoke runs)"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint"),
    threads: int = typer.Option(None, help="Torch CPU threads"),
    device: str = typer.Option("auto", help="auto | cpu | cuda (bf16 autocast on a GPU)"),
    from_model: Path = typer.Option(None, help="Keep this trained model's network; fit only the ridge channel, flag "
                                    "thresholds, temperatures and decision rule on the dev split (same data and "
                                    "seed as its training keep the dev split unseen)"),
    ridge_on: list[str] = typer.Option(None, help="GLOB: fit the ridge channel on the chats of the training files "
                                       "matching it (e.g. your reviewed real chats); repeatable"),
    turns_on: list[str] = typer.Option(None, help="GLOB: the turn labels of these training files' chats also fit "
                                       "the turn-level flag models, which then apply to every chat (needs "
                                       "--ridge-on); repeatable"),
    keep_beta: bool = typer.Option(False, "--keep-beta", help="With --from-model: keep its ridge tilt strengths "
                                   "instead of choosing them again on the dev split"),
    keep_decision: bool = typer.Option(False, "--keep-decision", help="With --from-model: keep its temperatures, "
                                       "decision rule and cutpoints (its grades); the dev split then chooses only "
                                       "the flag thresholds"),
    teacher: Path = typer.Option(None, help="Teacher sentence vectors (.npz, scripts/build_teacher.py) for the "
                                 "ridge channel's projection (without it, --from-model's projection is kept)"),
) -> None:
    """Fine-tune: seeded, early stopping on a dev split, calibrated, resumable; writes weights, tokenizer,
    label map, metrics and MODEL_CARD.md."""
    from qa.model.train import TrainArgs, train
    check_inputs(list(data) + list(dev or []) + ([teacher] if teacher else []) + ([dev_ids] if dev_ids else []))
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file, not a folder", param_hint="--out")
    if not resume and out.is_dir() and any(out.iterdir()):
        held = sorted(p.name for p in out.iterdir())
        raise typer.BadParameter(f"{out} is not empty ({', '.join(held[:4])}{' …' if len(held) > 4 else ''}): files "
                                 "of another model left there would load with the new one; choose a new folder, or "
                                 "--resume to continue the run it holds", param_hint="--out")
    if resume and (out / "config.json").is_file() and not (out / "checkpoint" / "state.pt").is_file():
        raise typer.BadParameter(f"{out} holds no checkpoint to continue (checkpoint/state.pt): the run there "
                                 "finished (its checkpoint goes at the end) or it is no training folder; train into "
                                 "a new folder", param_hint="--resume")
    if from_model and not (from_model / "config.json").is_file():
        raise typer.BadParameter(f"{from_model}: not a model directory (no config.json)", param_hint="--from-model")
    logging.getLogger("qa.model").setLevel(logging.INFO)   # one line per epoch / 25 steps
    with cli_errors(out):
        try:
            args = TrainArgs(data=[str(p) for p in data], out=str(out), rubric=str(rubric) if rubric else None,
                             base_model=base_model, dev=[str(p) for p in dev] if dev else None,
                             dev_ids=str(dev_ids) if dev_ids else None,
                             dev_fraction=dev_fraction, epochs=epochs, batch_size=batch_size, lr=lr,
                             encoder_lr=encoder_lr, patience=patience, seed=seed, use_encoder=not no_encoder,
                             use_ngrams=not no_ngrams, use_features=not no_features, max_steps=max_steps,
                             ngram_init=ngram_init, resume=resume, threads=threads, weights=_weights(weight),
                             augment=augment, excerpt=excerpt, excerpt_dim=excerpt_dim, device=device,
                             ridge_on=list(ridge_on) if ridge_on else None,
                             teacher=str(teacher) if teacher else None,
                             turns_on=list(turns_on) if turns_on else None,
                             keep_beta=keep_beta, keep_decision=keep_decision,
                             from_model=str(from_model) if from_model else None)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
        try:
            with step_progress("train") as update:
                metrics = train(args, progress=lambda ep, s, n, loss: update(s, n, loss, f"epoch {ep + 1}"))
        except KeyboardInterrupt:
            err_console.print("interrupted: the same command with --resume continues from the last finished epoch "
                              f"({out / 'checkpoint'})", highlight=False, soft_wrap=True)
            raise
    t = Table(title="Dev split", title_justify="left", header_style="bold")
    for c in ("dimension", "QWK", "accuracy", "within one", "macro-F1"):
        t.add_column(c, justify="left" if c == "dimension" else "right")
    for d, m in (metrics.get("dev") or {}).items():
        t.add_row(d, f"{m['qwk']:.3f}", f"{m['accuracy']:.3f}", f"{m['within_one']:.3f}", f"{m['macro_f1']:.3f}")
    console.print(t)
    copies = f" (+ {metrics['train_copies']} augmented copies)" if metrics.get("train_copies") else ""
    if from_model:
        copies += f" (network kept from {from_model}: nothing trained)"
    console.print(f"{metrics['train_conversations']} train{copies} / {metrics['dev_examples']} dev conversations, "
                  f"{metrics['rejected']} without usable labels; {metrics['seconds']} s; wrote {out}",
                  highlight=False)


def _weights(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    out = {}
    for item in items:
        pattern, sep, value = item.rpartition("=")
        try:
            out[pattern] = float(value)
        except ValueError:
            sep = ""
        if not sep or not pattern or not math.isfinite(out[pattern]) or out[pattern] < 0:
            raise typer.BadParameter(f"--weight {item!r}: expected PATTERN=W with W a finite number ≥ 0",
                                     param_hint="--weight")
    return out
