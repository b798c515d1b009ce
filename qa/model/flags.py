"""Rule flags and turn labels the classifier learns: targets from reviews, tensors for a batch, thresholds.

A conversation's flag target is the share of its reviewers who flagged it (reviews without a ``rules`` list
don't count). Turn labels come from ``labels.turns`` (``data/labelled/real/FORMAT.md``): per customer message
``request`` and ``unanswered`` (a request that no message answers), per agent/bot message ``vague``,
``uncivil`` and ``pii``; several reviewers' turn labels are averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qa.schema import Conversation


def flag_targets(conv: Conversation, flags: Sequence[str]) -> dict[str, float]:
    """Flag → share of reviewers who raised it; empty when no review lists its rules."""
    reviews = [r for r in (conv.labels or {}).get("reviews") or []
               if isinstance(r, dict) and isinstance(r.get("rules"), list)]
    if not reviews:
        return {}
    return {f: sum(f in r["rules"] for r in reviews) / len(reviews) for f in flags}


def _turn_sets(conv: Conversation) -> list[dict]:
    labels = conv.labels or {}
    sets = [labels["turns"]] if isinstance(labels.get("turns"), dict) else []
    sets += [r["turns"] for r in labels.get("reviews") or [] if isinstance(r, dict) and isinstance(r.get("turns"), dict)]
    return sets


def _rows(turn_set: dict, side: str) -> list[dict]:
    """One side's turn label rows; anything else there (a string, a null row) is no label."""
    rows = turn_set.get(side)
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def turn_targets(conv: Conversation, turn_labels: dict[str, list[str]]) -> dict[int, dict[str, float]]:
    """Message index → {label: share of reviewers}; only messages some reviewer labelled."""
    acc: dict[int, dict[str, list[float]]] = {}
    for ts in _turn_sets(conv):
        for row in _rows(ts, "customer"):
            i = row.get("i")
            if not isinstance(i, int) or not 0 <= i < len(conv.messages):
                continue
            req = bool(row.get("request"))
            vals = {"request": float(req), "unanswered": float(req and row.get("answered_by") is None)}
            for k in turn_labels.get("customer", []):
                if k in vals:
                    acc.setdefault(i, {}).setdefault(k, []).append(vals[k])
        for row in _rows(ts, "agent"):
            i = row.get("i")
            if not isinstance(i, int) or not 0 <= i < len(conv.messages):
                continue
            for k in turn_labels.get("agent", []):
                if k in row:
                    acc.setdefault(i, {}).setdefault(k, []).append(float(bool(row[k])))
    return {i: {k: float(np.mean(v)) for k, v in d.items()} for i, d in acc.items()}


def flag_tensors(targets: Sequence[dict[str, float]], flags: Sequence[str]):
    """[B, F] targets and mask."""
    import torch
    lab = torch.zeros(len(targets), len(flags))
    mask = torch.zeros(len(targets), len(flags), dtype=torch.bool)
    for b, t in enumerate(targets):
        for j, f in enumerate(flags):
            if f in t:
                lab[b, j], mask[b, j] = t[f], True
    return lab, mask


def turn_tensors(all_turns, targets: Sequence[dict[int, dict[str, float]]], turn_labels: dict[str, list[str]]):
    """[B, M, K] targets and mask over the model's turns; K = the longest role's label list (each role's
    turns use that role's labels in order)."""
    import torch
    width = max((len(t) for t in all_turns), default=1) or 1
    k = max(len(v) for v in turn_labels.values())
    lab = torch.zeros(len(all_turns), width, k)
    mask = torch.zeros(len(all_turns), width, k, dtype=torch.bool)
    for b, (ts, tgt) in enumerate(zip(all_turns, targets)):
        for j, t in enumerate(ts):
            row = tgt.get(t.index)
            if not row:
                continue
            names = turn_labels.get("customer" if t.role == "customer" else "agent", [])
            for c, name in enumerate(names):
                if name in row:
                    lab[b, j, c], mask[b, j, c] = row[name], True
    return lab, mask


