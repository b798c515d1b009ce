"""Findings, the per-conversation context checks read, and the registry of versioned checks."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from qa.rules.lexicon import Hit, regex_problem
from qa.schema import Conversation, Message
from qa.timing import Timing

AGENT_SIDE = ("agent", "bot")
_FILLER = re.compile(r"\[[^\]]{1,6}\]|[\s\W_]|[哦呢哈啊呀吧嘛啦哟噢嗯亲的了~]")


def fact_chars(text: str) -> str:
    """``text`` without what carries no fact: punctuation, particles and masks ([数字x] …)."""
    return _FILLER.sub("", text)


def blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with each (start, end) span turned to spaces: same length, same offsets."""
    for start, end in spans:   # a message has a few spans: slicing beats a list of its characters
        text = text[:start] + " " * (end - start) + text[end:]
    return text


def content_chars(text: str) -> int:
    """How many characters of ``text`` can carry a fact (``fact_chars``)."""
    return len(fact_chars(text))


@dataclasses.dataclass(frozen=True)
class Finding:
    """One rule finding with its evidence: the message, the character span in its original text."""

    rule: str
    severity: str
    name: str
    explanation: str
    message: int | None = None
    span: tuple[int, int] | None = None
    evidence: str | None = None
    source: str = "rule"          # rule | model | both: who found it (the classifier adds recall, qa.rules.combine)

    def to_record(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["span"] = list(self.span) if self.span else None
        return d


@dataclasses.dataclass(frozen=True)
class Draft:
    """What a check returns: where and why. The engine adds the rule's id, name and severity."""

    explanation: str
    message: int | None = None
    span: tuple[int, int] | None = None


@dataclasses.dataclass
class Context:
    """Everything a check may read about one conversation; built once, shared by all checks."""

    conv: Conversation
    timing: Timing
    hits: dict[str, list[Hit]]
    first_response_s: float

    def __post_init__(self) -> None:
        self.msgs: tuple[Message, ...] = self.conv.messages
        self.norms: list[str] = [m.norm for m in self.msgs]
        self.roles: list[str] = [m.role for m in self.msgs]
        self.is_text: list[bool] = [m.type == "text" and bool(n.strip()) for m, n in zip(self.msgs, self.norms)]
        self._by_msg: dict[tuple[str, int], list[Hit]] = {}
        for cat, hs in self.hits.items():
            for h in hs:
                self._by_msg.setdefault((cat, h.message), []).append(h)
        self._memo: dict[tuple, Any] = {}  # side/texts/content_len results: several checks ask the same

    @functools.cached_property
    def runs(self) -> list[tuple[list[int], int | None]]:
        """Customer runs (consecutive customer messages, bot/system ignored) and the next agent message."""
        return self.runs_by(("agent",))

    def runs_by(self, responders: tuple[str, ...]) -> list[tuple[list[int], int | None]]:
        """Customer runs ended by a message of one of ``responders`` (a bot in a chat no agent joined), and that
        message's index."""
        key = ("runs", responders)
        if key in self._memo:
            return self._memo[key]
        out, i, n = [], 0, len(self.msgs)
        while i < n:
            if self.roles[i] != "customer":
                i += 1
                continue
            run, j = [], i
            while j < n and self.roles[j] not in responders:
                if self.roles[j] == "customer":
                    run.append(j)
                j += 1
            out.append((run, j if j < n else None))
            i = j + 1
        self._memo[key] = out
        return out

    def hits_in(self, category: str, i: int) -> list[Hit]:
        return self._by_msg.get((category, i), [])

    def has(self, category: str, i: int) -> bool:
        return (category, i) in self._by_msg

    def side(self, roles: Iterable[str]) -> list[int]:
        roles = tuple(roles)
        key = ("side", roles)
        if key not in self._memo:
            self._memo[key] = [i for i, r in enumerate(self.roles) if r in roles]
        return self._memo[key]

    def texts(self, roles: Iterable[str]) -> list[int]:
        roles = tuple(roles)
        key = ("texts", roles)
        if key not in self._memo:
            self._memo[key] = [i for i, r in enumerate(self.roles) if r in roles and self.is_text[i]]
        return self._memo[key]

    def blanked(self, i: int, *strip: str) -> str:
        """Message i's normalised text with the given categories' hits blanked out (same length, same offsets)."""
        key = ("blanked", i, strip)
        if key not in self._memo:
            self._memo[key] = blank(self.norms[i], ((h.start, h.end) for cat in strip for h in self.hits_in(cat, i)))
        return self._memo[key]

    def content_len(self, i: int, *strip: str, drop: re.Pattern | None = None) -> int:
        """Characters of message i left after removing the given categories' hits, ``drop``'s matches,
        punctuation and particles."""
        key = (i, strip, drop)
        if key not in self._memo:
            text = self.blanked(i, *strip)
            self._memo[key] = content_chars(drop.sub("", text) if drop else text)
        return self._memo[key]


Check = Callable[[Context, dict[str, Any]], Iterable[Draft]]
REGISTRY: dict[str, Check] = {}
# check id → param name → its kind (``PARAM_KINDS``): what a rubric's ``params`` for that check must hold
PARAMS: dict[str, dict[str, str]] = {}


def register(name: str, *, params: dict[str, str] | None = None) -> Callable[[Check], Check]:
    """Register a check under a versioned id, e.g. ``off_platform_diversion.v1``; ``params`` declares the kind of
    each param it reads (``regexes``, ``strings``, ``count``, ``positive``, ``fraction``, ``seconds``, ``clock``,
    ``answer_types``), which ``check_params`` checks when a rubric's rule engine is built."""
    unknown = {k for k in (params or {}).values() if k not in PARAM_KINDS}
    if unknown:
        raise ValueError(f"unknown param kind(s) {sorted(unknown)} for check {name}")

    def deco(fn: Check) -> Check:
        REGISTRY[name] = fn
        PARAMS[name] = dict(params or {})
        return fn
    return deco


class ParamError(ValueError):
    """A param value a check cannot use; ``key`` is the path below the param (a list index, a sub-key)."""

    def __init__(self, message: str, key: str = ""):
        self.key = key
        super().__init__(message)


def _strings(value: Any) -> list:
    if not isinstance(value, list):
        raise ParamError(f"a list of strings, not {value!r}")
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise ParamError(f"a string, not {v!r}", str(i))
    return value


def _regexes(value: Any) -> list:
    """A list of regexes, each compiled alone and all joined as one (as the checks join them)."""
    for i, v in enumerate(_strings(value)):
        try:
            re.compile(v)
            why = regex_problem(v)
        except re.error as e:
            raise ParamError(f"bad regex {v!r}: {e}", str(i)) from None
        if why:
            raise ParamError(f"regex {v!r}: {why}", str(i))
    try:
        re.compile("|".join(f"(?:{p})" for p in value))
    except re.error as e:
        raise ParamError(f"these regexes do not join into one: {e}") from None
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParamError(f"a whole number ≥ 0, not {value!r}")
    return value


def _positive(value: Any) -> int:
    if _count(value) < 1:
        raise ParamError(f"a whole number ≥ 1, not {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParamError(f"a number, not {value!r}")
    return float(value)


def _fraction(value: Any) -> float:
    if not 0 <= _number(value) <= 1:
        raise ParamError(f"a number from 0 to 1, not {value!r}")
    return value


def _seconds(value: Any) -> float:
    if _number(value) < 0:
        raise ParamError(f"seconds ≥ 0, not {value!r}")
    return value


def _clock(value: Any) -> str:
    if value not in ("wall", "service"):
        raise ParamError(f"wall or service, not {value!r}")
    return value


def _answer_types(value: Any) -> dict:
    """name → {ask: [regexes], answer: [regexes]}."""
    if not isinstance(value, dict):
        raise ParamError(f"a mapping of name → {{ask: [regexes], answer: [regexes]}}, not {value!r}")
    for name, spec in value.items():
        if not isinstance(spec, dict) or set(spec) - {"ask", "answer"}:
            raise ParamError(f"a mapping with ask and answer (lists of regexes), not {spec!r}", str(name))
        for part in ("ask", "answer"):
            try:
                _regexes(spec.get(part, []))
            except ParamError as e:
                raise ParamError(str(e), ".".join(p for p in (str(name), part, e.key) if p)) from None
    return value


PARAM_KINDS: dict[str, Callable[[Any], Any]] = {
    "regexes": _regexes, "strings": _strings, "count": _count, "positive": _positive, "fraction": _fraction, "seconds": _seconds,
    "clock": _clock, "answer_types": _answer_types}


def check_params(check: str, params: dict[str, Any]) -> None:
    """Raise ``ParamError`` (its ``key``: ``param`` or ``param.index``) for the first declared param of ``check``
    whose value it cannot use. Params a check does not declare are left alone."""
    for name, kind in PARAMS.get(check, {}).items():
        if name in params:
            try:
                PARAM_KINDS[kind](params[name])
            except ParamError as e:
                raise ParamError(str(e), ".".join(p for p in (name, e.key) if p)) from None


def hit_draft(h: Hit, explanation: str) -> Draft:
    return Draft(f"{explanation}：「{h.text}」", h.message, (h.start, h.end))
