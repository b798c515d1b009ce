"""``qa check``: rule findings per conversation, printed and written as JSONL."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from qa.cli.common import COLUMNS, INPUTS, PLATFORM, RUBRIC, TZ, check_inputs, check_not_inputs, check_out, \
    cli_errors, console, print_stats
from qa.io import ReadStats, Reject, read_many
from qa.io.write import JsonlWriter
from qa.rubric import load_rubric
from qa.rules import Finding, RuleEngine
from qa.safety import mask_text
from qa.schema import Conversation

SEVERITY_STYLE = {"red_line": "bold red", "major": "yellow", "minor": "cyan"}


@dataclasses.dataclass
class CheckResult:
    stats: ReadStats
    by_rule: collections.Counter
    out: Path
    rejects: Path


def check(inputs: list[Path], out: Path, *, rubric: Path | None = None, columns: str | None = None,
          tz: str | None = None, platform: str | None = None,
          on_conversation: Callable[[Conversation, list[Finding]], None] | None = None) -> CheckResult:
    """Run every rule of the rubric over the inputs; one JSONL line per conversation in ``out``."""
    engine = RuleEngine(load_rubric(rubric))
    rejects_path = rejects_file(out)
    stats, by_rule = ReadStats(), collections.Counter()
    with JsonlWriter(out) as w, JsonlWriter(rejects_path) as rej:
        for item in read_many(inputs, stats, columns=columns, tz=tz, platform=platform, unique_ids=True):
            if isinstance(item, Reject):
                rej.write(item.to_record())
                continue
            findings = engine.check(item)
            by_rule.update({f.rule for f in findings})
            w.write({"id": item.id, "platform": item.platform, "shop": item.shop, "agent": item.agent_name,
                     "findings": [f.to_record() for f in findings]})
            if on_conversation:
                on_conversation(item, findings)
    return CheckResult(stats, by_rule, out, rejects_path)


def rejects_file(out: Path) -> Path:
    return out.with_name(out.stem + ".rejects.jsonl")


def _print(conv: Conversation, findings: list[Finding]) -> None:
    if not findings:
        return
    who = escape(mask_text(" ".join(x for x in (conv.platform, conv.shop, conv.agent_name) if x)))  # masked for people
    console.print(f"[bold]{escape(conv.id)}[/] [dim]{who}[/]")
    for f in findings:
        where = f"#{f.message}" if f.message is not None else "  "
        ev = f" 「{mask_text(f.evidence)[:40]}」" if f.evidence and f.span else ""   # masked whole, then cut
        console.print(f"  [{SEVERITY_STYLE[f.severity]}]{f.severity:8s}[/] {f.rule:28s} {where:>4s} "
                      f"{escape(mask_text(f.explanation + ev))}",
                      highlight=False)


def check_cli(
    inputs: list[Path] = INPUTS,
    out: Path = typer.Option(Path("qa_out/findings.jsonl"), "--out", "-o", help="Findings JSONL"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the summary"),
    rubric: Path = RUBRIC, columns: str = COLUMNS, tz: str = TZ, platform: str = PLATFORM,
) -> None:
    """Rule checks (red lines, etiquette, vague replies…) with evidence: message index and text span."""
    check_inputs(inputs, chats=True, columns=columns, tz=tz, platform=platform)
    check_out(out)
    check_not_inputs(inputs, [out, rejects_file(out)])
    with cli_errors(out):
        res = check(inputs, out, rubric=rubric, columns=columns, tz=tz, platform=platform,
                    on_conversation=None if quiet else _print)
    t = Table(title="Conversations with each finding", title_justify="left", header_style="bold")
    t.add_column("rule")
    t.add_column("severity")
    t.add_column("conversations", justify="right")
    rub = load_rubric(rubric)
    for rid, rule in rub.rules.items():
        t.add_row(f"{rid} {rule.name}", f"[{SEVERITY_STYLE[rule.severity]}]{rule.severity}[/]", str(res.by_rule[rid]))
    console.print(t)
    print_stats(res.stats, res.rejects)
    console.print(f"wrote {res.out}", highlight=False)
