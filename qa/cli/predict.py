"""``qa predict``: the classifier alone per conversation: level distributions and expected grades, rule-flag
probabilities, per-message turn labels."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import typer

from qa.cli.common import COLUMNS, INPUTS, PLATFORM, TZ, at_least, check_inputs, check_not_inputs, check_out, \
    cli_errors, console, one_of, print_stats, progress
from qa.io import ReadStats, Reject
from qa.io.read import read_sourced
from qa.io.write import JsonlWriter

FORMATS = ("jsonl", "dialeval")


def _chunks(items, n):
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


def predict(inputs: list[Path], out: Path, *, model: Path | None = None, fmt: str = "jsonl", columns=None,
            tz=None, platform=None, batch_size: int = 64, on_batch=None) -> tuple[ReadStats, Path]:
    """Stream the inputs through the model; JSONL (one line per conversation) or a DialEval submission."""
    from qa.model.predict import Classifier
    clf = Classifier(model)
    stats = ReadStats()
    rejects_path = rejects_file(out)
    dialeval: list[dict] = []
    with JsonlWriter(rejects_path) as rej, (JsonlWriter(out) if fmt == "jsonl" else _Null()) as w:
        chats = read_sourced(inputs, stats, columns=columns, tz=tz, platform=platform, unique_ids=True)
        for chunk in _chunks(chats, batch_size):
            chunk = [_unreadable(c, src, stats) or c for src, c in chunk]
            convs = [c for c in chunk if not isinstance(c, Reject)]
            for r in chunk:
                if isinstance(r, Reject):
                    rej.write(r.to_record())
            for conv, p in zip(convs, clf.predict_all(convs, batch_size=batch_size)):
                if fmt == "dialeval":
                    rec = {"id": conv.id, "quality": {d: {str(k): round(v, 6) for k, v in g.probs.items()}
                                                      for d, g in p.grades.items()}}
                    if clf.nuggets:
                        rec["nugget"] = [_nugget_or_uniform(n, m.role, clf.nuggets)
                                         for n, m in zip(p.nuggets, conv.messages)]
                    dialeval.append(rec)
                else:
                    w.write(_record(conv, p, clf))
            if on_batch:
                on_batch(len(chunk))
    if fmt == "dialeval":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(dialeval, ensure_ascii=False), encoding="utf-8")
    return stats, rejects_path


def _unreadable(conv, source: str, stats) -> Reject | None:
    """A reject for a conversation with no message the model reads (system events only): its probabilities would
    be NaN. Counted as rejected, not accepted."""
    from qa.model.inputs import turns
    if isinstance(conv, Reject) or turns(conv):
        return None
    stats.refuse(conv)
    return Reject(source, conv._line, "no customer, agent or bot message for the model to read",
                  "messages", conv.id)


def _record(conv, p, clf) -> dict:
    """One JSONL line: per dimension the level distribution, expected grade and evidence; the rule flags' probabilities
    and those the model raises alone (threshold, evidence message; before the rule checks, ``qa grade`` combines the
    two); per message its turn-label probabilities (null for messages the model did not read); nuggets."""
    rec = {"id": conv.id, "model": clf.path.name, "dimensions": {d: g.to_record() for d, g in p.grades.items()}}
    if p.flags:
        rec["flags"] = {f: round(v, 4) for f, v in p.flags.items()}
        rec["raised"] = [r.to_record() for r in p.raised]
    if any(t for t in p.turns):
        rec["turns"] = [{k: round(v, 4) for k, v in t.items()} if t else None for t in p.turns]
    if clf.nuggets:
        rec["nuggets"] = [{k: round(v, 4) for k, v in n.items()} if n else None for n in p.nuggets]
    return rec


def rejects_file(out: Path) -> Path:
    return out.with_name(out.stem + ".rejects.jsonl")


def _nugget_or_uniform(dist, role, nuggets) -> dict:
    """A turn's nugget distribution; uniform for a turn the model did not read (cut from a long chat)."""
    if dist:
        return {k: round(v, 6) for k, v in dist.items()}
    types = nuggets.get("customer" if role == "customer" else "agent", [])
    return {t: round(1 / len(types), 6) for t in types}


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def predict_cli(
    inputs: list[Path] = INPUTS,
    out: Path = typer.Option(..., "--out", "-o", help="Predictions: JSONL, or DialEval JSON with --format dialeval"),
    model: Path = typer.Option(None, "--model", "-m", help="Model directory (default: models/default)"),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl | dialeval (the STC-3 submission format)"),
    batch_size: int = typer.Option(64), columns: str = COLUMNS, tz: str = TZ, platform: str = PLATFORM,
) -> None:
    """Per conversation and dimension: the level distribution, the expected grade and the evidence turns."""
    one_of("--format", fmt, FORMATS)
    at_least("--batch-size", batch_size, 1)
    check_inputs(inputs, chats=True, columns=columns, tz=tz, platform=platform)
    check_out(out)
    from qa.resources import default_model_dir
    check_not_inputs(inputs, [out, rejects_file(out)], inside=[model or default_model_dir()])
    with cli_errors(out), progress() as bar:
        task = bar.add_task("predict", total=None, rate="")
        stats, rejects = predict(inputs, out, model=model, fmt=fmt, columns=columns, tz=tz, platform=platform,
                                 batch_size=batch_size,
                                 on_batch=lambda n: bar.advance(task, n))
    print_stats(stats, rejects)
    console.print(f"wrote {out}", highlight=False)
