"""Shared CLI pieces: consoles, error handling, option validation, progress, read-stats printing.

Every problem a user can cause — a bad option value, a missing or unreadable input, an output that cannot be
written — ends as one line on stderr (``error: …``) and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.segment import Segment
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from qa.errors import QAError
from qa.io import ReadStats

# C0 control characters and DEL (ESC opens sequences that clear the screen, move the cursor over earlier lines or
# make links); a chat's id, shop or agent name may hold them: printed as U+FFFD, as the files written for people do
_CONTROL = {c: "\ufffd" for c in (*range(0, 9), 11, 12, *range(13, 32), 127, *range(0x202A, 0x202F),
                                   *range(0x2066, 0x206A))}   # and the bidi controls that reorder what follows


class SafeConsole(Console):
    """A rich console that prints the control characters of what it is given as U+FFFD; its own styles and cursor
    moves (progress bars) are added after this and stay as they are."""

    def render(self, renderable, options=None):
        for seg in super().render(renderable, options):
            if not seg.control and seg.text:
                clean = seg.text.translate(_CONTROL)
                if clean != seg.text:
                    seg = Segment(clean, seg.style, seg.control)
            yield seg


console = SafeConsole(emoji=False)                 # `--address localhost:abc` is not an emoji code
err_console = SafeConsole(stderr=True, emoji=False)

INPUTS = typer.Argument(..., help="Chat files: .jsonl, .json (DialEval), .csv/.tsv, .xlsx")
COLUMNS = typer.Option(None, "--columns", help="Column profile for CSV/XLSX: a shipped name or a YAML file "
                       "(default: detected from the header)")
TZ = typer.Option(None, "--tz", help="Time zone of naive times (default: Asia/Shanghai or the column profile's)")
PLATFORM = typer.Option(None, "--platform", help="Platform of the chats whose records name none (douyin, kuaishou, "
                        "tiktok, taobao, or 抖音, 千牛 …): it picks their rubric profile and the model's platform "
                        "calibration (default: other)")
RUBRIC = typer.Option(None, "--rubric", help="Rubric YAML (default: rubrics/default.yaml)")


def fail(message: str) -> NoReturn:
    """One line on stderr, exit code 2."""
    err_console.print(f"[bold red]error:[/] {escape(' '.join(message.split()))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def os_error_message(e: OSError, out: Path | None = None) -> str:
    """One line naming the path; an error a buffered write raises names none (a full disk), so ``out``, the
    command's output, is named instead."""
    what = e.filename if e.filename is not None else ""
    why = e.strerror or type(e).__name__
    if isinstance(e, (NotADirectoryError, FileExistsError)) and what:
        why += " (a parent of this path is a file, not a folder)" if isinstance(e, NotADirectoryError) else ""
    if not what and out is not None and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):   # a write's error
        return f"writing {out}: {why}"
    return f"{what}: {why}" if what else f"{why}: {e}"


@contextlib.contextmanager
def cli_errors(out: Path | None = None) -> Iterator[None]:
    """Turn qa's typed errors and any OSError (a read-only or missing output folder, a full disk…) into a
    one-line message and exit code 2; an error without a path names ``out``."""
    try:
        yield
    except QAError as e:
        fail(str(e))
    except OSError as e:
        fail(os_error_message(e, out))


def check_inputs(paths: list[Path], *, chats: bool = False, columns: str | None = None, tz: str | None = None,
                 platform: str | None = None, noun: str = "input file") -> None:
    """Inputs exist and are files (and, for chat inputs, have a readable format); ``--columns``, ``--tz`` and
    ``--platform`` name something real. Exit 2 with one line otherwise, before anything is written."""
    dirs = [str(p) for p in paths if p.is_dir()]
    if dirs:
        fail(f"{noun} is a directory: {', '.join(dirs)} (pass the files in it, e.g. {dirs[0]}/*.jsonl)")
    odd = [str(p) for p in paths if p.exists() and not p.is_file()]
    if odd:
        fail(f"{noun} is not a regular file: {', '.join(odd)} (a pipe, a device or standard input; qa reads "
             "files: write it to a file first)")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        fail(f"no such {noun}: {', '.join(missing)}" + (" (standard input is not read: write it to a file first)"
                                                        if "-" in missing else ""))
    if chats:
        from qa.io.read import input_format

        with cli_errors():
            for p in paths:
                try:
                    input_format(p)
                except (UnicodeError, OSError):
                    pass  # read as a reject with its reason; the run goes on
    if columns is not None:
        check_columns(columns)
    if tz is not None:
        check_tz(tz)
    if platform is not None:
        from qa.schema import PLATFORMS, platform_id
        if platform_id(platform) is None:
            fail(f"--platform {platform!r}: unknown platform (use {', '.join(PLATFORMS)} or a name such as 千牛)")


