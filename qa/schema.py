"""The canonical conversation schema (see docs/schema.md).

Readers build these models; everything downstream takes them. Unknown extra fields are kept
(``extra="allow"``) and written back out unchanged.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from qa.text import normalize, unsegment, word_segmented

Role = Literal["customer", "agent", "bot", "system"]
MessageType = Literal["text", "image", "video", "emoji", "product_card", "order_card", "event"]
Platform = Literal["douyin", "kuaishou", "tiktok", "taobao", "other"]

ROLES: tuple[str, ...] = Role.__args__
MESSAGE_TYPES: tuple[str, ...] = MessageType.__args__
PLATFORMS: tuple[str, ...] = Platform.__args__
DEFAULT_TZ = "Asia/Shanghai"
PLATFORM_ALIASES = {
    "抖音": "douyin", "抖店": "douyin", "飞鸽": "douyin", "抖音小店": "douyin",
    "快手": "kuaishou", "快手小店": "kuaishou", "tiktok shop": "tiktok", "tiktokshop": "tiktok",
    "淘宝": "taobao", "天猫": "taobao", "千牛": "taobao", "tmall": "taobao",
}


def platform_id(name: str) -> str | None:
    """A platform name or alias (抖音, 千牛, TikTok Shop…) → its id; None for one we do not know."""
    key = str(name).strip().lower()
    return PLATFORM_ALIASES.get(key, key if key in PLATFORMS else None)


_EPOCH_MS_FROM = 100_000_000_000  # numbers above this are epoch milliseconds (after 1973 in ms)
# Message times outside [TS_MIN, TS_MAX) are rejected on read (docs/schema.md): a chat log from before the Unix
# epoch or after 2099 is a broken export, and absurd spans would overflow or stall the timing code.
# A chat longer than this is a broken export, not a conversation (the longest real ones have a few hundred
# messages): refused as a reject, so no rule pays its pairwise cost on 200,000 messages.
MAX_MESSAGES = 10_000
TS_MIN = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
TS_MAX = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)


@functools.lru_cache(maxsize=32)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def parse_ts(value: Any, tz: str = DEFAULT_TZ) -> dt.datetime | None:
    """ISO-8601 (with offset, or naive in ``tz``), epoch seconds or epoch ms → aware datetime.

    ``None`` and empty strings give ``None``; anything else that is not a time, or a time outside
    ``TS_MIN`` .. ``TS_MAX``, raises ``ValueError``.
    """
    if value is None or value == "":
        return None
    return in_range(_parse(value, tz), value)


def in_range(t: dt.datetime, raw: Any = None) -> dt.datetime:
    """``t`` (aware) if it lies in ``TS_MIN`` .. ``TS_MAX``, else ``ValueError`` quoting ``raw``."""
    if TS_MIN.year < t.year < TS_MAX.year - 1:   # surely inside whatever the offset: no zone arithmetic
        return t
    if not TS_MIN <= t < TS_MAX:
        raise _out_of_range(t.isoformat() if raw is None else raw)
    return t


def iso_time(value: str) -> dt.datetime:
    """An ISO-8601 time as a results record stores it (``messages[].ts``, ``timing.human_start``), parsed as is
    (a naive one stays naive and is range-checked as UTC). ``ValueError`` when it is not ISO-8601 text or lies
    outside ``TS_MIN`` .. ``TS_MAX``: the one check every reader of results applies (``qa.grade.check_record``)."""
    try:
        t = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be an ISO-8601 time, not {_short_repr(value)}") from None
    in_range(t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc), value)
    return t


DAY_MIN, DAY_MAX = TS_MIN.date(), TS_MAX.date()   # the shop's day of a time in range (Asia/Shanghai: UTC+8)


def iso_day(value: str) -> dt.date:
    """A record's ``day`` (``YYYY-MM-DD``, the first message's date in the shop's time zone) as a date; ``ValueError``
    when it is not one or lies outside ``DAY_MIN`` .. ``DAY_MAX`` (the days of times ``parse_ts`` accepts)."""
    try:
        if not (isinstance(value, str) and len(value) == 10 and value[4] == value[7] == "-"):
            raise ValueError
        d = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"must be a YYYY-MM-DD date, not {_short_repr(value)}") from None
    if not DAY_MIN <= d <= DAY_MAX:
        raise ValueError(f"date {value!r} out of range (allowed: {DAY_MIN} to {DAY_MAX})")
    return d


def local_day(value: str) -> dt.date:
    """A day as YYYY-MM-DD or as spreadsheets and Chinese back ends write one (2026/3/2, 2026.03.02, 2026年3月2日),
    range-checked as ``iso_day``; ``ValueError`` for anything else (a time of day too)."""
    m = _LOCAL_TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None or m[4] is not None:
        return iso_day(value)
    return iso_day(f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}")


def _out_of_range(raw: Any) -> ValueError:
    return ValueError(f"time {_short_repr(raw)} out of range (allowed: {TS_MIN:%Y-%m-%d} to {TS_MAX:%Y-%m-%d} UTC)")


def _short_repr(value: Any, limit: int = 60) -> str:
    if isinstance(value, int) and abs(value) >= 10 ** limit:   # repr of a huge int is long (or refused)
        return f"<a number of about {int(value.bit_length() * 0.30103) + 1} digits>"
    r = repr(value)
    return r if len(r) <= limit else r[:limit] + "…"


# The times spreadsheets and Chinese back ends write that ISO-8601 does not read: unpadded (2026/3/2 9:10, as Excel
# saves a CSV), dotted (2026.03.02) and Chinese (2026年3月2日 09:10:27) dates, with a time to the minute or second.
_LOCAL_TIME = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:\s*[T\s]\s*"
                         r"(\d{1,2})\s*[:：时]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2})(?:\.(\d{1,6}))?\s*秒?)?)?")


def _local_time(s: str) -> dt.datetime:
    """A naive time from one of ``_LOCAL_TIME``'s forms (the whole text); ``ValueError`` for anything else."""
    m = _LOCAL_TIME.fullmatch(s)
    if not m:
        raise ValueError(s)
    y, mo, d, h, mi, sec, frac = m.groups()
    return dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0),
                       int((frac or "0").ljust(6, "0")))


