"""The shipped labelled chats pass their checkers: scripts/check_labelled.py (hand-written, generated) and
scripts/check_real_labels.py (the real chats' label files)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_labelled", ROOT / "scripts" / "check_labelled.py")
check_labelled = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_labelled)


def test_every_shipped_labelled_file_passes_the_checker(capsys):
    files = sorted(str(p) for p in (ROOT / "data" / "labelled").glob("*/*.jsonl") if "real" not in p.parts)
    assert len(files) >= 17
    assert check_labelled.main(files) == 0, capsys.readouterr().out


def test_checker_names_a_missing_file_without_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        check_labelled.main([str(tmp_path / "nope.jsonl")])
    assert e.value.code == 2 and "no such file" in capsys.readouterr().err


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


spec = importlib.util.spec_from_file_location("check_real_labels", ROOT / "scripts" / "check_real_labels.py")
check_real_labels = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_real_labels)


def test_every_real_label_file_passes_with_whatever_text_is_at_hand(capsys):
    files = sorted(str(p) for p in (ROOT / "data" / "labelled" / "real").glob("labels_*.jsonl"))
    assert len(files) >= 20
    assert check_real_labels.main(files) == 0, capsys.readouterr().out


def test_real_label_rows_are_checked_alone_and_against_their_text():
    path = ROOT / "data" / "labelled" / "real" / "labels_ecom_real-u.jsonl"
    row = json.loads(path.open(encoding="utf-8").readline())
    assert check_real_labels.check_row(row, None) == []
    bad = {**row, "reviewer": "me", "rules": ["slow_first_response", "made_up"],
           "grades": {**row["grades"], "clarity": 6}}
    errs = check_real_labels.check_row(bad, None)
    assert any("reviewer 'me'" in e for e in errs)
    assert any("slow_first_response needs message times" in e for e in errs)
    assert any("rules unknown ['made_up']" in e for e in errs)
    assert any("grades.clarity 6" in e for e in errs)
    n = max(t["i"] for side in row["turns"].values() for t in side) + 1
    messages = [{"role": "customer", "type": "image"} for _ in range(n)]     # a stand-in chat the labels fit
    for side in ("customer", "agent"):
        for t in row["turns"][side]:
            messages[t["i"]] = {"role": side, "text": "好的"}
    text = {"id": row["id"], "platform": "other", "messages": messages}
    assert check_real_labels.check_row(row, text) == []
    messages[row["turns"]["agent"][0]["i"]]["role"] = "customer"              # the labels now miss their side
    assert any("is not a message of the agent side" in e for e in check_real_labels.check_row(row, text))


def test_real_checker_names_a_missing_file_without_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        check_real_labels.main([str(tmp_path / "nope.jsonl")])
    assert e.value.code == 2 and "no such file" in capsys.readouterr().err
