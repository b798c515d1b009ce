"""Findings, the per-conversation context checks read, and the registry of versioned checks."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

from qa.rules.lexicon import Hit
from qa.schema import Conversation, Message
from qa.timing import Timing

AGENT_SIDE = ("agent", "bot")
_FILLER = re.compile(r"\[[^\]]{1,6}\]|[\s\W_]|[哦呢哈啊呀吧嘛啦哟噢嗯亲的了~]")


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
        out, i, n = [], 0, len(self.msgs)
        while i < n:
            if self.roles[i] != "customer":
                i += 1
                continue
            run, j = [], i
            while j < n and self.roles[j] != "agent":
                if self.roles[j] == "customer":
                    run.append(j)
                j += 1
            out.append((run, j if j < n else None))
            i = j + 1
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

    def content_len(self, i: int, *strip: str, drop: re.Pattern | None = None) -> int:
        """Characters of message i left after removing the given categories' hits, ``drop``'s matches,
        punctuation and particles."""
        key = (i, strip, drop)
        if key not in self._memo:
            text = list(self.norms[i])
            for cat in strip:
                for h in self.hits_in(cat, i):
                    text[h.start:h.end] = [" "] * (h.end - h.start)
            text = "".join(text)
            self._memo[key] = len(_FILLER.sub("", drop.sub("", text) if drop else text))
        return self._memo[key]


Check = Callable[[Context, dict[str, Any]], Iterable[Draft]]
REGISTRY: dict[str, Check] = {}


def register(name: str) -> Callable[[Check], Check]:
    """Register a check under a versioned id, e.g. ``off_platform_diversion.v1``."""
    def deco(fn: Check) -> Check:
        REGISTRY[name] = fn
        return fn
    return deco


def hit_draft(h: Hit, explanation: str) -> Draft:
    return Draft(f"{explanation}：「{h.text}」", h.message, (h.start, h.end))