def check_columns(columns: str) -> None:
    from qa.io.profiles import load_profile, shipped_profiles

    with cli_errors():
        if Path(columns).suffix.lower() in (".yaml", ".yml"):
            if not Path(columns).is_file():
                fail(f"--columns {columns}: no such column-profile file")
            load_profile(Path(columns))
        elif columns not in shipped_profiles():
            fail(f"--columns {columns!r}: not a shipped column profile ({', '.join(shipped_profiles())}) "
                 "nor a .yaml file")


def check_tz(tz: str) -> None:
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(tz)
    except (ValueError, KeyError, OSError):
        fail(f"--tz {tz!r}: unknown time zone (use an IANA name such as Asia/Shanghai or UTC)")


def at_least(option: str, value: int | float | None, low: int | float) -> None:
    """``option``'s value is ``low`` or more (None: not given)."""
    if value is not None and value < low:
        fail(f"{option} {value}: must be at least {low}")


def one_of(option: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        fail(f"{option} {value!r}: choose {', '.join(choices)}")


def check_out(out: Path, *, folder: bool = False) -> None:
    """The output path can be written: no parent is a file, ``out`` itself is not a folder (or not a file when
    ``folder``). Permission problems surface when writing, through ``cli_errors``."""
    for parent in [out, *out.parents] if folder else out.parents:
        if parent.exists():
            if not parent.is_dir():
                fail(f"cannot write {out}: {parent} is a file, not a folder")
            break
    if not folder and out.is_dir():
        fail(f"cannot write {out}: it is a folder (give a file name)")


def _same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name one file: the same path once resolved (symbolic links, ``..``), or — both existing —
    the same file on disk (a hard link)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):                  # a symbolic-link loop
        return a.absolute() == b.absolute()


def _within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies inside it, once both are resolved (symbolic links, ``..``)."""
    try:
        p, d = path.resolve(), folder.resolve()
    except (OSError, RuntimeError):                  # a symbolic-link loop
        p, d = path.absolute(), folder.absolute()
    return p == d or d in p.parents


def check_not_inputs(inputs: Iterable[Path | None], outputs: Iterable[Path | None], *,
                     option: str = "--out", inside: Iterable[Path | None] = (),
                     inside_what: str = "the model folder") -> None:
    """No output — ``option``'s path or a file the command derives from it (rejects file, sidecar, the files
    of an output folder) — is one of the inputs: writing it would wipe what is being read. Nor is any output
    one of the folders in ``inside`` (``inside_what``, e.g. the model folder being read) or inside one. Exit 2
    with one line otherwise, before anything is written. Give the outputs in order, ``option``'s own path
    first."""
    ins = [Path(p) for p in inputs if p is not None]
    outs = [Path(p) for p in outputs if p is not None]
    dirs = [Path(p) for p in inside if p is not None]
    for i, out in enumerate(outs):
        what = f"{option} {out}" if i == 0 else f"{out} (written with {option} {outs[0]})"
        for inp in ins:
            if _same_file(out, inp):
                fail(f"{what} is the input file {inp}: writing it would destroy the input (choose another "
                     "output path)")
        for d in dirs:
            if _within(out, d):
                where = "is" if _within(d, out) else "is inside"
                fail(f"{what} {where} {inside_what} {d}: writing it would overwrite what is being read "
                     "(choose an output path outside it)")


def progress(total: int | None = None) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]:>8}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err_console, transient=True, disable=not err_console.is_terminal)


def print_stats(stats: ReadStats, rejects: Path | None) -> None:
    msg = (f"read {stats.read} · accepted {stats.accepted} · rejected {stats.rejected}"
           f" · repaired {stats.repaired}")
    if stats.rejected and rejects:
        msg += f"  (reasons in {rejects})"
    err_console.print(msg, highlight=False, soft_wrap=True)
