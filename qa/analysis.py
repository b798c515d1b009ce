"""One analysis step per conversation: timing, rule findings and the timing dimensions' levels, computed once.

``analyse(conversation, rubric, engine)`` is what grading, training, ``qa check`` and the classifier's
features share, so the timing levels the model reads are the ones the graded record carries.

Timing levels (one rule for every ``source: timing`` dimension of the rubric):
- no customer message: the dimension does not apply (``None``; there is nothing to time);
- a bot-only chat whose answer the customer accepted (``responded_24h``): a reply delay counts as 0 s;
- no reply at all (the metric is unset): the worst level — the rubric's "超过 60 分钟或未回复";
- otherwise the first band of the rubric whose upper bound the value does not exceed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from qa.rubric import Dimension, Rubric
from qa.schema import Conversation
from qa.timing import Timing, compute_timing

if TYPE_CHECKING:                       # the analysis type does not pull in the rule engine
    from qa.rules.base import Finding

REPLY_METRICS = ("avg_reply_s", "first_response_s")
REPLY_ROLES = ("agent", "bot")


@dataclasses.dataclass(frozen=True)
class Analysis:
    """What grading and the model's features need to know about one conversation besides its text."""

    timing: Timing
    findings: tuple[Finding, ...] = ()
    timing_levels: Mapping[str, int | None] = dataclasses.field(default_factory=dict)   # timing dimension → level
    has_reply: bool = True              # an agent or bot message exists (else there is nobody to grade)
    has_customer: bool = True           # a customer message exists, timed or not (else there is nothing to time)

    @property
    def fired(self) -> frozenset[str]:
        return frozenset(f.rule for f in self.findings)


def timing_level(rubric: Rubric, dim: Dimension, timing: Timing) -> int | None:
    """The level of one timing dimension (rules in the module docstring)."""
    if timing.responded_24h is None:            # set whenever the chat has a customer message
        return None
    value = getattr(timing, dim.metric or "", None)
    if timing.bot_only and timing.responded_24h and dim.metric in REPLY_METRICS:
        value = 0.0
    if value is None:
        return rubric.worst
    return dim.band_level(value)


def analyse(conv: Conversation, rubric: Rubric, engine=None) -> Analysis:
    """Timing, findings (when a ``qa.rules.RuleEngine`` is given) and timing levels of one conversation."""
    timing = compute_timing(conv, rubric)
    findings = tuple(engine.check(conv, timing)) if engine is not None else ()
    levels = {name: timing_level(rubric, d, timing) for name, d in rubric.dimensions.items()
              if d.source == "timing"}
    return Analysis(timing, findings, levels, any(m.role in REPLY_ROLES for m in conv.messages),
                    any(m.role == "customer" for m in conv.messages))


def analyse_many(convs: Sequence[Conversation], rubric: Rubric, engine=None) -> list[Analysis]:
    return [analyse(c, rubric, engine) for c in convs]


def default_engine(rubric: Rubric):
    """The rubric's rule engine, or None when it has no rules."""
    if not rubric.rules:
        return None
    from qa.rules.engine import RuleEngine
    return RuleEngine(rubric)
