"""Hostile inputs for ``qa predict``: a chat the model has nothing to read in."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_main, write_jsonl


def _msg(role, text, sec, typ="text"):
    return {"role": role, "type": typ, "text": text, "ts": f"2026-03-02T10:00:{sec:02d}+08:00"}


@pytest.mark.parametrize("fmt, out", [("jsonl", "p.jsonl"), ("dialeval", "p.json")])
def test_predict_rejects_a_chat_of_system_events_only(tmp_path, capsys, fmt, out):
    """Its turns are none: the model's probabilities were NaN (invalid JSON); now a reject with its reason."""
    data = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "sys", "platform": "douyin", "messages": [
            {"role": "system", "type": "event", "event": "session_start", "ts": "2026-03-02T10:00:00+08:00"}]},
        {"id": "ok", "platform": "douyin", "messages": [_msg("customer", "在吗", 0), _msg("agent", "在的", 5)]},
    ])
    code, _, err = run_main(capsys, "predict", data, "--out", tmp_path / out, "--format", fmt)
    assert code == 0, err
    text = (tmp_path / out).read_text(encoding="utf-8")
    assert "NaN" not in text
    ids = ([json.loads(ln)["id"] for ln in text.splitlines()] if fmt == "jsonl"
           else [r["id"] for r in json.loads(text)])
    assert ids == ["ok"]
    rejects = [json.loads(ln) for ln in (tmp_path / out).with_name("p.rejects.jsonl").read_text().splitlines()]
    assert [(r["id"], r["field"]) for r in rejects] == [("sys", "messages")]
