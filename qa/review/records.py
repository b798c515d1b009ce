"""Graded result records (docs/results.md) for the review loop, and small helpers over one record.

Reading goes through ``qa.grade.read_records``, the one reader of results files; the review needs each
record's messages, so a file graded with ``--no-messages`` is refused with a message saying so.
``read_unique`` is what ``qa sample`` and ``qa export-review`` read with: the first record of each id is kept and
every later one is left out as a ``Duplicate`` naming its file and line, so no chat is reviewed twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from qa.grade import numbered_records, read_records

ROLE_ZH = {"customer": "客户", "agent": "客服", "bot": "机器人", "system": "系统"}
TYPE_ZH = {"image": "图片", "video": "视频", "emoji": "表情", "product_card": "商品卡片", "order_card": "订单卡片",
           "event": "事件"}
EVENT_ZH = {"transfer_to_human": "转人工", "session_start": "会话开始", "session_end": "会话结束"}


def read_results(paths: Iterable[str | Path]) -> Iterator[dict[str, Any]]:
    """Every result record of every file, in file order. Raises ``InputError`` naming file and line."""
    return read_records(paths, need_messages=True)


@dataclasses.dataclass(frozen=True)
class Duplicate:
    """A record left out because an earlier record (``first``, as ``file:line``) has the same id."""

    id: str
    file: str
    line: int
    first: str

    def __str__(self) -> str:
        cid = repr(self.id) if len(self.id) <= 60 else repr(self.id[:60]) + "…"
        where = f"{self.file}:{self.line}"
        first = "the same record: a file given twice" if self.first == where else f"first read at {self.first}"
        return f"{where}: id: duplicate conversation id {cid} ({first}); left out"


@dataclasses.dataclass
class UniqueResults:
    """The records kept (first of each id, in file order) and the duplicates left out: read = kept + left out."""

    records: list[dict[str, Any]]
    duplicates: list[Duplicate]

    @property
    def read(self) -> int:
        return len(self.records) + len(self.duplicates)


def read_unique(paths: Iterable[str | Path],
                keep: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> UniqueResults:
    """Every record of every file, checked as ``read_results``, keeping the first of each id (across the files,
    as ``qa report`` counts them; docs/ingest.md); later ones are listed, not returned. ``keep`` maps each kept
    record to what is held of it (``qa sample`` holds a summary, not the chat)."""
    seen: dict[str, str] = {}
    out = UniqueResults([], [])
    for path in paths:
        for line, rec in numbered_records(path, need_messages=True):
            first = seen.get(rec["id"])
            if first is None:
                seen[rec["id"]] = f"{path}:{line}"
                out.records.append(keep(rec) if keep else rec)
            else:
                out.duplicates.append(Duplicate(rec["id"], str(path), line, first))
    return out


def first_records(paths: Iterable[str | Path], ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The first record of each of ``ids`` (the one ``read_unique`` keeps), read again from the files."""
    want, found = set(ids), {}
    for path in paths:
        for _, rec in numbered_records(path, need_messages=True):
            if rec["id"] in want and rec["id"] not in found:
                found[rec["id"]] = rec
                if len(found) == len(want):
                    return found
    return found


def model_dimensions(rec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The record's dimensions graded by the classifier, in record order."""
    dims = rec.get("dimensions") or {}
    return {k: d for k, d in dims.items() if isinstance(d, dict) and d.get("source") == "model"}


def agent_key(rec: dict[str, Any]) -> tuple[str, str]:
    """(shop, agent): display names can repeat across shops."""
    return (rec.get("shop") or "", rec.get("agent") or "")
