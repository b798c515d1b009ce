"""Rule-check throughput on one core over the sample chats (repeated), with timing computed beforehand.

    taskset -c 0 python bench/bench_rules.py [--repeat 50] [FILE.jsonl ...]

Prints conversations/s over all passes (the figure to compare with the target) and the best pass; the
machine may be shared, so run it several times and take the median.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qa.io import read_path  # noqa: E402
from qa.rubric import load_rubric  # noqa: E402
from qa.rules import RuleEngine  # noqa: E402
from qa.timing import compute_timing  # noqa: E402

TARGET = 2000  # conversations/s on one core


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("files", nargs="*", default=[str(ROOT / "data" / "samples" / "samples.jsonl")])
    a = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    rubric = load_rubric()
    engine = RuleEngine(rubric)
    convs = [c for f in a.files for c in read_path(f) if hasattr(c, "messages")]
    timings = [compute_timing(c, rubric) for c in convs]
    msgs = sum(len(c.messages) for c in convs) / len(convs)
    engine.check(convs[0], timings[0])  # warm up
    passes, findings = [], 0
    for _ in range(a.repeat):
        t = time.perf_counter()
        for c, tm in zip(convs, timings):
            findings += len(engine.check(c, tm))
        passes.append(time.perf_counter() - t)
    rate = a.repeat * len(convs) / sum(passes)
    print(f"{len(convs)} conversations ({msgs:.1f} messages each) × {a.repeat}: {rate:.0f} conversations/s "
          f"on one core ({findings / a.repeat:.0f} findings per pass)")
    print(f"best pass {len(convs) / min(passes):.0f} conversations/s; target ≥ {TARGET:,}/s on one core: "
          f"{'met' if rate >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
