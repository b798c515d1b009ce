"""Non-text features for the head: which rules fired, the timing levels and the chat's shape (names saved in
the config, so a model reads exactly the features it was trained with).

The values come from one ``qa.analysis.Analysis`` per conversation, the same one the graded record is made
from, so the model reads the timing levels the record carries.
"""

from __future__ import annotations

import math

from qa.analysis import Analysis
from qa.rubric import Rubric
from qa.schema import Conversation

SHAPE = ("shape.messages", "shape.agent_share", "shape.agent_len", "shape.agent_len_max", "shape.agent_digits",
         "shape.customer_repeats", "shape.agent_repeats")


def feature_names(rubric: Rubric) -> list[str]:
    return [f"rule.{r}" for r in rubric.rules] + ["timing.known", "timing.first_response_ok",
                                                  "timing.reply_speed", "timing.chat_time", "timing.bot_only", *SHAPE]


def shape(conv: Conversation) -> dict[str, float]:
    """The chat's shape in [0, 1]: its length, the agent's share and message lengths, digit-heavy agent
    messages (raw order data pasted in) and repeated messages. Reviewers mark clarity down on long chats where
    the customer has to ask again, which text features alone do not see."""
    texts = [(m.role, m.norm) for m in conv.messages if m.type != "event" and m.role in ("customer", "agent", "bot")]
    agent = [t for r, t in texts if r != "customer"]
    customer = [t for r, t in texts if r == "customer" and t]
    lengths = [len(t) for t in agent] or [0]
    digits = max((sum(c.isdigit() for c in t) / len(t) for t in agent if t), default=0.0)
    return {"shape.messages": min(1.0, math.log1p(len(texts)) / math.log(41)),
            "shape.agent_share": len(agent) / max(len(texts), 1),
            "shape.agent_len": min(1.0, sum(lengths) / len(lengths) / 60),
            "shape.agent_len_max": min(1.0, max(lengths) / 200),
            "shape.agent_digits": digits,
            "shape.customer_repeats": min(1.0, (len(customer) - len(set(customer))) / 3),
            "shape.agent_repeats": min(1.0, (len([t for t in agent if t]) - len({t for t in agent if t})) / 3)}


def feature_vector(names: list[str], rubric: Rubric, analysis: Analysis,
                   conv: Conversation | None = None) -> list[float]:
    """Values in [0, 1] in the order of ``names``; timing levels as their position on the scale (best = 1).
    ``timing.<dimension>`` is the level of that timing dimension of the rubric; ``shape.*`` needs ``conv``."""
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
    if conv is not None and any(n.startswith("shape.") for n in names):
        values.update(shape(conv))
    return [1.0 if n.startswith("rule.") and n[5:] in fired else values.get(n, 0.0) for n in names]
