"""预警 (Kuaishou's 预警管理): the conversations rated 失望 / 1–2★ and the slow-reply ones, per shop and agent,
newest first, with the reason and the evidence a manager needs to step in (docs/report.md). Times are on the
shop's clock (the time zone of its service hours), whatever offset the results carry.

- rating: 1–2★, or the label 失望. Evidence: the customer's last text message, with its time.
- slow: by the rubric's thresholds as graded (service-hours timing): a human-service chat whose first response
  missed ``first_response_s`` (or never came), a reply run answered after ``reply_s``, or a run never answered.
  Evidence: the customer message that waited longest (wall clock), with its time and the wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from qa.chatrecords import Chat
from qa.staffing import chat_times

COLUMNS = ("shop", "agent", "time", "day", "id", "kinds", "reason", "evidence", "rating", "score",
           "first_response_s", "slow_replies", "unanswered_runs", "file")
EVIDENCE_CHARS = 80


def _clip(s: str) -> str:
    s = " ".join(s.split())
    return s if len(s) <= EVIDENCE_CHARS else s[:EVIDENCE_CHARS - 1] + "…"


def _local(t: Any, zone: ZoneInfo) -> Any:
    """``t`` on the shop's clock (the zone of its service hours), as staffing and days read it."""
    return t.astimezone(zone) if t is not None and t.tzinfo is not None else t


def _when(t: Any, zone: ZoneInfo) -> str:
    return _local(t, zone).strftime("%m-%d %H:%M") if t is not None else "?"


def _wait(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s}秒"
    if s < 3600:
        return f"{s // 60}分{s % 60:02d}秒"
    return f"{s // 3600}小时{s % 3600 // 60:02d}分"


def _slow_evidence(chat: Chat, zone: ZoneInfo) -> str:
    ct = chat_times(chat)
    if not ct.runs:
        return ""
    never = [t for t, w in ct.runs if w is None]
    t, w = (never[0], None) if never else max(ct.runs, key=lambda r: r[1])
    text = next((m.text for m in chat.messages if m.ts == t and m.role == "customer"), "")
    return f"客户 {_when(t, zone)} 「{_clip(text)}」 " + ("无人回复" if w is None else f"等了 {_wait(w)}")


def alerts(chats: Sequence[Chat], *, rubric: Any) -> list[dict[str, Any]]:
    """One row per conversation to soothe (COLUMNS), sorted by shop, agent, then newest first."""
    t = rubric.timing
    out = []
    for c in chats:
        kinds, reasons, evidence = [], [], []
        zone = ZoneInfo(t.hours_for(c.shop).tz)
        rating = " ".join(x for x in (f"{c.stars}★" if c.stars is not None else "", c.label or "") if x)
        if (c.stars is not None and c.stars <= 2) or c.label == "失望":
            kinds.append("rating")
            reasons.append(f"差评: {rating}")
            last = next((m for m in reversed(c.messages) if m.role == "customer" and m.type == "text" and m.text),
                        None)
            if last is not None:
                evidence.append(f"客户 {_when(last.ts, zone)} 「{_clip(last.text)}」")
        slow = []
        if c.human_service and c.first_response_ok is False:
            slow.append(f"首响 {c.first_response_s:.0f}s > {t.first_response_s:g}s" if c.first_response_s is not None
                        else "无人工回复")
        if c.slow_replies:
            slow.append(f"{c.slow_replies} 次回复 > {t.reply_s:g}s")
        if c.unanswered_runs:
            slow.append(f"{c.unanswered_runs} 次未回复")
        if slow:
            kinds.append("slow")
            reasons += slow
            ev = _slow_evidence(c, zone)
            if ev:
                evidence.append(ev)
        if not kinds:
            continue
        last_ts = c.last_ts
        out.append({"shop": c.shop, "agent": c.agent, "time": _local(last_ts, zone).isoformat() if last_ts else None,
                    "day": c.day, "id": c.id, "kinds": ";".join(kinds), "reason": "; ".join(reasons),
                    "evidence": " / ".join(evidence), "rating": rating or None,
                    "score": None if c.score is None else round(float(c.score), 2),
                    "first_response_s": None if c.first_response_s is None else round(c.first_response_s, 1),
                    "slow_replies": c.slow_replies, "unanswered_runs": c.unanswered_runs, "file": c.file,
                    "_ts": last_ts.timestamp() if last_ts else float("-inf")})
    out.sort(key=lambda r: (r["shop"], r["agent"], -r["_ts"], r["id"]))
    for r in out:
        del r["_ts"]
    return out


def summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counts per shop and agent: rating alerts, slow alerts, total, newest time."""
    agg: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        a = agg.setdefault((r["shop"], r["agent"]), {"shop": r["shop"], "agent": r["agent"], "rating": 0, "slow": 0,
                                                    "total": 0, "newest": r["time"]})
        kinds = r["kinds"].split(";")
        a["rating"] += "rating" in kinds
        a["slow"] += "slow" in kinds
        a["total"] += 1
    return sorted(agg.values(), key=lambda a: (-a["total"], a["shop"], a["agent"]))