def _fixed(t: dt.datetime) -> dt.datetime:
    """``t`` with its zone replaced by the fixed UTC offset it has at that instant. Python subtracts and compares two
    times of one zone object by their clock readings: across a daylight-saving change (``--tz America/New_York``)
    a 90 s reply read as 3,690 s and messages sent in order were re-sorted. Fixed offsets make it absolute time."""
    if isinstance(t.tzinfo, dt.timezone):
        return t
    off = t.utcoffset()
    return t if off is None else t.replace(tzinfo=dt.timezone(off))   # the same instant (no conversion: year 1 fits)


def _parse(value: Any, tz: str) -> dt.datetime:
    raw = value
    if isinstance(value, dt.datetime):
        return _fixed(value if value.tzinfo else value.replace(tzinfo=_zone(tz)))
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, str):
        s = value.strip()
        try:
            if s.lstrip("-").replace(".", "", 1).isdigit():
                value = float(s)
            else:
                try:
                    t = dt.datetime.fromisoformat(s.replace("/", "-"))
                except ValueError:
                    t = _local_time(s)
                return _fixed(t if t.tzinfo else t.replace(tzinfo=_zone(tz)))
        except ValueError:
            raise ValueError(f"unparseable time {_short_repr(raw)}") from None
    if isinstance(value, (int, float)):
        try:
            secs = value / 1000 if abs(value) >= _EPOCH_MS_FROM else value
            return _fixed(dt.datetime.fromtimestamp(secs, tz=_zone(tz)))
        except (OverflowError, OSError, ValueError):
            raise _out_of_range(raw) from None
    raise ValueError(f"unparseable time {_short_repr(raw)}")


class Message(BaseModel):
    """One message of a chat. ``norm`` is the text normalised for analysis (same length as ``text``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    role: Role
    type: MessageType = "text"
    text: str | None = None
    ts: dt.datetime | None = None
    event: str | None = None
    sender: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _event_from_text(cls, data: Any) -> Any:
        """An event message that names its event only in ``text`` (transfer_to_human) has that event, as the
        table readers already do."""
        if isinstance(data, dict) and data.get("type") == "event" and not data.get("event"):
            text = data.get("text")
            if isinstance(text, str) and text.strip():
                return {**data, "event": text.strip()}
        return data

    @field_validator("ts", mode="before")
    @classmethod
    def _parse_ts(cls, v: Any, info) -> dt.datetime | None:
        tz = (info.context or {}).get("tz", DEFAULT_TZ)
        return parse_ts(v, tz)

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, v: Any) -> str | None:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            return str(v)
        raise ValueError("text must be a string")

    @functools.cached_property
    def norm(self) -> str:
        return normalize(self.text or "")

    @property
    def has_text(self) -> bool:
        return bool(self.text and self.text.strip())

    def with_text(self, text: str) -> "Message":
        """A copy with ``text`` in place of its text (``norm`` recomputed, not copied)."""
        copy = self.model_copy(update={"text": text})
        copy.__dict__.pop("norm", None)
        return copy


LABEL_WORDS = {"好评": "满意", "非常满意": "满意", "很满意": "满意", "满意": "满意", "中评": "一般", "一般": "一般",
               "差评": "失望", "不满意": "失望", "非常不满意": "失望", "很不满意": "失望", "失望": "失望"}


class Rating(BaseModel):
    """The customer's rating: stars 1–5 and/or a label 满意 | 一般 | 失望."""

    model_config = ConfigDict(extra="allow", frozen=True)

    stars: int | None = Field(default=None, ge=1, le=5)
    label: Literal["满意", "一般", "失望"] | None = None

    @field_validator("label", mode="before")
    @classmethod
    def _label(cls, v: Any) -> Any:
        """The words exports use for the three labels (好评 / 中评 / 差评, 非常满意, 不满意…), and a blank cell as none; any
        other value stays an error that names the field."""
        if isinstance(v, str):
            v = v.strip()
            return LABEL_WORDS.get(v, v) or None
        return v

    @property
    def satisfied(self) -> bool | None:
        return satisfied(self.stars, self.label)

    @property
    def dissatisfied(self) -> bool | None:
        return dissatisfied(self.stars, self.label)

    @property
    def review_label(self) -> str | None:
        return review_label(self.stars, self.label)


