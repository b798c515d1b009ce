"""Labelled conversations → training examples: one target distribution per graded dimension.

Labels live in ``labels.reviews = [{reviewer, grades: {dimension: level}}, ...]``; several reviewers give a
distribution (soft label), one reviewer a one-hot. A dimension nobody graded is masked out of the loss.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from qa.errors import InputError, ModelError
from qa.io.build import Reject
from qa.io.read import ReadStats, read_many
from qa.schema import Conversation

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Example:
    conv: Conversation
    targets: dict[str, list[float]]      # dimension → distribution over its levels (best first)
    nuggets: dict[int, list[float]] = dataclasses.field(default_factory=dict)  # message → nugget distribution
    weight: float = 1.0                  # in the loss (e.g. generated chats count less than reviewed ones)
    flags: dict[str, float] = dataclasses.field(default_factory=dict)   # rule flag → share of reviewers
    turns: dict[int, dict[str, float]] = dataclasses.field(default_factory=dict)  # message → turn labels
    source: str = ""                     # the training file it came from

    def majority(self, dim: str, levels: Sequence) -> object | None:
        """The most likely level (ties → the middle of the tied levels, rounding toward better)."""
        dist = self.targets.get(dim)
        if dist is None:
            return None
        top = max(dist)
        tied = [i for i, p in enumerate(dist) if p == top]
        return levels[tied[(len(tied) - 1) // 2]]


def _level_key(v, levels):
    """The level ``v`` names: as written (4, "4", " 4 ", full-width "４" as ``qa import-review`` reads it), or as a
    sheet or script writes a whole number (4.0, "4.0")."""
    text = unicodedata.normalize("NFKC", str(v)).strip()
    if re.fullmatch(r"0+\d", text):   # 04, as qa import-review reads it
        text = text.lstrip("0") or "0"
    if not isinstance(v, bool) and re.fullmatch(r"-?\d+\.0+", text):
        text = text.split(".")[0]
    for lv in levels:
        if str(lv) == text:
            return lv
    return None


def targets(conv: Conversation, dimensions: dict[str, list], problems: list[str] | None = None
            ) -> dict[str, list[float]]:
    """Dimension → the reviewers' distribution over its levels. A review or grade that is malformed (a review
    that is not a mapping, ``grades`` that is not one, a level not on the scale) is skipped; what was wrong is
    appended to ``problems`` (if given)."""
    reviews = (conv.labels or {}).get("reviews") or []
    if not isinstance(reviews, list):
        _problem(problems, f"labels.reviews is a {type(reviews).__name__}, not a list")
        reviews = []
    out = {}
    for dim, levels in dimensions.items():
        counts = [0.0] * len(levels)
        for i, r in enumerate(reviews):
            if not isinstance(r, dict):
                _problem(problems, f"labels.reviews[{i}] is a {type(r).__name__}, not a mapping")
                continue
            grades = r.get("grades")
            if grades is None:       # a review that only lists rules or nuggets
                continue
            if not isinstance(grades, dict):
                _problem(problems, f"labels.reviews[{i}].grades is a {type(grades).__name__}, not a mapping of "
                         "dimension → level")
                continue
            value = grades.get(dim)
            lv = _level_key(value, levels)
            if lv is not None:
                counts[levels.index(lv)] += 1
            elif value is not None:
                _problem(problems, f"labels.reviews[{i}].grades.{dim}: {value!r} is not a level "
                         f"({', '.join(map(str, levels))})")
        if sum(counts):
            out[dim] = [c / sum(counts) for c in counts]
    return out


def _problem(problems: list[str] | None, text: str) -> None:
    if problems is not None and text not in problems:
        problems.append(text)


def nugget_targets(conv: Conversation, nuggets: dict[str, list[str]]) -> dict[int, list[float]]:
    """Message index → the reviewers' distribution over that role's nugget labels (``reviews[].nuggets[i]``
    labels message ``i``); messages nobody labelled are left out."""
    reviews = [r for r in (conv.labels or {}).get("reviews") or [] if isinstance(r, dict) and r.get("nuggets")]
    out = {}
    for i, m in enumerate(conv.messages if reviews else ()):
        types = nuggets.get("customer" if m.role == "customer" else "agent")
        if not types:
            continue
        counts = [0.0] * len(types)
        for r in reviews:
            if i < len(r["nuggets"]) and r["nuggets"][i] in types:
                counts[types.index(r["nuggets"][i])] += 1
        if sum(counts):
            out[i] = [c / sum(counts) for c in counts]
    return out


def matches(path: str, pattern: str) -> bool:
    """A training file matches a glob pattern by its path or by its name."""
    from fnmatch import fnmatch
    return fnmatch(str(path), pattern) or fnmatch(Path(path).name, pattern)


def file_weight(path: str, weights: dict[str, float] | None) -> float:
    """The weight of a training file: the last glob pattern in ``weights`` that matches its path, else 1."""
    w = 1.0
    for pattern, value in (weights or {}).items():
        if matches(path, pattern):
            w = value
    return w


def load_examples(paths: Iterable[str], dimensions: dict[str, list], *, stats: ReadStats | None = None,
                  rejects: list[Reject] | None = None, nuggets: dict[str, list[str]] | None = None,
                  weights: dict[str, float] | None = None, platform: str | None = None,
                  unique: bool = False) -> list[Example]:
    """Every labelled conversation in ``paths`` that the model can read (one with no customer, agent or bot message
    would get NaN probabilities), each knowing its file (``source``) and that file's weight; unlabelled and
    unreadable ones and read rejects are counted in ``rejects``. ``unique``: a conversation whose id was read
    already is rejected too (evaluation and calibration count each chat once; training files may repeat a chat on
    purpose). ``platform``: as ``qa.io.read_path``'s."""
    from qa.model.inputs import turns
    paths = list(paths)
    out = []
    first: dict[str, str] = {}
    for p in paths:
        problems: list[str] = []
        for item in read_many([p], stats, platform=platform):
            if isinstance(item, Reject):
                reject = item
            elif not turns(item):
                reject = Reject(str(p), None, "no customer, agent or bot message for the model to read",
                                field="messages", id=item.id)
            elif unique and item.id in first:
                reject = Reject(str(p), None, f"duplicate conversation id {item.id!r} (first read in "
                                f"{first[item.id]})", field="id", id=item.id)
            else:
                reject = None
            if reject is not None:
                if rejects is not None:
                    rejects.append(reject)
                continue
            first.setdefault(item.id, str(p))
            found: list[str] = []
            t = targets(item, dimensions, found)
            if found:
                problems.append(f"conversation {item.id}: {found[0]}" + (f" (+{len(found) - 1} more)"
                                                                          if len(found) > 1 else ""))
            if t:
                out.append(Example(item, t, nugget_targets(item, nuggets) if nuggets else {},
                                   weight=file_weight(p, weights), source=str(p)))
            elif rejects is not None:
                rejects.append(Reject(str(p), None, f"conversation {item.id}: no grades for {', '.join(dimensions)}",
                                      field="labels.reviews", id=item.id))
        if problems:
            log.warning("%s: skipped malformed labels in %d conversation(s), e.g. %s", p, len(problems), problems[0])
    if not out:
        raise InputError(f"no labelled conversations with grades for {', '.join(dimensions)}",
                         file=", ".join(map(str, paths)), field="labels.reviews")
    return out


