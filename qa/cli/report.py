"""``qa report``: graded results → report.html (inline SVG charts) and kpis/agents/warnings CSV."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from qa.cli.common import RUBRIC, check_inputs, check_not_inputs, check_out, cli_errors, console
from qa.rubric import KPIS

if TYPE_CHECKING:
    from qa.report import Report

# what `qa report` writes into its folder (qa.report.build, qa.report.shop_views)
REPORT_FILES = ("report.html", "kpis.csv", "agents.csv", "warnings.csv", "alerts.csv", "staffing.csv", "topics.csv",
                "topic_shops.csv", "shop_score.csv")

RESULTS = typer.Argument(..., help="Graded results from `qa grade`: .jsonl and/or .parquet")


def _cell(row: dict[str, Any], kpi: str) -> str:
    from qa.report.html import fmt
    if row[kpi] is None:
        return "[dim]–[/]"
    ok = row[f"{kpi}_pass"]
    text = fmt(kpi, row[kpi])
    return text if ok is None else f"[green]{text}✓[/]" if ok else f"[red]{text}✗[/]"


def summary(rep: Report) -> Table:
    """All shops and each shop: conversations, mean score, red lines, warnings, KPIs beside thresholds."""
    from qa.report.html import KPI_LABELS
    rows = [r for r in rep.kpis if r["level"] in ("all", "shop")]
    shown = [k for k in KPIS if any(r[k] is not None for r in rows)]
    warned = collections.Counter(w["shop"] for w in rep.warnings)
    t = Table(title="qa report", title_justify="left", header_style="bold")
    for col in ("shop", "会话", "均分", "红线", "待跟进", *(KPI_LABELS[k] for k in shown)):
        t.add_column(col, justify="left" if col == "shop" else "right")
    for r in rows:
        name = "[bold]全部[/]" if r["level"] == "all" else escape(r["shop"])
        n_warn = len(rep.warnings) if r["level"] == "all" else warned[r["shop"]]
        t.add_row(name, str(r["conversations"]), f"{r['mean_score']:.1f}", str(r["failed"]), str(n_warn),
                  *(_cell(r, k) for k in shown))
    return t


def report_cli(
    results: list[Path] = RESULTS,
    out: Path = typer.Option(Path("qa_out/report"), "--out", "-o", help="Output folder"),
    profile: str = typer.Option(None, "--profile", "-p", help="Judge every group by this platform profile "
                                "(default: the records' own profile)"),
    rubric: Path = RUBRIC,
    topics: bool = typer.Option(False, "--topics", help="Add the question types (as `qa topics`; docs/topics.md)"),
    shop_stats: Path = typer.Option(None, "--shop-stats", help="Shop-day statistics CSV: add the 服务体验分 "
                                    "(as `qa shop-score`)"),
) -> None:
    """Report per shop, agent and day: KPIs against thresholds, score charts, weakest dimensions, follow-ups."""
    from qa.report import build_report            # DuckDB: loaded when the command runs, not for --help
    from qa.report.html import KIND_LABELS
    check_inputs(results, noun="results file")
    check_out(out, folder=True)
    check_not_inputs([*results, shop_stats], [out, *(out / name for name in REPORT_FILES)])
    with cli_errors(out):
        rep = build_report(results, out, rubric=rubric, profile=profile, topics=topics, shop_stats=shop_stats)
    console.print(summary(rep))
    kinds = collections.Counter(k for w in rep.warnings for k in w["kinds"].split(";"))
    if kinds:
        console.print("待跟进: " + " · ".join(f"{KIND_LABELS[k]} {kinds[k]}" for k in KIND_LABELS if kinds[k]),
                      highlight=False)
    weakest = sorted((a for a in rep.agents if a["mean_score"] is not None), key=lambda a: a["mean_score"])[:3]
    if weakest:
        console.print("最低均分: " + escape(" · ".join(f"{a['agent']} {a['mean_score']:.1f}"
                                                        + (f" ({a['weakest']})" if a["weakest"] else "")
                                                        for a in weakest)), highlight=False)
    for note in rep.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    console.print(f"wrote {', '.join(str(p) for p in rep.files.values())}", highlight=False)
