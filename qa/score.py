"""The grading core: conversation + rubric + its analysis (+ model prediction) → one ``Grade``.

``grade`` is pure (no I/O, no model call): ``qa.grader.Grader`` analyses a batch, asks the classifier for the
whole batch at once, then calls ``grade`` per conversation; every runner (the local pool of ``qa.batch``, a
cluster actor) maps batches through a ``Grader``.

Arithmetic: every weighted dimension starts at a base level — the model's level, the timing level of the
analysis, or the top of the scale for rule-only dimensions — and each rule that fired applies its effects once,
every ``cap`` before any ``deduct`` (``cap`` lowers the level to at most the cap, ``deduct`` moves it down the
scale), so the level does not hang on which finding came first. On a model-graded dimension a
``deduct`` counts from the top instead (two one-step deducts: at most two steps below the best level), because
the model's level already weighs what the rule saw: a curt chat with no greeting is a 3 from the model, and
taking another step off would count the missing greeting twice. A dimension earns
``weight × (position on the scale, best = 1, worst = 0)``, rounded to 0.01; the score is the sum, over 100 when
every weighted dimension applies, clamped to 0–100 (rounded points can add up to a few hundredths over 100). Weights of dimensions that do not apply are spread over the rest, and the record says why
in ``not_graded``: ``no_model`` (graded without a classifier), ``no_reply_turn`` (no agent or bot message: the
model dimensions grade an agent who never spoke, so they are left out and the chat is scored on timing —
unanswered is the worst level — and rules), ``no_customer`` (no customer message: nothing to time),
``no_timestamps`` (customer messages without times: nothing to time either). A red-line finding fails the
conversation: score 0. Every point lost is listed with its evidence in ``deductions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from qa.analysis import Analysis
from qa.errors import RubricError
from qa.grade import Deduction, DimensionGrade, Grade, band
from qa.rubric import Rubric
from qa.schema import Conversation

__all__ = ["band", "grade", "weights_for", "messages_record"]


_METRIC_NAMES = {"avg_reply_s": "平均回复时长", "first_response_s": "首次响应时长", "handle_s": "会话时长"}


def weights_for(rubric: Rubric, profile: str | None) -> dict[str, float]:
    """The profile's weights, or equal weights over every dimension when the rubric has no profiles or the profile
    sets none (one that only sets KPI thresholds scored every chat 0 before)."""
    if profile and rubric.profile(profile).weights:
        return dict(rubric.profile(profile).weights)
    if rubric.profiles and not profile:
        raise RubricError("a profile is needed to weigh the dimensions (one of: " + ", ".join(rubric.profiles)
                          + ")", file=str(rubric.path), key="profiles")
    return {d: 100 / len(rubric.dimensions) for d in rubric.dimensions}


def _position(rubric: Rubric, level) -> float:
    return 1 - rubric.scale.index(level) / (len(rubric.scale) - 1)


def _base(rubric: Rubric, dim: str, analysis: Analysis, prediction: Mapping | None
          ) -> tuple[dict[str, Any] | None, str | None]:
    """The dimension's starting point, or None and the reason it is not graded."""
    d = rubric.dimensions[dim]
    if d.source == "model":
        if not analysis.has_reply:
            return None, "no_reply_turn"
        p = (prediction or {}).get(dim)
        if p is None:
            return None, "no_model"
        return {"base_level": p.level, "expected": round(p.expected, 3),
                "probs": {str(k): round(v, 4) for k, v in p.probs.items()}, "confidence": round(p.confidence, 4),
                "evidence": tuple(p.evidence)}, None
    if d.source == "timing":
        level = analysis.timing_levels.get(dim)
        if level is None:   # no customer message, or none with a time (an export or corpus without times)
            return None, "no_customer" if not analysis.has_customer else "no_timestamps"
        return {"base_level": level, "value": getattr(analysis.timing, d.metric, None)}, None
    return {"base_level": rubric.best}, None


def messages_record(conv: Conversation) -> tuple[dict[str, Any], ...]:
    """The messages as a record keeps them; an event with its name (transfer_to_human), for the reviewer."""
    return tuple({"role": m.role, "type": m.type, "text": m.text, "ts": m.ts.isoformat() if m.ts else None,
                  **({"event": m.event} if m.type == "event" and m.event else {})} for m in conv.messages)


