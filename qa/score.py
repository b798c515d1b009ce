"""The grading core: conversation + rubric (+ rule findings, timing, model prediction) → one graded record.

``grade`` is pure (no I/O, no model call): the batch runner computes timing and findings, asks the classifier
for a whole batch at once, then calls ``grade`` per conversation. ``grade_batch`` does exactly that and is what
``qa grade`` and any other runner wrap.

Arithmetic: every weighted dimension starts at a base level — the model's level, the timing band, or the top
of the scale for rule-only dimensions — and each rule that fired applies its effects once (``cap`` lowers the
level to at most the cap, ``deduct`` moves it down the scale). A dimension earns
``weight × (position on the scale, best = 1, worst = 0)``; the score is the sum, over 100 when every weighted
dimension applies (weights of dimensions that do not apply — no model, no human reply to time — are spread
over the rest). A red-line finding fails the conversation: score 0. Every point lost is listed with its
evidence in ``deductions``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from qa.errors import RubricError
from qa.rubric import Rubric
from qa.rules.base import Finding
from qa.schema import Conversation
from qa.timing import Timing

BANDS = ((90, "优秀"), (75, "良好"), (60, "合格"), (None, "不合格"))


def band(score: float, failed: bool = False) -> str:
    return "不合格" if failed else next(name for lo, name in BANDS if lo is None or score >= lo)


def weights_for(rubric: Rubric, profile: str | None) -> dict[str, float]:
    """The profile's weights, or equal weights over every dimension when the rubric has no profiles."""
    if profile:
        return dict(rubric.profile(profile).weights)
    if rubric.profiles:
        raise RubricError("a profile is needed to weigh the dimensions (one of: " + ", ".join(rubric.profiles)
                          + ")", file=str(rubric.path), key="profiles")
    return {d: 100 / len(rubric.dimensions) for d in rubric.dimensions}


def _position(rubric: Rubric, level) -> float:
    return 1 - rubric.scale.index(level) / (len(rubric.scale) - 1)


def _base(rubric: Rubric, dim: str, timing: Timing | None, prediction: dict | None) -> dict[str, Any] | None:
    d = rubric.dimensions[dim]
    if d.source == "model":
        p = (prediction or {}).get(dim)
        if p is None:
            return None
        return {"base_level": p.level, "expected": round(p.expected, 3),
                "probs": {str(k): round(v, 4) for k, v in p.probs.items()}, "confidence": round(p.confidence, 4),
                "evidence": list(p.evidence)}
    if d.source == "timing":
        value = getattr(timing, d.metric, None) if timing is not None else None
        level = d.band_level(value)
        if level is None:
            return None
        return {"base_level": level, "value": value}
    return {"base_level": rubric.best}


