"""Check hand-labelled JSONL files against the label format (stdlib only).

Usage: python scripts/check_labelled.py FILE.jsonl [...]
Prints per-file counts and the level distribution; exits 1 on any problem.
"""
import collections
import datetime as dt
import json
import os
import sys

DIMS = ("attitude", "etiquette", "professionalism", "clarity")
RULES = {
    "uncivil_language", "off_platform_diversion", "privacy_leak", "no_proactive_confirmation",
    "vague_reply", "mechanical_repetition", "unanswered_question", "missing_greeting",
    "missing_closing", "slow_first_response", "negative_emotion_unsoothed", "overpromise",
}
ROLES = {"customer", "agent", "bot", "system"}
TYPES = {"text", "image", "video", "emoji", "product_card", "order_card", "event"}
PLATFORMS = {"douyin", "kuaishou", "tiktok", "taobao", "other"}


def check_line(obj, timed=True):
    """Problems of one labelled chat; ``timed=False`` for sources without message times (real transcripts)."""
    errs = []
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        errs.append("id missing")
    if obj.get("platform") not in PLATFORMS:
        errs.append(f"platform {obj.get('platform')!r}")
    msgs = obj.get("messages")
    if not isinstance(msgs, list) or len(msgs) < 2:
        errs.append("messages missing or too short")
        msgs = []
    last = None
    for i, m in enumerate(msgs):
        if m.get("role") not in ROLES:
            errs.append(f"messages[{i}].role {m.get('role')!r}")
        if m.get("type", "text") not in TYPES:
            errs.append(f"messages[{i}].type {m.get('type')!r}")
        if m.get("type", "text") == "text" and not (m.get("text") or "").strip():
            errs.append(f"messages[{i}].text empty")
        if m.get("type") == "event" and not (m.get("event") or m.get("text")):   # the reader takes text as event
            errs.append(f"messages[{i}].event missing")
        if not timed:
            continue
        try:
            t = dt.datetime.fromisoformat(m["ts"])
            if t.tzinfo is None:
                errs.append(f"messages[{i}].ts has no offset")
            if last and t < last:
                errs.append(f"messages[{i}].ts goes back in time")
            last = t
        except Exception:
            errs.append(f"messages[{i}].ts {m.get('ts')!r}")
    revs = (obj.get("labels") or {}).get("reviews")
    if not isinstance(revs, list) or not revs:
        errs.append("labels.reviews missing")
        revs = []
    for j, r in enumerate(revs):
        g = r.get("grades") or {}
        for d in DIMS:
            if g.get(d) not in (2, 3, 4, 5):
                errs.append(f"labels.reviews[{j}].grades.{d} {g.get(d)!r}")
        bad = set(r.get("rules", [])) - RULES
        if bad:
            errs.append(f"labels.reviews[{j}].rules unknown {sorted(bad)}")
        if not (r.get("reason") or "").strip():
            errs.append(f"labels.reviews[{j}].reason empty")
        if not r.get("reviewer"):
            errs.append(f"labels.reviews[{j}].reviewer empty")
    errs += check_turns(msgs, (obj.get("labels") or {}).get("turns"))
    return errs


def check_turns(msgs, turns):
    """labels.turns (optional): one entry per customer and per agent/bot text message, indices that exist."""
    if turns is None:
        return []
    errs = []
    role = {i: m.get("role") for i, m in enumerate(msgs)}
    for side, want in (("customer", {"customer"}), ("agent", {"agent", "bot"})):
        seen = set()
        for k, row in enumerate(turns.get(side) or []):
            i = row.get("i")
            if role.get(i) not in want:
                errs.append(f"labels.turns.{side}[{k}].i {i!r} is not a message of the {side} side")
                continue
            seen.add(i)
            if side == "customer":
                a = row.get("answered_by")
                if not isinstance(row.get("request"), bool):
                    errs.append(f"labels.turns.customer[{k}].request must be true or false")
                if a is not None and (role.get(a) not in ("agent", "bot") or a <= i):
                    errs.append(f"labels.turns.customer[{k}].answered_by {a!r} is not a later agent message")
                if a is not None and not row.get("request"):
                    errs.append(f"labels.turns.customer[{k}].answered_by set but request is false")
            else:
                for f in ("vague", "uncivil", "pii"):
                    if not isinstance(row.get(f), bool):
                        errs.append(f"labels.turns.agent[{k}].{f} must be true or false")
        texts = {i for i, m in enumerate(msgs) if role[i] in want and m.get("type", "text") == "text"}
        if texts - seen:
            errs.append(f"labels.turns.{side} misses text messages {sorted(texts - seen)}")
    return errs


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", metavar="FILE.jsonl")
    paths = ap.parse_args(argv).files
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        ap.error(f"no such file: {', '.join(missing)}")
    ok = True
    ids = set()
    for path in paths:
        dist = {d: collections.Counter() for d in DIMS}
        rules = collections.Counter()
        n = 0
        with open(path, encoding="utf-8") as f:
            for ln, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    print(f"{path}:{ln}: bad JSON: {e}"); ok = False; continue
                errs = check_line(obj)
                if obj.get("id") in ids:
                    errs.append(f"duplicate id {obj.get('id')}")
                ids.add(obj.get("id"))
                for e in errs:
                    print(f"{path}:{ln}: {e}"); ok = False
                n += 1
                for r in (obj.get("labels") or {}).get("reviews", [])[:1]:
                    for d in DIMS:
                        dist[d][(r.get("grades") or {}).get(d)] += 1
                    rules.update(r.get("rules", []))
        print(f"{path}: {n} conversations")
        for d in DIMS:
            print(f"  {d:16s}", {k: dist[d][k] for k in (5, 4, 3, 2)})
        print("  rules", dict(rules))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
