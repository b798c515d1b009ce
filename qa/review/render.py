"""What a reviewer reads, format-free: the chat as marked segments, findings and model grades as lines.

The record passed in is already masked (``mask_record``); masking keeps text lengths, so finding spans still
point at the same characters. Markers: 【…】 around a rule finding's span, ▶ before a message a finding
or the model's evidence points at.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from qa.review.records import EVENT_ZH, ROLE_ZH, TYPE_ZH, model_dimensions
from qa.review.sample import REASON_ZH

MARK_OPEN, MARK_CLOSE, POINTER = "【", "】", "▶"
SEVERITY_ZH = {"red_line": "红线", "major": "严重", "minor": "轻微"}
Segment = tuple[str, str | None]   # (text, style): style None | "span" (finding span) | "line" (pointed-at line)


def _spans(rec: dict[str, Any]) -> tuple[dict[int, list[tuple[int, int]]], set[int]]:
    """Merged finding spans per message, and the messages a finding or the model's evidence points at."""
    spans: dict[int, list[tuple[int, int]]] = {}
    pointed: set[int] = set()
    for f in rec.get("findings") or []:
        i = f.get("message")
        if not isinstance(i, int):
            continue
        pointed.add(i)
        if f.get("span"):
            spans.setdefault(i, []).append((int(f["span"][0]), int(f["span"][1])))
    for d in model_dimensions(rec).values():
        pointed.update(i for i in d.get("evidence") or [] if isinstance(i, int))
    merged = {}
    for i, ss in spans.items():
        out: list[list[int]] = []
        for s, e in sorted(ss):
            if out and s <= out[-1][1]:
                out[-1][1] = max(out[-1][1], e)
            else:
                out.append([s, e])
        merged[i] = [(s, e) for s, e in out]
    return merged, pointed


def _when(ts: Any, first_day: dt.date | None) -> str:
    try:
        t = dt.datetime.fromisoformat(str(ts))
    except ValueError:
        return "--:--"
    return t.strftime("%H:%M") if t.date() == first_day else t.strftime("%m-%d %H:%M")


def _day(ts: Any) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(str(ts)).date()
    except ValueError:
        return None


def message_lines(rec: dict[str, Any]) -> list[tuple[Segment, list[Segment]]]:
    """Per message: the head ``#3 [客服 10:16] `` and the body, finding spans as ``span`` segments in 【】."""
    msgs = rec.get("messages") or []
    spans, pointed = _spans(rec)
    first_day = next((d for d in (_day(m.get("ts")) for m in msgs) if d), None)
    out = []
    for i, m in enumerate(msgs):
        head = f"#{i} [{ROLE_ZH.get(m.get('role'), m.get('role'))} {_when(m.get('ts'), first_day)}] "
        body: list[Segment] = []
        mtype, text = m.get("type") or "text", m.get("text") or ""
        if mtype != "text":
            event = m.get("event") if mtype == "event" else None
            label = TYPE_ZH.get(mtype, mtype) + (f" {EVENT_ZH.get(event, event)}" if event else "")
            body.append((f"[{label}]" + (" " if text else ""), None))
        pos = 0
        for s, e in spans.get(i, []):
            s, e = max(s, pos), min(e, len(text))
            if s < e:
                body += [(text[pos:s], None), (MARK_OPEN + text[s:e] + MARK_CLOSE, "span")]
                pos = e
        body.append((text[pos:], None))
        out.append(((POINTER + head, "line") if i in pointed else (head, None), [b for b in body if b[0]]))
    return out


def chat_segments(rec: dict[str, Any]) -> list[Segment]:
    """The whole chat, one line per message."""
    out: list[Segment] = []
    for i, (head, body) in enumerate(message_lines(rec)):
        out += [("\n", None)] * bool(i) + [head] + body
    return out


def plain(segments: list[Segment]) -> str:
    return "".join(t for t, _ in segments)


def findings_text(rec: dict[str, Any]) -> str:
    """One line per rule finding: severity, rule, message index, evidence, explanation."""
    lines = []
    for f in rec.get("findings") or []:
        where = f" #{f['message']}" if isinstance(f.get("message"), int) else ""
        ev = f" {MARK_OPEN}{f['evidence']}{MARK_CLOSE}" if f.get("evidence") else ""
        lines.append(f"[{SEVERITY_ZH.get(f.get('severity'), f.get('severity'))}] {f.get('name') or f.get('rule')}"
                     f"{where}{ev}: {f.get('explanation') or ''}")
    return "\n".join(lines)


def deductions_text(rec: dict[str, Any]) -> str:
    """One line per point taken off, as the score was made: points, dimension, reason and message (``#N``)."""
    names = {k: (d or {}).get("name") or k for k, d in (rec.get("dimensions") or {}).items()}
    lines = []
    for d in rec.get("deductions") or []:
        if not isinstance(d, dict):
            continue
        where = f" #{d['message']}" if isinstance(d.get("message"), int) else ""
        dim = names.get(d.get("dimension"), d.get("dimension") or "总分")
        lines.append(f"-{d.get('points', 0):g} {dim}{where}: {d.get('reason') or ''}")
    return "\n".join(lines)


def model_text(rec: dict[str, Any]) -> str:
    """Per model dimension: final level, the classifier's own level and confidence, the rules that moved it."""
    lines = []
    for k, d in model_dimensions(rec).items():
        s = f"{d.get('name') or k}: {d.get('level')}"
        extra = []
        if d.get("base_level") is not None:
            extra.append(f"模型{d['base_level']}")
        if isinstance(d.get("confidence"), (int, float)):
            extra.append(f"置信{d['confidence']:.2f}")
        probs = d.get("probs") if isinstance(d.get("probs"), dict) else {}
        top = max(probs.items(), key=lambda kv: kv[1], default=None) if probs else None
        if top and isinstance(top[1], (int, float)) and str(top[0]) != str(d.get("base_level")):
            # the calibrated level (cutpoints over the expected grade) is not the single most likely one
            extra.append(f"最可能{top[0]} {top[1]:.2f}")
        names = {f.get("rule"): f.get("name") for f in rec.get("findings") or [] if isinstance(f, dict)}
        rules = [names.get(x.get("rule")) or x.get("rule") for x in rec.get("deductions") or []
                 if x.get("dimension") == k and x.get("source") == "rule" and x.get("rule")]
        if rules:
            extra.append("规则: " + ", ".join(dict.fromkeys(rules)))
        lines.append(s + (f" ({' · '.join(extra)})" if extra else ""))
    return "\n".join(lines)


def pick_text(rec: dict[str, Any]) -> str:
    reason = rec.get("pick_reason")
    if not reason:
        return ""
    detail = rec.get("pick_detail") or ""
    label = REASON_ZH.get(reason, reason)
    return label if not detail or detail == label else f"{label}: {detail}"
