"""Generate a large JSONL of chats for benchmarks by re-timing and re-mixing the sample chats' messages.

    python bench/gen.py OUT.jsonl --n 100000 --messages 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "samples.jsonl"


TAILS = ("订单尾号{n}", "单号{n}", "编号{n}的那个", "第{n}号", "尺码{m}的", "拍了{m}件", "地址在{m}号楼")


def generate(out: Path, n: int, messages: int, seed: int = 0, unique: bool = False) -> None:
    """``n`` chats of ``messages`` messages drawn from the sample chats' texts; with ``unique`` every message
    gets its own order/item number, so no two messages are the same (nothing to gain from caching)."""
    rng = random.Random(seed)
    counter = 0
    convs = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_role: dict[str, list[dict]] = {"customer": [], "agent": []}
    for c in convs:
        for m in c["messages"]:
            if m["role"] in by_role and m.get("type", "text") == "text":
                by_role[m["role"]].append(m)
    start = dt.datetime(2026, 3, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with open(out, "w", encoding="utf-8") as f:
        for i in range(n):
            base = rng.choice(convs)
            t = start + dt.timedelta(seconds=rng.randrange(0, 30 * 86400))
            msgs = []
            for k in range(messages):
                role = "customer" if k % 2 == 0 else "agent"
                m = rng.choice(by_role[role])
                t += dt.timedelta(seconds=rng.randrange(3, 240))
                text = m["text"]
                if unique:
                    counter += 1
                    tail = rng.choice(TAILS).format(n=f"{counter:07d}", m=counter)
                    text = f"{text}，{tail}" if rng.random() < 0.5 else f"{tail}，{text}"
                msgs.append({"role": role, "type": "text", "text": text, "ts": t.isoformat()})
            f.write(json.dumps({"id": f"bench-{i}", "platform": base["platform"], "shop": base.get("shop"),
                                "agent": base.get("agent"), "messages": msgs}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=20)
    ap.add_argument("--unique", action="store_true", help="every message unique")
    a = ap.parse_args()
    generate(a.out, a.n, a.messages, unique=a.unique)
