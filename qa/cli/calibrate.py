"""``qa calibrate``: a model's grades shifted toward a shop's own reviews (``qa.model.offsets``)."""

from __future__ import annotations

from pathlib import Path

import typer

from qa.cli.common import PLATFORM, at_least, check_inputs, check_not_inputs, cli_errors, console, fail
from qa.cli.model_common import finite


def calibrate_cli(
    model: Path = typer.Argument(..., help="Model directory (e.g. models/default)"),
    data: list[Path] = typer.Argument(..., help="Your reviewed chats: JSONL with labels.reviews (qa import-review "
                                      "writes them), at least 20 per platform"),
    out: Path = typer.Option(..., "--out", "-o", help="New model directory: a copy of MODEL with the offsets"),
    platform: str = PLATFORM,
    prior: float = typer.Option(10.0, "--prior", help="Shrink each offset as if this many chats had a gap of 0"),
    min_chats: int = typer.Option(20, "--min-chats", help="A platform with fewer reviewed chats gets no offset"),
    min_flagged: int = typer.Option(10, "--min-flagged", help="A flag needs this many flagged reviewed chats of a "
                                    "platform for a threshold of its own"),
) -> None:
    """Fit a model to your QA leads' reviews: per platform, grade offsets and the model's flag thresholds."""
    from rich.markup import escape
    from rich.table import Table

    from qa.model.offsets import calibrate
    check_inputs([*data], platform=platform)
    at_least("--min-chats", min_chats, 1)
    at_least("--min-flagged", min_flagged, 1)
    finite("--prior", prior, 0)
    check_not_inputs(data, [out], inside=[model])
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"--out {out}: exists and is not an empty folder (pick a new folder for the calibrated model)")
    with cli_errors(out):
        rep = calibrate(model, [str(p) for p in data], out, platform=platform, prior=prior, min_chats=min_chats,
                        min_flagged=min_flagged)
    console.print(f"read {rep['read']} · used {rep['chats']} reviewed chats ("
                  + ", ".join(f"{p} {n}" for p, n in rep["platforms"].items())
                  + f") · skipped {rep['skipped']} (unreadable, or no grades)", highlight=False)
    for r in rep["skipped_first"][:5]:
        where = ":".join(str(x) for x in (r["file"], r["line"]) if x)
        console.print(f"  skipped {escape(where or r['id'] or '')}: {escape(r['reason'])}", highlight=False)
    if not rep["fitted"]:
        console.print(f"no platform has {min_chats} reviewed chats: no offsets fitted", highlight=False)
    t = Table(title="Grades on your reviewed chats: before → after (after: out of fold, 5 folds)",
              title_justify="left", header_style="bold")
    for c in ("dimension", "QWK", "mean gap (model − reviews)", *(f"offset {p}" for p in rep["fitted"])):
        t.add_column(c, justify="left" if c == "dimension" else "right")
    for d, m in rep["dimensions"].items():
        t.add_row(d, f"{m['before']['qwk']:.3f} → {m['after']['qwk']:.3f}",
                  f"{m['before']['gap']:+.2f} → {m['after']['gap']:+.2f}",
                  *(f"{rep['fitted'][p].get(d, 0):+.2f}" for p in rep["fitted"]))
    console.print(t)
    if rep["flags"]:
        plats = sorted({p for p in rep["flag_thresholds"]})
        t = Table(title="Rule flags (rules + model) on your reviewed chats: F1 before → after (out of fold)",
                  title_justify="left", header_style="bold")
        for c in ("flag", "flagged chats", "F1", *(f"threshold {p}" for p in plats), "kept"):
            t.add_column(c, justify="left" if c == "flag" else "right")
        for f, m in rep["flags"].items():
            t.add_row(f, str(m["flagged"]), f"{m['before']:.3f} → {m['after']:.3f}",
                      *(f"{rep['flag_thresholds'][p][f]:.2f}" if f in rep["flag_thresholds"][p] else "–"
                        for p in plats), "yes" if m.get("kept") else "no")
        console.print(t)
    console.print(f"wrote {out} (grade with: qa grade … --model {out})", highlight=False)