def grade(conv: Conversation, rubric: Rubric, analysis: Analysis, *, profile: str | None,
          prediction: Mapping | None = None, model: str | None = None, stamp: Mapping[str, Any] | None = None,
          messages: bool = True) -> Grade:
    """The graded record of one conversation (fields: docs/results.md). ``prediction``: dimension →
    ``qa.model.predict.DimensionPrediction`` (or anything with level/expected/probs/confidence/evidence)."""
    weights = weights_for(rubric, profile)
    dims: dict[str, dict] = {}
    not_graded: dict[str, str] = {}
    deductions: list[Deduction] = []
    for dim in weights:
        b, why = _base(rubric, dim, analysis, prediction)
        if b is None:
            not_graded[dim] = why
            continue
        d = rubric.dimensions[dim]
        dims[dim] = {"name": d.name, "source": d.source, "weight": weights[dim], "level": b["base_level"],
                     "base_level": b["base_level"], "expected": b.get("expected"), "probs": b.get("probs"),
                     "confidence": b.get("confidence"), "evidence": b.get("evidence", ()), "value": b.get("value")}
    scale_w = 100 / sum(dims[d]["weight"] for d in dims) if dims else 0.0

    def points(dim: str, level) -> float:
        return dims[dim]["weight"] * scale_w * _position(rubric, level)

    for dim, row in dims.items():
        lost = points(dim, rubric.best) - points(dim, row["base_level"])
        if lost > 1e-9:
            src = row["source"]
            if src == "model":
                reason = f"模型评为 {row['base_level']} 级"
            elif row["value"] is None:
                reason = f"{_METRIC_NAMES.get(rubric.dimensions[dim].metric, rubric.dimensions[dim].metric)}：未回复，" \
                         f"{row['base_level']} 级"
            else:
                reason = f"{_METRIC_NAMES.get(rubric.dimensions[dim].metric, rubric.dimensions[dim].metric)} " \
                         f"{row['value']:.0f} 秒，{row['base_level']} 级"
            deductions.append(Deduction(dim, round(lost, 2), reason, src, None,
                                        row["evidence"][0] if row["evidence"] else None, None, row["confidence"]))
    findings = analysis.findings
    first: dict = {}
    for f in findings:
        first.setdefault(f.rule, f)
    steps: dict[str, int] = {}     # per model dimension, the deduct steps so far (they bound from the top)
    # every cap first, then every deduct: the level does not depend on which finding came first
    effects = [(kind, rid, f, e) for kind in ("cap", "deduct") for rid, f in first.items() if rid in rubric.rules
               for e in rubric.rules[rid].effects if getattr(e, kind) and e.dimension in dims]
    for kind, rid, f, e in effects:
        row = dims[e.dimension]
        before = after = row["level"]
        if kind == "cap":
            if rubric.scale.index(e.cap) > rubric.scale.index(before):
                after = e.cap
        elif row["source"] == "model":   # the model's level already weighs what the rule saw
            steps[e.dimension] = steps.get(e.dimension, 0) + e.deduct
            bound = rubric.lower(rubric.best, steps[e.dimension])
            if rubric.scale.index(bound) > rubric.scale.index(after):
                after = bound
        else:
            after = rubric.lower(after, e.deduct)
        if after != before:
            row["level"] = after
            deductions.append(Deduction(e.dimension, round(points(e.dimension, before) - points(e.dimension, after), 2),
                                        f"{rubric.rules[rid].name}：{f.explanation}", "rule", rid, f.message,
                                        tuple(f.span) if f.span else None, None))
    for row in dims.values():
        row["points"] = round(row["weight"] * scale_w * _position(rubric, row["level"]), 2)
        row["weight"] = round(row["weight"] * scale_w, 2)   # the weight it earned with: others' spread over it
    red = next((f for f in findings if f.severity == "red_line"), None)
    failed = red is not None
    # the sum of rounded points can pass 100 by a few hundredths (seven weights of 100/7 give 7 × 14.29): clamp
    score = 0.0 if failed else min(100.0, max(0.0, round(sum(r["points"] for r in dims.values()), 2)))
    if red is not None:
        deductions.insert(0, Deduction(None, min(100.0, round(sum(r["points"] for r in dims.values()), 2)),
                                       f"红线：{red.name}（{red.explanation}）", "rule", red.rule, red.message,
                                       tuple(red.span) if red.span else None, None))
    timing = analysis.timing
    return Grade(
        id=conv.id, platform=conv.platform, shop=conv.shop, agent=conv.agent_name, customer=conv.customer,
        day=_day(conv, rubric, timing), profile=profile, rubric=rubric.name, model=model, score=score,
        band=band(score, failed), failed=failed,
        dimensions={k: DimensionGrade(**v) for k, v in dims.items()},
        findings=tuple(f.to_record() for f in findings), deductions=tuple(deductions),
        timing=timing.as_dict() if timing is not None else None,
        rating=conv.rating.model_dump(exclude_none=True) if conv.rating is not None else None,
        messages=messages_record(conv) if messages else None, warnings=tuple(conv.warnings),
        not_graded=not_graded, stamp=stamp)


def _day(conv: Conversation, rubric: Rubric, timing) -> str | None:
    when = (timing.human_start if timing else None) or next((m.ts for m in conv.messages if m.ts), None)
    if when is None:
        return None
    return when.astimezone(ZoneInfo(rubric.timing.hours_for(conv.shop).tz)).date().isoformat()
