"""``qa shop-score``: 服务体验分 per shop and day from a shop-day statistics CSV (docs/metrics.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from qa.cli.common import check_inputs, check_not_inputs, check_out, cli_errors, console


def shop_score_cli(
    stats: Path = typer.Argument(..., help="Shop-day CSV: shop, day, orders, reviews_5…reviews_1, complaints, "
                                 "refunds"),
    out: Path = typer.Option(None, "--out", "-o", help="CSV to write (default: print only)"),
    complaint_cap: float = typer.Option(0.02, "--complaint-cap", min=1e-9, help="Complaint rate that scores 0"),
    refund_cap: float = typer.Option(0.20, "--refund-cap", min=1e-9, help="Refund rate that scores 0"),
) -> None:
    """服务体验分: reviews 50 %, complaints 30 %, refunds 20 %, each 0–100, per shop and day."""
    from rich.markup import escape
    from rich.table import Table

    from qa.report.shop_views import write_rows
    from qa.safety import mask_text
    from qa.shopscore import read_stats, shop_scores

    check_inputs([stats])
    if out is not None:
        check_out(out)
        check_not_inputs([stats], [out])
    with cli_errors(out):
        rows = shop_scores(read_stats(stats), complaint_cap=complaint_cap, refund_cap=refund_cap)
    t = Table(title="服务体验分", title_justify="left", header_style="bold")
    for col in ("shop", "day", "评价分", "投诉分", "退款分", "体验分"):
        t.add_column(col, justify="left" if col in ("shop", "day") else "right")
    f = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    for r in rows:
        t.add_row(escape(mask_text(r["shop"]) or ""), "[bold]全部[/]" if r["day"] == "all" else escape(r["day"]),
                  f(r["review_score"]), f(r["complaint_score"]), f(r["refund_score"]), f(r["total"]))
    console.print(t)
    if out is not None:
        with cli_errors(out):                           # /proc/x.csv, a full disk, a read-only folder: one line
            write_rows(out, rows)
        console.print(f"wrote {out}", highlight=False)
