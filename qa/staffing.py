"""Staffing per shop and hour of day from the message times (docs/metrics.md, "Staffing").

Per chat (messages without a time are left out; hours are local to the shop's service-hours time zone):
- arrival: the first customer message; the first-message wait runs to the first human-agent message after it
  (wall clock; none → unanswered). A first-response failure is a wait over the rubric's ``first_response_s``
  or no answer.
- reply runs: from the arrival on, each run of customer messages (bot and system messages do not break it)
  waits for the next human-agent message; a 3-minute failure is a wait over ``reply_s`` or no answer. The run
  counts in the hour of its first message.
- the chat is open for its agent from the agent's first message to the chat's last message; concurrency of
  an agent at an instant is the number of its open chats (a chat ending at t and another starting at t do
  not overlap).

Per shop × hour (0–23), over the D days the shop has messages on: arrivals (total and per day), agents active
(agents with a message in that clock hour: mean over the D days and max), concurrent chats per agent (peak:
the most open chats of one agent at any instant in the hour; mean: open-chat seconds / seconds the agent had
≥ 1 open chat, summed over agents and days), first-message wait (mean, p90, unanswered), failures and whether
they cluster there, and the Erlang C recommendation of agents for the 3-minute target.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from qa.chatrecords import Chat
from qa.timing import is_acknowledgement

HOUR = dt.timedelta(hours=1)
DEFAULT_SERVICE_LEVEL = 0.80
CLUSTER_MIN_FAILURES = 3
CLUSTER_RATIO = 1.5
CLUSTER_RATE = 0.5


# ---------------------------------------------------------------- Erlang C

def erlang_c(n: int, a: float) -> float:
    """Probability that an arrival waits, with ``n`` servers and offered load ``a`` erlangs (1 when n ≤ a)."""
    if a <= 0:
        return 0.0
    if n <= a:
        return 1.0
    b = 1.0
    for k in range(1, n + 1):        # Erlang B by its recursion, then C from B
        b = a * b / (k + a * b)
    return n * b / (n - a * (1 - b))


def service_level(n: int, a: float, aht_s: float, target_s: float) -> float:
    """P(wait ≤ target) = 1 − C(n, a)·exp(−(n − a)·target / aht)."""
    if a <= 0:
        return 1.0
    if n <= a:
        return 0.0
    return 1.0 - erlang_c(n, a) * math.exp(-(n - a) * target_s / aht_s)


def servers_needed(arrivals_per_hour: float, aht_s: float, target_s: float, level: float) -> int:
    """The fewest servers n (≥ 1 when anything arrives) with service_level ≥ ``level``; 0 with no arrivals."""
    if arrivals_per_hour <= 0:
        return 0
    a = arrivals_per_hour * aht_s / 3600.0
    n = max(1, math.floor(a) + 1)
    while service_level(n, a, aht_s, target_s) < level:
        n += 1
    return n


# ---------------------------------------------------------------- per chat

@dataclasses.dataclass
class _ChatTimes:
    arrival: dt.datetime | None
    first_wait: float | None                 # None: no human-agent answer
    runs: list[tuple[dt.datetime, float | None]]
    open: tuple[dt.datetime, dt.datetime] | None
    agent_msgs: list[dt.datetime]


def chat_times(chat: Chat) -> _ChatTimes:
    msgs = [m for m in chat.messages if m.ts is not None]
    start = next((i for i, m in enumerate(msgs) if m.role == "customer"), None)
    agent_msgs = [m.ts for m in msgs if m.role == "agent"]
    open_ = None
    if agent_msgs and msgs[-1].ts > agent_msgs[0]:
        open_ = (agent_msgs[0], msgs[-1].ts)
    if start is None:
        return _ChatTimes(None, None, [], open_, agent_msgs)
    arrival = msgs[start].ts
    first = next((m.ts for m in msgs[start:] if m.role == "agent"), None)
    runs = []
    i, n = start, len(msgs)
    while i < n:   # runs as the KPIs count them: a message that only acknowledges (好的, 谢谢) needs no reply
        if msgs[i].role != "customer" or is_acknowledgement(msgs[i].type, msgs[i].text):
            i += 1
            continue
        j = i + 1
        while j < n and msgs[j].role != "agent":
            j += 1
        runs.append((msgs[i].ts, (msgs[j].ts - msgs[i].ts).total_seconds() if j < n else None))
        i = j + 1
    return _ChatTimes(arrival, None if first is None else (first - arrival).total_seconds(), runs, open_,
                      agent_msgs)


def _hour_floor(t: dt.datetime) -> dt.datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _p90(xs: list[float]) -> float | None:
    """The 90th percentile, linear between closest ranks (numpy's default)."""
    if not xs:
        return None
    s = sorted(xs)
    pos = 0.9 * (len(s) - 1)
    lo = math.floor(pos)
    return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (pos - lo)


def _r(v: float | None, d: int = 2) -> float | None:
    return None if v is None else round(v, d)


# ---------------------------------------------------------------- per shop × hour

def staffing(chats: Sequence[Chat], *, rubric: Any, profile: str | None = None,
             chats_per_agent: int | None = None) -> list[dict[str, Any]]:
    """24 rows per shop (hours 0–23), shops in name order; the columns are documented in docs/metrics.md."""
    cfg = rubric.timing
    prof = rubric.profiles.get(profile) if profile else None
    th = prof.kpis.get("reply_rate_3min") if prof else None
    level = th.min if th is not None and th.min is not None else DEFAULT_SERVICE_LEVEL
    by_shop: dict[str, list[Chat]] = collections.defaultdict(list)
    for c in chats:
        by_shop[c.shop].append(c)
    out: list[dict[str, Any]] = []
    for shop in sorted(by_shop):
        out += _shop(shop, by_shop[shop], ZoneInfo(cfg.hours_for(shop).tz), cfg.first_response_s, cfg.reply_s,
                     level, chats_per_agent)
    return out


def _shop(shop: str, chats: list[Chat], zone: ZoneInfo, first_s: float, reply_s: float, level: float,
          chats_per_agent: int | None) -> list[dict[str, Any]]:
    days: set[dt.date] = set()
    arrivals = [0] * 24
    waits: list[list[float]] = [[] for _ in range(24)]
    unanswered = [0] * 24
    first_fail = [0] * 24
    runs = [0] * 24
    run_fail = [0] * 24
    active: dict[tuple[dt.date, int], set[str]] = collections.defaultdict(set)
    intervals: dict[str, list[tuple[dt.datetime, dt.datetime]]] = collections.defaultdict(list)
    for c in chats:
        ct = chat_times(c)
        for m in c.messages:
            if m.ts is not None:
                days.add(m.ts.astimezone(zone).date())
        for t in ct.agent_msgs:
            lt = t.astimezone(zone)
            active[(lt.date(), lt.hour)].add(c.agent)
        if ct.open:
            intervals[c.agent].append(ct.open)
        if ct.arrival is not None:
            h = ct.arrival.astimezone(zone).hour
            arrivals[h] += 1
            if ct.first_wait is None:
                unanswered[h] += 1
                first_fail[h] += 1
            else:
                waits[h].append(ct.first_wait)
                first_fail[h] += ct.first_wait > first_s
        for t, w in ct.runs:
            h = t.astimezone(zone).hour
            runs[h] += 1
            run_fail[h] += w is None or w > reply_s

    open_s = [0.0] * 24
    busy_s = [0.0] * 24
    peak = [0] * 24
    durations = [(b - a).total_seconds() for iv in intervals.values() for a, b in iv]
    for ivs in intervals.values():
        events = sorted([(a, 1) for a, _ in ivs] + [(b, -1) for _, b in ivs], key=lambda e: (e[0], e[1]))
        level_now = 0
        for (t, d), (t_next, _) in zip(events, events[1:] + [(events[-1][0], 0)]):
            level_now += d
            if level_now <= 0 or t_next <= t:
                continue
            a = t.astimezone(zone)
            b = t_next.astimezone(zone)
            while a < b:
                edge = min(b, _hour_floor(a) + HOUR)
                secs = (edge - a).total_seconds()
                open_s[a.hour] += level_now * secs
                busy_s[a.hour] += secs
                peak[a.hour] = max(peak[a.hour], level_now)
                a = edge

    n_days = max(1, len(days))
    aht = sum(durations) / len(durations) if durations else None
    conc = sum(open_s) / sum(busy_s) if sum(busy_s) else None
    per_agent = chats_per_agent or max(1, round(conc or 1))
    fails = [first_fail[h] + run_fail[h] for h in range(24)]
    events = [arrivals[h] + runs[h] for h in range(24)]
    shop_rate = sum(fails) / sum(events) if sum(events) else 0.0
    rows = []
    for h in range(24):
        lam = arrivals[h] / n_days
        counts = [len(active[(d, h)]) for d in days] or [0]
        load = lam * (aht or 0) / 3600.0
        servers = servers_needed(lam, aht, reply_s, level) if aht else (1 if lam else 0)
        agents = math.ceil(servers / per_agent)
        rate = fails[h] / events[h] if events[h] else None
        rows.append({
            "shop": shop, "hour": h, "days": len(days), "arrivals": arrivals[h], "arrivals_per_day": _r(lam, 3),
            "agents_active_mean": _r(sum(counts) / n_days, 3), "agents_active_max": max(counts),
            "concurrency_mean": _r(open_s[h] / busy_s[h], 3) if busy_s[h] else None,
            "concurrency_peak": peak[h],
            "first_wait_mean_s": _r(sum(waits[h]) / len(waits[h]), 1) if waits[h] else None,
            "first_wait_p90_s": _r(_p90(waits[h]), 1), "first_unanswered": unanswered[h],
            "first_fail": first_fail[h], "first_fail_rate": _r(first_fail[h] / arrivals[h], 4) if arrivals[h] else None,
            "reply_runs": runs[h], "reply_fail": run_fail[h],
            "reply_fail_rate": _r(run_fail[h] / runs[h], 4) if runs[h] else None,
            "fail_cluster": bool(fails[h] >= CLUSTER_MIN_FAILURES and rate is not None
                                 and (rate >= CLUSTER_RATIO * shop_rate or rate >= CLUSTER_RATE)),
            "aht_s": _r(aht, 1), "chats_per_agent": per_agent, "offered_load": _r(load, 3),
            "target_s": reply_s, "target_level": level, "recommended_agents": agents,
            "service_level": _r(service_level(servers, load, aht, reply_s), 4) if aht and lam else None,
            "understaffed": bool(agents and sum(counts) / n_days < agents),
        })
    return rows
