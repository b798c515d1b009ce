"""The graded result: ``Grade`` (one conversation), its ``DimensionGrade`` rows and ``Deduction`` lines.

These frozen types are the one definition of the record ``qa grade`` writes (docs/results.md). ``to_record``
gives the JSON-ready dict written as one JSONL line; ``from_record`` reads one back and checks it. The
Parquet schema (``arrow_schema``) and the list of nested fields are derived from the dataclass fields, and
``read_results`` is the one reader that ``qa report``, ``qa sample`` and ``qa export-review`` go through.

Nested fields stay plain JSON values where they are someone else's shape: ``findings`` are
``qa.rules.Finding.to_record()`` dicts, ``timing`` is ``qa.timing.Timing.as_dict()``, ``rating`` and
``messages`` are the conversation's, as read. A record written with ``--no-messages`` has ``messages: null``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from qa.errors import InputError
from qa.schema import iso_day, iso_time
from qa.shape import FieldError, check, check_fields, check_list, check_map, check_range

BANDS = ((90, "优秀"), (75, "良好"), (60, "合格"), (None, "不合格"))


def band(score: float, failed: bool = False) -> str:
    """优秀 ≥ 90, 良好 ≥ 75, 合格 ≥ 60, else (or failed) 不合格."""
    return "不合格" if failed else next(name for lo, name in BANDS if lo is None or score >= lo)


def _nested(**kw) -> Any:
    return dataclasses.field(metadata={"nested": True}, **kw)


@dataclasses.dataclass(frozen=True)
class Deduction:
    """Points taken off one dimension (``dimension`` None: the red line that failed the conversation)."""

    dimension: str | None
    points: float
    reason: str
    source: str                         # "model" | "rule" | "timing"
    rule: str | None = None
    message: int | None = None          # message index of the evidence
    span: tuple[int, int] | None = None
    confidence: float | None = None

    def to_record(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["span"] = list(self.span) if self.span else None
        return d

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> Deduction:
        span = rec.get("span")
        return cls(rec.get("dimension"), float(rec["points"]), rec.get("reason", ""), rec.get("source", ""),
                   rec.get("rule"), rec.get("message"), tuple(span) if span else None, rec.get("confidence"))


@dataclasses.dataclass(frozen=True)
class DimensionGrade:
    """One weighted dimension: where it started (model level, timing band, top of the scale) and where the
    rules left it; ``points`` = weight × position of ``level`` on the scale (best = 1, worst = 0)."""

    name: str
    source: str                         # "model" | "timing" | "rules"
    weight: float
    level: int
    base_level: int
    points: float
    expected: float | None = None       # model: Σ p·level, moved by the stack / a calibration (probs are not)
    probs: Mapping[str, float] | None = None   # model: level (as a string) → probability
    confidence: float | None = None     # model: probability of base_level
    evidence: tuple[int, ...] = ()      # model: message indexes of the agent turns that weighed most
    value: float | None = None          # timing: the metric's value in seconds (None: not replied)

    def to_record(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "weight": self.weight, "level": self.level,
                "base_level": self.base_level, "expected": self.expected,
                "probs": dict(self.probs) if self.probs is not None else None, "confidence": self.confidence,
                "evidence": list(self.evidence), "value": self.value, "points": self.points}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> DimensionGrade:
        return cls(rec.get("name", ""), rec.get("source", ""), float(rec.get("weight") or 0), rec["level"],
                   rec.get("base_level", rec["level"]), float(rec.get("points") or 0), rec.get("expected"),
                   rec.get("probs"), rec.get("confidence"), tuple(rec.get("evidence") or ()), rec.get("value"))


@dataclasses.dataclass(frozen=True)
class Grade:
    """The graded record of one conversation (fields and meaning: docs/results.md)."""

    id: str
    platform: str | None
    shop: str | None
    agent: str | None
    customer: str | None
    day: str | None                     # YYYY-MM-DD in the shop's time zone
    profile: str | None
    rubric: str
    model: str | None
    score: float
    band: str
    failed: bool
    dimensions: Mapping[str, DimensionGrade] = _nested(default_factory=dict)
    findings: tuple[Mapping[str, Any], ...] = _nested(default=())
    deductions: tuple[Deduction, ...] = _nested(default=())
    timing: Mapping[str, Any] | None = _nested(default=None)
    rating: Mapping[str, Any] | None = _nested(default=None)
    messages: tuple[Mapping[str, Any], ...] | None = _nested(default=None)
    warnings: tuple[str, ...] = _nested(default=())
    # weighted dimensions left out of the score, and why: "no_model" (graded without the classifier),
    # "no_reply_turn" (no agent or bot message to grade), "no_customer" / "no_timestamps" (nothing to time)
    not_graded: Mapping[str, str] = _nested(default_factory=dict)
    # what graded it: {"rubric": sha256 prefix, "model": sha256 prefix | null, "profile": name | null}
    stamp: Mapping[str, Any] | None = _nested(default=None)

    def to_record(self) -> dict[str, Any]:
        rec = {f: getattr(self, f) for f in FLAT}
        rec.update(dimensions={k: d.to_record() for k, d in self.dimensions.items()},
                   findings=[dict(f) for f in self.findings], deductions=[d.to_record() for d in self.deductions],
                   timing=dict(self.timing) if self.timing is not None else None,
                   rating=dict(self.rating) if self.rating is not None else None,
                   messages=[dict(m) for m in self.messages] if self.messages is not None else None,
                   warnings=list(self.warnings), not_graded=dict(self.not_graded),
                   stamp=dict(self.stamp) if self.stamp is not None else None)
        return rec

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> Grade:
        """A record back as a ``Grade``; raises ``ValueError`` naming the field that is missing or wrong."""
        check_record(rec)
        try:
            dims = {k: DimensionGrade.from_record(v) for k, v in (rec.get("dimensions") or {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise FieldError("dimensions", f"not a dimension object ({e})") from None
        try:
            deds = tuple(Deduction.from_record(d) for d in rec.get("deductions") or ())
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise FieldError("deductions", f"not a deduction ({e})") from None
        score = rec["score"]
        msgs = rec.get("messages")
        return cls(str(rec["id"]), rec.get("platform"), rec.get("shop"), rec.get("agent"), rec.get("customer"),
                   rec.get("day"), rec.get("profile"), rec.get("rubric") or "", rec.get("model"), float(score),
                   rec.get("band") or band(float(score), bool(rec.get("failed"))), bool(rec.get("failed")),
                   dims, tuple(rec.get("findings") or ()), deds, rec.get("timing"), rec.get("rating"),
                   tuple(msgs) if isinstance(msgs, list) else None, tuple(rec.get("warnings") or ()),
                   dict(rec.get("not_graded") or {}), rec.get("stamp"))


# --- checking a record's shape --------------------------------------------------------------------------------
# Every reader of results records (``read_records``: qa sample, export-review, import-review, the report's
# chat views) checks each record here once, so no renderer meets a value of the wrong type. A field may be
# absent (null) unless required; when present it has the type below (qa.shape). Keys not listed are unchecked.

_TOP = {"id": "str|int", "platform": "str|null", "shop": "str|null", "agent": "str|null",
        "customer": "str|null", "day": "str|null", "profile": "str|null", "rubric": "str|null",
        "model": "str|null", "score": "num", "band": "str|null", "failed": "bool|null",
        "review_key": "str|null", "pick_reason": "str|null", "pick_detail": "str|null",
        "pick_rank": "int|null", "pick_seed": "int|null"}
_DIMENSION = {"name": "str|null", "source": "str|null", "weight": "num|null", "level": "int",
              "base_level": "int|null", "points": "num|null", "expected": "num|null", "confidence": "num|null",
              "value": "num|null"}
_FINDING = {"rule": "str|null", "name": "str|null", "severity": "str|null", "explanation": "str|null",
            "message": "int|null", "span": "span|null", "evidence": "str|null", "source": "str|null"}
_DEDUCTION = {"dimension": "str|null", "points": "num", "reason": "str|null", "source": "str|null",
              "rule": "str|null", "message": "int|null", "span": "span|null", "confidence": "num|null"}
_MESSAGE = {"role": "str|null", "type": "str|null", "text": "str|null", "ts": "str|null", "event": "str|null"}
_RATING = {"stars": "num|null", "label": "str|null"}
_TIMING = {"human_start": "str|null", "human_start_source": "str|null", "human_service": "bool|null",
           "first_response_s": "num|null", "first_response_wall_s": "num|null", "first_response_ok": "bool|null",
           "reply_runs": "int|null", "replies_ok": "int|null", "unanswered_runs": "int|null",
           "avg_reply_s": "num|null", "responded_24h": "bool|null", "handle_s": "num|null",
           "reply_speed_level": "int|null", "chat_time_level": "int|null", "bot_only": "bool|null",
           "night_messages": "int|null"}
SCORE_RANGE = (0.0, 100.0)
STARS_RANGE = (1, 5)


def check_record(rec: Any, *, required: Iterable[str] | None = None) -> None:
    """Raise ``FieldError`` (``.field``: the path, e.g. ``findings[0].span``) at the first field of a
    result record that is missing or has the wrong type or an impossible value (docs/results.md).

    ``required`` must be present; ``score`` is a finite number from 0 to 100 and ``rating.stars`` whole stars
    from 1 to 5 when given; ``day`` a YYYY-MM-DD date and every time (``messages[].ts``, ``timing.human_start``) ISO-8601,
    both within 1970–2100 (``qa.schema.iso_day`` / ``iso_time``, the ingest range): a record outside those was
    not written by ``qa grade`` and is refused, not clamped."""
    if not isinstance(rec, Mapping):
        raise ValueError("a result record is a JSON object")
    for f in REQUIRED if required is None else required:
        if rec.get(f) in (None, ""):
            raise FieldError(f, "required field is missing")
    for f, types in _TOP.items():
        if rec.get(f) is not None:
            check(f, rec[f], types)
    if rec.get("score") is not None:
        check_range("score", rec["score"], *SCORE_RANGE)
    _check_time("day", rec.get("day"), iso_day)
    check("dimensions", rec.get("dimensions"), "obj|null")
    for k, d in (rec.get("dimensions") or {}).items():
        check_fields(f"dimensions.{k}", d, _DIMENSION)
        check_map(f"dimensions.{k}.probs", d.get("probs"), "num")
        check_list(f"dimensions.{k}.evidence", d.get("evidence"), "int")
    check_list("findings", rec.get("findings"), _FINDING)
    check_list("deductions", rec.get("deductions"), _DEDUCTION)
    if rec.get("timing") is not None:
        t = rec["timing"]
        check_fields("timing", t, _TIMING)
        check_list("timing.reply_delays_s", t.get("reply_delays_s"), "num")
        _check_time("timing.human_start", t.get("human_start"), iso_time)
        for k in ("reply_runs", "replies_ok", "unanswered_runs", "night_messages"):
            if (t.get(k) or 0) < 0:
                raise FieldError(f"timing.{k}", f"must be 0 or more, not {t[k]}")
        if (t.get("replies_ok") or 0) > len(t.get("reply_delays_s") or ()):
            raise FieldError("timing.replies_ok", f"is {t['replies_ok']} but reply_delays_s holds only "
                             f"{len(t.get('reply_delays_s') or ())} replies")
    if rec.get("rating") is not None:
        check_fields("rating", rec["rating"], _RATING)
        if rec["rating"].get("stars") is not None:
            check_range("rating.stars", rec["rating"]["stars"], *STARS_RANGE)
            if not float(rec["rating"]["stars"]).is_integer():   # as on ingest: a rating is whole stars
                raise FieldError("rating.stars", f"must be whole stars (1–5), not {rec['rating']['stars']}")
    check_list("messages", rec.get("messages"), _MESSAGE)
    for i, m in enumerate(rec.get("messages") or ()):
        _check_time(f"messages[{i}].ts", m.get("ts"), iso_time)
    check_list("warnings", rec.get("warnings"), "str")
    check_list("pick_flags", rec.get("pick_flags"), "str")
    check_map("not_graded", rec.get("not_graded"), "str")
    check("stamp", rec.get("stamp"), "obj|null")


def _check_time(path: str, v: Any, parse) -> None:
    """``v`` (a string, type-checked already; empty reads as missing, as on ingest) parses with ``parse`` and lies
    in range, else ``FieldError``."""
    if v not in (None, ""):
        try:
            parse(v)
        except ValueError as e:
            raise FieldError(path, str(e)) from None


FIELDS = tuple(f.name for f in dataclasses.fields(Grade))
NESTED = tuple(f.name for f in dataclasses.fields(Grade) if f.metadata.get("nested"))
FLAT = tuple(f for f in FIELDS if f not in NESTED)
REQUIRED = ("id", "score")
_ARROW = {"str": "string", "float": "float64", "bool": "bool_"}


def arrow_schema():
    """The Parquet schema of a results file: flat fields typed, nested ones as JSON strings."""
    import pyarrow as pa

    cols = []
    for f in dataclasses.fields(Grade):
        if f.metadata.get("nested"):
            cols.append((f.name, pa.string()))
        else:
            base = str(f.type).split("|")[0].strip()
            cols.append((f.name, getattr(pa, _ARROW[base])()))
    return pa.schema(cols)


def dumps(rec: Any) -> str:
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


# --- reading results files -----------------------------------------------------------------------------------

def read_records(paths: Iterable[str | Path], *, need_messages: bool = False) -> Iterator[dict[str, Any]]:
    """Every result record of every file (JSONL or Parquet), in file order, checked against ``Grade``;
    nested Parquet columns are decoded. Raises ``InputError`` naming the file, line and field."""
    for path in paths:
        for _, rec in numbered_records(path, need_messages=need_messages):
            yield rec


def numbered_records(path: str | Path, *, need_messages: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, record) for every record of one file (the row for Parquet), each checked as ``read_records``."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", file=str(path))
    rows = _parquet_rows(path) if path.suffix.lower() in (".parquet", ".pq") else _jsonl_rows(path)
    for line, rec in rows:
        try:
            Grade.from_record(rec)
        except FieldError as e:
            raise InputError(e.message, file=str(path), line=line, field=e.field) from None
        except ValueError as e:
            raise InputError(str(e), file=str(path), line=line) from None
        if need_messages and not isinstance(rec.get("messages"), list):
            raise InputError("a result record carries its messages (graded without --no-messages; "
                             "docs/results.md)", file=str(path), line=line, field="messages")
        rec["id"] = str(rec["id"])
        yield line, rec


def read_results(paths: Iterable[str | Path], *, need_messages: bool = False) -> Iterator[Grade]:
    """Every result of every file as a ``Grade``."""
    for rec in read_records(paths, need_messages=need_messages):
        yield Grade.from_record(rec)


_UNDECODED = re.compile("[\udc80-\udcff]")


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:   # bad bytes: found per line
        for ln, line in enumerate(f, 1):
            bad = _UNDECODED.search(line)
            if bad:
                raise InputError(f"not UTF-8 text (character {bad.start() + 1} of the line)", file=str(path),
                                 line=ln)
            if not line.strip():
                continue
            try:
                yield ln, json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"bad JSON: {e.msg} (column {e.colno})", file=str(path), line=ln) from None
            except RecursionError:
                raise InputError("bad JSON: nested too deeply", file=str(path), line=ln) from None


def _parquet_rows(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 — any unreadable file is the input's fault
        raise InputError(f"cannot read Parquet: {e}", file=str(path)) from None
    i = 0
    for batch in pf.iter_batches():
        for rec in batch.to_pylist():
            i += 1
            for k in NESTED + ("pick_flags",):
                if isinstance(rec.get(k), str):
                    try:
                        rec[k] = json.loads(rec[k])
                    except json.JSONDecodeError:
                        raise InputError("not a JSON string", file=str(path), line=i, field=k) from None
            yield i, rec
