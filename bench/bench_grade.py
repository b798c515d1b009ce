"""End-to-end `qa grade` throughput and peak memory on a generated file of 20-message chats, with the time
split between reading, metrics, rules, model, scoring and writing.

    python bench/bench_grade.py [--n 100000] [--workers 2] [--threads 1] [--model models/default] [--out F.jsonl]
                                [--unique]

``--unique``: every message of every chat is different (an order or item number woven in), so nothing is
served from a cache: the figure for real traffic, where messages rarely repeat word for word.

Peak memory is the largest total resident size of the grading process and its workers, sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen import generate  # noqa: E402


def _rss_tree(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(x.split()[1]) for x in f if x.startswith("VmRSS"))
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            continue
    return total * 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker (workers 1 × threads 2 "
                    "is the threaded alternative to 2 processes)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--unique", action="store_true", help="every message unique (no cache hits)")
    a = ap.parse_args()
    from qa.batch import GradeSettings, grade_files
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "chats.jsonl"
        generate(src, a.n, 20, unique=a.unique)
        out = Path(a.out) if a.out else Path(d) / "results.jsonl"
        peak, samples, stop = [0], [], threading.Event()

        def watch():
            while not stop.is_set():
                r = _rss_tree(os.getpid())
                peak[0] = max(peak[0], r)
                samples.append(r)
                time.sleep(0.2)
        th = threading.Thread(target=watch, daemon=True)
        th.start()
        settings = GradeSettings(model=a.model, batch_size=64, threads=a.threads)
        run = grade_files([src], out, settings, workers=a.workers)
        stop.set()
        th.join()
    q = len(samples) // 4 or 1
    print(f"{run.graded} conversations (20 {'unique ' if a.unique else ''}messages) in {run.seconds:.1f} s: {run.graded / run.seconds:,.0f} conv/s "
          f"with {a.workers} worker process(es) × {a.threads} torch thread(s)")
    print(f"peak RSS (all processes) {peak[0] / 2**20:,.0f} MiB; mean RSS by quarter of the run: "
          + ", ".join(f"{sum(samples[i:i + q]) / len(samples[i:i + q]) / 2**20:,.0f}" for i in range(0, len(samples), q)))
    total = sum(run.timing.values())
    print("time split (seconds summed over processes): " + ", ".join(
        f"{k} {v:.1f} ({v / total:.0%})" for k, v in run.timing.items()))


if __name__ == "__main__":
    main()
