"""``build_report``: graded results in, report.html and kpis/agents/warnings CSV out. No printing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import duckdb

from qa.chatrecords import load_chats
from qa.errors import InputError
from qa.io.write import write_csv
from qa.report import queries
from qa.report.html import render_html
from qa.report.load import load_results
from qa.rubric import KPIS, Rubric, load_rubric
from qa.safety import mask_value

log = logging.getLogger(__name__)
SEVERITY_RANK = {"red_line": 0, "major": 1, "minor": 2}
WARNING_COLUMNS = ("shop", "agent", "day", "id", "score", "band", "kinds", "reasons", "rating", "red_lines",
                   "evidence", "first_response_s", "max_reply_s", "slow_replies", "unanswered_runs", "file")


@dataclasses.dataclass
class Report:
    """What a report holds; ``files`` maps html/kpis/agents/warnings to the paths written."""

    inputs: list[Path]
    conversations: int
    profile: str | None                 # --profile, else None (each group judged by its records' profile)
    rubric: Rubric
    kpis: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    dimensions: dict[str, str]          # key → display name, rubric order first
    histogram: list[int]
    warnings: list[dict[str, Any]]
    notes: list[str]
    files: dict[str, Path] = dataclasses.field(default_factory=dict)
    generated: str = ""
    views: Any = None                   # qa.report.shop_views.ShopViews: alerts, topics, shop score, staffing


def build_report(inputs: list[Path], out: Path, *, rubric: Path | None = None,
                 profile: str | None = None, topics: bool = False, topics_backend: str = "auto",
                 shop_stats: Path | None = None) -> Report:
    """Read the results files, aggregate with DuckDB, and write the report files under ``out``.

    ``topics`` adds the question types (qa.topics), ``shop_stats`` (a shop-day CSV) the 服务体验分."""
    rub = load_rubric(rubric)
    if profile:
        rub.profile(profile)
    con = duckdb.connect()
    try:
        n = load_results(con, [Path(p) for p in inputs])
        if not n:
            raise InputError("no graded results in the input files", file=", ".join(map(str, inputs)))
        # every record read once more, in Python, for the shop views: each is checked there (types, score
        # 0–100: qa.grade.check_record) before any query or view below meets it; a bad one stops the report
        # with its file, line and field
        chats, _ = load_chats(inputs, rubric=rub)
        queries.prepare(con)
        notes: list[str] = []
        bare = sum(not c.has_messages for c in chats)
        if bare:
            notes.append(f"{bare} results were graded with --no-messages: the staffing table, the alerts' evidence "
                         "and the question types read the messages and leave those chats out (grade again without "
                         "--no-messages to have them)")
        dupes = queries.duplicate_count(con)
        if dupes:
            n -= dupes
            notes.append(f"{dupes} records repeat a conversation id already read (same id in two files or twice in "
                         "one): each id is counted once, its first record kept (docs/ingest.md)")
        kpis = _judge(queries.kpi_rows(con), rub, profile, notes)
        dim_rows = queries.dimension_rows(con)
        dims = _dimension_names(dim_rows, rub)
        agents = _agents(queries.agent_rows(con), dim_rows, queries.finding_rows(con), dims, rub)
        # everything a person reads is masked once, here: the HTML, the CSVs and the console (docs/security.md)
        report = Report(inputs=[Path(p) for p in inputs], conversations=n, profile=profile, rubric=rub,
                        kpis=mask_value(kpis), agents=mask_value(agents), dimensions=dims,
                        histogram=queries.histogram(con), warnings=mask_value(_warnings(queries.warning_rows(con), rub)),
                        notes=notes,
                        generated=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"))
    finally:
        con.close()
    from qa.report import shop_views

    total = next((r for r in kpis if r["level"] == "all"), {})
    report.views = shop_views.collect(report.inputs, rub, profile=profile, topics=topics,
                                      topics_backend=topics_backend, shop_stats=shop_stats,
                                      records_profile=total.get("profile"), chats=chats)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report.files = {"html": out / "report.html", "kpis": out / "kpis.csv", "agents": out / "agents.csv",
                    "warnings": out / "warnings.csv"}
    write_csv(report.files["kpis"], report.kpis)
    write_csv(report.files["agents"], report.agents)
    write_csv(report.files["warnings"], report.warnings, columns=WARNING_COLUMNS)  # header even when empty
    report.files.update(shop_views.write_csvs(report.views, out))
    report.files["html"].write_text(render_html(report), encoding="utf-8")
    return report


def _judge(rows: list[dict[str, Any]], rub: Rubric, profile: str | None, notes: list[str]) -> list[dict[str, Any]]:
    """Put each KPI beside the threshold of the group's profile (``--profile``, else its records')."""
    out, unknown = [], set()
    for r in rows:
        name = profile or r["records_profile"]
        prof = rub.profiles.get(name)
        if prof is None:
            unknown.add(name)
        row = {k: r[k] for k in ("level", "shop", "agent", "day")}
        row.update(profile=name, conversations=r["conversations"], human_conversations=r["human_conversations"],
                   reply_runs=int(r["reply_runs"] or 0), rated=r["rated"], mean_score=_round(r["mean_score"], 2),
                   failed=r["failed"])
        for kpi in KPIS:
            th = prof.kpis.get(kpi) if prof else None
            row[kpi] = _round(r[kpi], 1 if kpi == "avg_reply_s" else 4)
            row[f"{kpi}_threshold"] = str(th) if th else None
            row[f"{kpi}_pass"] = th.passes(r[kpi]) if th else None
        out.append(row)
    for name in sorted(unknown, key=str):
        msg = f"profile {name!r} of the records is not in rubric {rub.name!r}: no thresholds for it"
        log.warning(msg)
        notes.append(msg)
    return out


def _dimension_names(dim_rows: list[dict[str, Any]], rub: Rubric) -> dict[str, str]:
    names = {r["dim"]: r["name"] or r["dim"] for r in dim_rows}
    order = [k for k in rub.dimensions if k in names] + sorted(k for k in names if k not in rub.dimensions)
    return {k: names[k] for k in order}


def _agents(agents: list[dict[str, Any]], dim_rows: list[dict[str, Any]], finding_rows: list[dict[str, Any]],
            dims: dict[str, str], rub: Rubric) -> list[dict[str, Any]]:
    """Agents' score figures, mean level per dimension, two weakest dimensions and three most frequent findings."""
    by_agent: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in dim_rows:
        by_agent.setdefault((r["shop"], r["agent"]), []).append(r)
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in finding_rows:
        found.setdefault((r["shop"], r["agent"]), []).append(r)
    order = {k: i for i, k in enumerate(dims)}
    out = []
    for a in agents:
        key = (a["shop"], a["agent"])
        row = {**a, **{k: _round(a[k], 2) for k in ("mean_score", "median_score", "min_score", "max_score")}}
        means = {r["dim"]: r for r in by_agent.get(key, [])}
        for k in dims:
            row[f"dim_{k}"] = _round(means[k]["mean_level"], 2) if k in means else None
        weak = sorted((r for r in means.values() if r["mean_level"] is not None and r["mean_level"] < rub.best),
                      key=lambda r: (r["mean_level"], -(r["mean_lost"] or 0), order.get(r["dim"], 99)))[:2]
        row["weakest"] = "; ".join(f"{dims[r['dim']]} {r['mean_level']:.2f}" for r in weak)
        top = sorted(found.get(key, []), key=lambda r: (-r["conversations"], SEVERITY_RANK.get(r["severity"], 3),
                                                        r["name"]))[:3]
        row["top_findings"] = "; ".join(f"{r['name']} ×{r['conversations']}" for r in top)
        out.append(row)
    return out


