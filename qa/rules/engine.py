"""The rule engine: compiled once from a rubric, then ``check(conversation, timing)`` → findings."""

from __future__ import annotations

import re

from qa.errors import RubricError
from qa.rubric import Rubric
from qa.rules import checks as _checks  # noqa: F401  (registers the default checks)
from qa.rules.base import REGISTRY, Context, Finding, ParamError, check_params
from qa.rules.lexicon import Lexicon
from qa.schema import Conversation
from qa.timing import Timing, compute_timing


class RuleEngine:
    """Runs every rule of a rubric; each finding names its rule, severity, message and span."""

    def __init__(self, rubric: Rubric, *, max_per_rule: int = 5):
        self.rubric, self.max_per_rule = rubric, max_per_rule
        self.lexicon = Lexicon(rubric.lexicon_data(), source=str(rubric.lexicon_file))
        self.checks = []
        for rid, rule in rubric.rules.items():
            name = rule.check or f"{rid}.v1"
            if name not in REGISTRY:
                raise RubricError(f"unknown check {name!r} (registered: {', '.join(sorted(REGISTRY))})",
                                  file=str(rubric.path), key=f"rules -> {rid} -> check")
            try:
                check_params(name, rule.params)
            except ParamError as e:
                key = " -> ".join(["rules", rid, "params", *e.key.split(".")])
                raise RubricError(str(e), file=str(rubric.path), key=key) from None
            self.checks.append((rid, rule, REGISTRY[name]))
        for fid, flag in rubric.model_flags.items():
            for c in flag.veto:
                if c not in self.lexicon.categories:
                    raise RubricError(f"{c!r} is not a category of the lexicon {rubric.lexicon}",
                                      file=str(rubric.path), key=f"model_flags -> {fid} -> veto")
        self._dry_run()

    def _dry_run(self) -> None:
        """Run every check once on a small chat, so that params a check cannot use (a bad regex, a list where
        it wants a mapping) are a RubricError naming the rule now, not a traceback in the middle of a run."""
        conv = Conversation.model_validate({"id": "dry-run", "platform": "douyin", "messages": [
            {"role": "customer", "type": "text", "text": "在吗 这个多少钱 什么时候发货 穿多大码"},
            {"role": "agent", "type": "text", "text": "您好 59元 明天发 m码 感谢支持"},
            {"role": "customer", "type": "product_card", "text": "商品"},
            {"role": "agent", "type": "text", "text": "亲 请问是这款吗"}]})
        ctx = self.context(conv)
        for rid, rule, fn in self.checks:
            try:
                list(fn(ctx, rule.params))
            except Exception as e:  # noqa: BLE001 — whatever the params make the check raise
                why = f"bad regex ({e})" if isinstance(e, re.error) else f"{type(e).__name__}: {e}"
                raise RubricError(f"the check cannot run with these params: {why}",
                                  file=str(self.rubric.path), key=f"rules -> {rid} -> params") from None

    def holds(self, conv: Conversation, message: int | None, categories: list[str]) -> bool:
        """Whether text message ``message`` of ``conv`` holds a hit of any of these lexicon categories."""
        if message is None or not 0 <= message < len(conv.messages) or conv.messages[message].type != "text":
            return False
        hits = self.lexicon.scan([conv.messages[message].norm])
        return any(hits.get(c) for c in categories)

    def context(self, conv: Conversation, timing: Timing | None = None) -> Context:
        texts = [m.norm if m.type == "text" else None for m in conv.messages]
        return Context(conv, timing or compute_timing(conv, self.rubric), self.lexicon.scan(texts),
                       self.rubric.timing.first_response_s)

    def check(self, conv: Conversation, timing: Timing | None = None) -> list[Finding]:
        ctx = self.context(conv, timing)
        out: list[Finding] = []
        for rid, rule, fn in self.checks:
            seen: set[int | None] = set()
            for d in fn(ctx, rule.params):
                if d.message in seen:  # one finding per message and rule is evidence enough
                    continue
                seen.add(d.message)
                if len(seen) > self.max_per_rule:
                    break
                evidence = None
                if d.message is not None:
                    text = conv.messages[d.message].text or ""
                    evidence = text[d.span[0]:d.span[1]] if d.span else text
                out.append(Finding(rid, rule.severity, rule.name, d.explanation, d.message, d.span, evidence))
        return out
