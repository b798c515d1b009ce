"""Where the rule lexicon fires on text that is not a chat fault: the phrases of some categories, counted with
their commonest contexts, over benign text (pretraining corpus passages, or reviews labelled positive).

    python bench/lexicon_audit.py insult blame --corpus ~/.cache/qa/corpus/train            # every corpus passage
    python bench/lexicon_audit.py upset upset_weak --reviews waimai_10k.csv online_shopping_10_cats.csv
    python bench/lexicon_audit.py --red-lines --corpus ~/.cache/qa/corpus/train   # each passage as an agent's reply

``--corpus`` reads the ``*.txt`` passages ``scripts/build_corpus.py`` writes (``--only`` builds a few sources);
``--reviews`` reads CSV files with ``label`` and ``review`` columns (the SophonPlus sentiment sets) and keeps the
reviews labelled 1. A phrase that fires often on such text inside a longer word (摇滚, 小气泡, 大中小号, 舒服了) is a
candidate for the category's ``exclude`` list; one that fires on genuine insults or complaints is working.
``--red-lines`` runs the whole rule engine instead, each passage the agent's reply in a two-message chat, and counts
the red-line findings (uncivil language, diversion, privacy) by rule and evidence: on answers written to help
(``medical_dialogue_im``, ``sogou_qa``, ``alpaca_zh``) nearly every one is a false alarm.
"""
from __future__ import annotations

import argparse
import collections
import csv
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from qa.rubric import load_rubric  # noqa: E402
from qa.rules.lexicon import Lexicon  # noqa: E402
from qa.text import normalize  # noqa: E402


def passages(corpus: list[str], reviews: list[str]) -> list[str]:
    out = []
    for folder in corpus:
        for path in sorted(glob.glob(os.path.join(os.path.expanduser(folder), "*.txt"))):
            with open(path, encoding="utf-8") as f:
                out += [line.rstrip("\n") for line in f if line.strip()]
    for path in reviews:
        with open(os.path.expanduser(path), encoding="utf-8-sig", newline="") as f:
            out += [row["review"][:200] for row in csv.DictReader(f) if row.get("label") == "1" and row.get("review")]
    return out


def red_lines(texts: list[str], rubric, top: int, shown: int) -> None:
    """Each passage (its first 300 characters) as the agent's reply to a neutral question; red-line findings."""
    from qa.rules import RuleEngine
    from qa.schema import Conversation
    from qa.timing import compute_timing

    engine = RuleEngine(rubric)
    count: collections.Counter = collections.Counter()
    evidence: dict = collections.defaultdict(collections.Counter)
    example: dict = {}
    for i, t in enumerate(texts):
        conv = Conversation.model_validate({"id": f"p{i}", "messages": [
            {"role": "customer", "text": "请问这个怎么样"}, {"role": "agent", "text": t[:300]}]})
        for f in engine.check(conv, compute_timing(conv, rubric)):
            if f.severity == "red_line":
                count[f.rule] += 1
                evidence[f.rule][f.evidence] += 1
                example.setdefault((f.rule, f.evidence), t[:80])
    print(f"{len(texts):,} passages as replies; red-line findings: {dict(count)}")
    for rule in count:
        print(f"== {rule}")
        for ev, n in evidence[rule].most_common(top):
            print(f"  {n:5d}  {ev!r:20s} {example[(rule, ev)] if shown else ''}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("categories", nargs="*", help="lexicon categories (insult, contact_app, upset, …)")
    ap.add_argument("--red-lines", action="store_true", help="each passage as an agent's reply: red-line findings")
    ap.add_argument("--corpus", nargs="*", default=[], help="folders of *.txt passages")
    ap.add_argument("--reviews", nargs="*", default=[], help="CSV files (label, review): the positive ones are read")
    ap.add_argument("--rubric", help="rubric whose lexicon is audited (default: the shipped one)")
    ap.add_argument("--top", type=int, default=60, help="phrases to print")
    ap.add_argument("--contexts", type=int, default=4, help="contexts per phrase")
    args = ap.parse_args()
    texts = passages(args.corpus, args.reviews)
    if not texts:
        sys.exit("no text: give --corpus FOLDER or --reviews FILE.csv")
    if args.red_lines:
        red_lines(texts, load_rubric(args.rubric), args.top, args.contexts)
        return
    rubric = load_rubric(args.rubric)
    if not args.categories:
        sys.exit("name lexicon categories, or give --red-lines")
    lexicon = Lexicon(rubric.lexicon_data(), source=str(rubric.lexicon_file))
    unknown = [c for c in args.categories if c not in lexicon.categories]
    if unknown:
        sys.exit(f"unknown categories: {', '.join(unknown)}")
    count: collections.Counter = collections.Counter()
    contexts: dict = collections.defaultdict(collections.Counter)
    for k in range(0, len(texts), 200):
        batch = [normalize(t) for t in texts[k:k + 200]]
        hits = lexicon.scan(batch)
        for cat in args.categories:
            for h in hits.get(cat, ()):
                t = batch[h.message]
                count[(cat, h.text)] += 1
                contexts[(cat, h.text)][f"{t[max(0, h.start - 3):h.start]}[{h.text}]{t[h.end:h.end + 3]}"] += 1
    print(f"{len(texts):,} passages; hits of {', '.join(args.categories)}")
    for (cat, phrase), n in count.most_common(args.top):
        shown = "  ".join(f"{c}:{m}" for c, m in contexts[(cat, phrase)].most_common(args.contexts))
        print(f"{cat:14s} {phrase:10s} {n:6d}  {shown}")


if __name__ == "__main__":
    main()
