"""Lexicon scanning: every category of phrases (spaCy PhraseMatcher over char tokens) and regexes, run
once per conversation over all its text messages, with exclusions and negation windows applied.

Speed (the engine's main cost): the Doc is built from cached per-character orth ids, and a regex is skipped
when the text lacks every character one of its required items must start with (``_needed_chars``) or a run of
literal characters every match holds (``_needed_literal``).
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import re
from collections import defaultdict
from typing import Any, NamedTuple

from qa.errors import RubricError
from qa.text import normalize

try:
    from re import _constants as _sre, _parser as _sre_parse  # Python ≥ 3.11
except ImportError:  # Python 3.10
    import sre_constants as _sre
    import sre_parse as _sre_parse

_KEYS = frozenset({"phrases", "regex", "exclude", "negated_by", "window"})
_CLAUSE_END = re.compile(r"[，,。.!！?？;；~\n]")
_REPEATS = tuple(getattr(_sre, n) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(_sre, n))


def regex_problem(pattern: str) -> str | None:
    """Why a user's regex cannot be a rule pattern, or None: one that can match nothing (``^``, ``a*``, an empty
    string: a finding with an empty span on every message), or an unbounded repetition of a repetition
    (``(?:哈+)+嘛``: its failed matches take exponential time, and one message stops the run)."""
    tree = _sre_parse.parse(pattern)
    if tree.getwidth()[0] == 0:
        return "it can match nothing (every message would match, with an empty span)"

    def nested(items, unbounded: bool) -> bool:
        for op, av in items:
            if op in _REPEATS:
                lo, hi, sub = av
                if unbounded and hi > 1:
                    return True
                if nested(sub, unbounded or hi == _sre.MAXREPEAT):
                    return True
            elif op == _sre.SUBPATTERN and nested(av[-1], unbounded):
                return True
            elif op == _sre.BRANCH and any(nested(b, unbounded) for b in av[1]):
                return True
            elif op in (_sre.ASSERT, _sre.ASSERT_NOT) and nested(av[1], unbounded):
                return True
        return False
    if nested(tree, False):
        return "a repetition inside an unbounded repetition ((?:a+)+) can take exponential time on a long message"
    return None
_NON_SPACE = re.compile(r"[^ \t\r\f\v\u3000]+")


class Hit(NamedTuple):
    """One phrase or regex match (a tuple: cheap to build, a few dozen per conversation)."""

    category: str
    message: int       # index into conversation.messages
    start: int         # char span in that message's text
    end: int
    text: str


@dataclasses.dataclass(frozen=True)
class _Category:
    name: str
    regexes: tuple[tuple[re.Pattern, frozenset[str], str], ...]  # each with its _needed_chars and _needed_literal
    negated_by: str | None
    window: int


class _Orths(dict):
    """char → orth id of its lexeme, added to the vocab on first sight."""

    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab

    def __missing__(self, char: str) -> int:
        self[char] = orth = self.vocab[char].orth
        return orth


def _glued(text: str, start: int, end: int) -> bool:
    """A Latin-letter hit ("wx", "qq", "vx") that continues a longer run of letters, digits or a masked value
    ("…f[数字x]wx[数字x]" in a tax number): part of an ID, not a word of its own."""
    if not text[start:end].isascii() or not text[start:end].isalnum() or start == 0:
        return False
    prev = text[start - 1]
    return (prev.isascii() and prev.isalnum()) or prev == "]"


class Lexicon:
    """Compiled phrase lists; ``scan`` finds every category's hits in a list of texts."""

    def __init__(self, data: dict[str, Any], *, source: str = "<lexicon>"):
        import spacy  # here, not at import time: spaCy (and the torch thinc pulls in) loads in seconds
        from spacy.matcher import PhraseMatcher
        from spacy.tokens import Doc

        self._Doc = Doc
        self.nlp = spacy.blank("zh")
        self.vocab = self.nlp.vocab
        self._orths = _Orths(self.vocab)
        self.matcher = PhraseMatcher(self.vocab)
        self.categories: dict[str, _Category] = {}
        self._labels: dict[int, str] = {}  # match id → matcher key (no StringStore lookup per match)
        if data is not None and not isinstance(data, dict):
            raise RubricError("a lexicon is a mapping of category → phrases", file=source)
        for name, spec in (data or {}).items():
            if not isinstance(spec, dict):
                raise RubricError("a lexicon category is a mapping", file=source, key=name)
            unknown = sorted(set(spec) - _KEYS, key=str)
            if unknown:   # a misspelt key (exlude:) would be a list silently not applied
                raise RubricError(f"unknown key {unknown[0]!r} (a category has {', '.join(sorted(_KEYS))})",
                                  file=source, key=f"{name} -> {unknown[0]}")
            for field in ("regex", "phrases", "exclude"):
                _check_list(spec.get(field), source, f"{name} -> {field}")
                for i, p in enumerate(spec.get(field) or ()):
                    if not str(p).strip():
                        raise RubricError("an empty phrase or regex would match every message", file=source,
                                          key=f"{name} -> {field} -> {i}")
            regexes = []
            for i, r in enumerate(spec.get("regex") or ()):
                try:
                    # a negated class never runs into the next message: the texts are scanned joined by newlines,
                    # and a match across two (dropped) would swallow the one inside the second
                    regexes.append(re.compile(str(r).replace("[^", "[^\n"), re.M))
                    why = regex_problem(str(r))
                except re.error as e:
                    raise RubricError(f"bad regex {r!r}: {e}", file=source, key=f"{name} -> regex -> {i}") from None
                if why:
                    raise RubricError(f"regex {r!r}: {why}", file=source, key=f"{name} -> regex -> {i}")
            neg = spec.get("negated_by")
            if neg is not None and (not isinstance(neg, str) or neg not in data):
                raise RubricError(f"unknown category {neg!r}", file=source, key=f"{name} -> negated_by")
            window = spec.get("window", 6)
            if isinstance(window, bool) or not isinstance(window, int) or window < 0:
                raise RubricError(f"window is a number of characters (a whole number ≥ 0), not {window!r}",
                                  file=source, key=f"{name} -> window")
            self.categories[name] = _Category(name, tuple((rx, frozenset(_needed_chars(rx)), _needed_literal(rx))
                                                          for rx in regexes), neg,
                                              window)
            for key, phrases in ((name, spec.get("phrases")), (name + "!exclude", spec.get("exclude"))):
                if phrases:
                    # as the text is scanned: simplified, half-width, lower case (a phrase in 繁體 matches too)
                    # and without spaces, as the text's tokens are its non-space characters ("thank you")
                    self.matcher.add(key, [self._doc("".join(normalize(str(p)).split())) for p in phrases])
                    self._labels[self.vocab.strings[key]] = key
        self._regexes = tuple((name, *r) for name, cat in self.categories.items() for r in cat.regexes)

    def _doc(self, text: str):
        """One token per character, built from cached orth ids: no tokenizer and no string hashing per char
        (the same tokens as the zh char segmenter)."""
        return self._Doc(self.vocab, words=list(map(self._orths.__getitem__, text)))

    def scan(self, texts: list[str | None]) -> dict[str, list[Hit]]:
        """Hits per category; ``texts[i]`` is message i's normalised text (None: not scanned)."""
        parts = [t or "" for t in texts]
        starts, pos = [], 0
        for t in parts:
            starts.append(pos)
            pos += len(t) + 1
        joined = "\n".join(parts)
        raw: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        # phrases match across spaces ("退 啥 退", "加 我"): tokens are the non-space characters; a space-free
        # run of tokens starting at token tok_at[c] starts at character char_at[c]
        tok_at, char_at, chunks, n = [], [], [], 0
        for m in _NON_SPACE.finditer(joined):
            tok_at.append(n)
            char_at.append(m.start())
            chunks.append(m.group())
            n += m.end() - m.start()
        if n:
            for match_id, s, e in self.matcher(self._doc("".join(chunks))):
                c = bisect.bisect_right(tok_at, s) - 1
                s = char_at[c] + s - tok_at[c]
                c = bisect.bisect_right(tok_at, e - 1) - 1
                e = char_at[c] + e - tok_at[c]
                i = bisect.bisect_right(starts, s) - 1
                raw[self._labels[match_id]].append((i, s - starts[i], e - starts[i]))
        present = set(joined)
        for name, rx, needs, literal in self._regexes:
            if (literal and literal not in joined) or (needs and needs.isdisjoint(present)):
                continue  # a text every match holds is not there: skip the (slower) regex
            for m in rx.finditer(joined):
                i = bisect.bisect_right(starts, m.start()) - 1
                if m.end() <= starts[i] + len(parts[i]):  # within one message
                    raw[name].append((i, m.start() - starts[i], m.end() - starts[i]))
        hits: dict[str, list[Hit]] = {}
        for name, found in raw.items():
            cat = self.categories.get(name)
            if cat is None:  # an "!exclude" list
                continue
            excluded = raw.get(name + "!exclude")
            excl = _Spans(excluded) if excluded else None
            neg = _by_message(raw.get(cat.negated_by)) if cat.negated_by else {}
            kept = []
            for i, s, e in sorted(set(found)):
                if excl and excl.covers(i, s, e):
                    continue
                if i in neg and self._negated(parts[i], s, neg[i], cat.window):
                    continue
                if _glued(parts[i], s, e):
                    continue
                kept.append(Hit(name, i, s, e, parts[i][s:e]))
            if kept:
                hits[name] = kept
        return hits

    @staticmethod
    def _negated(text: str, start: int, negs: list[tuple[int, int]], window: int) -> bool:
        """A negator ends within ``window`` characters before ``start``, in the same clause (``negs`` sorted)."""
        lo = max(0, start - window)
        for m in _CLAUSE_END.finditer(text, lo, start):
            lo = m.end()
        for ns, ne in itertools.islice(negs, bisect.bisect_left(negs, (lo, -1)), None):   # those starting at lo or later
            if ns >= start:
                return False
            if ne <= start:
                return True
        return False


