"""Timing metrics of one conversation (definitions in docs/metrics.md). Pure functions, no I/O.

- Human service starts at the ``transfer_to_human`` event, else at the first customer message.
- First response: the first human-agent message after that start; its delay counts service hours only.
- Replies: every run of consecutive customer messages from the start of human service (bot and system
  messages do not break a run) is answered by the next human-agent message; each delay counts service
  hours only. A message that only acknowledges (好的 谢谢, 嗯嗯, ok, 收到, an emoji) needs no reply, as the platforms'
  "无需回复" rule has it: a run starts at the first message that is more, and a run of nothing more is no run.
- 24-hour response: a human-agent message within 24 h (wall clock) of the first customer message, or a
  bot answer in that time after which the customer wrote nothing more than an acknowledgement.
- Handling time: wall clock from the first customer message to the last reply (agent, or the bot in a
  bot-only chat); the reply-speed and chat-time levels come from the rubric's bands.
Messages without a time are left out of every timing figure.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from zoneinfo import ZoneInfo

from qa.io.cards import NOT_STICKER
from qa.rubric import Hours, Rubric
from qa.schema import Conversation, Message
from qa.text import normalize


# a customer message that only acknowledges or thanks (on the normalised text: simplified, lower case)
# (a sticker's placeholder such as [捂脸] is one; an export's placeholder for a voice message, a file, a location, a
# link, a red packet or a transfer is not, as ``qa.io.cards`` reads them: what it says is unknown, it asks for an answer)
_ACK = re.compile(r"(?:好的?|好滴|好嘞|好吧|好哒|好哦|好滴呢|嗯+|恩+|哦+|噢+|ok|okay|谢谢|谢了|多谢|感谢|thx|thanks|thank you|"
                  r"收到|知道了|明白了?|了解了?|懂了|行吧|行|没问题|没事了|没有了|没了|拜拜|再见|bye|晚安|88+|886|"
                  r"我(?:再)?考虑(?:一)?下|考虑考虑|我再看看|再看看|先这样|先不用了|不用了|[\s\W_]|"
                  r"\[[\u4e00-\u9fff]{1,4}\]|[亲啦呀哈了呢滴哒嘛的吧那])+")
_BRACKETED = re.compile(r"\[([\u4e00-\u9fff]{1,4})\]")
# what is left once punctuation and particles go: nothing (亲, 那呢, 。。) is a call for the agent, not an acknowledgement
_PARTICLES = re.compile(r"[\s\u3000-\u303f!-/:-@\[-`{-~\u2026亲啦呀了呢滴哒嘛的吧那]*")


def acknowledges(norm: str) -> bool:
    """Normalised text that only acknowledges, thanks or signs off. A question mark anywhere (？, 亲？, 那呢？: a
    customer chasing an answer) and particles alone (亲) ask for a reply."""
    return ("?" not in norm and _ACK.fullmatch(norm) is not None and _PARTICLES.fullmatch(norm) is None
            and not any(name in NOT_STICKER for name in _BRACKETED.findall(norm)))


def is_acknowledgement(mtype: str, text: str | None) -> bool:
    """A customer message that needs no reply: an emoji alone, or text that only acknowledges, thanks or signs off
    (好的 谢谢, ok, 收到, 晚安, 我再看看)."""
    return mtype == "emoji" or (mtype == "text" and bool(text) and acknowledges(normalize(text)))


def needs_reply(m: Message) -> bool:
    """A customer message asks for something: not ``is_acknowledgement`` (its normalised text is cached)."""
    return not (m.type == "emoji" or (m.type == "text" and bool(m.text) and acknowledges(m.norm)))


# Times are clamped into this span before service hours are counted, so that no local date falls off the
# calendar (readers already reject times outside qa.schema.TS_MIN .. TS_MAX; this guards direct callers).
_FIRST = dt.datetime(1, 1, 3, tzinfo=dt.timezone.utc)
_LAST = dt.datetime(9999, 12, 29, tzinfo=dt.timezone.utc)


def service_seconds(start: dt.datetime, end: dt.datetime, hours: Hours) -> float:
    """Seconds of [start, end] that fall inside the daily service window (it may wrap past midnight).

    Days wholly inside the span count one full window each, by arithmetic: the cost does not grow with the gap.
    """
    if end <= start:
        return 0.0
    if hours.start == hours.end:
        return (end - start).total_seconds()
    zone = ZoneInfo(hours.tz)
    a, b = _clamp(start).astimezone(zone), _clamp(end).astimezone(zone)
    wrap = _DAYS[hours.end <= hours.start]   # a window past midnight ends the next day
    day, last = a.date() - _DAYS[1], b.date()
    total = 0.0
    if (last - day).days > 4:   # the windows of the days wholly inside [a, b] count in full, by arithmetic
        full_from, full_to = day + _DAYS[2], last - _DAYS[2]
        w0 = dt.datetime.combine(full_from, hours.start)
        total += ((full_to - full_from).days + 1) * (dt.datetime.combine(full_from + wrap, hours.end) - w0).total_seconds()
        days = (day, day + _DAYS[1], last - _DAYS[1], last)
    else:
        days = tuple(day + dt.timedelta(days=k) for k in range((last - day).days + 1))
    for day in days:
        w0 = dt.datetime.combine(day, hours.start, tzinfo=zone)
        w1 = dt.datetime.combine(day + wrap, hours.end, tzinfo=zone)
        lo, hi = max(a.timestamp(), w0.timestamp()), min(b.timestamp(), w1.timestamp())   # absolute time (DST)
        if hi > lo:
            total += hi - lo
    return total


_DAYS = (dt.timedelta(0), dt.timedelta(days=1), dt.timedelta(days=2))


def _clamp(t: dt.datetime) -> dt.datetime:
    """``t`` moved into ``_FIRST`` .. ``_LAST`` (only years 1 and 9999 need it: the cheap test comes first)."""
    return t if 1 < t.year < 9999 else min(max(t, _FIRST), _LAST)


@dataclasses.dataclass(frozen=True)
class Timing:
    """Flat timing figures of one conversation; ``None`` where a figure does not apply."""

    human_start: dt.datetime | None
    human_start_source: str | None          # "transfer" | "first_customer" | None
    human_service: bool                     # the chat reached (or needed) a human agent
    first_response_s: float | None          # service-hours seconds
    first_response_wall_s: float | None
    first_response_ok: bool | None          # within the rubric's first_response_s (2 min)
    reply_runs: int                         # customer runs in human service
    replies_ok: int                         # runs answered within reply_s (3 min)
    unanswered_runs: int
    reply_delays_s: tuple[float, ...]       # service-hours seconds of each answered run
    avg_reply_s: float | None
    responded_24h: bool | None
    handle_s: float | None
    reply_speed_level: int | None
    chat_time_level: int | None
    bot_only: bool
    night_messages: int                     # customer messages outside service hours

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["human_start"] = self.human_start.isoformat() if self.human_start else None
        d["reply_delays_s"] = list(self.reply_delays_s)
        return d


def _in_hours(t: dt.datetime, hours: Hours) -> bool:
    if hours.start == hours.end:
        return True
    local = t.astimezone(ZoneInfo(hours.tz)).time()
    if hours.start < hours.end:
        return hours.start <= local < hours.end
    return local >= hours.start or local < hours.end


def compute_timing(conv: Conversation, rubric: Rubric) -> Timing:
    cfg = rubric.timing
    hours = cfg.hours_for(conv.shop)
    msgs: list[Message] = [m for m in conv.messages if m.ts is not None]
    customer = [i for i, m in enumerate(msgs) if m.role == "customer"]
    has_agent = any(m.role == "agent" for m in msgs)
    has_bot = any(m.role == "bot" for m in msgs)

    transfer = next((i for i, m in enumerate(msgs) if m.type == "event" and m.event == "transfer_to_human"), None)
    if transfer is not None:
        start_i, source = transfer, "transfer"
    elif customer:
        start_i, source = customer[0], "first_customer"
    else:
        start_i, source = None, None
    bot_only = not has_agent and has_bot and transfer is None
    human_service = start_i is not None and not bot_only and bool(customer)   # a transfer alone asks nothing
    human_start = msgs[start_i].ts if start_i is not None else None

    first_s = first_wall = None
    first_ok = None
    if human_service:
        first_agent = next((m for m in msgs[start_i:] if m.role == "agent"), None)
        first_ok = False
        if first_agent is not None:
            first_s = service_seconds(human_start, first_agent.ts, hours)
            first_wall = (first_agent.ts - human_start).total_seconds()
            first_ok = first_s <= cfg.first_response_s

    delays: list[float] = []
    runs = unanswered = 0
    if human_service:
        i, n = start_i, len(msgs)
        while i < n:
            if msgs[i].role != "customer" or not needs_reply(msgs[i]):
                i += 1
                continue
            runs += 1
            run_start = msgs[i].ts
            j = i + 1
            while j < n and msgs[j].role != "agent":
                j += 1
            if j < n:
                delays.append(service_seconds(run_start, msgs[j].ts, hours))
            else:
                unanswered += 1
            i = j + 1
    avg = sum(delays) / len(delays) if delays else None
    if avg is None and not runs and first_s is not None:
        avg = first_s   # nothing asked after the first response (好的 only): that reply is the one to time

    responded = handle = None
    if customer:
        t0 = msgs[customer[0]].ts
        deadline = t0 + dt.timedelta(seconds=cfg.response_window_s)
        asking = [i for i in customer if needs_reply(msgs[i])] or customer
        last_customer = msgs[asking[-1]].ts
        agent_ts = [m.ts for m in msgs[customer[0]:] if m.role == "agent"]
        bot_ts = [m.ts for m in msgs[customer[0]:] if m.role == "bot"]
        bot_final = [t for t in bot_ts if t >= last_customer]
        responded = any(t <= deadline for t in agent_ts) or any(t <= deadline for t in bot_final)
        # the handling time runs to the last reply, the bot's in a bot-only chat, even when the customer wrote on
        replies = agent_ts or (bot_ts if bot_only else [])
        handle = (replies[-1] - t0).total_seconds() if replies else None

    dims = rubric.dimensions
    speed_dim, time_dim = dims.get("reply_speed"), dims.get("chat_time")
    speed_level = time_level = None
    if customer:
        worst = rubric.worst
        if speed_dim is not None:
            value = {"avg_reply_s": avg, "first_response_s": first_s, "handle_s": handle}[speed_dim.metric]
            if bot_only and responded:
                value = 0.0  # a bot answer the customer accepted is an instant reply
            speed_level = speed_dim.band_level(value) if value is not None else worst
        if time_dim is not None:
            value = {"avg_reply_s": avg, "first_response_s": first_s, "handle_s": handle}[time_dim.metric]
            time_level = time_dim.band_level(value) if value is not None else worst

    return Timing(
        human_start=human_start, human_start_source=source, human_service=human_service,
        first_response_s=first_s, first_response_wall_s=first_wall, first_response_ok=first_ok,
        reply_runs=runs, replies_ok=sum(d <= cfg.reply_s for d in delays), unanswered_runs=unanswered,
        reply_delays_s=tuple(delays), avg_reply_s=avg, responded_24h=responded, handle_s=handle,
        reply_speed_level=speed_level, chat_time_level=time_level, bot_only=bot_only,
        night_messages=sum(not _in_hours(msgs[i].ts, hours) for i in customer),
    )
