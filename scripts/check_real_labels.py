"""Check the text-free real-chat label files (``data/labelled/real/labels_*.jsonl``, format in ``FORMAT.md``).

Usage: python scripts/check_real_labels.py [FILE ...]        (default: every labels_*.jsonl there)

Every row needs an id, a source, a ``real-…`` reviewer, four grades on 5/4/3/2, known rule ids, a reason and no
``slow_first_response`` (these chats have no times); a reviewer labels a chat once. Where the chat's text is at
hand (``$QA_CACHE/real/chats.jsonl``, ``../shared/data/stc3``) the row is checked with its text as
``scripts/check_labelled.py`` checks a hand-labelled chat, turn labels included. Prints per file how many rows
were checked with text; exits 1 on any problem.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_labelled = _load("check_labelled")
build_real_sets = _load("build_real_sets")


def check_row(row: dict, text: dict | None) -> list[str]:
    """Problems of one label row; with ``text`` (the chat's record), its turn labels against the messages."""
    errs = []
    if not isinstance(row.get("id"), str) or not row["id"] or not row.get("source"):
        errs.append("id or source missing")
    if not str(row.get("reviewer", "")).startswith("real-"):
        errs.append(f"reviewer {row.get('reviewer')!r} (want real-…)")
    if "slow_first_response" in (row.get("rules") or []):
        errs.append("slow_first_response needs message times; real chats have none")
    review = {k: row.get(k) for k in ("reviewer", "grades", "rules", "reason")}
    if text is None:   # no text at hand: the label fields alone, with a stand-in conversation
        stub = {"id": row.get("id"), "platform": "other", "labels": {"reviews": [review]},
                "messages": [{"role": "customer", "text": "-"}, {"role": "agent", "text": "-"}]}
        return errs + check_labelled.check_line(stub, timed=False)
    obj = {**text, "labels": {"reviews": [review], "turns": row.get("turns")}}
    # an empty message is the source's own (STC-3 keeps some), not a labelling problem
    return errs + [e for e in check_labelled.check_line(obj, timed=False) if not e.endswith("].text empty")]


def main(paths: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", metavar="FILE", help="label files (default: every labels_*.jsonl)")
    paths = ap.parse_args(paths).files
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        ap.error(f"no such file: {', '.join(missing)}")
    folder = ROOT / "data" / "labelled" / "real"
    paths = paths or sorted(str(p) for p in folder.glob("labels_*.jsonl"))
    cache = Path(os.environ.get("QA_CACHE", Path.home() / ".cache" / "qa"))
    texts = build_real_sets.texts(build_real_sets.STC3, cache)
    ok, seen = True, set()
    for path in paths:
        rows = with_text = 0
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                print(f"{path}:{n}: bad JSON: {e.msg}")
                ok = False
                continue
            key = (row.get("source"), row.get("id"), row.get("reviewer"))
            text = texts.get((row.get("source"), str(row.get("id"))))
            errs = check_row(row, text) + (["the same reviewer labels this chat twice"] if key in seen else [])
            seen.add(key)
            rows, with_text = rows + 1, with_text + (text is not None)
            for e in errs:
                print(f"{path}:{n}: {row.get('id')}: {e}")
                ok = False
        print(f"{path}: {rows} rows, {with_text} checked with their text")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