def grade(conv: Conversation, rubric: Rubric, *, profile: str | None, findings: Sequence[Finding],
          timing: Timing | None, prediction: dict | None = None, model: str | None = None) -> dict[str, Any]:
    """The graded record of one conversation (fields: docs/results.md)."""
    weights = weights_for(rubric, profile)
    dims: dict[str, dict] = {}
    deductions: list[dict] = []
    for dim in weights:
        b = _base(rubric, dim, timing, prediction)
        if b is None:
            continue
        d = rubric.dimensions[dim]
        dims[dim] = {"name": d.name, "source": d.source, "weight": weights[dim], "level": b["base_level"],
                     "base_level": b["base_level"], "expected": b.get("expected"), "probs": b.get("probs"),
                     "confidence": b.get("confidence"), "evidence": b.get("evidence", []), "value": b.get("value")}
    scale_w = 100 / sum(dims[d]["weight"] for d in dims) if dims else 0.0

    def points(dim: str, level) -> float:
        return dims[dim]["weight"] * scale_w * _position(rubric, level)

    for dim, row in dims.items():
        lost = points(dim, rubric.best) - points(dim, row["base_level"])
        if lost > 1e-9:
            src = row["source"]
            reason = (f"模型评为 {row['base_level']} 级" if src == "model" else
                      f"{rubric.dimensions[dim].metric} = {row['value']:.0f} s，{row['base_level']} 级")
            deductions.append({"dimension": dim, "points": round(lost, 2), "reason": reason, "source": src,
                               "rule": None, "message": row["evidence"][0] if row["evidence"] else None,
                               "span": None, "confidence": row["confidence"]})
    first: dict[str, Finding] = {}
    for f in findings:
        first.setdefault(f.rule, f)
    for rid, f in first.items():
        rule = rubric.rules.get(rid)
        if rule is None:
            continue
        for e in rule.effects:
            if e.dimension not in dims:
                continue
            row = dims[e.dimension]
            before = row["level"]
            after = before
            if e.cap is not None and rubric.scale.index(e.cap) > rubric.scale.index(before):
                after = e.cap
            if e.deduct:
                after = rubric.lower(after, e.deduct)
            if after != before:
                row["level"] = after
                deductions.append({"dimension": e.dimension, "points": round(points(e.dimension, before)
                                                                             - points(e.dimension, after), 2),
                                   "reason": f"{rule.name}：{f.explanation}", "source": "rule", "rule": rid,
                                   "message": f.message, "span": list(f.span) if f.span else None,
                                   "confidence": None})
    for row in dims.values():
        row["points"] = round(row["weight"] * scale_w * _position(rubric, row["level"]), 2)
    failed = any(f.severity == "red_line" for f in findings)
    score = 0.0 if failed else round(sum(r["points"] for r in dims.values()), 2)
    if failed:
        red = next(f for f in findings if f.severity == "red_line")
        deductions.insert(0, {"dimension": None, "points": round(sum(r["points"] for r in dims.values()), 2),
                              "reason": f"红线：{red.name}（{red.explanation}）", "source": "rule", "rule": red.rule,
                              "message": red.message, "span": list(red.span) if red.span else None,
                              "confidence": None})
    return {
        "id": conv.id, "platform": conv.platform, "shop": conv.shop, "agent": conv.agent_name,
        "customer": conv.customer, "day": _day(conv, rubric, timing), "profile": profile, "rubric": rubric.name,
        "model": model, "score": score, "band": band(score, failed), "failed": failed,
        "dimensions": dims, "findings": [f.to_record() for f in findings], "deductions": deductions,
        "timing": timing.as_dict() if timing is not None else None,
        "rating": conv.rating.model_dump(exclude_none=True) if conv.rating is not None else None,
        "messages": [{"role": m.role, "type": m.type, "text": m.text, "ts": m.ts.isoformat() if m.ts else None}
                     for m in conv.messages],
        "warnings": list(conv.warnings),
    }


def _day(conv: Conversation, rubric: Rubric, timing: Timing | None) -> str | None:
    when = (timing.human_start if timing else None) or next((m.ts for m in conv.messages if m.ts), None)
    if when is None:
        return None
    return when.astimezone(ZoneInfo(rubric.timing.hours_for(conv.shop).tz)).date().isoformat()


@dataclasses.dataclass
class Grader:
    """Everything a batch of grading needs, built once: rubric, profile, rule engine, optional classifier."""

    rubric: Rubric
    profile: str | None
    engine: Any = None            # qa.rules.RuleEngine
    classifier: Any = None        # qa.model.predict.Classifier (None: model dimensions are left out)
    batch_size: int = 64

    def grade_batch(self, convs: Sequence[Conversation], *, profile: str | None = None,
                    stages: dict[str, float] | None = None) -> list[dict[str, Any]]:
        """Timing and rules per conversation, the model once for the batch, then ``grade`` per conversation.
        ``stages`` (if given) accumulates the seconds spent in each step."""
        from qa.timing import compute_timing
        clock = _Clock(stages)
        with clock("metrics"):
            timings = [compute_timing(c, self.rubric) for c in convs]
        with clock("rules"):
            findings = [self.engine.check(c, t) if self.engine else [] for c, t in zip(convs, timings)]
        with clock("model"):
            preds = (self.classifier.predict(list(convs), findings=findings, timings=timings,
                                             batch_size=self.batch_size)
                     if self.classifier is not None else [None] * len(convs))
        name = self.classifier.path.name if self.classifier is not None else None
        with clock("score"):
            return [grade(c, self.rubric, profile=profile or self.profile, findings=f, timing=t, prediction=p,
                          model=name) for c, t, f, p in zip(convs, timings, findings, preds)]


class _Clock:
    def __init__(self, stages: dict[str, float] | None):
        self.stages = stages

    @contextlib.contextmanager
    def __call__(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            if self.stages is not None:
                self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t
