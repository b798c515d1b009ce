"""Classifier inference throughput on CPU: batched (the way `qa grade` runs it) next to naive
one-conversation-at-a-time calls, in the same run, on generated 20-message chats.

    python bench/bench_model.py [--n 512] [--model models/default] [--threads 2] [--unique]

``--unique`` makes every message text unique, so the batch-level de-duplication of repeated (canned) messages
cannot help: the worst case.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen import generate  # noqa: E402


def load(n: int, unique: bool):
    from qa.io.read import read_path
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "chats.jsonl"
        generate(p, n, 20)
        if unique:
            rng = random.Random(0)
            rows = [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines()]
            for r in rows:
                for m in r["messages"]:
                    m["text"] += f" {rng.randrange(10**6)}"
            p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
        return list(read_path(p))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--naive-n", type=int, default=64)
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--unique", action="store_true")
    a = ap.parse_args()
    import torch

    from qa.model.predict import Classifier
    from qa.rubric import load_rubric
    from qa.rules.engine import RuleEngine
    from qa.timing import compute_timing
    torch.set_num_threads(a.threads)
    convs = load(a.n, a.unique)
    clf = Classifier(a.model)
    rubric = load_rubric()
    engine = RuleEngine(rubric)
    timings = [compute_timing(c, rubric) for c in convs]
    findings = [engine.check(c, t) for c, t in zip(convs, timings)]
    clf.predict(convs[:8], findings=findings[:8], timings=timings[:8])        # warm-up
    t = time.perf_counter()
    clf.predict(convs, findings=findings, timings=timings, batch_size=a.batch_size)
    batched = len(convs) / (time.perf_counter() - t)
    k = min(a.naive_n, len(convs))
    t = time.perf_counter()
    for i in range(k):
        clf.predict(convs[i:i + 1], findings=findings[i:i + 1], timings=timings[i:i + 1], batch_size=1)
    naive = k / (time.perf_counter() - t)
    tokens = sum(len(m.text or "") for c in convs for m in c.messages) / len(convs)
    print(f"model {clf.path} · {a.threads} threads · 20-message chats, {tokens:.0f} chars each"
          + (" · every message unique" if a.unique else ""))
    print(f"batched (batch {a.batch_size}, length-sorted, repeated messages encoded once): {batched:8.1f} conv/s")
    print(f"naive (one conversation per call):                                  {naive:8.1f} conv/s")
    print(f"speed-up: {batched / naive:.1f}x")


if __name__ == "__main__":
    main()
