"""The same labelled chats in other export forms, graded and flagged as ``qa grade`` does.

    python bench/export_forms.py ~/.cache/qa/real/real_eval_ecom.jsonl [--model models/default] \
        [--forms as_is segmented split_joined split_clauses timestamps no_punct traditional]

A shop's or a corpus's export differs from our caches in ways that have nothing to do with service: words cut apart by
a segmenter, one reply sent as several messages, times or punctuation present or not. Each form rewrites the records'
texts (labels kept; turn labels are not moved, so only chat-level figures are scored), reads them through the schema
as every reader does, and prints the QWK of the model's level and of the graded level against every review
(``bench/real_eval.py``) and the rule-flag micro-F1 with the model (``bench/rules_vs_labels.py``).

Forms: ``as_is``; ``segmented`` (every text message cut into words by jieba, as the E-commerce Dialogue Corpus files
are); ``split_joined`` (each text message split at its spaces: JD's log joins a speaker's consecutive messages with
one); ``split_clauses`` (each agent message of two clauses or more sent a clause a message); ``timestamps`` (a time
on every message: 15–70 s after the other side's message, 5–25 s after one's own); ``no_punct`` (punctuation and
spaces dropped, as the Taobao corpus has none); ``traditional`` (traditional characters, OpenCC s2t, as Taiwan and
Hong Kong shoppers type).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import logging
import random
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.model.flag_scores import counts, scores  # noqa: E402
from qa.model.metrics import grade_metrics  # noqa: E402
from qa.schema import Conversation  # noqa: E402

_CLAUSE = re.compile(r"[^，,。!！?？~～；;]+[，,。!！?？~～；;]*")
_PUNCT = re.compile(r"[，。！？、；：“”‘’（）《》…~～,.!?;:()'\"\s]+")


def _texts(rec: dict, fn, roles=("customer", "agent", "bot")) -> dict:
    """``rec`` with ``fn(text)`` → list of texts applied to each text message of ``roles`` (one message a text)."""
    out = []
    for m in rec["messages"]:
        if m.get("role") in roles and m.get("type", "text") == "text" and isinstance(m.get("text"), str) and m["text"]:
            out += [{**m, "text": t} for t in fn(m["text"]) if t.strip()] or [m]
        else:
            out.append(m)
    return {**rec, "messages": out[:10_000]}


def segmented(rec: dict, rng: random.Random) -> dict:
    import jieba
    jieba.setLogLevel(logging.WARNING)
    return _texts(rec, lambda t: [" ".join(w for w in jieba.cut(t) if w.strip())])


def split_joined(rec: dict, rng: random.Random) -> dict:
    return _texts(rec, lambda t: t.split())


def split_clauses(rec: dict, rng: random.Random) -> dict:
    return _texts(rec, lambda t: _CLAUSE.findall(t) or [t], roles=("agent",))


def timestamps(rec: dict, rng: random.Random) -> dict:
    t = dt.datetime(2026, 3, rng.randint(1, 28), rng.randint(9, 22), rng.randint(0, 59),
                    tzinfo=dt.timezone(dt.timedelta(hours=8)))
    out, prev = [], None
    for m in rec["messages"]:
        t += dt.timedelta(seconds=rng.randint(5, 25) if m.get("role") == prev else rng.randint(15, 70))
        out.append({**m, "ts": t.isoformat()})
        prev = m.get("role")
    return {**rec, "messages": out}


def no_punct(rec: dict, rng: random.Random) -> dict:
    return _texts(rec, lambda t: [_PUNCT.sub("", t) or t])


def traditional(rec: dict, rng: random.Random) -> dict:
    import opencc
    s2t = opencc.OpenCC("s2t")
    return _texts(rec, lambda t: [s2t.convert(t)])


FORMS = {"as_is": lambda rec, rng: rec, "segmented": segmented, "split_joined": split_joined,
         "split_clauses": split_clauses, "timestamps": timestamps, "no_punct": no_punct, "traditional": traditional}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--forms", nargs="+", default=list(FORMS), choices=list(FORMS))
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    from qa.grader import Grader, GradeSettings
    grader = Grader.from_settings(GradeSettings(model=args.model, messages=False))
    rules = list(grader.rubric.rules)
    dims = grader.rubric.model_dimensions
    levels = list(grader.rubric.scale)
    recs = [r for f in args.files for line in Path(f).read_text(encoding="utf-8").splitlines()
            if line.strip() and isinstance(r := json.loads(line), dict) and (r.get("labels") or {}).get("reviews")]
    print(f"{len(recs)} labelled chats; model {args.model}; QWK {' / '.join(dims)} against every review")
    print(f"{'form':14s} {'model level':29s} {'graded level':29s} flags micro-F1")
    for name in args.forms:
        rng = random.Random(args.seed)
        convs = [Conversation.model_validate(FORMS[name](copy.deepcopy(r), rng)) for r in recs]
        grades = grader.grade_batch(convs)
        qwk = {}
        for kind in ("base_level", "level"):
            row = []
            for d in dims:
                ref, pred = [], []
                for c, g in zip(convs, grades):
                    for rv in c.labels["reviews"]:
                        if d in (rv.get("grades") or {}) and d in g.dimensions:
                            ref.append(rv["grades"][d])
                            pred.append(getattr(g.dimensions[d], kind))
                row.append(grade_metrics(references=ref, predictions=pred, levels=levels)["qwk"] if ref else np.nan)
            qwk[kind] = " / ".join(f"{q:.3f}" for q in row)
        fired = [{f["rule"] for f in g.findings} for g in grades]
        micro = scores(*counts(convs, fired, rules), rules)["micro"]["f1"]
        print(f"{name:14s} {qwk['base_level']:29s} {qwk['level']:29s} "
              f"{'–' if micro is None else f'{micro:.3f}'}", flush=True)


if __name__ == "__main__":
    main()
