"""Rule findings + the classifier's raised flags → one list of findings, each saying who found it.

A rule finding the model also raised becomes ``source="both"`` (the rule's evidence span is kept); a flag only
the model raised becomes a finding of its own with ``source="model"``, the evidence message the model picked
and the probability in its explanation. A rule finding the model did not raise is dropped where the model's
probability for it is below the flag's **veto** (``flag_vetoes`` in the model's config, chosen on its dev split:
on the training chats most lexicon-only vague and unanswered findings were false alarms); a red line is never
dropped. Pure: no model or engine is loaded here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from qa.rubric import Rubric
from qa.rules.base import Finding
from qa.safety import clip


def vetoed(rule: str, rubric: Rubric, probs: dict[str, float] | None, vetoes: dict[str, float] | None,
           raised: Iterable[str] = ()) -> bool:
    """Whether a rule finding of ``rule`` is dropped: the model did not raise it, its probability is below the
    flag's veto, and it is no red line."""
    if not vetoes or rule not in vetoes or probs is None or rule not in probs or rule in raised:
        return False
    spec = rubric.rules.get(rule)
    return (spec is None or spec.severity != "red_line") and probs[rule] < vetoes[rule]


def combine(findings: Iterable[Finding], raised: Iterable, rubric: Rubric, conv=None, engine=None,
            probs: dict[str, float] | None = None, vetoes: dict[str, float] | None = None) -> list[Finding]:
    """``raised``: objects with ``rule``, ``prob``, ``threshold`` and ``message`` (``FlagPrediction``); only
    flags the rubric lists under ``model_flags`` are used. With ``engine`` (a ``RuleEngine``) and ``conv``, a flag
    only the model raised is dropped when its evidence message holds a lexicon category of the flag's ``veto``.
    ``probs`` (flag → the model's probability) and ``vetoes`` (flag → veto): rule findings to drop (``vetoed``)."""
    raised = list(raised)
    up = {r.rule for r in raised if r.rule in rubric.model_flags}
    out = [f for f in findings if f.source != "rule" or not vetoed(f.rule, rubric, probs, vetoes, up)]
    fired = {f.rule for f in out}
    for r in raised:
        if r.rule not in rubric.model_flags or r.rule not in rubric.rules:
            continue
        if r.rule in fired:
            out = [dataclasses.replace(f, source="both") if f.rule == r.rule else f for f in out]
            continue
        veto = rubric.model_flags[r.rule].veto
        if veto and engine is not None and conv is not None and engine.holds(conv, r.message, veto):
            continue
        rule = rubric.rules[r.rule]
        evidence = None
        if conv is not None and r.message is not None and 0 <= r.message < len(conv.messages):
            evidence = clip(conv.messages[r.message].text or "", 60) or None   # masked on export: no number cut
        why = f"；{r.why}" if getattr(r, "why", None) else ""
        where = f"消息 #{r.message}，" if r.message is not None else ""
        out.append(Finding(r.rule, rule.severity, rule.name,
                           f"模型判断为{rule.name}（{where}概率 {r.prob:.2f} ≥ 阈值 {r.threshold:.2f}{why}；规则未命中，请复核）",
                           r.message, None, evidence, source="model"))
        fired.add(r.rule)
    return out
