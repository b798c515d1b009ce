"""Regenerate the golden grading fixture: ``python scripts/make_golden.py``.

Grades ``data/samples/samples.jsonl`` with the shipped default model and the default rubric (each conversation
under its platform's profile, one worker) and writes the records to ``tests/data/golden/samples.results.jsonl``.
``tests/test_golden.py`` compares a fresh run with it field for field.

Run it — and review the differences — whenever grades change on purpose: a retrained ``models/default``, a
rubric edit, a new rule. ``python scripts/make_golden.py --diff [REV]`` prints, field by field, how the fixture
now on disk differs from the one committed at REV (default HEAD), e.g. after regenerating; write what changed
and why in ``tests/data/golden/CHANGES.md``. A difference you cannot explain is a regression, not something to
regenerate away.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "data" / "samples" / "samples.jsonl"
OUT = ROOT / "tests" / "data" / "golden" / "samples.results.jsonl"
TOL = 2e-4          # model probabilities are rounded to 4 decimals; thread counts may move the last digit


def differences(a, b, path=""):
    """(path, old, new) for every field that differs; floats within TOL are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in b:
                yield f"{path}.{k}", a[k], "<absent>"
            elif k not in a:
                yield f"{path}.{k}", "<absent>", b[k]
            else:
                yield from differences(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{i}]")
    elif (isinstance(a, float) or isinstance(b, float)) and isinstance(a, (int, float)) \
            and isinstance(b, (int, float)) and not isinstance(a, bool) and abs(a - b) <= TOL:
        return
    elif a != b:
        yield path, a, b


def regenerate() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c", "from qa.cli import main; main()", "grade", str(SRC), "--out", str(OUT),
           "--workers", "1"]
    r = subprocess.run(cmd, cwd=ROOT)
    for extra in OUT.parent.glob("samples.results.rejects.jsonl"):
        extra.unlink()
    if r.returncode == 0:
        print(f"wrote {OUT.relative_to(ROOT)}")
    return r.returncode


def diff(rev: str) -> int:
    old_text = subprocess.run(["git", "show", f"{rev}:{OUT.relative_to(ROOT)}"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
    old = {r["id"]: r for r in map(json.loads, old_text.splitlines())}
    new = {r["id"]: r for r in map(json.loads, OUT.read_text(encoding="utf-8").splitlines())}
    fields: collections.Counter = collections.Counter()
    for cid in old.keys() | new.keys():
        if cid not in old or cid not in new:
            print(f"{cid}: only in the {'new' if cid in new else 'old'} fixture")
            continue
        for path, a, b in differences(old[cid], new[cid]):
            key = path.split("[")[0] if path.startswith((".findings", ".deductions")) else path
            fields[key] += 1
            if not key.startswith((".stamp", ".not_graded", ".findings")):
                print(f"{cid} {path}: {json.dumps(a, ensure_ascii=False)[:120]} → "
                      f"{json.dumps(b, ensure_ascii=False)[:120]}")
    print("\nfields that differ (records):")
    for k, n in sorted(fields.items()):
        print(f"  {k}: {n}")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--diff", nargs="?", const="HEAD", metavar="REV",
                    help="compare the fixture on disk with the one committed at REV instead of regenerating")
    a = ap.parse_args()
    sys.exit(diff(a.diff) if a.diff else regenerate())
