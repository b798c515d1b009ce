"""Rule findings + the classifier's raised flags → one list of findings, each saying who found it.

A rule finding the model also raised becomes ``source="both"`` (the rule's evidence span is kept); a flag only
the model raised becomes a finding of its own with ``source="model"``, the evidence message the model picked
and the probability in its explanation. Pure: no model or engine is loaded here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from qa.rubric import Rubric
from qa.rules.base import Finding


def combine(findings: Iterable[Finding], raised: Iterable, rubric: Rubric, conv=None, engine=None) -> list[Finding]:
    """``raised``: objects with ``rule``, ``prob``, ``threshold`` and ``message`` (``FlagPrediction``); only
    flags the rubric lists under ``model_flags`` are used. With ``engine`` (a ``RuleEngine``) and ``conv``, a flag
    only the model raised is dropped when its evidence message holds a lexicon category of the flag's ``veto``."""
    out = list(findings)
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
            evidence = (conv.messages[r.message].text or "")[:60] or None
        out.append(Finding(r.rule, rule.severity, rule.name, f"模型判断（概率 {r.prob:.2f} ≥ 阈值 {r.threshold:.2f}）",
                           r.message, None, evidence, source="model"))
        fired.add(r.rule)
    return out