def split_by_ids(examples: list[Example], path: str) -> tuple[list[Example], list[Example]]:
    """Train/dev by a file of conversation ids (one a line, ``#`` comments): the listed chats are the dev split.
    A file that names none of the chats is an error (the wrong file, or ids of other data)."""
    ids = {ln.split("#", 1)[0].strip() for ln in Path(path).read_text(encoding="utf-8").splitlines()} - {""}
    dev = [e for e in examples if e.conv.id in ids]
    if not dev:
        raise ModelError(f"{path}: none of its {len(ids)} ids is a chat of the training data")
    return [e for e in examples if e.conv.id not in ids], dev


def split(examples: list[Example], dev_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """A seeded random train/dev split of whole conversations: the examples of one id — two reviewers' files of the
    same chats — land on the same side, or the dev split would score chats the model trained on. A conversation
    joins the dev split only while it stays within ``dev_fraction`` (so dev gets at least one when there are two
    or more conversations of one example each, and never the larger part); with unique ids it is the split it
    always was."""
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(e.conv.id, []).append(i)
    keys = list(groups)
    order = list(range(len(keys)))
    random.Random(seed).shuffle(order)
    n = len(examples)
    n_dev = min(max(1, round(n * dev_fraction)), n - 1) if n > 1 and dev_fraction > 0 else 0
    dev: set[int] = set()
    for g in order:
        if len(dev) >= n_dev:
            break
        if len(dev) + len(groups[keys[g]]) <= n_dev:
            dev.update(groups[keys[g]])
    return [e for i, e in enumerate(examples) if i not in dev], [examples[i] for i in sorted(dev)]
