"""Mask personal data in exported text, keeping its length so finding spans still point at the same characters.

Masked: mobile numbers (``13812341234`` → ``138****1234``, also written with spaces or dashes), 18-digit ID
numbers (first 3 and last 4 kept), 16–19 digit bank-card-like numbers (first 4 and last 4 kept; order numbers
of that length are masked too, on purpose) and the detail of a street address after its district / county /
town (``北京市朝阳区建国路88号院3号楼`` → ``北京市朝阳区**********``). Spreadsheet cells are neutralised separately
by ``safe_cell``.
"""

from __future__ import annotations

import re
from typing import Any

_SEP = r"[ \-]?"
_PHONE = re.compile(r"(?:(?<=86)|(?<=86[ \-])|(?<!\d)(?<!\d )(?<!\d-))(?P<p>1" + _SEP + "[3-9]" + (_SEP + r"\d") * 9
                    + r")(?![ \-]?\d)")
_ID = re.compile(r"(?<![0-9A-Za-z])\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
                 r"(?![0-9A-Za-z])")
_CARD = re.compile(r"(?<!\d)\d{4}(?:[ \-]?\d){12,15}(?![ \-]?\d)")
_HAN = r"\u4e00-\u9fff"
_ADDRESS = re.compile(
    rf"(?:[{_HAN}]{{2,6}}(?:省|自治区))?(?:[{_HAN}]{{1,7}}(?:市|州|盟))?[{_HAN}]{{1,7}}?(?:区|县|镇|街道)"
    rf"(?P<detail> ?[{_HAN}A-Za-z0-9#＃\-－()（）]{{2,60}})")
_DETAIL_MARK = re.compile(r"\d|路|街|巷|弄|村|号|栋|幢|单元|室|小区|苑|大厦|公寓|花园|广场|社区|楼")
_ADMIN_PREFIX = re.compile(r"省|自治区|市|州|盟")
NO_MASK = frozenset({"id", "ts", "day"})  # keys whose values are identifiers, never personal text
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _keep(s: str, head: int, tail: int) -> str:
    """Digits of ``s`` become ``*`` except the first ``head`` and last ``tail`` digits; separators stay."""
    idx = [i for i, ch in enumerate(s) if ch.isdigit() or ch in "Xx"]
    hide = set(idx[head:len(idx) - tail])
    return "".join("*" if i in hide else ch for i, ch in enumerate(s))


def _address(m: re.Match) -> str:
    detail = m.group("detail")
    prefix = m.group(0)[: m.start("detail") - m.start(0)]
    strong = _ADMIN_PREFIX.search(prefix[:-1]) is not None
    if not _DETAIL_MARK.search(detail) or not (strong or re.search(r"\d", detail)):
        return m.group(0)
    return prefix + "".join(ch if ch == " " else "*" for ch in detail)


def mask_text(text: str | None) -> str | None:
    """``text`` with personal data replaced by ``*``; same length as the input."""
    if not text:
        return text
    text = _ID.sub(lambda m: _keep(m.group(0), 3, 4), text)
    text = _PHONE.sub(lambda m: _keep(m.group("p"), 3, 4), text)
    text = _CARD.sub(lambda m: _keep(m.group(0), 4, 4), text)
    return _ADDRESS.sub(_address, text)


def mask_value(value: Any) -> Any:
    """Every string inside ``value`` (dicts, lists) masked, except ids and times; other values unchanged."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: v if k in NO_MASK else mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v) for v in value]
    return value


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """A graded result record safe to export: text masked everywhere, the customer's id left out."""
    return mask_value({k: v for k, v in record.items() if k != "customer"})


def safe_cell(value: Any) -> Any:
    """A spreadsheet value that cannot run as a formula: text starting with = + - @ (or tab/CR) gets a ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def unsafe_cell(value: Any) -> Any:
    """Undo ``safe_cell`` on a value read back."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value
