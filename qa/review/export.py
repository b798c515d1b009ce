"""Write a review sheet from sampled (or any) result records: XLSX for reviewers, CSV, or a read-only HTML view.

Everything exported is masked (``mask_record``) and every spreadsheet cell — in every sheet, the hidden one too —
is neutralised (``safe_cell``) and kept under Excel's 32,767-character limit (docs/security.md).
The masked records travel with the sheet so ``import-review`` can rebuild labelled conversations: in a hidden
``_qa`` sheet of the XLSX, in a sidecar ``<file>.records.json`` beside a CSV (and an HTML).

Each row carries a ``复核键`` (review key): a hash of the masked conversation (id, platform, shop, agent and
messages), stored in the record too. ``import-review`` finds a row's conversation by that key and checks the
id against it, so a review lands on exactly the chat that was shown even when two chats share an id.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from qa.errors import InputError
from qa.io.write import write_json
from qa.review.mask import clip_cell, mask_record, safe_cell
from qa.review.render import chat_segments, deductions_text, findings_text, model_text, pick_text, plain
from qa.review.records import model_dimensions
from qa.rubric import Rubric
from qa.safety import is_formula_like

FORMAT = "qa-review/1"
ID, REVIEWER, COMMENT, RULES, KEY = "会话ID", "评审人", "备注", "复核·违规规则", "复核键"
META_SHEET, REVIEW_SHEET = "_qa", "复核"
CHUNK = 30_000  # characters of record JSON per hidden cell (a cell holds at most 32,767)
FORMATS = ("xlsx", "csv", "html")


@dataclasses.dataclass(frozen=True)
class Column:
    header: str
    width: float
    kind: str = "info"   # info | chat | model | review


def review_meta(rubric: Rubric) -> dict[str, Any]:
    """What ``import-review`` needs to read the sheet back: the columns, the scale, the rule ids."""
    return {"format": FORMAT, "rubric": rubric.name, "scale": list(rubric.scale),
            "id": ID, "reviewer": REVIEWER, "comment": COMMENT, "rules": RULES, "key": KEY,
            "grades": {f"复核·{rubric.dimensions[k].name}": k for k in rubric.model_dimensions},
            "rule_ids": {r.name: rid for rid, r in rubric.rules.items()}}


def columns(rubric: Rubric, *, blind: bool = False) -> list[Column]:
    dims = [rubric.dimensions[k].name for k in rubric.model_dimensions]
    cols = [Column("序号", 6), Column(ID, 16)]
    if not blind:
        cols.append(Column("抽样原因", 18))
    cols += [Column("平台", 8), Column("店铺", 14), Column("客服", 10), Column("日期", 11)]
    if not blind:
        cols += [Column("总分", 7), Column("等级", 7), Column("红线", 6)]
    cols.append(Column("对话", 70, "chat"))
    if not blind:
        cols += [Column("规则发现", 40, "model")] + [Column(f"模型·{d}", 8, "model") for d in dims]
        cols.append(Column("模型说明", 30, "model"))
        cols.append(Column("扣分明细", 36, "model"))   # every point taken off: timing dimensions too
    cols += [Column(h, 9, "review") for h in review_meta(rubric)["grades"]]
    cols += [Column(RULES, 18, "review"), Column(REVIEWER, 10, "review"), Column(COMMENT, 30, "review")]
    cols.append(Column(KEY, 12))   # last: what import-review keys the row by; leave it as it is
    return cols


def review_key(rec: dict[str, Any]) -> str:
    """The review key of a masked record: 12 hex digits of a hash of what the reviewer is shown."""
    if rec.get("review_key"):
        return str(rec["review_key"])
    what = [rec.get(k) for k in ("id", "platform", "shop", "agent")]
    what.append([(m.get("role"), m.get("type"), m.get("text"), m.get("ts")) for m in rec.get("messages") or []])
    return hashlib.sha256(json.dumps(what, ensure_ascii=False, default=str).encode()).hexdigest()[:12]


def row_values(rec: dict[str, Any], index: int, rubric: Rubric) -> dict[str, Any]:
    """Header → plain value for one (masked) record; the review columns stay empty."""
    dims = model_dimensions(rec)
    row: dict[str, Any] = {
        "序号": rec.get("pick_rank") or index, ID: rec["id"], "抽样原因": pick_text(rec),
        "平台": rec.get("platform"), "店铺": rec.get("shop"), "客服": rec.get("agent"), "日期": rec.get("day"),
        "总分": rec.get("score"), "等级": rec.get("band"), "红线": "是" if rec.get("failed") else "",
        "对话": plain(chat_segments(rec)), "规则发现": findings_text(rec), "模型说明": model_text(rec),
        "扣分明细": deductions_text(rec),
        KEY: rec.get("review_key")}
    for k in rubric.model_dimensions:
        row[f"模型·{rubric.dimensions[k].name}"] = (dims.get(k) or {}).get("level")
    return row


@dataclasses.dataclass
class Exported:
    out: Path
    sidecar: Path | None
    conversations: int


def export_review(records: list[dict[str, Any]], out: Path, rubric: Rubric, *, fmt: str | None = None,
                  blind: bool = False) -> Exported:
    """Write ``out`` as xlsx, csv or html (default: from the suffix)."""
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown review format {fmt!r}: use {', '.join(FORMATS)}", file=str(out))
    masked = [mask_record(r) for r in records]
    masked = [{**m, "review_key": review_key(m)} for m in masked]
    meta = review_meta(rubric)
    cols = columns(rubric, blind=blind)
    out.parent.mkdir(parents=True, exist_ok=True)
    sidecar = None
    if fmt == "xlsx":
        from qa.review.xlsx import write_xlsx

        write_xlsx(out, masked, cols, meta, rubric)
    else:
        sidecar = out.with_name(out.name + ".records.json")
        write_json(sidecar, {**meta, "records": masked})
        if fmt == "csv":
            _write_csv(out, masked, cols, rubric)
        else:
            from qa.review.html import write_html

            write_html(out, masked, rubric, blind=blind)
    return Exported(out, sidecar, len(masked))


def _write_csv(out: Path, masked: list[dict[str, Any]], cols: list[Column], rubric: Rubric) -> None:
    with open(out, "w", encoding="utf-8-sig", newline="") as f:   # the BOM makes Excel read it as UTF-8
        w = csv.writer(f)
        w.writerow([c.header for c in cols])
        for i, rec in enumerate(masked, 1):
            row = row_values(rec, i, rubric)
            w.writerow([clip_cell(safe_cell("" if row.get(c.header) is None else row.get(c.header))) for c in cols])


def record_chunks(rec: dict[str, Any]) -> list[str]:
    """The record's JSON cut into cells; no cut lands before a character a spreadsheet reads as a formula
    start, so no cell needs neutralising and joining the cells gives the JSON back."""
    s = json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
    out, i = [], 0
    while i < len(s):
        j = min(i + CHUNK, len(s))
        while j < len(s) and j > i + 1 and is_formula_like(s[j:j + 256]):
            j -= 1
        out.append(s[i:j])
        i = j
    return out or [""]
