"""Add turn labels written in a separate pass to a labelled JSONL file, in place (stdlib only).

Usage: python scripts/add_turns.py CHATS.jsonl TURNS.jsonl --reviewer NAME

TURNS.jsonl holds one ``{"id": …, "turns": {"customer": […], "agent": […]}}`` a line (``data/labelled/real/FORMAT.md``).
Each chat gets ``labels.turns`` and ``labels.turns_reviewer``; every chat must have exactly one entry, and the entries
must pass ``scripts/check_labelled.py``'s turn check, or nothing is written.
"""
import argparse
import importlib.util
import json
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("check_labelled", Path(__file__).with_name("check_labelled.py"))
check_labelled = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_labelled)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("chats")
    ap.add_argument("turns")
    ap.add_argument("--reviewer", required=True)
    a = ap.parse_args(argv)
    chats = [json.loads(line) for line in open(a.chats, encoding="utf-8") if line.strip()]
    turns = {}
    for n, line in enumerate(open(a.turns, encoding="utf-8"), 1):
        if line.strip():
            row = json.loads(line)
            if row.get("id") in turns:
                print(f"{a.turns}:{n}: duplicate id {row.get('id')}")
                return 1
            turns[row.get("id")] = row.get("turns")
    errors = [f"{a.turns}: {c['id']}: no turn labels" for c in chats if c["id"] not in turns]
    errors += [f"{a.turns}: unknown id {i}" for i in set(turns) - {c["id"] for c in chats}]
    for c in chats:
        errors += [f"{a.turns}: {c['id']}: {e}" for e in check_labelled.check_turns(c["messages"], turns.get(c["id"]) or {})]
    if errors:
        print("\n".join(errors))
        return 1
    with open(a.chats, "w", encoding="utf-8") as f:
        for c in chats:
            c.setdefault("labels", {}).update(turns=turns[c["id"]], turns_reviewer=a.reviewer)
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    print(f"{a.chats}: turn labels added to {len(chats)} chats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
