"""The local engine against the Ray engine (``qa grade --engine ray``) on one machine, over the same generated
file of 20-message chats: throughput, peak memory and start-up cost.

    python bench/bench_ray.py [--n 20000] [--workers 2] [--model models/default] [--object-store-mb 512]

Each engine runs in a fresh child process (so Ray starts as ``qa grade --engine ray`` starts it, and imports
are not shared), twice: on a 1-chat file (the start-up cost: imports, ``ray.init``, building each worker's
grader, writing) and on the full file. Throughput is given over the whole run and at steady state,
(n − 1) / (T_n − T_1). Peak memory is the largest total resident size of the child and every process under it
(for Ray: GCS, raylet, the actors), sampled every 0.2 s, as PSS (shared pages — Ray's object store, the
libraries each process maps — divided among the processes sharing them) and as RSS (shared pages counted in
every process: an upper bound).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_grade import _rss_tree  # noqa: E402
from bench.gen import generate  # noqa: E402


def _pss_tree(pid: int) -> int:
    """Proportional set size of ``pid`` and every process under it: shared pages (Ray's object store, the
    libraries every actor maps) divided among the processes that map them, so they are counted once."""
    import os
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(x.split()[1]) for x in f if x.startswith("Pss:"))
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            continue
    return total * 1024


def child(a) -> None:
    """One run of one engine; prints its figures as one JSON line."""
    from qa.grader import GradeSettings
    settings = GradeSettings(model=a.model, batch_size=64)
    src, out = Path(a.src), Path(a.out)
    if a.child == "local":
        from qa.batch import grade_files
        run = grade_files([src], out.with_suffix(".parquet"), settings, workers=a.workers)
    else:
        from qa.ray_engine import grade_files_ray
        run = grade_files_ray([src], out, settings, workers=a.workers,
                              object_store_memory=a.object_store_mb * 2**20 if a.object_store_mb else None)
    print(json.dumps({"graded": run.graded, "seconds": run.seconds, "timing": run.timing,
                      "read": run.stats.read, "accepted": run.stats.accepted}))


def measure(engine: str, src: Path, out: Path, a) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, "--src", str(src), "--out", str(out),
           "--workers", str(a.workers)]
    if a.model:
        cmd += ["--model", a.model]
    if a.object_store_mb:
        cmd += ["--object-store-mb", str(a.object_store_mb)]
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = peak_pss = 0
    while p.poll() is None:
        peak = max(peak, _rss_tree(p.pid))
        peak_pss = max(peak_pss, _pss_tree(p.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - t
    lines = p.stdout.read().strip().splitlines()
    if p.returncode or not lines:
        raise SystemExit(f"{engine} run failed (exit {p.returncode}): {' '.join(cmd)}")
    res = json.loads(lines[-1])
    res.update(wall=wall, peak=peak, peak_pss=peak_pss)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2, help="worker processes (local) and actors (ray)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--object-store-mb", type=int, default=512)
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--src", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        src, one = d / "chats.jsonl", d / "one.jsonl"
        generate(src, a.n, 20)
        one.write_text(src.read_text(encoding="utf-8").split("\n", 1)[0] + "\n", encoding="utf-8")
        rows = {}
        for engine in a.engines.split(","):
            small = measure(engine, one, d / f"{engine}-one", a)
            full = measure(engine, src, d / f"{engine}-full", a)
            assert full["graded"] == a.n, full
            steady = (a.n - 1) / max(1e-9, full["wall"] - small["wall"])
            rows[engine] = (small, full, steady)
            print(f"{engine:5}  {a.n} chats in {full['wall']:.1f} s: {a.n / full['wall']:,.1f} conv/s overall, "
                  f"{steady:,.1f} conv/s steady; start-up (1 chat) {small['wall']:.1f} s"
                  + (f" of which ray.init {full['timing'].get('ray start', 0):.1f} s" if engine == "ray" else "")
                  + f"; peak PSS {full['peak_pss'] / 2**30:.2f} GiB (RSS {full['peak'] / 2**30:.2f}); "
                  f"{a.workers} workers", flush=True)
        if "local" in rows and "ray" in rows:
            lo, ra = rows["local"], rows["ray"]
            print(f"ray / local: {ra[2] / lo[2]:.0%} of the steady throughput, "
                  f"{(a.n / ra[1]['wall']) / (a.n / lo[1]['wall']):.0%} overall; per actor {ra[2] / a.workers:,.1f} "
                  "conv/s")


if __name__ == "__main__":
    main()
