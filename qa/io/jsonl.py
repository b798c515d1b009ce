"""JSONL: one conversation per line, streamed (memory does not grow with the file)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from qa.io.build import Reject, build
from qa.schema import Conversation


def read_jsonl(path: Path, *, tz: str) -> Iterator[Conversation | Reject]:
    name = str(path)
    with open(path, encoding="utf-8-sig", errors="strict", newline="") as f:
        ln = 0
        while True:
            try:
                line = f.readline()
            except UnicodeDecodeError as e:
                yield Reject(name, ln + 1, f"not UTF-8 text ({e.reason} at byte {e.start})")
                return
            if not line:
                return
            ln += 1
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield Reject(name, ln, f"bad JSON: {e.msg} (column {e.colno})", raw=line[:500].rstrip())
                continue
            except RecursionError:
                yield Reject(name, ln, "bad JSON: nested too deeply", raw=line[:500].rstrip())
                continue
            yield build(obj, file=name, line=ln, tz=tz)
