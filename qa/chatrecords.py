"""Light chat records for the shop-level views (topics, alerts, staffing): read from graded results
(docs/results.md, which carry the messages) or from raw chat inputs (graded for timing on the fly).

A ``Chat`` keeps only what those views use: ids, shop/agent/day, score and rating, the timing flags
(service-hours figures from ``qa.timing``), and the messages as ``(role, type, text, ts)``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from qa.errors import InputError

RESULT_SUFFIXES = (".parquet", ".pq")


@dataclasses.dataclass(frozen=True, slots=True)
class Msg:
    role: str
    type: str
    text: str
    ts: dt.datetime | None


@dataclasses.dataclass(slots=True)
class Chat:
    id: str
    shop: str
    agent: str
    day: str
    messages: list[Msg]
    score: float | None = None          # None for raw inputs (not graded)
    failed: bool = False
    stars: int | None = None
    label: str | None = None
    human_service: bool = False
    first_response_ok: bool | None = None
    first_response_s: float | None = None
    slow_replies: int = 0               # answered reply runs over the rubric's reply_s
    unanswered_runs: int = 0
    file: str = ""
    has_messages: bool = True           # False for a result graded with --no-messages

    @property
    def review(self) -> str | None:
        """满意 / 一般 / 失望: the label first, else the stars (``qa.schema.review_label``)."""
        from qa.schema import review_label
        return review_label(self.stars, self.label)

    @property
    def satisfied(self) -> bool | None:
        from qa.schema import satisfied
        return satisfied(self.stars, self.label)

    @property
    def dissatisfied(self) -> bool:
        from qa.schema import dissatisfied
        return bool(dissatisfied(self.stars, self.label))

    @property
    def last_ts(self) -> dt.datetime | None:
        return next((m.ts for m in reversed(self.messages) if m.ts is not None), None)


def _ts(v: Any) -> dt.datetime | None:
    """A message time of a results record (checked on read by ``qa.grade.check_record``); None when missing."""
    if v is None or v == "":
        return None
    if isinstance(v, dt.datetime):
        return v
    from qa.schema import iso_time
    return iso_time(str(v))


def chat_from_result(r: dict[str, Any], file: str = "") -> Chat:
    """One graded-result record (dict, nested fields already decoded) → ``Chat``."""
    t = r.get("timing") or {}
    rating = r.get("rating") or {}
    msgs = [Msg(m.get("role") or "", m.get("type") or "text", m.get("text") or "", _ts(m.get("ts")))
            for m in r.get("messages") or []]
    delays = t.get("reply_delays_s") or []
    return Chat(id=str(r["id"]), shop=r.get("shop") or "-", agent=r.get("agent") or "-",
                day=r.get("day") or "unknown", messages=msgs, score=r.get("score"), failed=bool(r.get("failed")),
                stars=rating.get("stars"), label=rating.get("label"), human_service=bool(t.get("human_service")),
                first_response_ok=t.get("first_response_ok"), first_response_s=t.get("first_response_s"),
                slow_replies=max(0, len(delays) - int(t.get("replies_ok") or 0)),
                unanswered_runs=int(t.get("unanswered_runs") or 0), file=file,
                has_messages=isinstance(r.get("messages"), list))


def chat_from_conversation(conv: Any, rubric: Any, file: str = "") -> Chat:
    """A raw ``Conversation`` → ``Chat``, with its timing computed by ``qa.timing`` under ``rubric``."""
    from qa.timing import compute_timing

    t = compute_timing(conv, rubric)
    msgs = [Msg(m.role, m.type, m.text or "", m.ts) for m in conv.messages]
    first = next((m.ts for m in conv.messages if m.ts is not None), None)
    r = conv.rating
    return Chat(id=conv.id, shop=conv.shop or "-", agent=conv.agent_name or "-",
                day=first.date().isoformat() if first else "unknown", messages=msgs,
                stars=r.stars if r else None, label=r.label if r else None, human_service=t.human_service,
                first_response_ok=t.first_response_ok, first_response_s=t.first_response_s,
                slow_replies=len(t.reply_delays_s) - t.replies_ok, unanswered_runs=t.unanswered_runs, file=file)


def is_results_file(path: Path) -> bool:
    """Parquet files are graded results; a JSONL file is when its first record has score, band and messages or
    dimensions."""
    if path.suffix.lower() in RESULT_SUFFIXES:
        return True
    if path.suffix.lower() not in (".jsonl", ".ndjson", ".jl"):
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                try:
                    first = json.loads(line)
                except ValueError:
                    return False
                return (isinstance(first, dict) and {"score", "band"} <= first.keys()
                        and not {"messages", "dimensions"}.isdisjoint(first))   # --no-messages: no messages
    return False


def _read_results(path: Path, need_messages: bool = False) -> Iterator[tuple[int, Chat]]:
    """Through ``qa.grade.numbered_records``, the one reader of results files: each record is checked (types,
    score 0–100) before a view reads it, and a bad one (or, with ``need_messages``, one graded with
    ``--no-messages``) raises ``InputError`` naming file, line and field. (line, chat) per record."""
    from qa.grade import numbered_records

    for line, r in numbered_records(path, need_messages=need_messages):
        try:
            chat = chat_from_result(r, str(path))
        except (ValueError, KeyError, TypeError, AttributeError) as e:   # checked above: should not happen
            raise InputError(f"not a graded-result record ({e})", file=str(path), line=line) from None
        yield line, chat


def load_chats(paths: Iterable[str | Path], *, rubric: Any = None, tz: str | None = None,
               columns: str | Path | None = None, platform: str | None = None,
               need_messages: bool = False) -> tuple[list[Chat], list[Any]]:
    """Every chat of the files (results or raw inputs, mixed), the first of each id across them all (as ``qa
    grade`` and ``qa report`` count them); returns (chats, rejects: ``qa.io.Reject`` for each raw conversation
    that could not be read and each repeated id, with file and line). ``need_messages``: a result graded with
    ``--no-messages`` is an error (``qa topics`` reads the questions)."""
    from qa.io import Reject, read_path
    from qa.rubric import load_rubric

    rub = rubric if rubric is not None and not isinstance(rubric, (str, Path)) else load_rubric(rubric)
    chats: list[Chat] = []
    rejects: list[Reject] = []
    seen: dict[str, str] = {}
    for p in map(Path, paths):
        if not p.is_file():
            raise InputError("no such file", file=str(p))
        if is_results_file(p):
            items = _read_results(p, need_messages)
        else:
            items = ((item.line, item) if isinstance(item, Reject) else (item._line, item)
                     for item in read_path(p, tz=tz, columns=columns, platform=platform))
        for line, item in items:
            if isinstance(item, Reject):
                rejects.append(item)
                continue
            first = seen.get(item.id)
            if first is not None:
                rejects.append(Reject(str(p), line, f"duplicate conversation id {item.id!r} (first read at {first}); "
                                      "the first one is kept", field="id", id=item.id))
                continue
            seen[item.id] = f"{p}:{line}" if line is not None else str(p)
            chats.append(item if isinstance(item, Chat) else chat_from_conversation(item, rub, str(p)))
    return chats, rejects
