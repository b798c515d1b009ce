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
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from qa.errors import InputError

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
    expected: float | None = None       # model: Σ p·level
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
    # "no_reply_turn" (no agent or bot message to grade), "no_customer" (nothing to time)
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
        if not isinstance(rec, Mapping):
            raise ValueError("a result record is a JSON object")
        for f in REQUIRED:
            if rec.get(f) in (None, ""):
                raise _FieldError(f, "required field is missing")
        try:
            dims = {k: DimensionGrade.from_record(v) for k, v in (rec.get("dimensions") or {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise _FieldError("dimensions", f"not a dimension object ({e})") from None
        try:
            deds = tuple(Deduction.from_record(d) for d in rec.get("deductions") or ())
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise _FieldError("deductions", f"not a deduction ({e})") from None
        score = rec["score"]
        if not isinstance(score, (int, float)) or isinstance(score, bool):
            raise _FieldError("score", "must be a number")
        msgs = rec.get("messages")
        return cls(str(rec["id"]), rec.get("platform"), rec.get("shop"), rec.get("agent"), rec.get("customer"),
                   rec.get("day"), rec.get("profile"), rec.get("rubric") or "", rec.get("model"), float(score),
                   rec.get("band") or band(float(score), bool(rec.get("failed"))), bool(rec.get("failed")),
                   dims, tuple(rec.get("findings") or ()), deds, rec.get("timing"), rec.get("rating"),
                   tuple(msgs) if isinstance(msgs, list) else None, tuple(rec.get("warnings") or ()),
                   dict(rec.get("not_graded") or {}), rec.get("stamp"))


class _FieldError(ValueError):
    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


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
    for path in map(Path, paths):
        if not path.is_file():
            raise InputError("no such file", file=str(path))
        rows = _parquet_rows(path) if path.suffix.lower() in (".parquet", ".pq") else _jsonl_rows(path)
        for line, rec in rows:
            try:
                Grade.from_record(rec)
            except _FieldError as e:
                raise InputError(e.message, file=str(path), line=line, field=e.field) from None
            except ValueError as e:
                raise InputError(str(e), file=str(path), line=line) from None
            if need_messages and not isinstance(rec.get("messages"), list):
                raise InputError("a result record carries its messages (graded without --no-messages; "
                                 "docs/results.md)", file=str(path), line=line, field="messages")
            rec["id"] = str(rec["id"])
            yield rec


def read_results(paths: Iterable[str | Path], *, need_messages: bool = False) -> Iterator[Grade]:
    """Every result of every file as a ``Grade``."""
    for rec in read_records(paths, need_messages=need_messages):
        yield Grade.from_record(rec)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, encoding="utf-8-sig") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield ln, json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"bad JSON: {e.msg} (column {e.colno})", file=str(path), line=ln) from None


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
