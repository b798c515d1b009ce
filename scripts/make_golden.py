"""Regenerate the golden grading fixture: ``python scripts/make_golden.py``.

Grades ``data/samples/samples.jsonl`` with the shipped default model and the default rubric (each conversation
under its platform's profile, one worker) and writes the records to ``tests/data/golden/samples.results.jsonl``.
``tests/test_golden.py`` compares a fresh run with it field for field.

Run it — and review the diff — whenever grades change on purpose: a retrained ``models/default``, a rubric
edit, a new rule. A diff you cannot explain is a regression, not something to regenerate away.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "data" / "samples" / "samples.jsonl"
OUT = ROOT / "tests" / "data" / "golden" / "samples.results.jsonl"


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c", "from qa.cli import main; main()", "grade", str(SRC), "--out", str(OUT),
           "--workers", "1"]
    r = subprocess.run(cmd, cwd=ROOT)
    for extra in OUT.parent.glob("samples.results.rejects.jsonl"):
        extra.unlink()
    if r.returncode == 0:
        print(f"wrote {OUT.relative_to(ROOT)}")
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
