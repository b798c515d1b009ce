"""The shipped hand-labelled and generated chats pass scripts/check_labelled.py, turn labels included."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_labelled", ROOT / "scripts" / "check_labelled.py")
check_labelled = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_labelled)


def test_every_shipped_labelled_file_passes_the_checker(capsys):
    files = sorted(str(p) for p in (ROOT / "data" / "labelled").glob("*/*.jsonl") if "real" not in p.parts)
    assert len(files) >= 17
    assert check_labelled.main(files) == 0, capsys.readouterr().out


def test_turn_labels_must_point_at_messages_of_their_side():
    obj = json.loads((ROOT / "data" / "labelled" / "gen" / "gen.jsonl").open(encoding="utf-8").readline())
    assert check_labelled.check_line(obj) == []
    turns = obj["labels"]["turns"]
    turns["customer"][0]["answered_by"] = turns["customer"][0]["i"]          # answered by itself
    turns["agent"][0]["i"] = turns["customer"][0]["i"]                        # an agent label on a customer message
    turns["agent"][1]["vague"] = "no"
    errs = check_labelled.check_line(obj)
    assert any("customer[0].answered_by" in e for e in errs)
    assert any("agent[0].i" in e and "not a message of the agent side" in e for e in errs)
    assert any("agent[1].vague must be true or false" in e for e in errs)
    assert any("labels.turns.agent misses text messages" in e for e in errs)
