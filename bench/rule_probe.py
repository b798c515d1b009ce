"""One rule against short single-rule probe chats (data/probe/): recall on the chats that should raise it,
false alarms on the hard negatives, for the odd ids, the even ids and all (which of them the lexicon was tuned on:
data/probe/README.md).

    python bench/rule_probe.py data/probe/uncivil.jsonl uncivil_language [--model models/default] [--show [--half odd]]

With ``--model`` the findings are the grading core's (``qa.grader.Grader.with_model``, as ``qa grade`` and
``bench/rules_vs_labels.py`` make them): the model's raised flags added and the model's vetoes on rule findings
applied. Before session 37 this script left the vetoes out.

A probe line: {"id": "u-001", "label": true, "messages": [["customer", "…"], ["agent", "…"]], "note": "why"}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qa.analysis import analyse  # noqa: E402
from qa.grader import Grader  # noqa: E402
from qa.rubric import load_rubric  # noqa: E402
from qa.rules import RuleEngine  # noqa: E402
from qa.schema import Conversation  # noqa: E402

T0 = dt.datetime(2026, 5, 1, 10, 0, 0)


def probes(path: str) -> list[tuple[Conversation, bool, str]]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        msgs = [{"role": r, "type": "text", "text": t, "ts": (T0 + dt.timedelta(seconds=20 * k)).isoformat()}
                for k, (r, t) in enumerate(d["messages"])]
        conv = Conversation.model_validate({"id": d["id"], "platform": "douyin", "messages": msgs})
        out.append((conv, bool(d["label"]), d.get("note", "")))
    return out


def findings(convs: list[Conversation], model: str | None = None) -> list[tuple]:
    """Each chat's findings: the rule checks' alone, or with ``model`` the grading core's (the model's raised flags
    added, its vetoes applied), as ``qa grade`` reports them."""
    rubric = load_rubric()
    engine = RuleEngine(rubric)
    analyses = [analyse(c, rubric, engine) for c in convs]
    if model:
        from qa.model.predict import Classifier
        grader = Grader(rubric, engine=engine, classifier=Classifier(model))
        analyses = grader.with_model(convs, analyses)[0]
    return [x.findings for x in analyses]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("rule")
    ap.add_argument("--model", help="add the classifier's flags (rules + model)")
    ap.add_argument("--show", action="store_true", help="print each miss and false alarm")
    ap.add_argument("--half", choices=("odd", "even"), help="with --show: print only this half's ids (keep the other unread)")
    a = ap.parse_args()
    items = probes(a.file)
    found = [[f for f in fs if f.rule == a.rule] for fs in findings([c for c, _, _ in items], a.model)]
    print(f"{Path(a.file).name}: {a.rule}, " + ("rules + model " + a.model if a.model else "rules only"))
    for half, odd in (("odd ids", 1), ("even ids", 0), ("all", None)):
        sel = [(f, label) for (c, label, _), f in zip(items, found)
               if odd is None or int(c.id.rsplit("-", 1)[1]) % 2 == odd]
        pos = sum(label for _, label in sel)
        print(f"  {half:20s} recall {sum(1 for f, label in sel if label and f)}/{pos}   "
              f"false alarms {sum(1 for f, label in sel if not label and f)}/{len(sel) - pos}")
    if a.show:
        for (c, label, note), f in zip(items, found):
            if a.half and int(c.id.rsplit("-", 1)[1]) % 2 != (a.half == "odd"):
                continue
            if bool(f) != label:
                text = " / ".join(f"{m.role[0]}: {m.text}" for m in c.messages)
                print(f"{'MISS' if label else 'FP  '} {c.id} {note} | {text} | {[x.evidence for x in f]}")


if __name__ == "__main__":
    main()
