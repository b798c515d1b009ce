"""Shop KPIs: timing and rating figures aggregated by platform, shop, agent and day, beside thresholds.

Streaming: ``KpiTable.add`` takes one conversation at a time; memory grows with the number of groups only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from qa.rubric import KPIS, Rubric
from qa.schema import Conversation
from qa.timing import Timing

LEVELS = ("platform", "shop", "agent", "day")


@dataclasses.dataclass
class _Acc:
    conversations: int = 0
    human: int = 0
    first_ok: int = 0
    runs: int = 0
    runs_ok: int = 0
    delay_sum: float = 0.0
    delays: int = 0
    asked: int = 0
    responded: int = 0
    rated: int = 0
    satisfied: int = 0
    dissatisfied: int = 0
    reviews: int = 0
    good_reviews: int = 0

    def add(self, conv: Conversation, t: Timing) -> None:
        self.conversations += 1
        if t.human_service:
            self.human += 1
            self.first_ok += bool(t.first_response_ok)
        self.runs += t.reply_runs
        self.runs_ok += t.replies_ok
        self.delay_sum += sum(t.reply_delays_s)
        self.delays += len(t.reply_delays_s)
        if t.responded_24h is not None:
            self.asked += 1
            self.responded += t.responded_24h
        r = conv.rating
        if r is not None and r.satisfied is not None:
            self.rated += 1
            self.satisfied += r.satisfied
            self.dissatisfied += bool(r.dissatisfied)
        if r is not None and r.review_label is not None:
            self.reviews += 1
            self.good_reviews += r.review_label == "满意"

    def values(self) -> dict[str, float | None]:
        def ratio(a: float, b: float) -> float | None:
            return a / b if b else None
        return {
            "first_response_rate_2min": ratio(self.first_ok, self.human),
            "reply_rate_3min": ratio(self.runs_ok, self.runs),
            "avg_reply_s": ratio(self.delay_sum, self.delays),
            "response_rate_24h": ratio(self.responded, self.asked),
            "satisfaction_rate": ratio(self.satisfied, self.rated),
            "dissatisfaction_rate": ratio(self.dissatisfied, self.rated),
            "good_review_rate": ratio(self.good_reviews, self.reviews),
        }


class KpiTable:
    """Accumulates KPIs for every (level, key) group."""

    def __init__(self, rubric: Rubric, profile: str | None = None):
        self.rubric, self.profile = rubric, profile
        self._groups: dict[tuple[str, ...], _Acc] = {}

    def add(self, conv: Conversation, timing: Timing) -> None:
        tz = ZoneInfo(self.rubric.timing.hours_for(conv.shop).tz)
        when = timing.human_start or next((m.ts for m in conv.messages if m.ts), None)
        day = when.astimezone(tz).date().isoformat() if when else "unknown"
        shop, agent = conv.shop or "-", conv.agent_name or "-"
        for key in (("platform", conv.platform, "", "", ""), ("shop", conv.platform, shop, "", ""),
                    ("agent", conv.platform, shop, agent, ""), ("day", conv.platform, shop, "", day)):
            self._groups.setdefault(key, _Acc()).add(conv, timing)

    def _profile_for(self, platform: str):
        """The profile ``qa grade`` weighs the platform's chats under (``qa.grader.profile_for``): --profile, else the
        platform's own, else the rubric's default_profile, so ``qa report`` judges the same group alike."""
        from qa.errors import RubricError
        from qa.grader import profile_for
        try:
            name = profile_for(self.rubric, platform, self.profile)
        except RubricError:                  # no profile for it and no default: no thresholds to judge by
            return None
        return self.rubric.profile(name) if name else None

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per group: counts, each KPI, and for KPIs the profile sets, its threshold and pass/fail."""
        out = []
        order = {lvl: i for i, lvl in enumerate(LEVELS)}
        for key in sorted(self._groups, key=lambda k: (order[k[0]], k[1:])):
            acc = self._groups[key]
            level, platform, shop, agent, day = key
            row: dict[str, Any] = {"level": level, "platform": platform, "shop": shop or None,
                                   "agent": agent or None, "day": day or None,
                                   "conversations": acc.conversations, "human_conversations": acc.human,
                                   "reply_runs": acc.runs, "rated": acc.rated}
            values = acc.values()
            profile = self._profile_for(platform)
            for kpi in KPIS:
                row[kpi] = values[kpi]
                th = profile.kpis.get(kpi) if profile else None
                row[f"{kpi}_threshold"] = str(th) if th else None
                row[f"{kpi}_pass"] = th.passes(values[kpi]) if th else None
            out.append(row)
        return out


def aggregate(items: Iterable[tuple[Conversation, Timing]], rubric: Rubric, profile: str | None = None
              ) -> list[dict[str, Any]]:
    table = KpiTable(rubric, profile)
    for conv, t in items:
        table.add(conv, t)
    return table.rows()
