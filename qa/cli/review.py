"""``qa sample``, ``qa export-review``, ``qa import-review``: the human review loop over graded results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from qa.cli.common import RUBRIC, check_inputs, check_not_inputs, check_out, cli_errors, console, err_console, fail
from qa.io.write import JsonlWriter, write_json
from qa.review import (Exported, Imported, Sample, SampleSpec, UniqueResults, agreement_report, export_review,
                       import_reviews, read_unique)
from qa.review.records import first_records
from qa.review.sample import REASON_ZH, TARGETED, choose, summary
from qa.rubric import load_rubric

# review formats and the suffixes their files may have (the first: what to suggest)
REVIEW_SUFFIXES = {"xlsx": (".xlsx",), "csv": (".csv",), "html": (".html", ".htm")}

RESULTS = typer.Argument(..., help="Graded results from `qa grade`: .jsonl or .parquet")
SHOW_DUPLICATES = 20   # duplicates listed one a line; the rest are counted per file


def print_read(res: UniqueResults, kept: str) -> None:
    """The duplicates left out (file, line, where the id was first read), then ``read N · <kept> K · duplicate ids
    left out D`` with N = K + D, on stderr."""
    for d in res.duplicates[:SHOW_DUPLICATES]:
        err_console.print(f"[yellow]duplicate_id[/] {escape(str(d))}", highlight=False, soft_wrap=True)
    rest = res.duplicates[SHOW_DUPLICATES:]
    if rest:
        per_file: dict[str, int] = {}
        for d in rest:
            per_file[d.file] = per_file.get(d.file, 0) + 1
        where = ", ".join(f"{f}: {n}" for f, n in per_file.items())
        err_console.print(f"… {len(rest)} more duplicate ids left out ({escape(where)})", highlight=False,
                          soft_wrap=True)
    msg = f"read {res.read} · {kept} {len(res.records)} · duplicate ids left out {len(res.duplicates)}"
    if res.duplicates:
        msg += " (the first record of each id is kept)"
    err_console.print(msg, highlight=False, soft_wrap=True)


def sample_results(inputs: list[Path], out: Path, spec: SampleSpec, *,
                   rubric: Path | None = None) -> tuple[Sample, UniqueResults]:
    """Sample the result records of ``inputs`` (the first of each id: ``read_unique``) and write the picks (full
    record + pick fields) as JSONL; returns the sample and what was read."""
    rules = load_rubric(rubric)
    res = read_unique(inputs, keep=lambda r: summary(r, rules, spec.confidence_below))   # a summary, not the chat
    s = choose(res.records, spec)
    full = first_records(inputs, (p["id"] for p in s.records))   # read again: only the picks are held whole
    if len(full) < len(s.records):
        fail(f"{', '.join(map(str, inputs))}: changed while it was read (a picked conversation is gone); run again")
    s.records = [{**full[p["id"]], **p} for p in s.records]
    s.duplicates = len(res.duplicates)
    with JsonlWriter(out) as w:
        for rec in s.records:
            w.write(rec)
    return s, res


def sample_cli(
    inputs: list[Path] = RESULTS,
    n: int = typer.Option(200, "--n", min=1, help="How many conversations to pick"),
    seed: int = typer.Option(0, "--seed", help="Same seed and input → same sample"),
    per_agent: int = typer.Option(None, "--per-agent", min=1, help="At most this many picks per (shop, agent)"),
    confidence_below: float = typer.Option(0.5, "--confidence-below", min=0, max=1,
                                           help="Model confidence under which a conversation is a low-confidence pick"),
    out: Path = typer.Option(Path("qa_out/sample.jsonl"), "--out", "-o", help="Sample JSONL"),
    rubric: Path = RUBRIC,
) -> None:
    """Pick conversations for review: random control, red lines, model/rule disagreement, low confidence,
    then stratified by shop, agent and score band. Each pick says why (pick_reason, pick_detail)."""
    check_inputs(inputs)
    check_out(out)
    check_not_inputs(inputs, [out])
    with cli_errors(out):
        s, res = sample_results(inputs, out, SampleSpec(n=n, seed=seed, per_agent=per_agent,
                                                        confidence_below=confidence_below), rubric=rubric)
    t = Table(title=f"Sample of {len(s.records)} from {s.population} conversations", title_justify="left",
              header_style="bold")
    for c in ("pick_reason", "picked", "candidates"):
        t.add_column(c, justify="left" if c == "pick_reason" else "right")
    for reason in ("control", *TARGETED, "stratified"):
        t.add_row(f"{reason} {REASON_ZH[reason]}", str(s.by_reason[reason]), str(s.candidates.get(reason, "")))
    console.print(t)
    print_read(res, "conversations")
    agents = {(r.get("shop"), r.get("agent")) for r in s.records}
    msg = f"{len(agents)} agents"
    if len(s.records) < n:
        msg += f" · {n - len(s.records)} fewer than asked (population or --per-agent cap)"
    err_console.print(msg, highlight=False)
    console.print(f"wrote {out}", highlight=False)


def export_cli(
    inputs: list[Path] = typer.Argument(..., help="Sample from `qa sample` (or any graded results)"),
    fmt: str = typer.Option(None, "--format", "-f", help="xlsx | csv | html (default: from --out)"),
    out: Path = typer.Option(..., "--out", "-o", help="Review file to write"),
    blind: bool = typer.Option(False, "--blind", help="Leave out the model's grades, findings and pick reasons"),
    rubric: Path = RUBRIC,
) -> None:
    """A review sheet: XLSX with drop-downs for reviewers, CSV, or an HTML view. Personal data is masked.
    One row per conversation id: a later record with an id already read is left out and listed."""
    check_inputs(inputs)
    fmt = review_format(fmt, out)
    check_out(out)
    check_not_inputs(inputs, [out, *([] if fmt == "xlsx" else [out.with_name(out.name + ".records.json")])])
    with cli_errors(out):
        read = read_unique(inputs)
        res: Exported = export_review(read.records, out, load_rubric(rubric), fmt=fmt, blind=blind)
    print_read(read, "exported")
    extra = f" and {res.sidecar} (the conversations, for import-review)" if res.sidecar else ""
    console.print(f"wrote {res.out}{extra}: {res.conversations} conversations", highlight=False)


def review_format(fmt: str | None, out: Path) -> str:
    """The review format: ``--format`` when given — and then ``--out`` must carry its suffix, so that HTML is
    never written into a ``.xlsx`` — else the one ``--out``'s suffix names. Exit 2 with one line otherwise."""
    suffix = out.suffix.lower()
    if fmt is None:
        found = [f for f, sfx in REVIEW_SUFFIXES.items() if suffix in sfx]
        if not found:
            fail(f"--out {out}: cannot tell the review format from {suffix or 'a name without suffix'!r} (name it "
                 ".xlsx, .csv or .html, or give --format)")
        return found[0]
    fmt = fmt.lower()
    if fmt not in REVIEW_SUFFIXES:
        fail(f"--format {fmt!r}: choose {', '.join(REVIEW_SUFFIXES)}")
    if suffix not in REVIEW_SUFFIXES[fmt]:
        fail(f"--format {fmt} does not match --out {out} (a {suffix or 'name without suffix'!r} file): name it "
             f"*{REVIEW_SUFFIXES[fmt][0]}, or leave --format out to take the format from the suffix")
    return fmt


