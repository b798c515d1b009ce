"""JSONL: one conversation per line, streamed (memory does not grow with the file)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qa.io.build import Reject, build
from qa.schema import Conversation


_LONE = re.compile("[\ud800-\udfff]")   # after json.loads, a surrogate left alone is half a character
_ESCAPED = re.compile(r"\\u[dD][89a-fA-F]")   # a line that escapes a surrogate (most pair it: an emoji)


def whole_characters(obj: Any) -> Any:
    """``obj`` with every unpaired UTF-16 surrogate (JSON's ``"\\ud800"`` with no partner: half an emoji cut off
    by an export) in its strings replaced by U+FFFD, so it can be normalised and written as UTF-8."""
    if isinstance(obj, str):
        return _LONE.sub("\ufffd", obj)
    if isinstance(obj, list):
        return [whole_characters(v) for v in obj]
    if isinstance(obj, dict):
        return {whole_characters(k): whole_characters(v) for k, v in obj.items()}
    return obj


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
            if _ESCAPED.search(line):
                obj = whole_characters(obj)
            yield build(obj, file=name, line=ln, tz=tz)
