"""``qa grade``: bulk grading — every conversation scored 0–100 and explained, in JSONL or Parquet."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from qa.cli.common import COLUMNS, INPUTS, PLATFORM, RUBRIC, TZ, check_inputs, check_not_inputs, check_out, \
    cli_errors, console, fail, print_stats, progress

MAX_BATCH_SIZE = 100_000
OBJECT_STORE_MIN_MB = 75   # Ray refuses an object store under 75 MiB
MAX_RAY_WORKERS = 1024          # Ray actors may live on a cluster: bounded, not by this machine's CPUs


def max_workers(engine: str, address: str | None = None) -> int:
    """The most worker processes ``--workers`` may ask for: 4 per CPU here (grading is CPU-bound; more only
    queue up and each costs a model load), also for Ray without ``address`` (it starts here, one actor per worker,
    each loading the model), or ``MAX_RAY_WORKERS`` actors on a cluster."""
    return MAX_RAY_WORKERS if engine == "ray" and address else 4 * (os.cpu_count() or 1)


def grade_outputs(out: Path, engine: str = "local") -> list[Path]:
    """``out`` and the files written beside it: ``<stem>.rejects.jsonl`` and, for Parquet, the journal."""
    stem = out.name[: -len(out.suffix)] if out.suffix in (".jsonl", ".parquet") else out.name
    files = [out, out.with_name(stem + ".rejects.jsonl")]
    if out.suffix == ".parquet":
        files.append(out.with_name(out.name + (".parts" if engine == "ray" else ".partial.jsonl")))
    return files


def _count_lines(paths: list[Path]) -> int | None:
    """Conversations to expect (for the ETA) when every input is JSONL; None otherwise."""
    if not all(p.suffix == ".jsonl" for p in paths):
        return None
    n = 0
    for p in paths:
        with open(p, "rb") as f:
            n += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return n


def preflight(settings) -> None:
    """Everything that can be checked before workers start, cheaply: the rubric, the profile, and that the
    model's dimensions and levels are the rubric's (from its config, without loading torch)."""
    from qa.grader import check_model_dir
    from qa.rubric import load_rubric
    rub = load_rubric(settings.rubric)
    if settings.profile:
        rub.profile(settings.profile)
    if settings.model != "none" and rub.model_dimensions:
        check_model_dir(settings.model, rub)


def grade_cli(
    inputs: list[Path] = INPUTS,
    out: Path = typer.Option(None, "--out", "-o", help="results.jsonl or results.parquet (--engine ray: a folder "
                             "of Parquet parts, or one .parquet file) \\[default: qa_out/results.jsonl; ray: "
                             "qa_out/results]"),
    profile: str = typer.Option(None, "--profile", "-p", help="Profile of the rubric for every conversation, e.g. "
                                "douyin, kuaishou, tiktok, taobao (default: each conversation's platform's profile, "
                                "else the rubric's default_profile)"),
    model: str = typer.Option(None, "--model", "-m", help="Model directory (default: the shipped default model); "
                              "'none' grades without the classifier"),
    rubric: Path = RUBRIC,
    workers: int = typer.Option(min(2, os.cpu_count() or 1), help="Worker processes, at most 4 per CPU and never "
                                "more than there are batches (--engine ray: grading actors, as many, or at most 1024 "
                                "with --address)"),
    engine: str = typer.Option("local", "--engine", help="local: worker processes on this machine; ray: Ray Data "
                               "actors, on this machine or a cluster (needs pip install 'qa\\[ray]'; docs/scale.md)"),
    address: str = typer.Option(None, "--address", help="--engine ray: the cluster to join (auto, or "
                                "ray://HOST:10001); default: start Ray here with --workers CPUs"),
    object_store_mb: int = typer.Option(None, "--object-store-mb", help="--engine ray without --address: Ray's "
                                        "object-store memory in MB (default: Ray's, 30 % of RAM)"),
    batch_size: int = typer.Option(64, help=f"Conversations per model batch (1 to {MAX_BATCH_SIZE:,})"),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run: keep what it wrote, grade the rest "
                                "(refused when the rubric, model, profile, --platform, --tz or --columns differ)"),
    messages: bool = typer.Option(True, "--messages/--no-messages", help="Keep each conversation's messages in "
                                  "its record (needed by sample/export-review; --no-messages keeps results small)"),
    columns: str = COLUMNS, tz: str = TZ, platform: str = PLATFORM,
) -> None:
    """Grade every conversation: model dimensions, rule findings and timing → score, band and deductions."""
    from qa.grader import GradeSettings
    from qa.io.profiles import profile_stamp
    if engine not in ("local", "ray"):
        raise typer.BadParameter("must be local or ray", param_hint="--engine")
    if engine == "local" and (address or object_store_mb):
        raise typer.BadParameter("only with --engine ray", param_hint="--address" if address else "--object-store-mb")
    if address and object_store_mb:
        raise typer.BadParameter("sets the store of the Ray this run starts; with --address the cluster's own applies "
                                 "(ray start --object-store-memory)", param_hint="--object-store-mb")
    if out is None:
        out = Path("qa_out/results" if engine == "ray" else "qa_out/results.jsonl")
    if out.name in ("", ".."):                          # `.`: a folder with no name to put the rejects file beside
        out = out.resolve()
    check_inputs(inputs, chats=True, columns=columns, tz=tz, platform=platform)   # exit 2, one line (qa.cli.common)
    if engine == "ray" and out.suffix not in ("", ".parquet"):
        raise typer.BadParameter("the Ray engine writes Parquet: a folder (a name without a dot, e.g. "
                                 "out/2026-12-04) or a .parquet file", param_hint="--out")
    check_out(out, folder=engine == "ray" and out.suffix == "")
    from qa.resources import default_model_dir
    check_not_inputs(inputs, grade_outputs(out, engine),
                     inside=[None if model == "none" else Path(model) if model else default_model_dir()])
    most = max_workers(engine, address)
    if not 1 <= workers <= most:
        why = ("actors on the cluster" if address else f"4 per CPU; this machine has {os.cpu_count() or 1}"
               + ("; without --address Ray starts here, each actor loading the model" if engine == "ray" else ""))
        fail(f"--workers {workers}: must be from 1 to {most} ({why})")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        fail(f"--batch-size {batch_size}: must be from 1 to {MAX_BATCH_SIZE:,}")
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 if hasattr(os, "sysconf") else None
    if object_store_mb is not None and not OBJECT_STORE_MIN_MB <= object_store_mb <= (memory_mb or object_store_mb):
        most = f" to this machine's memory ({memory_mb:,} MB)" if memory_mb else " up"
        fail(f"--object-store-mb {object_store_mb}: must be from {OBJECT_STORE_MIN_MB} (Ray's least){most}")
    with cli_errors(out):
        try:
            read = tuple((k, str(v)) for k, v in (("platform", platform), ("tz", tz),
                                                   ("columns", columns and profile_stamp(columns))) if v)
            settings = GradeSettings(rubric=str(rubric) if rubric else None, profile=profile, model=model,
                                     batch_size=batch_size, messages=messages, read=read)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--batch-size") from None
        preflight(settings)
        if engine == "ray":
            from qa.ray_engine import grade_files_ray
            run = grade_files_ray(inputs, out, settings, workers=workers, address=address, resume=resume,
                                  columns=columns, tz=tz, platform=platform,
                                  object_store_memory=object_store_mb * 2**20 if object_store_mb else None)
        else:
            run = _grade_local(inputs, out, settings, workers, resume, columns, tz, platform)
    _summary(run)


def _grade_local(inputs, out, settings, workers, resume, columns, tz, platform):
    from qa.batch import grade_files
    total = _count_lines(inputs)
    with progress(total) as bar:
        task = bar.add_task("grade", total=total, rate="")

        def advance(n: int) -> None:
            bar.advance(task, n)
            t = bar.tasks[0]
            if t.elapsed:
                bar.update(task, rate=f"{t.completed / t.elapsed:,.0f}/s")
        return grade_files(inputs, out, settings, workers=workers, resume=resume, columns=columns, tz=tz,
                           platform=platform, on_batch=advance)


def _summary(run) -> None:
    from rich.table import Table

    print_stats(run.stats, run.rejects)
    t = Table(title="Time per stage (seconds, summed over workers)", title_justify="left", header_style="bold")
    for k in run.timing:
        t.add_column(k, justify="right")
    t.add_row(*(f"{v:.1f}" for v in run.timing.values()))
    console.print(t)
    rate = run.graded / run.seconds if run.seconds else 0
    console.print(f"graded {run.graded} conversations in {run.seconds:.1f} s ({rate:,.0f}/s)"
                  + (f", {run.resumed} kept from the earlier run" if run.resumed else "")
                  + f"; wrote {run.out}", highlight=False)