def satisfied(stars: int | None, label: str | None) -> bool | None:
    """Stars first (≥ 4), else the label 满意 — ``satisfaction_rate`` in docs/metrics.md; None when unrated."""
    if stars is not None:
        return stars >= 4
    return None if label is None else label == "满意"


def dissatisfied(stars: int | None, label: str | None) -> bool | None:
    """Stars first (≤ 2), else the label 失望; None when unrated."""
    if stars is not None:
        return stars <= 2
    return None if label is None else label == "失望"


def review_label(stars: int | None, label: str | None) -> str | None:
    """The Kuaishou-style label: the label first, else the stars (4–5 → 满意, 3 → 一般, 1–2 → 失望)."""
    if label is not None:
        return label
    if stars is None:
        return None
    return "满意" if stars >= 4 else "一般" if stars == 3 else "失望"


class Conversation(BaseModel):
    """One chat. ``warnings`` lists message-level oddities that were repaired or flagged on read."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1)
    platform: Platform = "other"
    shop: str | None = None
    agent: str | None = None
    customer: str | None = None
    messages: tuple[Message, ...] = Field(min_length=1, max_length=MAX_MESSAGES)
    rating: Rating | None = None
    labels: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    _line: int | None = PrivateAttr(default=None)   # where the reader found it: a later reject of it names the line

    def __eq__(self, other: object) -> bool:
        """Equal in content, wherever each was read."""
        if not isinstance(other, Conversation):
            return NotImplemented
        return self.__dict__ == other.__dict__ and self.__pydantic_extra__ == other.__pydantic_extra__

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @model_validator(mode="before")
    @classmethod
    def _platform(cls, data: Any) -> Any:
        """Map platform aliases (抖音, 千牛, TikTok Shop…) to their id; an unknown one becomes ``other``."""
        if isinstance(data, dict):
            raw = data.get("platform")
            key = "" if raw is None else str(raw).strip().lower()
            platform = PLATFORM_ALIASES.get(key, key if key in PLATFORMS else "other")
            known = data.get("warnings", ())
            if key and platform == "other" and key != "other" and isinstance(known, (list, tuple)):
                data = {**data, "warnings": (*known, f"unknown_platform:{raw}")}
            data = {**data, "platform": platform}
        return data

    @model_validator(mode="after")
    def _repair(self) -> "Conversation":
        """Flag empty texts and missing times; read a chat listed newest first in reverse, and put out-of-order
        messages back in time order (stable); join the words
        of a word-segmented chat (both sides spaced word by word, as corpus exports are) back into plain text."""
        warnings = list(self.warnings)
        msgs = list(self.messages)
        timed = [m.ts for m in msgs if m.ts is not None]
        if len(timed) > 1 and timed[0] > timed[-1] and all(b <= a for a, b in zip(timed, timed[1:])):
            msgs.reverse()   # an export listed newest first: reversed whole, messages of one second keep their order
            warnings.append("newest_first")
            object.__setattr__(self, "messages", tuple(msgs))
        keys, last = [], None
        for m in msgs:  # a message without a time keeps its place after the one before it
            last = m.ts or last
            keys.append(last)
        if any(a and b and b < a for a, b in zip(keys, keys[1:])):
            first = next(k for k in keys if k)
            msgs = [msgs[i] for i in sorted(range(len(msgs)), key=lambda i: keys[i] or first)]
            warnings.append("out_of_order_ts")
            object.__setattr__(self, "messages", tuple(msgs))
        sides: tuple[list[str], list[str]] = ([], [])    # customer texts, the other side's
        for m in msgs:
            if m.type == "text" and m.text:
                sides[m.role != "customer"].append(m.text)
        if word_segmented(*sides):
            msgs = [m.with_text(unsegment(m.text)) if m.text else m for m in msgs]
            warnings.append("word_segmented")
            object.__setattr__(self, "messages", tuple(msgs))
        from qa.io.cards import reread
        for i, m in enumerate(msgs):   # what an export flattened to text: a card, a picture, an auto-reply, a recall
            found = reread(m.role, m.text, m.sender) if m.type == "text" and m.text else None
            if found:
                role, kind, event, what = found
                msgs[i] = m.model_copy(update={"role": role, "type": kind, **({"event": event} if event else {})})
                warnings.append(f"{what}_from_text:{i}")
                object.__setattr__(self, "messages", tuple(msgs))
        for i, m in enumerate(msgs):
            if m.type == "text" and not m.has_text:
                warnings.append(f"empty_text:{i}")
            if m.ts is None:
                warnings.append(f"missing_ts:{i}")
        object.__setattr__(self, "warnings", tuple(warnings))
        return self

    @property
    def agent_name(self) -> str | None:
        """The conversation's agent, else the sender of its first human-agent message."""
        if self.agent:
            return self.agent
        return next((m.sender for m in self.messages if m.role == "agent" and m.sender), None)

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict in the canonical schema, extra fields included."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
