"""Writers: JSONL (one object per line, internal: raw text), CSV of flat rows for people (UTF-8 with BOM, so
Excel reads Chinese; masked and neutralised by ``qa.safety``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


class JsonlWriter:
    """Append-or-create JSONL writer; flushes every line so a killed run keeps what it wrote."""

    def __init__(self, path: str | Path, *, append: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[str] = open(self.path, "a" if append else "w", encoding="utf-8")
        self.count = 0

    def write(self, obj: Any) -> None:
        self._f.write(dumps(obj) + "\n")
        self._f.flush()
        self.count += 1

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_csv(path: str | Path, rows: Iterable[dict[str, Any]], **kw: Any) -> None:
    """Flat rows as CSV for people: masked, formula-neutralised and clipped cell by cell (``qa.safety``)."""
    from qa.safety import write_csv as _write

    _write(path, rows, **kw)


def write_json(path: str | Path, obj: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
