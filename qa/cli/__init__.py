"""The ``qa`` command line: one module per command, each a thin typer wrapper over a library function."""

from __future__ import annotations

import logging

import typer
from rich.logging import RichHandler

from qa.cli import check, metrics, report, rubric
from qa.cli import evaluate, grade, predict, pretrain, review, train

app = typer.Typer(help="Grade Chinese e-commerce customer-service chats.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
app.command("grade")(grade.grade_cli)
app.command("metrics")(metrics.metrics_cli)
app.command("check")(check.check_cli)
app.command("sample")(review.sample_cli)
app.command("export-review")(review.export_cli)
app.command("import-review")(review.import_cli)
app.command("report")(report.report_cli)
app.command("pretrain")(pretrain.pretrain_cli)
app.command("train")(train.train_cli)
app.command("eval")(evaluate.eval_cli)
app.command("predict")(predict.predict_cli)
app.add_typer(rubric.app, name="rubric")


@app.callback()
def _root() -> None:
    """qa: timing KPIs, rule checks and rubric grades for customer-service chats."""


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(show_time=False, show_path=False)])
    import sys

    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    click_exception = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    try:
        rc = app(standalone_mode=False)
    except usage_error as e:  # a bad option value or argument: one line, exit 2 (qa.cli.common.fail)
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
    sys.exit(rc if isinstance(rc, int) else 0)
