"""Masking and cell safety for review exports: the one policy of ``qa.safety`` (docs/security.md), plus
``mask_record`` for a whole graded record.

``safe_cell`` / ``unsafe_cell`` are the spreadsheet neutraliser and its inverse under their historical names.
"""

from __future__ import annotations

from typing import Any

from qa.safety import (FORMULA_START, NO_MASK, clip_cell, mask_messages, mask_text, mask_value, neutralise_cell,
                       unneutralise_cell)

__all__ = ["FORMULA_START", "NO_MASK", "clip_cell", "mask_record", "mask_text", "mask_value", "safe_cell",
           "unsafe_cell"]

safe_cell = neutralise_cell
unsafe_cell = unneutralise_cell


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """A graded result record safe to export: text masked everywhere, the customer's id left out."""
    out = mask_value({k: v for k, v in record.items() if k != "customer"})
    if isinstance(out.get("messages"), list):
        out["messages"] = mask_messages(out["messages"])
    return out
