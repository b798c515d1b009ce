"""Read graded result records (docs/results.md) from JSONL or Parquet, and small helpers over one record."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from qa.errors import InputError

NESTED = ("dimensions", "findings", "deductions", "timing", "rating", "messages", "warnings", "pick_flags")
ROLE_ZH = {"customer": "客户", "agent": "客服", "bot": "机器人", "system": "系统"}
TYPE_ZH = {"image": "图片", "video": "视频", "emoji": "表情", "product_card": "商品卡片", "order_card": "订单卡片",
           "event": "事件"}


def read_results(paths: Iterable[str | Path]) -> Iterator[dict[str, Any]]:
    """Every result record of every file, in file order. Raises ``InputError`` naming file and line."""
    for path in map(Path, paths):
        if not path.is_file():
            raise InputError("no such file", file=str(path))
        if path.suffix.lower() == ".parquet":
            yield from _read_parquet(path)
        else:
            yield from _read_jsonl(path)


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8-sig") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"bad JSON: {e.msg} (column {e.colno})", file=str(path), line=ln) from None
            yield _check(rec, path, ln)


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for i, rec in enumerate(pq.read_table(path).to_pylist(), 1):
        for k in NESTED:
            if isinstance(rec.get(k), str):
                try:
                    rec[k] = json.loads(rec[k])
                except json.JSONDecodeError:
                    raise InputError("not a JSON string", file=str(path), line=i, field=k) from None
        yield _check(rec, path, i)


def _check(rec: Any, path: Path, line: int) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise InputError("a result record is a JSON object", file=str(path), line=line)
    if rec.get("id") in (None, ""):
        raise InputError("required field is missing", file=str(path), line=line, field="id")
    if not isinstance(rec.get("messages"), list):
        raise InputError("a result record carries its messages (docs/results.md)", file=str(path), line=line,
                         field="messages")
    rec["id"] = str(rec["id"])
    return rec


def model_dimensions(rec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The record's dimensions graded by the classifier, in record order."""
    dims = rec.get("dimensions") or {}
    return {k: d for k, d in dims.items() if isinstance(d, dict) and d.get("source") == "model"}


def agent_key(rec: dict[str, Any]) -> tuple[str, str]:
    """(shop, agent): display names can repeat across shops."""
    return (rec.get("shop") or "", rec.get("agent") or "")
