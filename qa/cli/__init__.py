"""The ``qa`` command line: one module per command, each a thin typer wrapper over a library function.

Commands load lazily: ``qa --help`` lists them from their modules' source (their docstrings, read with
``ast``) and imports none of them; ``qa CMD ...`` (and ``qa CMD --help``) imports only that command's module,
and the heavy libraries (torch, transformers, spaCy, DuckDB) are imported inside the functions that use them.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import logging

import click
import typer
from typer.core import TyperGroup

# command → (module, attribute: a command function or a typer app)
COMMANDS: dict[str, tuple[str, str]] = {
    "grade": ("qa.cli.grade", "grade_cli"),
    "metrics": ("qa.cli.metrics", "metrics_cli"),
    "check": ("qa.cli.check", "check_cli"),
    "sample": ("qa.cli.review", "sample_cli"),
    "export-review": ("qa.cli.review", "export_cli"),
    "import-review": ("qa.cli.review", "import_cli"),
    "report": ("qa.cli.report", "report_cli"),
    "pretrain": ("qa.cli.pretrain", "pretrain_cli"),
    "train": ("qa.cli.train", "train_cli"),
    "eval": ("qa.cli.evaluate", "eval_cli"),
    "calibrate": ("qa.cli.calibrate", "calibrate_cli"),
    "predict": ("qa.cli.predict", "predict_cli"),
    "rubric": ("qa.cli.rubric", "app"),
    "topics": ("qa.cli.topics", "topics_cli"),
    "shop-score": ("qa.cli.shop_score", "shop_score_cli"),
}


@functools.lru_cache(maxsize=None)
def command_help(name: str) -> str:
    """A command's help as its module declares it (function docstring or ``typer.Typer(help=...)``), read from
    the source without importing the module."""
    mod, attr = COMMANDS[name]
    try:
        spec = importlib.util.find_spec(mod)
        tree = ast.parse(open(spec.origin, encoding="utf-8").read())
    except (AttributeError, ImportError, OSError, SyntaxError, TypeError):
        return ""                                   # listed anyway; running it says what is wrong
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attr:
            return ast.get_docstring(node) or ""
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == attr for t in node.targets):
            for kw in getattr(node.value, "keywords", []):
                if kw.arg == "help" and isinstance(kw.value, ast.Constant):
                    return kw.value.value
    return ""


@functools.lru_cache(maxsize=None)
def load_command(name: str) -> click.Command:
    """The click command of ``name``, importing its module."""
    mod, attr = COMMANDS[name]
    obj = getattr(importlib.import_module(mod), attr)
    if isinstance(obj, typer.Typer):
        cmd = typer.main.get_command(obj)
        cmd.name = name
        return cmd
    one = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    one.command(name)(obj)
    cmd = typer.main.get_command(one)
    cmd.name = name
    return cmd


class LazyGroup(TyperGroup):
    """A group whose commands are imported only when one runs; the listing in ``--help`` uses stubs."""

    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        if self._listing:
            text = command_help(name)
            return click.Command(name, help=text, short_help=" ".join(text.split("\n\n")[0].split()))
        return load_command(name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(cls=LazyGroup, help="Grade Chinese e-commerce customer-service chats.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _root() -> None:
    """qa: timing KPIs, rule checks and rubric grades for customer-service chats."""


def main() -> None:
    from rich.logging import RichHandler
    logging.basicConfig(level=logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(show_time=False, show_path=False)])
    import sys

    # click's usage errors (a bad option value, an unknown command) as one line and exit 2, not a box
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    click_exception = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    try:
        rc = app(standalone_mode=False)
    except usage_error as e:
        if type(e).__name__ == "NoArgsIsHelpError":
            e.show()
            sys.exit(e.exit_code)
        from rich.markup import escape

        from qa.cli.common import err_console

        cmd = e.ctx.command_path if e.ctx else "qa"
        err_console.print(f"[bold red]error:[/] {escape(' '.join(e.format_message().split()))} "
                          f"(see {escape(cmd)} --help)", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click_exception as e:
        e.show()
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as e:   # DuckDB turns Ctrl-C into its own exception (qa report): an interrupt all the same
        if type(e).__name__ == "InterruptException" or (isinstance(e, RuntimeError) and str(e) == "Query interrupted"):
            sys.exit(130)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)
