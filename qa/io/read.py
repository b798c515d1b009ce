"""Read any supported input into a stream of ``Conversation`` or ``Reject``, counting as it goes."""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from qa.errors import InputError
from qa.io.build import Reject
from qa.io.dialeval import looks_like_dialeval, read_dialeval
from qa.io.jsonl import read_jsonl
from qa.io.table import read_table
from qa.schema import DEFAULT_TZ, PLATFORMS, Conversation, platform_id

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

    def refuse(self, conv: Conversation) -> None:
        """Count an accepted conversation that a later check rejects as rejected instead."""
        self.accepted -= 1
        self.rejected += 1
        self.repaired -= bool(conv.warnings)

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


def unreadable(exc: BaseException, path: Path) -> str:
    """Why a whole file cannot be read, in words (a corrupt workbook, undecodable bytes, …)."""
    if isinstance(exc, zipfile.BadZipFile) or type(exc).__name__ == "InvalidFileException":
        return f"cannot read this file: not a valid {path.suffix.lower() or ''} workbook (truncated or corrupt: {exc})"
    if isinstance(exc, UnicodeError):
        return f"cannot read this file: not text in UTF-8, UTF-16 or GB18030 ({exc})"
    if isinstance(exc, OSError):
        return f"cannot read this file: {exc.strerror or exc}"
    if isinstance(exc, RecursionError):
        return "cannot read this file: nested too deeply"
    return f"cannot read this file: {type(exc).__name__}: {exc}"


def read_path(path: str | Path, *, tz: str | None = None, columns: str | Path | None = None,
              platform: str | None = None) -> Iterator[Conversation | Reject]:
    """Conversations and rejects from one file. Raises ``InputError`` only for a missing/unknown file; a file
    that is corrupt or cannot be decoded becomes one reject saying why (after whatever was read before).
    ``platform`` (an id or alias) is given to each conversation whose record names none (read as ``other``)."""
    if platform is None:
        yield from _read_path(Path(path), tz, columns)
        return
    pid = platform_id(platform)
    if pid is None:
        raise InputError(f"unknown platform {platform!r} (use {', '.join(PLATFORMS)} or a name such as 千牛)",
                         field="platform")
    for item in _read_path(Path(path), tz, columns):
        if isinstance(item, Conversation) and item.platform == "other" and not _named_platform(item):
            item = item.model_copy(update={"platform": pid})
        yield item


def _named_platform(conv: Conversation) -> bool:
    """The record named a platform we do not know (read as ``other`` with a warning): --platform leaves it."""
    return any(w.startswith("unknown_platform:") for w in conv.warnings)


_PACKED = ((b"\x1f\x8b", "a gzip file"), (b"PK\x03\x04", "a ZIP archive"), (b"BZh", "a bzip2 file"),
           (b"\xfd7zX", "an xz file"), (b"\x28\xb5\x2f\xfd", "a zstd file"), (b"7z\xbc\xaf", "a 7z archive"))


def _read_path(path: Path, tz: str | None, columns: str | Path | None) -> Iterator[Conversation | Reject]:
    if not path.is_file():
        raise InputError("is a directory, not a file" if path.is_dir() else "no such file", file=str(path))
    try:
        fmt = input_format(path)
        with open(path, "rb") as f:
            head = f.read(4)
    except (UnicodeError, OSError) as e:
        yield Reject(str(path), None, unreadable(e, path))
        return
    packed = next((what for magic, what in _PACKED if head.startswith(magic)), None)
    if packed and not (packed == "a ZIP archive" and path.suffix.lower() in (".xlsx", ".xlsm")):
        # one reject for the file, not one per line of binary read as text
        yield Reject(str(path), None, f"{packed}, not {path.suffix or 'text'} text: unpack it and give the file inside")
        return
    try:
        if fmt == "table":
            try:
                yield from read_table(path, tz=tz, columns=columns)
            except InputError as e:  # the file as a whole cannot be mapped: one reject says why
                yield Reject(str(path), e.line, e.message, field=e.field)
        elif fmt == "dialeval":
            yield from read_dialeval(path, tz=tz or DEFAULT_TZ)
        else:
            yield from read_jsonl(path, tz=tz or DEFAULT_TZ)
    except Exception as e:  # noqa: BLE001 — any failure of a reader on hostile bytes is a reject, not a crash
        yield Reject(str(path), None, unreadable(e, path))


def read_many(paths: Iterable[str | Path], stats: ReadStats | None = None, *, unique_ids: bool = False,
              **kw) -> Iterator[Conversation | Reject]:
    """Every file in turn; ``stats`` (if given) is updated as items are yielded.

    With ``unique_ids`` (what the commands that grade or count use) a conversation whose id was already read in
    this call — in the same file or an earlier one — becomes a reject (``field: id``) naming where it was first
    read; the first one is kept (docs/ingest.md). Without it (training data) repeats are kept."""
    return (item for _, item in read_sourced(paths, stats, unique_ids=unique_ids, **kw))


def read_sourced(paths: Iterable[str | Path], stats: ReadStats | None = None, *, unique_ids: bool = False,
                 **kw) -> Iterator[tuple[str, Conversation | Reject]]:
    """``read_many``, each item with the file it came from (a later check's reject can name it)."""
    seen: dict[str, tuple[int, int | None]] = {}
    names: list[str] = []
    for p in paths:
        names.append(str(p))
        for item in read_path(p, **kw):
            if unique_ids and not isinstance(item, Reject):
                first = seen.get(item.id)
                if first is None:
                    seen[item.id] = (len(names) - 1, item._line)
                else:
                    at = f" at line {first[1]}" if first[1] is not None else ""
                    where = (f"earlier in this file{at}" if first[0] == len(names) - 1
                             else f"first read in {names[first[0]]}{at}")
                    item = Reject(str(p), item._line, f"duplicate conversation id {item.id!r} ({where}); the first "
                                  "one is kept", field="id", id=item.id)
            if stats is not None:
                stats.count(item)
            yield str(p), item
