"""Join the text-free real-chat label files with the chats' text into labelled JSONL sets outside git.

Usage: python scripts/build_real_sets.py [--labels data/labelled/real] [--cache ~/.cache/qa] [--stc3 PATH]

The text comes from ``../shared/data/stc3/`` (STC-3, research use) and from ``$QA_CACHE/real/chats.jsonl``
(rebuilt by ``scripts/fetch_real_chats.py``); labels from ``data/labelled/real/labels_*.jsonl``. Writes to
``$QA_CACHE/real/``:

- ``real_eval_stc3.jsonl``  — every labelled STC-3 chat (held out: evaluation only);
- ``real_eval_ecom.jsonl``  — the e-commerce chats whose ids are in ``ecom_ids_eval.txt`` (held out);
- ``real_train_ecom.jsonl`` — the other labelled e-commerce chats (training).

Each chat carries one review per labeller (grades, rules, reason, turns). Chats whose text is missing are
counted and skipped, never guessed.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STC3 = ROOT.parent / "shared" / "data" / "stc3" / "dch1_train_cn_3000.json"


def load_labels(folder: Path) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for path in sorted(folder.glob("labels_*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{n}: bad JSON ({e.msg})")
            out[(row["source"], str(row["id"]))].append(row)
    return out


def texts(stc3: Path, cache: Path) -> dict[tuple[str, str], dict]:
    out = {}
    if stc3.is_file():
        from qa.io.dialeval import to_record
        for d in json.loads(stc3.read_text(encoding="utf-8")):
            out[("stc3", str(d["id"]))] = to_record({**d, "annotations": []})
    chats = cache / "real" / "chats.jsonl"
    if chats.is_file():
        for line in chats.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                out[(r.get("meta", {}).get("source", "ecom"), r["id"])] = r
                out[("ecom", r["id"])] = r
    return out


def review(row: dict) -> dict:
    return {k: row[k] for k in ("reviewer", "grades", "rules", "reason", "turns") if k in row}


def build(labels_dir: Path, cache: Path, stc3: Path) -> dict[str, int]:
    labels = load_labels(labels_dir)
    text = texts(stc3, cache)
    eval_ids_file = labels_dir / "ecom_ids_eval.txt"
    ecom_eval = set(eval_ids_file.read_text(encoding="utf-8").split()) if eval_ids_file.is_file() else set()
    sets: dict[str, list[dict]] = {"real_eval_stc3": [], "real_eval_ecom": [], "real_train_ecom": []}
    missing = 0
    for (source, cid), rows in sorted(labels.items()):
        rec = text.get((source, cid))
        if rec is None:
            missing += 1
            continue
        rec = {**rec, "labels": {"reviews": [review(r) for r in rows]}}
        rec.setdefault("meta", {})["labelled_by"] = [r["reviewer"] for r in rows]
        name = "real_eval_stc3" if source == "stc3" else "real_eval_ecom" if cid in ecom_eval else "real_train_ecom"
        sets[name].append(rec)
    out_dir = cache / "real"
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, recs in sets.items():
        with open(out_dir / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for r in recs:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        counts[name] = len(recs)
    counts["missing_text"] = missing
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--labels", type=Path, default=ROOT / "data" / "labelled" / "real")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("QA_CACHE", Path.home() / ".cache" / "qa")))
    ap.add_argument("--stc3", type=Path, default=STC3)
    a = ap.parse_args()
    counts = build(a.labels, a.cache, a.stc3)
    for k, v in counts.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
