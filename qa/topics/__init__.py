"""Question types (Kuaishou's 买家咨询聚类): cluster the customers' questions and give each type its volume,
share, good-review and satisfaction rates, mean score, unanswered rate and a FAQ candidate (docs/topics.md).

1. Each chat's question is its first customer text once greetings are stripped (``questions.py``).
2. Questions are deduplicated (case, width, spacing, punctuation and emoji ignored) and counted.
3. The ``max_embed`` most frequent distinct questions are embedded (``embed.py``: e5 or LSA) and clustered
   with scikit-learn's agglomerative clustering (Ward on e5 vectors, average-cosine on LSA vectors), which has
   no randomness; the LSA projection is seeded.
4. Rarer distinct questions (beyond ``max_embed``) join the type of their nearest embedded question in
   char 1–3-gram TF-IDF space (cosine), so the cost of step 3 stays bounded on any input size.
5. Types are numbered by volume; each is labelled with its c-TF-IDF key terms (``terms.py``) and 3 examples.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from qa.chatrecords import Chat
from qa.text import normalize
from qa.topics.embed import char_tfidf, embed, resolve
from qa.topics.questions import answered, dedupe_key, question_and_answer
from qa.topics.terms import ctfidf

log = logging.getLogger(__name__)
DEFAULT_MAX_K = 30
DEFAULT_MAX_EMBED = 1500
TOPIC_COLUMNS = ("topic", "label", "key_terms", "examples", "conversations", "share", "distinct_questions",
                 "rated", "good_review_rate", "satisfaction_rate", "mean_score", "unanswered_rate",
                 "faq_question", "faq_answer", "faq_rating", "faq_score", "faq_id")


@dataclasses.dataclass
class Topics:
    rows: list[dict[str, Any]]              # one per type, by volume (TOPIC_COLUMNS)
    shops: list[dict[str, Any]]             # per shop × type
    assignments: list[dict[str, Any]]       # per chat with a question: id, shop, agent, day, topic, question
    backend: str
    k: int
    chats: int
    questions: int
    distinct: int
    embedded: int
    seconds: dict[str, float]


def default_k(n: int) -> int:
    """At most 30 types, and about one per 5 distinct embedded questions on small inputs."""
    return max(1, min(DEFAULT_MAX_K, n // 5)) if n >= 2 else 1


def cluster_vectors(x: np.ndarray, k: int, backend: str) -> np.ndarray:
    """Agglomerative clustering of L2-normalised vectors: Ward for e5, average linkage on cosine for LSA."""
    from sklearn.cluster import AgglomerativeClustering

    n = len(x)
    if n == 0:
        return np.zeros(0, int)
    k = max(1, min(k, n))
    if k == 1 or n == 1:
        return np.zeros(n, int)
    model = (AgglomerativeClustering(n_clusters=k, linkage="ward") if backend == "e5"
             else AgglomerativeClustering(n_clusters=k, linkage="average", metric="cosine"))
    return model.fit_predict(x)


def cluster_texts(texts: Sequence[str], k: int | None = None, backend: str = "auto", seed: int = 0
                  ) -> np.ndarray:
    """Labels for ``texts`` as they are (no dedupe, no cap): what the evaluation bench scores."""
    b = resolve(backend)
    x = embed(list(texts), b, seed=seed)
    return cluster_vectors(x, k or default_k(len(texts)), b)


def _nearest(tail: list[str], head: list[str], all_texts: list[str]) -> np.ndarray:
    """Index into ``head`` of each tail text's nearest head text (cosine of char TF-IDF), in chunks."""
    vec, _ = char_tfidf(all_texts)
    h = vec.transform(head)
    out = np.zeros(len(tail), int)
    for i in range(0, len(tail), 4000):
        sims = (vec.transform(tail[i:i + 4000]) @ h.T).toarray()
        out[i:i + 4000] = sims.argmax(axis=1)
    return out


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _rating_value(c: Chat) -> int:
    """Stars, else the label as stars (满意 5, 一般 3, 失望 1); 0 when unrated."""
    if c.stars is not None:
        return c.stars
    return {"满意": 5, "一般": 3, "失望": 1}.get(c.label or "", 0)


