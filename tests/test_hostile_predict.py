"""Hostile inputs for `qa predict` (a chat the model has nothing to read in) and `qa eval` (a review's rules)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, run_main, write_jsonl


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
    assert [(r["id"], r["field"], r["file"]) for r in rejects] == [("sys", "messages", str(data))]


def test_predict_names_the_file_of_an_unreadable_chat_among_several(tmp_path, capsys):
    """The reject gave every input joined ('a.jsonl, b.jsonl'), not the chat's own file."""
    a = write_jsonl(tmp_path / "a.jsonl", [
        {"id": "ok", "platform": "douyin", "messages": [_msg("customer", "在吗", 0), _msg("agent", "在的", 5)]}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "sys", "platform": "douyin", "messages": [
        {"role": "system", "type": "event", "event": "session_start", "ts": "2026-03-02T10:00:00+08:00"}]}])
    code, _, err = run_main(capsys, "predict", a, b, "--out", tmp_path / "p.jsonl")
    assert code == 0, err
    rejects = [json.loads(ln) for ln in (tmp_path / "p.rejects.jsonl").read_text().splitlines()]
    assert [(r["id"], r["file"]) for r in rejects] == [("sys", str(b))]


# -- qa eval: a review's rules must be a list of rule names --------------------------------------------------------

@pytest.mark.parametrize("rules", ["vague_reply", 3, None, [{"a": 1}], [["vague_reply"]]])
def test_eval_rules_not_a_list_of_names_is_one_line(tmp_path, capsys, rules):
    """A string was scored as a set of its characters; a number, null or a nested list was a traceback."""
    from tests.conftest import one_line_error
    from tests.test_hostile_config import labelled

    def edit(r):
        r["labels"]["reviews"][0]["rules"] = rules
    data = labelled(tmp_path, n=4, edit=edit)
    code, _, err = run_main(capsys, "eval", ROOT / "models" / "default", data, "--no-baselines",
                            "--out", tmp_path / "e.json")
    one_line_error(code, err, "labelled.jsonl", "labels.reviews[0].rules", "not a list of rule names")


@pytest.mark.parametrize("command", ["eval", "train"])
def test_a_misspelt_rule_in_a_review_is_one_line(tmp_path, capsys, command):
    """'vague_replies' read as a chat where the reviewer flagged no vague reply: a false miss in eval's flag F1 and
    a false negative in train's flag targets. Now refused, naming file, conversation and field."""
    from tests.conftest import one_line_error
    from tests.test_hostile_config import labelled

    def edit(r):
        if r["labels"]["reviews"][0].get("rules") is not None:
            r["labels"]["reviews"][-1]["rules"] = ["vague_replies"]
    data = labelled(tmp_path, n=12, edit=edit)
    args = ((ROOT / "models" / "default", data, "--no-baselines", "--out", tmp_path / "e.json") if command == "eval"
            else (data, "--out", tmp_path / "m", "--max-steps", "1", "--base-model", "none"))
    code, _, err = run_main(capsys, command, *args)
    one_line_error(code, err, "labelled.jsonl", ".rules", "'vague_replies' is not a rule of this rubric")
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_eval_scores_each_readable_labelled_chat_once_and_says_what_it_left_out(tmp_path, capsys):
    """Bad lines, chats without grades, a chat of system events only (NaN → level 5, counted a hit) and a repeated
    id (n inflated) were dropped or scored silently; grades written 5.0 were 'not a level'."""
    from tests.test_hostile_config import labelled

    good = [json.loads(ln) for ln in labelled(tmp_path, n=6).read_text("utf-8").splitlines()]
    for r in good[:3]:
        r["labels"]["reviews"][0]["grades"] = {k: float(v) for k, v in r["labels"]["reviews"][0]["grades"].items()}
    events = {**good[0], "id": "events-only", "messages": [
        {"role": "system", "type": "event", "event": "session_start", "ts": "2026-03-02T10:00:00+08:00"}]}
    nogrades = {**good[1], "id": "nogrades", "labels": {"reviews": [{"reviewer": "a", "rules": []}]}}
    data = tmp_path / "mixed.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*good, events, nogrades, good[2]])
                    + "{not json\n", "utf-8")
    code, _, err = run_main(capsys, "eval", ROOT / "models" / "default", data, "--no-baselines",
                            "--out", tmp_path / "e.json")
    assert code == 0, err
    report = json.loads((tmp_path / "e.json").read_text("utf-8"))
    assert report["n"] == 6 and report["rejected"] == 4
    reasons = " | ".join(r["reason"] for r in report["rejected_first"])
    assert "no customer, agent or bot message" in reasons and "no grades" in reasons
    assert f"duplicate conversation id {good[2]['id']!r}" in reasons
    assert "evaluated 6 conversations · rejected 4" in err


def test_calibrate_counts_a_repeated_chat_once(tmp_path, capsys):
    """One chat 20 times passed --min-chats 20 and a calibration was fitted and saved from it."""
    from tests.test_hostile_config import labelled

    one = labelled(tmp_path, n=1).read_text("utf-8")
    data = tmp_path / "dup.jsonl"
    data.write_text(one * 20, "utf-8")
    code, _, err = run_main(capsys, "calibrate", ROOT / "models" / "default", data, "--out", tmp_path / "cal")
    assert code == 2 and "1 reviewed chats" in err, err
    assert not (tmp_path / "cal").exists()


def test_a_100000_character_message_is_read_as_its_first_1000(tmp_path, capsys):
    """The n-gram, ridge and turn-level channels count lengths: read whole, a 100,000-character message of ordinary
    text raised a privacy red line from the model alone and took professionalism to 2."""
    base = "您好，这款衣服是纯棉的，尺码标准，建议按平时尺码拍。"
    chats = []
    for cid, n in (("long", 100_000), ("cut", 1000)):
        chats.append({"id": cid, "platform": "douyin", "messages": [
            _msg("customer", "这个衣服是什么面料？", 0), _msg("agent", (base * (n // len(base) + 1))[:n], 30),
            _msg("customer", "好的谢谢", 59)]})
    src = write_jsonl(tmp_path / "c.jsonl", chats)
    code, _, err = run_main(capsys, "grade", src, "--out", tmp_path / "r.jsonl", "--workers", "1")
    assert code == 0, err
    long, cut = (json.loads(ln) for ln in (tmp_path / "r.jsonl").read_text("utf-8").splitlines())
    assert not long["failed"] and not [f for f in long["findings"] if f.get("source") != "rule"]
    same = ("score", "band", "dimensions")
    assert {k: long[k] for k in same} == {k: cut[k] for k in same}
    assert [(f["rule"], f["source"]) for f in long["findings"]] == [(f["rule"], f["source"]) for f in cut["findings"]]
