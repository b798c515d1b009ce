"""Lexicon scanning: every category of phrases (spaCy PhraseMatcher over char tokens) and regexes, run
once per conversation over all its text messages, with exclusions and negation windows applied.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections import defaultdict
from typing import Any

import spacy
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc

from qa.errors import RubricError

_CLAUSE_END = re.compile(r"[，,。.!！?？;；~\n]")
_NON_SPACE = re.compile(r"[^ \t\r\f\v\u3000]+")


@dataclasses.dataclass(frozen=True)
class Hit:
    category: str
    message: int       # index into conversation.messages
    start: int         # char span in that message's text
    end: int
    text: str


@dataclasses.dataclass(frozen=True)
class _Category:
    name: str
    regexes: tuple[re.Pattern, ...]
    negated_by: str | None
    window: int


class Lexicon:
    """Compiled phrase lists; ``scan`` finds every category's hits in a list of texts."""

    def __init__(self, data: dict[str, Any], *, source: str = "<lexicon>"):
        self.nlp = spacy.blank("zh")
        self.matcher = PhraseMatcher(self.nlp.vocab)
        self.categories: dict[str, _Category] = {}
        for name, spec in (data or {}).items():
            if not isinstance(spec, dict):
                raise RubricError("a lexicon category is a mapping", file=source, key=name)
            try:
                regexes = tuple(re.compile(r, re.M) for r in spec.get("regex", []))
            except re.error as e:
                raise RubricError(f"bad regex: {e}", file=source, key=f"{name} -> regex") from None
            neg = spec.get("negated_by")
            if neg is not None and neg not in data:
                raise RubricError(f"unknown category {neg!r}", file=source, key=f"{name} -> negated_by")
            self.categories[name] = _Category(name, regexes, neg, int(spec.get("window", 6)))
            if spec.get("phrases"):
                self.matcher.add(name, [self._doc(str(p).lower()) for p in spec["phrases"]])
            if spec.get("exclude"):
                self.matcher.add(name + "!exclude", [self._doc(str(p).lower()) for p in spec["exclude"]])

    def _doc(self, text: str) -> Doc:
        # one token per character: much faster than the tokenizer and the same as the zh char segmenter
        return Doc(self.nlp.vocab, words=list(text))

    def scan(self, texts: list[str | None]) -> dict[str, list[Hit]]:
        """Hits per category; ``texts[i]`` is message i's normalised text (None: not scanned)."""
        starts, parts, pos = [], [], 0
        for t in texts:
            starts.append(pos)
            parts.append(t or "")
            pos += len(t or "") + 1
        joined = "\n".join(parts)
        raw: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        # phrases match across spaces ("退 啥 退", "加 我"): tokens are the non-space characters
        chunks = _NON_SPACE.findall(joined)
        if chunks:
            pos: list[int] = []
            for m in _NON_SPACE.finditer(joined):
                pos.extend(range(m.start(), m.end()))
            doc = self._doc("".join(chunks))
            strings = self.nlp.vocab.strings
            for match_id, s, e in self.matcher(doc):
                s, e = pos[s], pos[e - 1] + 1
                i = bisect.bisect_right(starts, s) - 1
                raw[strings[match_id]].append((i, s - starts[i], e - starts[i]))
        for name, cat in self.categories.items():
            for rx in cat.regexes:
                for m in rx.finditer(joined):
                    i = bisect.bisect_right(starts, m.start()) - 1
                    if m.end() <= starts[i] + len(parts[i]):  # within one message
                        raw[name].append((i, m.start() - starts[i], m.end() - starts[i]))
        hits: dict[str, list[Hit]] = {}
        for name, found in raw.items():
            cat = self.categories.get(name)
            if cat is None:  # an "!exclude" list
                continue
            excl = raw.get(name + "!exclude")
            neg = raw.get(cat.negated_by) if cat.negated_by else None
            kept = []
            for i, s, e in sorted(set(found)):
                if excl and any(j == i and xs <= s and e <= xe for j, xs, xe in excl):
                    continue
                if neg and self._negated(parts[i], s, [(ns, ne) for j, ns, ne in neg if j == i], cat.window):
                    continue
                kept.append(Hit(name, i, s, e, parts[i][s:e]))
            if kept:
                hits[name] = kept
        return hits

    @staticmethod
    def _negated(text: str, start: int, negs: list[tuple[int, int]], window: int) -> bool:
        lo = max(0, start - window)
        for m in _CLAUSE_END.finditer(text, lo, start):
            lo = m.end()
        return any(lo <= ns and ne <= start for ns, ne in negs)
