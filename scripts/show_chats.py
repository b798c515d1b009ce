"""Print conversations with message indices, for hand-labelling turn-level labels.

Usage:
  python scripts/show_chats.py stc3 --ids-file data/labelled/real/stc3_ids_a.txt [--start 0 --n 20]
  python scripts/show_chats.py FILE.jsonl [--start 0 --n 20]

``stc3`` reads ../shared/data/stc3/dch1_train_cn_3000.json (research use: never copy its text into the repo).
Message indices are those of the converted conversation (qa.io.dialeval.to_record / the JSONL messages),
which is what turn-level labels refer to.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

STC3 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "stc3" / "dch1_train_cn_3000.json"


def load(source: str) -> dict[str, dict]:
    if source == "stc3":
        from qa.io.dialeval import to_record
        return {str(d["id"]): to_record({**d, "annotations": []}) for d in json.load(open(STC3, encoding="utf-8"))}
    out = {}
    with open(source, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                out[r["id"]] = r
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("--ids-file")
    ap.add_argument("--ids", nargs="*")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--n", type=int, default=20)
    a = ap.parse_args()
    recs = load(a.source)
    ids = list(recs)
    if a.ids_file:
        ids = [x.strip() for x in open(a.ids_file, encoding="utf-8") if x.strip()]
    if a.ids:
        ids = a.ids
    for cid in ids[a.start:a.start + a.n]:
        r = recs[cid]
        print(f"=== {cid}")
        for i, m in enumerate(r["messages"]):
            kind = m.get("type", "text")
            tag = m["role"] if kind == "text" else f"{m['role']}/{kind}"
            text = (m.get("text") or m.get("event") or "").replace("\n", " / ")
            print(f"[{i}] {tag}: {text}")
        print()


if __name__ == "__main__":
    main()