def _by_message(spans: list[tuple[int, int, int]] | None) -> dict[int, list[tuple[int, int]]]:
    """(message, start, end) spans → message → its (start, end) spans, sorted."""
    out: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for i, s, e in sorted(spans or ()):
        out[i].append((s, e))
    return out


class _Spans:
    """Exclude spans by message, answering "is [s, e) inside one of them" by bisection, not by a scan of every
    span (a 100,000-character message full of hits would make that quadratic)."""

    def __init__(self, spans: list[tuple[int, int, int]] | None):
        self._starts: dict[int, list[int]] = {}
        self._reach: dict[int, list[int]] = {}   # the furthest end among the spans starting at or before each
        for i, found in _by_message(spans).items():
            self._starts[i] = [s for s, _ in found]
            self._reach[i] = list(itertools.accumulate((e for _, e in found), max))

    def __bool__(self) -> bool:
        return bool(self._starts)

    def covers(self, i: int, s: int, e: int) -> bool:
        starts = self._starts.get(i)
        if not starts:
            return False
        k = bisect.bisect_right(starts, s) - 1
        return k >= 0 and self._reach[i][k] >= e


def _check_list(value: Any, source: str, key: str) -> None:
    """A lexicon's phrases or regexes: a list of strings (or numbers, such as 12315), or absent."""
    if value is None:
        return
    if not isinstance(value, list):
        raise RubricError(f"a list of phrases or regexes, not {value!r}", file=source, key=key)
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise RubricError(f"a phrase or regex is a string, not {item!r}", file=source, key=f"{key} -> {i}")


