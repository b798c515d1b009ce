"""The DialEval / NTCIR STC-3 JSON format: a list of dialogues with ``turns`` and optional ``annotations``.

Each turn (several utterances by one sender) becomes one message; ``customer`` → customer,
``helpdesk`` → agent. Every annotator's ``quality`` grades become one review in ``labels.reviews`` and
their per-turn ``nugget`` labels go with it. The dialogues carry no times.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qa.io.build import Reject, build
from qa.io.jsonl import whole_characters
from qa.schema import Conversation

SENDER_ROLE = {"customer": "customer", "helpdesk": "agent"}


def looks_like_dialeval(path: Path) -> bool:
    """A JSON array (no JSONL file starts with one): read by ``read_dialeval``, whose items may be DialEval dialogues
    or our own records (``messages``), an export written as one JSON list."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        head = f.read(4096).lstrip()
    return head.startswith("[")


def to_record(d: dict[str, Any]) -> dict[str, Any]:
    """One DialEval dialogue → a canonical record (raises KeyError, TypeError, ValueError… on a malformed one)."""
    messages = []
    for t in d["turns"]:
        role = SENDER_ROLE.get(t["sender"], t["sender"])
        messages.append({"role": role, "type": "text", "text": "\n".join(t["utterances"])})
    if d["id"] is None:
        raise KeyError("id")
    rec: dict[str, Any] = {"id": str(d["id"]), "platform": "other", "messages": messages}
    anns = d.get("annotations") or []
    if anns:
        rec["labels"] = {"reviews": [
            {"reviewer": f"annotator-{i + 1}", "grades": dict(a["quality"]), "nuggets": list(a.get("nugget", []))}
            for i, a in enumerate(anns)
        ]}
    return rec


def read_dialeval(path: Path, *, tz: str) -> Iterator[Conversation | Reject]:
    name = str(path)
    with open(path, encoding="utf-8-sig") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            yield Reject(name, e.lineno, f"bad JSON: {e.msg} (column {e.colno})")
            return
        except UnicodeDecodeError as e:
            yield Reject(name, None, f"not UTF-8 text ({e.reason} at byte {e.start})")
            return
        except RecursionError:
            yield Reject(name, 1, "bad JSON: nested too deep to read")
            return
    data = whole_characters(data)
    if not isinstance(data, list):
        yield Reject(name, 1, "a .json input is a JSON list of dialogues (DialEval) or of conversation records")
        return
    for i, d in enumerate(data, 1):  # "line" is the record number for a JSON list
        if isinstance(d, dict) and "messages" in d and "turns" not in d:   # one of our own records
            yield build(d, file=name, line=i, tz=tz)
            continue
        try:
            rec = to_record(d)
        except Exception as e:  # noqa: BLE001 — any malformed dialogue costs that dialogue only
            what = ("malformed DialEval dialogue" if isinstance(d, dict) and "turns" in d
                    else "neither a DialEval dialogue (turns) nor a conversation record (messages)")
            yield Reject(name, i, f"{what} ({type(e).__name__}: {str(e)[:300]})",
                         field=str(e.args[0]) if isinstance(e, KeyError) else None,
                         id=str(d.get("id")) if isinstance(d, dict) and d.get("id") is not None else None)
            continue
        yield build(rec, file=name, line=i, tz=tz)
