"""Read any supported input into a stream of ``Conversation`` or ``Reject``, counting as it goes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path

from qa.errors import InputError
from qa.io.build import Reject
from qa.io.dialeval import looks_like_dialeval, read_dialeval
from qa.io.jsonl import read_jsonl
from qa.io.table import read_table
from qa.schema import DEFAULT_TZ, Conversation

JSONL_SUFFIXES = {".jsonl", ".ndjson", ".jl"}
TABLE_SUFFIXES = {".csv", ".tsv", ".xlsx", ".xlsm"}


@dataclasses.dataclass
class ReadStats:
    """Counts that add up: ``read == accepted + rejected``; ``repaired`` conversations carry warnings."""

    read: int = 0
    accepted: int = 0
    rejected: int = 0
    repaired: int = 0

    def count(self, item: Conversation | Reject) -> None:
        self.read += 1
        if isinstance(item, Reject):
            self.rejected += 1
        else:
            self.accepted += 1
            self.repaired += bool(item.warnings)

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def input_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in TABLE_SUFFIXES:
        return "table"
    if suffix == ".json":
        return "dialeval" if looks_like_dialeval(path) else "jsonl"
    raise InputError(f"unknown input format {suffix or '(no suffix)'!r}: use .jsonl, .json (DialEval), "
                     ".csv, .tsv or .xlsx", file=str(path))


def read_path(path: str | Path, *, tz: str | None = None, columns: str | Path | None = None
              ) -> Iterator[Conversation | Reject]:
    """Conversations and rejects from one file. Raises ``InputError`` only for a missing/unknown file."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", file=str(path))
    fmt = input_format(path)
    if fmt == "table":
        try:
            yield from read_table(path, tz=tz, columns=columns)
        except InputError as e:  # the file as a whole cannot be mapped: one reject says why
            yield Reject(str(path), e.line, e.message, field=e.field)
    elif fmt == "dialeval":
        yield from read_dialeval(path, tz=tz or DEFAULT_TZ)
    else:
        yield from read_jsonl(path, tz=tz or DEFAULT_TZ)


def read_many(paths: Iterable[str | Path], stats: ReadStats | None = None, **kw) -> Iterator[Conversation | Reject]:
    """Every file in turn; ``stats`` (if given) is updated as items are yielded."""
    for p in paths:
        for item in read_path(p, **kw):
            if stats is not None:
                stats.count(item)
            yield item
