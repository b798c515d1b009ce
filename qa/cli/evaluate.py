"""``qa eval``: a model on held-out labelled chats, beside the majority and char n-gram baselines."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer
from rich.table import Table

from qa.cli.common import PLATFORM, check_inputs, check_not_inputs, check_out, cli_errors, console, err_console


def eval_cli(
    model: Path = typer.Argument(..., help="Model directory"),
    data: list[Path] = typer.Argument(..., help="Labelled chat files to evaluate on"),
    train: list[Path] = typer.Option(None, "--train", help="Training files for the baselines (default: the "
                                     "model's own training split, from its training_args.json)"),
    out: Path = typer.Option(None, "--out", "-o", help="Write the full report (with confusion matrices) as JSON"),
    card: bool = typer.Option(False, "--card", help="Also save the report as MODEL/eval.json and refresh "
                              "MODEL_CARD.md"),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="Score the model only: no majority or TF-IDF "
                                      "baseline is trained"), platform: str = PLATFORM,
) -> None:
    """Exact and within-one accuracy, macro-F1, quadratic weighted kappa and confusion, per dimension; rule-flag
    precision, recall and F1 (rules alone, and rules + model as qa grade combines them) where reviews list rules."""
    from qa.model.card import write_card
    from qa.model.evaluate import evaluate
    check_inputs(list(data), platform=platform)
    if out is not None:
        check_out(out)
        check_not_inputs([*data, *(train or [])], [out], inside=[model])
    with cli_errors(out):
        report = evaluate(model, [str(p) for p in data], train_paths=[str(p) for p in train] if train else None,
                          baselines=not no_baselines, platform=platform)
    report["command"] = "qa eval " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    for r in report["rejected_first"][:5]:
        where = ":".join(str(x) for x in (r.get("file"), r.get("line")) if x is not None)
        err_console.print(f"rejected {where}: {r.get('field') + ': ' if r.get('field') else ''}{r['reason']}",
                          highlight=False, markup=False)
    err_console.print(f"evaluated {report['n']} conversations · rejected {report['rejected']}"
                      + (" (the first hundred, with why, in the report)" if report["rejected"] > 5 else ""),
                      highlight=False)
    levels = report["levels"]
    for d in report["dimensions"]:
        t = Table(title=f"{d} (n={report['systems']['model'][d]['n']})", title_justify="left", header_style="bold")
        for c in ("system", "QWK", "accuracy", "within one", "macro-F1"):
            t.add_column(c, justify="left" if c == "system" else "right")
        for name, by_dim in report["systems"].items():
            m = by_dim[d]
            t.add_row(name, f"{m['qwk']:.3f}", f"{m['accuracy']:.3f}", f"{m['within_one']:.3f}", f"{m['macro_f1']:.3f}")
        console.print(t)
        cm = report["systems"]["model"][d]["confusion"]
        console.print("  confusion (rows = reference, cols = model; " + "/".join(map(str, levels[d])) + "): "
                      + " | ".join(" ".join(f"{x:3d}" for x in row) for row in cm), highlight=False)
    if report.get("flags"):
        console.print(flag_table(report["flags"]))
    text = json.dumps(report, ensure_ascii=False, indent=1)
    with cli_errors(out):                               # an unwritable --out or model folder: one line
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
        if card:
            (Path(model) / "eval.json").write_text(text, encoding="utf-8")
            write_card(model)
            console.print(f"updated {Path(model) / 'MODEL_CARD.md'}", highlight=False)


def flag_table(flags: dict) -> Table:
    """Per rule with a gold flag or a prediction: gold, and precision / recall / F1 of each system; micro last."""
    systems = flags["systems"]
    t = Table(title=f"rule flags (n={flags['chats']}, gold: {flags['gold']})", title_justify="left",
              header_style="bold")
    t.add_column("rule")
    t.add_column("gold", justify="right")
    for name in systems:
        t.add_column(f"{name} P / R / F1", justify="right")
    fmt = lambda x: "-" if x is None else f"{x:.2f}"   # noqa: E731
    first = next(iter(systems.values()))
    for rule in first:
        if rule != "micro" and not any(systems[n][rule]["gold"] or systems[n][rule]["predicted"] for n in systems):
            continue
        t.add_row(rule, str(first[rule]["gold"]), *(" / ".join(fmt(systems[n][rule][k]) for k in
                                                              ("precision", "recall", "f1")) for n in systems))
    return t