def _faq(items: list[tuple[Chat, str, str | None, int]]) -> dict[str, Any]:
    """The best-rated human answer: highest rating, then highest score, then the most frequent answer text."""
    answers = [(c, a) for c, _, a, _ in items if a and len(a) >= 4]
    if not answers:
        return {"faq_question": None, "faq_answer": None, "faq_rating": None, "faq_score": None, "faq_id": None}
    freq = collections.Counter(dedupe_key(a) for _, a in answers)
    best_i = min(range(len(answers)), key=lambda i: (-_rating_value(answers[i][0]),
                                                     -(answers[i][0].score if answers[i][0].score is not None else -1),
                                                     -freq[dedupe_key(answers[i][1])], i))
    c, a = answers[best_i]
    q = next(q for cc, q, _, _ in items if cc is c)
    rating = " ".join(x for x in (f"{c.stars}★" if c.stars is not None else "", c.label or "") if x) or None
    return {"faq_question": q, "faq_answer": a, "faq_rating": rating,
            "faq_score": None if c.score is None else round(float(c.score), 1), "faq_id": c.id}


def _stats(items: list[tuple[Chat, str, str | None, int]]) -> dict[str, Any]:
    chats = [c for c, _, _, _ in items]
    reviewed = [c.review for c in chats if c.review is not None]
    sat = [c.satisfied for c in chats if c.satisfied is not None]
    scores = [c.score for c in chats if c.score is not None]
    return {"conversations": len(chats), "rated": len(reviewed),
            "good_review_rate": _rate(sum(r == "满意" for r in reviewed), len(reviewed)),
            "satisfaction_rate": _rate(sum(sat), len(sat)),
            "mean_score": round(float(np.mean(scores)), 2) if scores else None,
            "unanswered_rate": _rate(sum(not answered(c, qi) for c, _, _, qi in items), len(items))}