def _warnings(rows: list[dict[str, Any]], rub: Rubric) -> list[dict[str, Any]]:
    """One row per conversation to follow up, with its kinds (red_line, rating, slow) and reasons in words."""
    t = rub.timing
    out = []
    for r in rows:
        kinds, reasons = [], []
        rating = " ".join(x for x in (f"{r['stars']}★" if r["stars"] is not None else "", r["label"] or "") if x)
        if r["red_line"]:
            kinds.append("red_line")
            reasons.append("红线: " + ("、".join(r["red_lines"]) or "failed"))
        if r["bad_rating"]:
            kinds.append("rating")
            reasons.append(f"差评: {rating}")
        slow = []
        if r["slow_first"]:
            slow.append(f"首响 {r['first_response_s']:.0f}s > {t.first_response_s:g}s"
                        if r["first_response_s"] is not None else "无人工回复")
        if r["slow_replies"]:
            slow.append(f"{r['slow_replies']} 次回复 > {t.reply_s:g}s (最长 {r['max_reply_s']:.0f}s)")
        if r["unanswered_runs"]:
            slow.append(f"{r['unanswered_runs']} 次未回复")
        if slow:
            kinds.append("slow")
            reasons += slow
        out.append({"shop": r["shop"], "agent": r["agent"], "day": r["day"], "id": r["id"],
                    "score": _round(r["score"], 2), "band": r["band"], "kinds": ";".join(kinds),
                    "reasons": "; ".join(reasons), "rating": rating or None, "red_lines": "、".join(r["red_lines"]),
                    "evidence": r["evidence"], "first_response_s": _round(r["first_response_s"], 1),
                    "max_reply_s": _round(r["max_reply_s"], 1), "slow_replies": r["slow_replies"],
                    "unanswered_runs": r["unanswered_runs"], "file": r["file"]})
    return out


def _round(v: float | None, digits: int) -> float | None:
    return None if v is None else round(float(v), digits)
