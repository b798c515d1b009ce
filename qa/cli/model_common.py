"""Pieces shared by the model commands: a rich progress bar for training loops, float option checks."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from qa.cli.common import err_console, fail


def finite(option: str, value: float | None, low: float | None = None, high: float | None = None, *,
           above: bool = False) -> None:
    """``option``'s value is a finite number, ``low`` or more (more than ``low`` when ``above``) and ``high`` or
    less when given (None: not given). ``at_least`` alone lets NaN through: every comparison with it is false."""
    if value is None:
        return
    if not math.isfinite(value):
        fail(f"{option} {value}: must be a finite number")
    if low is not None and (value <= low if above else value < low):
        fail(f"{option} {value}: must be {'above' if above else 'at least'} {low:g}")
    if high is not None and value > high:
        fail(f"{option} {value}: must be at most {high:g}")


@contextlib.contextmanager
def step_progress(description: str) -> Iterator:
    """Yields ``update(done, total, loss, label="")`` that drives a bar with rate, ETA and the last loss."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), TimeRemainingColumn(),
                   console=err_console, transient=False, disable=not err_console.is_terminal)
    with bar:
        task = bar.add_task(description, total=None, loss=float("nan"))

        def update(done: int, total: int, loss: float, label: str = "") -> None:
            bar.update(task, completed=done, total=total, loss=loss,
                       description=f"{description} {label}".strip())
        yield update
