"""Graded result records (docs/results.md) for the review loop, and small helpers over one record.

Reading goes through ``qa.grade.read_records``, the one reader of results files; the review needs each
record's messages, so a file graded with ``--no-messages`` is refused with a message saying so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from qa.grade import read_records

ROLE_ZH = {"customer": "客户", "agent": "客服", "bot": "机器人", "system": "系统"}
TYPE_ZH = {"image": "图片", "video": "视频", "emoji": "表情", "product_card": "商品卡片", "order_card": "订单卡片",
           "event": "事件"}


def read_results(paths: Iterable[str | Path]) -> Iterator[dict[str, Any]]:
    """Every result record of every file, in file order. Raises ``InputError`` naming file and line."""
    return read_records(paths, need_messages=True)


def model_dimensions(rec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The record's dimensions graded by the classifier, in record order."""
    dims = rec.get("dimensions") or {}
    return {k: d for k, d in dims.items() if isinstance(d, dict) and d.get("source") == "model"}


def agent_key(rec: dict[str, Any]) -> tuple[str, str]:
    """(shop, agent): display names can repeat across shops."""
    return (rec.get("shop") or "", rec.get("agent") or "")
