"""服务体验分 (Douyin's service-experience score) per shop and day from a CSV of shop-day statistics.

Input columns (docs/metrics.md, "服务体验分"): ``shop``, ``day``, ``orders``, ``reviews_5`` … ``reviews_1``
(reviews by stars), ``complaints``, ``refunds``. Components, each 0–100:

- reviews: mean stars mapped linearly, 1★ → 0 and 5★ → 100: ``(mean − 1) / 4 × 100``;
- complaints: complaint rate = complaints / orders, ``100 × max(0, 1 − rate / complaint_cap)``;
- refunds: refund rate = refunds / orders, ``100 × max(0, 1 − rate / refund_cap)``.

Total = 50 % reviews + 30 % complaints + 20 % refunds. A component without data (no reviews, no orders) is
left empty and the total is the weighted mean of the others (weights renormalised). A ``shop`` row per shop
(day ``all``) sums the counts over its days first.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

from qa.errors import InputError
from qa.schema import local_day

WEIGHTS = {"reviews": 0.5, "complaints": 0.3, "refunds": 0.2}
COMPLAINT_CAP = 0.02      # a complaint rate of 2 % of orders or more scores 0
REFUND_CAP = 0.20         # a refund rate of 20 % of orders or more scores 0
STAR_COLUMNS = ("reviews_5", "reviews_4", "reviews_3", "reviews_2", "reviews_1")
COUNT_COLUMNS = ("orders", *STAR_COLUMNS, "complaints", "refunds")
COLUMNS = ("shop", "day", *COUNT_COLUMNS)
ALIASES = {"店铺": "shop", "日期": "day", "订单数": "orders", "投诉数": "complaints", "退款数": "refunds",
           "5星": "reviews_5", "4星": "reviews_4", "3星": "reviews_3", "2星": "reviews_2", "1星": "reviews_1"}


MAX_COUNT = 10**12        # more orders, reviews or refunds than this in one shop-day is a broken cell, not data
MAX_CELL = 1000           # a shop name, a day or a count longer than this is a broken cell


def read_stats(path: str | Path) -> list[dict[str, Any]]:
    """The CSV rows with counts as ints; a missing column, a bad count (not a number, negative, not finite,
    over ``MAX_COUNT``) or an unreadable file raises ``InputError`` naming the file, line and column.

    The encoding is detected as for chat CSVs (``qa.io.table.detect_encoding``): UTF-8 with or without BOM,
    UTF-16 with BOM, else GB18030 (what Chinese Excel writes)."""
    from qa.io.table import detect_encoding

    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", file=str(path))
    encoding = detect_encoding(path)
    reader = None
    try:
        with open(path, encoding=encoding, newline="") as f:
            reader = csv.DictReader(f)
            header = {h: ALIASES.get((h or "").strip(), (h or "").strip()) for h in reader.fieldnames or []}
            missing = [c for c in COLUMNS if c not in header.values()]
            if missing:
                raise InputError(f"column missing (a shop-stats CSV has {', '.join(COLUMNS)})", file=str(path),
                                 field=missing[0])
            rows = []
            width = len(reader.fieldnames or [])
            for raw in reader:
                line = reader.line_num
                if None in raw or None in raw.values():   # cells past the header, or a row cut short
                    n = width + len(raw.get(None) or ()) - sum(v is None for k, v in raw.items() if k is not None)
                    raise InputError(f"{n} cells where the header has {width} (a row cut short, or an unquoted "
                                     "comma inside a value such as 1,234)", file=str(path), line=line)
                r = {header[k]: (v or "").strip() for k, v in raw.items() if k in header}
                long = next((k for k, v in r.items() if len(v) > MAX_CELL), None)
                if long is not None:   # whatever csv's field limit is in this process (a library may raise it)
                    raise InputError(f"a cell too long ({len(r[long]):,} characters) for a shop-stats value",
                                     file=str(path), line=line, field=long)
                row: dict[str, Any] = {"shop": r["shop"] or "-",
                                       "day": _day(r["day"], file=str(path), line=line, field="day")}
                for c in COUNT_COLUMNS:
                    row[c] = _count(r[c], file=str(path), line=line, field=c)
                rows.append(row)
    except UnicodeError as e:
        raise InputError(f"cannot read this file as {encoding} text ({getattr(e, 'reason', e)}); save it as CSV in "
                         "UTF-8, UTF-16 with BOM or GB18030", file=str(path)) from None
    except csv.Error as e:      # a cell over the csv module's field limit (131,072 characters), a stray NUL …
        why = "a cell too long" if "field limit" in str(e) else str(e)
        raise InputError(f"not a readable CSV ({why})", file=str(path),
                         line=reader.line_num + 1 if reader is not None else None) from None
    return rows


def _day(text: str, **where: Any) -> str:
    """A day as YYYY-MM-DD (also as Excel or a Chinese back end writes one: 2026/3/2, 2026年3月2日); blank:
    ``unknown``. Anything else is refused: the day is printed and written as it is (an identifier, never masked)."""
    if not text:
        return "unknown"
    try:
        return local_day(text).isoformat()
    except ValueError:
        raise InputError(f"not a day: {_shown(text)!r} (YYYY-MM-DD)", **where) from None


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "…"


def _count(text: str, **where: Any) -> int:
    """A whole count; blank is 0, and thousands separators (1,234) are read as Excel writes them."""
    shown = _shown(text)
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.0*)?", text):
        text = text.replace(",", "")
    try:
        v = float(text or 0)
    except ValueError:
        raise InputError(f"not a count: {shown!r}", **where) from None
    if not math.isfinite(v) or v > MAX_COUNT:
        raise InputError(f"not a plausible count: {shown!r} (at most {MAX_COUNT:,})", **where)
    if v < 0:
        raise InputError(f"negative count {shown!r}", **where)
    if not v.is_integer():   # a rate pasted into a count column, or a broken cell: not cut down silently
        raise InputError(f"not a whole count: {shown!r}", **where)
    return int(v)


def _linear(rate: float, cap: float) -> float:
    return 100.0 * max(0.0, 1.0 - rate / cap)


def score_row(r: dict[str, Any], *, complaint_cap: float = COMPLAINT_CAP,
              refund_cap: float = REFUND_CAP) -> dict[str, Any]:
    """One shop-day (or shop) row of counts → its rates, three component scores and weighted total."""
    n_rev = sum(r[c] for c in STAR_COLUMNS)
    mean = sum(int(c[-1]) * r[c] for c in STAR_COLUMNS) / n_rev if n_rev else None
    orders = r["orders"]
    comp = {"reviews": None if mean is None else (mean - 1) / 4 * 100,
            "complaints": _linear(r["complaints"] / orders, complaint_cap) if orders else None,
            "refunds": _linear(r["refunds"] / orders, refund_cap) if orders else None}
    present = {k: v for k, v in comp.items() if v is not None}
    wsum = sum(WEIGHTS[k] for k in present)
    total = sum(WEIGHTS[k] * v for k, v in present.items()) / wsum if wsum else None
    return {"shop": r["shop"], "day": r["day"], "orders": orders, "reviews": n_rev,
            "mean_stars": None if mean is None else round(mean, 4),
            "complaint_rate": round(r["complaints"] / orders, 6) if orders else None,
            "refund_rate": round(r["refunds"] / orders, 6) if orders else None,
            "review_score": _round(comp["reviews"]), "complaint_score": _round(comp["complaints"]),
            "refund_score": _round(comp["refunds"]), "total": _round(total)}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def shop_scores(rows: list[dict[str, Any]], **caps: float) -> list[dict[str, Any]]:
    """Per shop and day, then one ``day = all`` row per shop over all its days; shops and days in order."""
    out = []
    for shop in sorted({r["shop"] for r in rows}):
        mine = sorted((r for r in rows if r["shop"] == shop), key=lambda r: r["day"])
        days = [{"level": "day", **score_row(r, **caps)} for r in mine]
        total = {"shop": shop, "day": "all", **{c: sum(r[c] for r in mine) for c in COUNT_COLUMNS}}
        out += [{"level": "shop", **score_row(total, **caps)}, *days]
    return out
