"""JSONL: one conversation per line, streamed (memory does not grow with the file)."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qa.io.build import Reject, build, unexpected
from qa.schema import Conversation


_LONE = re.compile("[\ud800-\udfff]")   # after json.loads, a surrogate left alone is half a character
_ESCAPED = re.compile(r"\\u[dD][89a-fA-F]")   # a line that escapes a surrogate (most pair it: an emoji)
_EOL = re.compile(rb"\r\n?|\n")


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
    """One item per non-blank line. A line that cannot be read (not UTF-8, bad JSON, a record that trips
    anything) is a reject for that line alone; the lines after it are still read."""
    name = str(path)
    for ln, data in _lines(path):
        if not data.strip():
            continue
        try:
            line = data.decode("utf-8")
        except UnicodeDecodeError as e:
            yield Reject(name, ln, f"not UTF-8 text ({e.reason} at byte {e.start} of the line)",
                         raw=data[:500].decode("utf-8", "replace").rstrip())
            continue
        try:
            item = _record(line, name, ln, tz)
        except Exception as e:  # noqa: BLE001 — whatever this line trips, it costs this line only
            item = unexpected(e, file=name, line=ln, raw=line[:500].rstrip())
        yield item


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) per line, split at \\n, \\r\\n or \\r as text mode does; a UTF-8 BOM is dropped."""
    with open(path, "rb") as f:
        ln = 0
        for chunk in f:
            if ln == 0 and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8):]
            chunk = chunk.removesuffix(b"\n").removesuffix(b"\r")
            for part in _EOL.split(chunk) if b"\r" in chunk else (chunk,):   # a bare \r ends a line too
                ln += 1
                yield ln, part


def _record(line: str, name: str, ln: int, tz: str) -> Conversation | Reject:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        return Reject(name, ln, f"bad JSON: {e.msg} (column {e.colno})", raw=line[:500].rstrip())
    except ValueError as e:   # e.g. an integer longer than Python converts
        return Reject(name, ln, f"bad JSON: {str(e).split(';')[0]}", raw=line[:500].rstrip())
    except RecursionError:
        return Reject(name, ln, "bad JSON: nested too deeply", raw=line[:500].rstrip())
    if _ESCAPED.search(line):
        obj = whole_characters(obj)
    return build(obj, file=name, line=ln, tz=tz)
