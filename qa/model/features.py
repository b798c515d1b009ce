"""Non-text features for the head: which rules fired and the timing levels (names saved in the config).

The values come from one ``qa.analysis.Analysis`` per conversation, the same one the graded record is made
from, so the model reads the timing levels the record carries.
"""

from __future__ import annotations

from qa.analysis import Analysis
from qa.rubric import Rubric


def feature_names(rubric: Rubric) -> list[str]:
    return [f"rule.{r}" for r in rubric.rules] + ["timing.known", "timing.first_response_ok",
                                                  "timing.reply_speed", "timing.chat_time", "timing.bot_only"]


def feature_vector(names: list[str], rubric: Rubric, analysis: Analysis) -> list[float]:
    """Values in [0, 1] in the order of ``names``; timing levels as their position on the scale (best = 1).
    ``timing.<dimension>`` is the level of that timing dimension of the rubric."""
    fired = analysis.fired
    timing = analysis.timing
    span = max(len(rubric.scale) - 1, 1)

    def level(v):
        return 1 - rubric.scale.index(v) / span if v in rubric.scale else 0.0

    known = timing is not None and timing.human_start is not None
    values = {"timing.known": float(known)}
    if known:
        values.update({"timing.first_response_ok": float(bool(timing.first_response_ok)),
                       "timing.bot_only": float(timing.bot_only)})
        values.update({f"timing.{d}": level(v) for d, v in analysis.timing_levels.items()})
    return [1.0 if n.startswith("rule.") and n[5:] in fired else values.get(n, 0.0) for n in names]
