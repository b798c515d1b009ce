"""Read + timing-metrics throughput and peak memory on a generated file.

    python bench/bench_ingest.py [--n 100000] [--messages 20]

Prints conversations/s for reading alone and for reading + timing + KPI aggregation, and the process's
peak resident memory (ru_maxrss).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.gen import generate  # noqa: E402
from qa.io import read_path  # noqa: E402
from qa.kpis import KpiTable  # noqa: E402
from qa.rubric import load_rubric  # noqa: E402
from qa.timing import compute_timing  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=20)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.jsonl"
        t = time.perf_counter()
        generate(path, a.n, a.messages)
        print(f"generated {a.n} conversations × {a.messages} messages ({path.stat().st_size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - t:.1f}s")
        rubric = load_rubric()
        t = time.perf_counter()
        n = sum(1 for _ in read_path(path))
        read_s = time.perf_counter() - t
        print(f"read only:          {n / read_s:8.0f} conversations/s ({read_s:.1f}s)")
        table = KpiTable(rubric)
        t = time.perf_counter()
        for c in read_path(path):
            table.add(c, compute_timing(c, rubric))
        rows = table.rows()
        total_s = time.perf_counter() - t
        print(f"read + metrics:     {n / total_s:8.0f} conversations/s ({total_s:.1f}s, {len(rows)} KPI groups)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS):  {peak:8.0f} MB")


if __name__ == "__main__":
    main()