def build_topics(chats: Sequence[Chat], *, k: int | None = None, backend: str = "auto",
                 max_embed: int = DEFAULT_MAX_EMBED, seed: int = 0, n_terms: int = 8) -> Topics:
    """Cluster the chats' questions into types and describe each type (see the module docstring)."""
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    items: list[tuple[Chat, str, str | None, int]] = []
    for c in chats:
        q, a, qi = question_and_answer(c)
        if q is not None:
            items.append((c, q, a, qi))
    # dedupe: key → distinct index; the first spelling seen stands for the key
    index: dict[str, int] = {}
    texts: list[str] = []
    counts: list[int] = []
    of_item = np.zeros(len(items), int)
    for j, (_, q, _, _) in enumerate(items):
        key = dedupe_key(q)
        i = index.get(key)
        if i is None:
            i = index[key] = len(texts)
            texts.append(q)
            counts.append(0)
        counts[i] += 1
        of_item[j] = i
    order = sorted(range(len(texts)), key=lambda i: (-counts[i], i))
    head, tail = order[:max_embed], order[max_embed:]
    secs["extract"] = time.perf_counter() - t0

    b = resolve(backend)
    t1 = time.perf_counter()
    plain = [normalize(t) for t in texts]   # read in simplified Chinese (怎麼退貨 = 怎么退货), shown as first written
    vecs = embed([plain[i] for i in head], b, seed=seed) if head else np.zeros((0, 1), np.float32)
    secs["embed"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    kk = k or default_k(len(head))
    head_labels = cluster_vectors(vecs, kk, b)
    label = np.zeros(len(texts), int)
    label[head] = head_labels
    if tail:
        near = _nearest([plain[i] for i in tail], [plain[i] for i in head], plain)
        label[tail] = head_labels[near]
    secs["cluster"] = time.perf_counter() - t2

    # number types by volume (conversations), ties by their most frequent question
    t3 = time.perf_counter()
    n_lab = int(label.max()) + 1 if len(texts) else 0
    volume = np.bincount(label[of_item], minlength=n_lab) if len(items) else np.zeros(n_lab, int)
    first = {}
    for rank, i in enumerate(order):
        first.setdefault(int(label[i]), rank)
    ranked = sorted((lab for lab in range(n_lab) if volume[lab]), key=lambda lab: (-volume[lab], first[lab]))
    topic_of = {lab: t + 1 for t, lab in enumerate(ranked)}

    members: dict[int, list[int]] = collections.defaultdict(list)    # topic → distinct indexes, by frequency
    for i in order:
        members[topic_of[int(label[i])]].append(i)
    by_topic: dict[int, list[tuple[Chat, str, str | None, int]]] = collections.defaultdict(list)
    for j, it in enumerate(items):
        by_topic[topic_of[int(label[of_item[j]])]].append(it)
    topics = sorted(members)
    terms = ctfidf([[(plain[i], counts[i]) for i in members[t]] for t in topics], top=n_terms)
    centroid_rank = _central(vecs, head, label, topic_of)
    rows = []
    for t, tt in zip(topics, terms):
        ex = sorted(members[t], key=lambda i: (-counts[i], centroid_rank.get(i, 1.0), i))[:3]
        row = {"topic": t, "label": " · ".join(w for w, _ in tt[:3]) or texts[members[t][0]],
               "key_terms": " ".join(w for w, _ in tt), "examples": " | ".join(texts[i] for i in ex)}
        st = _stats(by_topic[t])
        row.update(conversations=st["conversations"], share=_rate(st["conversations"], len(items)),
                   distinct_questions=len(members[t]))
        row.update({k2: st[k2] for k2 in ("rated", "good_review_rate", "satisfaction_rate", "mean_score",
                                           "unanswered_rate")})
        row.update(_faq(by_topic[t]))
        rows.append(row)
    labels = {r["topic"]: r["label"] for r in rows}

    per_shop: dict[tuple[str, int], list] = collections.defaultdict(list)
    shop_total: collections.Counter[str] = collections.Counter()
    assignments = []
    for j, it in enumerate(items):
        c, q, a, qi = it
        t = topic_of[int(label[of_item[j]])]
        per_shop[(c.shop, t)].append(it)
        shop_total[c.shop] += 1
        assignments.append({"id": c.id, "shop": c.shop, "agent": c.agent, "day": c.day, "topic": t,
                            "label": labels[t], "question": q, "answered": answered(c, qi),
                            "review": c.review, "score": None if c.score is None else round(float(c.score), 2)})
    shops = []
    for (shop, t) in sorted(per_shop, key=lambda x: (x[0], -len(per_shop[x]), x[1])):
        st = _stats(per_shop[(shop, t)])
        shops.append({"shop": shop, "topic": t, "label": labels[t], "conversations": st["conversations"],
                      "share": _rate(st["conversations"], shop_total[shop]), "rated": st["rated"],
                      "good_review_rate": st["good_review_rate"], "satisfaction_rate": st["satisfaction_rate"],
                      "mean_score": st["mean_score"], "unanswered_rate": st["unanswered_rate"]})
    secs["describe"] = time.perf_counter() - t3
    return Topics(rows=rows, shops=shops, assignments=assignments, backend=b, k=len(rows), chats=len(chats),
                  questions=len(items), distinct=len(texts), embedded=len(head), seconds=secs)


def _central(vecs: np.ndarray, head: list[int], label: np.ndarray, topic_of: dict[int, int]) -> dict[int, float]:
    """Distinct index → 1 − cosine to its type's centroid (embedded questions only), to order examples."""
    if not head:
        return {}
    labs = label[head]
    out: dict[int, float] = {}
    for lab in set(labs.tolist()):
        rows = np.flatnonzero(labs == lab)
        cen = vecs[rows].mean(axis=0)
        cen /= np.linalg.norm(cen) or 1.0
        for r, s in zip(rows, vecs[rows] @ cen):
            out[head[r]] = 1.0 - float(s)
    return out