def import_to_files(files: list[Path], out: Path, report: Path, *, records: list[Path] = (),
                    rubric: Path | None = None, top: int = 20) -> tuple[Imported, dict[str, Any]]:
    """Import reviews, write the labelled JSONL (`qa train` input) and the agreement report JSON."""
    imp = import_reviews(files, load_rubric(rubric), records=records)
    with JsonlWriter(out) as w:
        for rec in imp.labelled():
            w.write(rec)
    rep = agreement_report(imp, top=top)
    write_json(report, rep)
    return imp, rep


def _fmt(x: Any) -> str:
    return "–" if x is None else f"{x:.2f}" if isinstance(x, float) else str(x)


def import_cli(
    files: list[Path] = typer.Argument(..., help="Filled-in review files (.xlsx / .csv); one per reviewer or a "
                                                 "评审人 column"),
    out: Path = typer.Option(Path("qa_out/labelled.jsonl"), "--out", "-o", help="Labelled JSONL for `qa train`"),
    report: Path = typer.Option(Path("qa_out/agreement.json"), "--report", help="Agreement report JSON"),
    records: list[Path] = typer.Option(None, "--records", help="Where the conversations are when a CSV has lost "
                                                             "its .records.json: the sidecar, the exported XLSX "
                                                             "or the sample JSONL"),
    top: int = typer.Option(20, "--top", min=1, help="Conversations to list for calibration"),
    rubric: Path = RUBRIC,
) -> None:
    """Read reviews back: validate every row, report agreement, write labelled data."""
    check_inputs([*files, *(records or [])])
    check_out(out)
    check_out(report)
    read = [*files, *(records or []), *(f.with_name(f.name + ".records.json") for f in files)]  # + CSV sidecars
    check_not_inputs(read, [out])
    check_not_inputs(read, [report], option="--report")
    with cli_errors(out):
        imp, rep = import_to_files(files, out, report, records=records or [], rubric=rubric, top=top)
    t = Table(title=f"Agreement · {len(rep['reviewers'])} reviewers · {rep['conversations']} conversations",
              title_justify="left", header_style="bold")
    for c in ("dimension", "n", "model exact", "within 1", "QWK", "pairs κ", "Fleiss κ", "α ordinal"):
        t.add_column(c, justify="left" if c == "dimension" else "right")
    for dim, d in rep["dimensions"].items():
        m, rv = d["model_vs_reviewers"]["level"], d["reviewers"]
        kappas = [p["kappa"] for p in rv["pairs"] if p["kappa"] is not None]
        t.add_row(dim, str(m["n"]), _fmt(m["exact"]), _fmt(m["within_one"]), _fmt(m["qwk"]),
                  _fmt(sum(kappas) / len(kappas) if kappas else None), _fmt(rv["fleiss_kappa"]),
                  _fmt(rv["krippendorff_alpha_ordinal"]))
    console.print(t)
    for p in imp.problems[:20]:
        err_console.print(f"[yellow]{escape(p.code)}[/] {escape(str(p))}", highlight=False)
    if len(imp.problems) > 20:
        err_console.print(f"… {len(imp.problems) - 20} more problems in {report}", highlight=False)
    for w in imp.warnings:
        err_console.print(f"[dim]{escape(w)}[/]", highlight=False)
    err_console.print(f"rows read {imp.read} · accepted {imp.accepted} · rejected {imp.rejected}", highlight=False)
    console.print(f"wrote {out} and {report}", highlight=False)

