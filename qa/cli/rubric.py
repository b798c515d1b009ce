"""``qa rubric show`` and ``qa rubric validate``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from qa.cli.common import cli_errors, console
from qa.rubric import DEFAULT_RUBRIC, load_rubric
from qa.rules import RuleEngine

app = typer.Typer(help="Show or validate a rubric.", no_args_is_help=True)


@app.command("validate")
def validate_cli(paths: list[Path] = typer.Argument(None, help="Rubric YAML files (default: the default rubric)")
                 ) -> None:
    """Load each rubric, its lexicon and its checks; report the first problem with its key path."""
    for p in paths or [DEFAULT_RUBRIC]:
        with cli_errors():
            r = load_rubric(p)
            RuleEngine(r)
        console.print(f"[green]ok[/] {p}: {len(r.dimensions)} dimensions, {len(r.rules)} rules, "
                      f"{len(r.profiles)} profiles", highlight=False)


@app.command("show")
def show_cli(path: Path = typer.Argument(None, help="Rubric YAML (default: the default rubric)"),
             profile: str = typer.Option(None, "--profile", "-p", help="Show this platform profile's weights")) -> None:
    """Print dimensions with their level descriptions, rules with their effects, and profiles."""
    with cli_errors():
        r = load_rubric(path)
        prof = r.profile(profile) if profile else None
    t = Table(title=f"{r.name} v{r.version}: dimensions", title_justify="left", header_style="bold", show_lines=True)
    t.add_column("dimension")
    t.add_column("source")
    for lvl in r.scale:
        t.add_column(str(lvl))
    if prof:
        t.add_column("weight", justify="right")
    for name, d in r.dimensions.items():
        row = [f"{name}\n{d.name}", d.source, *(d.levels[lvl] for lvl in r.scale)]
        t.add_row(*row, *([f"{prof.weights.get(name, 0):g}"] if prof else []))
    console.print(t)
    t = Table(title="rules", title_justify="left", header_style="bold")
    for c in ("rule", "name", "severity", "effects"):
        t.add_column(c)
    for rid, rule in r.rules.items():
        eff = ", ".join(f"{e.dimension} {'≤ ' + str(e.cap) if e.cap is not None else '−' + str(e.deduct)}"
                        for e in rule.effects)
        t.add_row(rid, rule.name, rule.severity, eff)
    console.print(t)
    t = Table(title="profiles", title_justify="left", header_style="bold")
    for c in ("profile", "name", "KPI thresholds"):
        t.add_column(c)
    for pid, p in r.profiles.items():
        t.add_row(pid, p.name, "; ".join(f"{k} {v}" for k, v in p.kpis.items()))
    console.print(t)