def best_threshold(probs: np.ndarray, gold: np.ndarray, base: np.ndarray | None = None,
                   grid: Sequence[float] | None = None) -> tuple[float, float]:
    """The threshold on ``probs`` with the best F1 against ``gold`` (booleans) of ``base | probs ≥ t``
    (``base``: what the rule checks already found), and that F1. The grid ends above 1 — "the model adds
    nothing" — and ties go to the higher threshold (fewer false alarms). No positive in ``gold``: never fire."""
    gold = np.asarray(gold, dtype=bool)
    base = np.zeros_like(gold) if base is None else np.asarray(base, dtype=bool)
    if not gold.any():
        return 1.01, float("nan")
    grid = list(np.linspace(0.05, 0.95, 19)) + [1.01] if grid is None else grid
    best_t, best_f = 1.01, -1.0
    for t in grid:
        pred = base | (probs >= t)
        tp = float((pred & gold).sum())
        f1 = 2 * tp / max(1.0, pred.sum() + gold.sum())
        if f1 >= best_f:
            best_t, best_f = float(t), f1
    return best_t, best_f


VETO_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 1.01)


def best_veto(probs: np.ndarray, gold: np.ndarray, fired: np.ndarray, raised: np.ndarray,
              grid: Sequence[float] = VETO_GRID) -> tuple[float, float]:
    """The veto on ``probs`` with the best F1 against ``gold`` of ``raised | (fired & probs ≥ v)``: a rule finding
    the model did not raise counts only where the model gives it at least ``v`` (0: every rule finding counts;
    above 1: only those the model raised too). Ties go to the lower veto (the rule's finding kept)."""
    gold, fired, raised = (np.asarray(x, dtype=bool) for x in (gold, fired, raised))
    best_v, best_f = 0.0, -1.0
    for v in grid:
        pred = raised | (fired & (np.asarray(probs) >= v))
        f1 = 2 * float((pred & gold).sum()) / max(1.0, pred.sum() + gold.sum())
        if f1 > best_f + 1e-12:
            best_v, best_f = float(v), f1
    return best_v, best_f


def add_veto_votes(votes: dict, preds, findings, golds: Sequence[dict[str, float]]) -> dict:
    """Gather, per flag, what choosing its veto needs: ``votes[flag]`` = rows of (probability, gold, rule fired,
    model raised) over the chats whose ``golds`` name the flag. Returns ``votes``, extended."""
    for pred, fs, share in zip(preds, findings, golds):
        rules, up = {x.rule for x in fs}, {r.rule for r in pred.raised}
        for f, q in pred.flags.items():
            if f in share:
                votes.setdefault(f, []).append((q, share[f] >= 0.5, f in rules, f in up))
    return votes


def choose_vetoes(votes: dict, rubric, flags: Sequence[str] | None = None) -> dict[str, dict]:
    """Per flag of ``votes`` (or of ``flags``) that is no red line and has a positive: its veto (``best_veto``), the
    F1 with it and without one, chats and positives."""
    out = {}
    for f in flags if flags is not None else sorted(votes):
        rows = np.array(votes.get(f, []), dtype=float).reshape(-1, 4)
        spec = rubric.rules.get(f)
        if spec is None or spec.severity == "red_line" or not rows[:, 1].any():
            continue
        q, gold, fired, up = rows.T
        v, f1 = best_veto(q, gold, fired, up)
        out[f] = {"veto": v, "f1": round(f1, 4), "f1_without": round(best_veto(q, gold, fired, up, (0.0,))[1], 4),
                  "chats": len(rows), "positive": int(gold.sum())}
    return out


def add_flag_votes(votes: dict, preds, findings, golds: Sequence[dict[str, float]]) -> dict:
    """Gather, per flag, what choosing its threshold needs: ``votes[flag]`` = (probabilities, gold booleans, rule
    fired) over the chats whose ``golds`` (flag → share of reviews that set it) name the flag. ``preds``: the
    classifier's predictions; ``findings``: per chat its rule findings. Returns ``votes``, extended."""
    for pred, fs, share in zip(preds, findings, golds):
        rules = {x.rule for x in fs}
        for f, q in pred.flags.items():
            if f in share:
                p, g, r = votes.setdefault(f, ([], [], []))
                p.append(q)
                g.append(share[f] >= 0.5)
                r.append(f in rules)
    return votes
