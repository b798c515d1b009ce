"""Non-text features for the head: which rules fired and the timing levels (names saved in the config)."""

from __future__ import annotations

from qa.rubric import Rubric
from qa.rules.base import Finding
from qa.timing import Timing


def feature_names(rubric: Rubric) -> list[str]:
    return [f"rule.{r}" for r in rubric.rules] + ["timing.known", "timing.first_response_ok",
                                                  "timing.reply_speed", "timing.chat_time", "timing.bot_only"]


def feature_vector(names: list[str], rubric: Rubric, findings: list[Finding], timing: Timing | None) -> list[float]:
    """Values in [0, 1] in the order of ``names``; timing levels as their position on the scale (best = 1)."""
    fired = {f.rule for f in findings}
    span = max(len(rubric.scale) - 1, 1)

    def level(v):
        return 1 - rubric.scale.index(v) / span if v in rubric.scale else 0.0

    known = timing is not None and timing.human_start is not None
    values = {"timing.known": float(known)}
    if known:
        values.update({"timing.first_response_ok": float(bool(timing.first_response_ok)),
                       "timing.reply_speed": level(timing.reply_speed_level),
                       "timing.chat_time": level(timing.chat_time_level),
                       "timing.bot_only": float(timing.bot_only)})
    return [1.0 if n.startswith("rule.") and n[5:] in fired else values.get(n, 0.0) for n in names]