def _needed_chars(rx: re.Pattern) -> str:
    """A cheap pre-test for a regex: characters one of which every match contains ("" when unknown). Taken
    from the top-level item with the fewest such characters among those that must match and can only start
    with known ones (a literal, a class of literals, alternatives that each start with one)."""
    try:
        parsed = _sre_parse.parse(rx.pattern, rx.flags)
    except Exception:  # a private module: without it, no pre-test
        return ""
    if parsed.state.flags & re.IGNORECASE:
        return ""
    found = ["".join(dict.fromkeys(c)) for c in map(_first_chars, parsed) if c]
    return min(found, key=len, default="")


def _needed_literal(rx: re.Pattern) -> str:
    """A second pre-test: the longest run of two or more literal characters every match holds in a row (小号 in
    ``(?:加我|搜)[^，]{0,10}小号``), or ""."""
    try:
        parsed = _sre_parse.parse(rx.pattern, rx.flags)
    except Exception:
        return ""
    if parsed.state.flags & re.IGNORECASE:
        return ""
    best, run = "", ""
    for op, av in parsed:
        run = run + chr(av) if op == _sre.LITERAL else ""
        if len(run) > len(best):
            best = run
    return best if len(best) >= 2 else ""


def _first_chars(item: tuple[Any, Any]) -> str:
    """The characters a required regex item can start with; "" when optional or not only literals."""
    op, av = item
    if op == _sre.LITERAL:
        return chr(av)
    if op == _sre.IN:
        return "".join(chr(v) for o, v in av) if all(o == _sre.LITERAL for o, _ in av) else ""
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[0] >= 1 and av[2]:
        return _first_chars(av[2][0])
    if op == _sre.SUBPATTERN and av[3] and not av[1] & re.IGNORECASE:
        return _first_chars(av[3][0])
    if op == _sre.BRANCH:
        alts = [_first_chars(alt[0]) if alt else "" for alt in av[1]]
        return "".join(alts) if all(alts) else ""
    return ""
