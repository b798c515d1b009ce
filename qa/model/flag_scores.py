"""Rule flags against reviewers: per rule true/false positives and misses, precision, recall, F1 and micro-F1.

A chat's gold flags are its first review's ``rules`` (or a named reviewer's); a rule "fires" when the chat has a
finding of it. Chats without timestamps are not scored on the timing rule ``slow_first_response``. Used by
``qa eval`` (the rule checks alone, and rules plus the model as ``qa grade`` combines them) and by
``bench/rules_vs_labels.py``.
"""

from __future__ import annotations

import collections
from collections.abc import Collection, Iterable, Sequence

TIMED = ("slow_first_response",)


def gold_flags(conv, reviewer: str | None = None) -> set[str] | None:
    """The first review's (or ``reviewer``'s) flagged rules; None when no review lists rules."""
    reviews = [r for r in (conv.labels or {}).get("reviews") or [] if isinstance(r, dict) and "rules" in r]
    if reviewer:
        reviews = [r for r in reviews if r.get("reviewer") == reviewer]
    return set(reviews[0]["rules"]) if reviews else None


def rules_problem(conv, known: Collection[str] | None = None) -> tuple[str, str] | None:
    """(field, what is wrong) for the first review whose ``rules`` is not a list of rule names (of ``known``, the
    rubric's rule ids, when given: a misspelt name would read as a rule the reviewer did not flag), else None."""
    reviews = (conv.labels or {}).get("reviews") or []
    for i, r in enumerate(reviews if isinstance(reviews, list) else ()):
        rules = r.get("rules") if isinstance(r, dict) else None
        if isinstance(r, dict) and "rules" in r and not (isinstance(rules, list)
                                                         and all(isinstance(x, str) for x in rules)):
            return f"labels.reviews[{i}].rules", f"{rules!r} is not a list of rule names"
        if known is not None and isinstance(rules, list) and (bad := [x for x in rules if x not in known]):
            return f"labels.reviews[{i}].rules", f"{bad[0]!r} is not a rule of this rubric"
    return None


def check_rules(examples: Iterable, known: Collection[str]) -> None:
    """Raise ``InputError`` naming the file, conversation and field of the first review whose ``rules`` is not a
    list of ``known`` rule ids."""
    from qa.errors import InputError
    for e in examples:
        if bad := rules_problem(e.conv, known):
            raise InputError(f"conversation {e.conv.id}: {bad[1]}", file=e.source or None, field=bad[0])


def counts(convs: Sequence, fired: Iterable[set[str]], rules: Sequence[str], reviewer: str | None = None):
    """(tp, fp, fn) Counters per rule over the chats with gold flags; ``fired``: per chat the rules it has a
    finding of."""
    tp, fp, fn = collections.Counter(), collections.Counter(), collections.Counter()
    for conv, pred in zip(convs, fired):
        gold = gold_flags(conv, reviewer)
        if gold is None:
            continue
        timed = any(m.ts is not None for m in conv.messages)
        for r in rules:
            if r in TIMED and not timed:
                continue
            if r in gold and r in pred:
                tp[r] += 1
            elif r in pred:
                fp[r] += 1
            elif r in gold:
                fn[r] += 1
    return tp, fp, fn


def scores(tp, fp, fn, rules: Sequence[str]) -> dict[str, dict]:
    """Per rule and ``micro``: gold, predicted, precision, recall, F1 (None where undefined)."""
    def one(t, f, n):
        p = t / (t + f) if t + f else None
        r = t / (t + n) if t + n else None
        f1 = 2 * t / (2 * t + f + n) if t + f + n else None
        return {"gold": t + n, "predicted": t + f, "precision": p, "recall": r, "f1": f1}
    out = {r: one(tp[r], fp[r], fn[r]) for r in rules}
    out["micro"] = one(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return out


def flag_report(clf, convs: Sequence, analyses: Sequence, preds: Sequence, reviewer: str | None = None) -> dict | None:
    """Rule flags of ``convs`` (those with gold flags) scored for the rule checks alone and for rules + the model
    as ``qa grade`` combines them (``qa.grader.Grader.with_model_flags``: the model's raised flags added, the vetoes
    applied; a chat with no reply keeps its rule findings). ``analyses`` and ``preds``: the chats' rule analyses and
    the classifier's predictions, made once by the caller. None when no chat has a review that lists rules."""
    from qa.analysis import default_engine
    from qa.grader import Grader
    keep = [i for i, c in enumerate(convs) if gold_flags(c, reviewer) is not None]
    if not keep or not clf.rubric.rules:
        return None
    grader = Grader(clf.rubric, engine=default_engine(clf.rubric), classifier=clf)   # its lexicon vetoes
    convs, analyses = [convs[i] for i in keep], [analyses[i] for i in keep]
    combined = [grader.with_model_flags(c, a, preds[i] if a.has_reply else None)
                for c, a, i in zip(convs, analyses, keep)]
    rules = list(clf.rubric.rules)
    return {"chats": len(convs), "gold": f"reviewer {reviewer}" if reviewer else "first review",
            "systems": {name: scores(*counts(convs, [{f.rule for f in a.findings} for a in found], rules, reviewer),
                                     rules)
                        for name, found in (("rules", analyses), ("rules+model", combined))}}
