"""Turn one raw record (a dict) into a ``Conversation`` or a ``Reject`` naming file, line and field."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from pydantic import ValidationError

from qa.schema import DEFAULT_TZ, MESSAGE_TYPES, ROLES, Conversation


@dataclasses.dataclass(frozen=True)
class Reject:
    """A record that could not be read, with where it was and why."""

    file: str
    line: int | None
    reason: str
    field: str | None = None
    id: str | None = None
    raw: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field + ': ' if self.field else ''}{self.reason}"


_HINTS = {
    "role": f"expected one of {'|'.join(ROLES)}",
    "type": f"expected one of {'|'.join(MESSAGE_TYPES)}",
}


def _explain(err: dict[str, Any]) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err["loc"])
    last = str(err["loc"][-1]) if err["loc"] else ""
    if err["type"] == "missing":
        return loc, "required field is missing"
    if err["type"] == "too_short" and last == "messages":
        return loc, "no messages"
    if err["type"] == "literal_error" and last in _HINTS:
        return loc, f"unknown {last} {err.get('input')!r} ({_HINTS[last]})"
    msg = err["msg"].removeprefix("Value error, ")
    return loc, msg


def build(obj: Any, *, file: str, line: int | None, tz: str = DEFAULT_TZ) -> Conversation | Reject:
    """Validate one decoded record; never raises: any failure is a ``Reject`` for this record alone."""
    raw_id = obj.get("id") if isinstance(obj, dict) else None
    rid = None if raw_id is None else _text(raw_id)
    if not isinstance(obj, dict):
        return Reject(file, line, "record is not a JSON object", raw=_short(obj))
    try:
        conv = Conversation.model_validate(obj, context={"tz": tz})
        conv._line = line
        return conv
    except ValidationError as e:
        field, reason = _explain(e.errors()[0])
        return Reject(file, line, reason, field=field, id=rid, raw=_short(obj))
    except Exception as e:  # noqa: BLE001 — a validator tripped on hostile data: reject this record, read on
        return unexpected(e, file=file, line=line, id=rid, raw=_short(obj))


def unexpected(exc: BaseException, *, file: str, line: int | None, id: str | None = None,
               raw: str | None = None) -> Reject:
    """A ``Reject`` for one record whose reading failed in a way no check foresaw (the reason names the error)."""
    msg = str(exc)
    msg = msg if len(msg) <= 300 else msg[:300] + "…"
    return Reject(file, line, f"cannot read this record: {type(exc).__name__}: {msg}", id=id, raw=raw)


def _text(v: Any) -> str:
    try:
        return str(v)
    except ValueError:   # an int too long to print
        return f"<{type(v).__name__} that cannot be shown>"


def _short(obj: Any, limit: int = 500) -> str:
    try:
        s = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):   # an int too long to print, a structure nested too deeply
        return f"<{type(obj).__name__} that cannot be shown>"
    return s if len(s) <= limit else s[:limit] + "…"
