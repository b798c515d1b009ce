"""Shared CLI pieces: consoles, error handling, progress, read-stats printing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from qa.errors import QAError
from qa.io import ReadStats

console = Console()
err_console = Console(stderr=True)

INPUTS = typer.Argument(..., help="Chat files: .jsonl, .json (DialEval), .csv/.tsv, .xlsx")
COLUMNS = typer.Option(None, "--columns", help="Column profile for CSV/XLSX: a shipped name or a YAML file "
                       "(default: detected from the header)")
TZ = typer.Option(None, "--tz", help="Time zone of naive times (default: Asia/Shanghai or the column profile's)")
RUBRIC = typer.Option(None, "--rubric", help="Rubric YAML (default: rubrics/default.yaml)")


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn qa's typed errors into a one-line message and exit code 2."""
    try:
        yield
    except QAError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        raise typer.Exit(2) from None


def check_inputs(paths: list[Path]) -> None:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        err_console.print(f"[bold red]error:[/] no such input file: {', '.join(missing)}", highlight=False)
        raise typer.Exit(2)


def progress(total: int | None = None) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]:>8}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err_console, transient=True, disable=not err_console.is_terminal)


def print_stats(stats: ReadStats, rejects: Path | None) -> None:
    msg = (f"read {stats.read} · accepted {stats.accepted} · rejected {stats.rejected}"
           f" · repaired {stats.repaired}")
    if stats.rejected and rejects:
        msg += f"  (reasons in {rejects})"
    err_console.print(msg, highlight=False)
