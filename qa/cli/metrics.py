"""``qa metrics``: timing and rating KPIs by platform, shop, agent and day, beside platform thresholds."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from qa.cli.common import COLUMNS, INPUTS, PLATFORM, RUBRIC, TZ, check_inputs, check_not_inputs, check_out, \
    cli_errors, console, one_of, print_stats
from qa.io import ReadStats, Reject, read_many
from qa.io.write import JsonlWriter, write_csv, write_json
from qa.kpis import KpiTable
from qa.rubric import load_rubric
from qa.safety import mask_value
from qa.timing import compute_timing


@dataclasses.dataclass
class MetricsResult:
    stats: ReadStats
    rows: list[dict[str, Any]]
    files: dict[str, Path]


def metrics(inputs: list[Path], out: Path, *, rubric: Path | None = None, profile: str | None = None,
            columns: str | None = None, tz: str | None = None, platform: str | None = None) -> MetricsResult:
    """Read the inputs, compute per-conversation timing and the KPI table; write them under ``out``."""
    rub = load_rubric(rubric)
    if profile:
        rub.profile(profile)
    out.mkdir(parents=True, exist_ok=True)
    files = output_files(out)
    stats, table = ReadStats(), KpiTable(rub, profile)
    with JsonlWriter(files["timing"]) as timing_out, JsonlWriter(files["rejects"]) as rejects:
        for item in read_many(inputs, stats, columns=columns, tz=tz, platform=platform, unique_ids=True):
            if isinstance(item, Reject):
                rejects.write(item.to_record())
                continue
            t = compute_timing(item, rub)
            table.add(item, t)
            timing_out.write({"id": item.id, "platform": item.platform, "shop": item.shop,
                              "agent": item.agent_name, "warnings": list(item.warnings), **t.as_dict()})
    rows = mask_value(table.rows())   # shop and agent names are for people: masked (docs/security.md)
    write_json(files["json"], {"counts": stats.as_dict(), "profile": profile, "rubric": str(rub.path),
                               "groups": rows})
    write_csv(files["csv"], rows)
    return MetricsResult(stats, rows, files)


def output_files(out: Path) -> dict[str, Path]:
    """The files ``metrics`` writes into the folder ``out``."""
    return {"json": out / "metrics.json", "csv": out / "metrics.csv",
            "timing": out / "timing.jsonl", "rejects": out / "rejects.jsonl"}


_SHOWN = (("first_response_rate_2min", "2分钟首响", "pct"), ("reply_rate_3min", "3分钟回复", "pct"),
          ("avg_reply_s", "平均回复", "sec"), ("response_rate_24h", "24h响应", "pct"),
          ("satisfaction_rate", "满意率", "pct"), ("dissatisfaction_rate", "不满意率", "pct"),
          ("good_review_rate", "好评率", "pct"))


def _cell(row: dict[str, Any], kpi: str, kind: str) -> str:
    v = row[kpi]
    if v is None:
        return "[dim]–[/]"
    text = f"{v:.0%}" if kind == "pct" else f"{v:.0f}s"
    ok = row.get(f"{kpi}_pass")
    if ok is None:
        return text
    return f"[green]{text}✓[/]" if ok else f"[red]{text}✗[/]"


def render(rows: list[dict[str, Any]], level: str) -> Table:
    keys = {"platform": ["platform"], "shop": ["platform", "shop"], "agent": ["shop", "agent"],
            "day": ["shop", "day"]}[level]
    t = Table(title=f"KPIs by {level}", title_justify="left", header_style="bold")
    for k in keys:
        t.add_column(k)
    t.add_column("会话", justify="right")
    for _, label, _ in _SHOWN:
        t.add_column(label, justify="right")
    for r in (r for r in rows if r["level"] == level):
        t.add_row(*(str(r[k]) for k in keys), str(r["conversations"]), *(_cell(r, k, kind) for k, _, kind in _SHOWN))
    return t


def metrics_cli(
    inputs: list[Path] = INPUTS,
    out: Path = typer.Option(Path("qa_out/metrics"), "--out", "-o", help="Output folder"),
    profile: str = typer.Option(None, "--profile", "-p", help="Judge every group by this platform profile "
                                "(default: each group's own platform)"),
    by: list[str] = typer.Option(["shop", "agent"], "--by", help="Tables to print: platform, shop, agent, day"),
    rubric: Path = RUBRIC, columns: str = COLUMNS, tz: str = TZ, platform: str = PLATFORM,
) -> None:
    """Timing and rating KPIs (2-minute first response, 3-minute reply, 24-hour response, satisfaction…)."""
    check_inputs(inputs, chats=True, columns=columns, tz=tz, platform=platform)
    for level in by:
        one_of("--by", level, ("platform", "shop", "agent", "day"))
    check_out(out, folder=True)
    check_not_inputs(inputs, [out, *output_files(out).values()])
    with cli_errors(out):
        res = metrics(inputs, out, rubric=rubric, profile=profile, columns=columns, tz=tz, platform=platform)
    for level in by:
        console.print(render(res.rows, level))
    print_stats(res.stats, res.files["rejects"])
    console.print(f"wrote {res.files['json']}, {res.files['csv']}, {res.files['timing']}", highlight=False)
