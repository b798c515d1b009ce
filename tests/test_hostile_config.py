"""Hostile configuration: rubrics, lexicons, column profiles, model folders, labelled data and float options that
are broken in every way a fuzzing session found. Each one ends as one ``error:`` line (exit 2) that names the
file and the key or field, or — for a malformed label — a counted warning; never a traceback."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest

from qa.errors import InputError, ModelError, RubricError
from qa.rubric import load_rubric
from qa.rules import RuleEngine

from tests.conftest import one_line_error
from tests.test_hostile import assert_one_line_error, run_main

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUBRIC = ROOT / "rubrics" / "default.yaml"
MODEL = ROOT / "models" / "default"
CHATS = ROOT / "tests" / "data" / "short_replies.jsonl"
LABELLED = ROOT / "data" / "labelled" / "eval" / "eval_eval-f.jsonl"


def rubric_copy(tmp_path: Path, edit=None, name: str = "r.yaml") -> Path:
    """The default rubric (and its lexicon) in ``tmp_path``, its text passed through ``edit``."""
    shutil.copytree(ROOT / "rubrics" / "lexicon", tmp_path / "lexicon", dirs_exist_ok=True)
    text = DEFAULT_RUBRIC.read_text(encoding="utf-8")
    if edit:
        new = edit(text)
        assert new != text, "the edit changed nothing"
        text = new
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / name


def model_copy(tmp_path: Path, **files: bytes | str) -> Path:
    """models/default in ``tmp_path`` as links to its files, with ``files`` (name → content) written instead."""
    out = tmp_path / "m"
    out.mkdir()
    for f in MODEL.iterdir():
        if f.name not in files:
            (out / f.name).symlink_to(f)
    for name, content in files.items():
        (out / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return out


def labelled(tmp_path: Path, n: int = 12, edit=None) -> Path:
    rows = [json.loads(x) for x in LABELLED.read_text(encoding="utf-8").splitlines()[:n]]
    for r in rows:
        if edit:
            edit(r)
    out = tmp_path / "labelled.jsonl"
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return out


# -- rubric and lexicon ------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["gb18030", "utf-16"])
def test_hostile_config_a_rubric_not_in_utf8_is_one_line_naming_the_file(tmp_path, capsys, encoding):
    p = tmp_path / "r.yaml"
    p.write_bytes(DEFAULT_RUBRIC.read_text(encoding="utf-8").encode(encoding))
    for args in (["rubric", "validate", p], ["check", CHATS, "-q", "--rubric", p, "--out", tmp_path / "f.jsonl"],
                 ["metrics", CHATS, "--rubric", p, "--out", tmp_path / "m"]):
        code, _, err = run_main(capsys, *args)
        assert_one_line_error(code, err)
        assert "r.yaml" in err and "UTF-8" in err


def test_hostile_config_a_binary_rubric_is_one_line(tmp_path, capsys):
    p = tmp_path / "r.yaml"
    p.write_bytes(bytes(range(256)) * 4)
    code, _, err = run_main(capsys, "rubric", "validate", p)
    assert_one_line_error(code, err)
    assert "r.yaml" in err


@pytest.mark.parametrize("edit, key", [
    (lambda t: t.replace("weights: {attitude: 20,", "weights: {attitude: .nan,", 1), "weights -> attitude"),
    (lambda t: t.replace("weights: {attitude: 20,", "weights: {attitude: .inf,", 1), "weights -> attitude"),
    (lambda t: t.replace("  first_response_s: 120 ", "  first_response_s: -5 ", 1), "timing -> first_response_s"),
    (lambda t: t.replace("  reply_s: 180 ", "  reply_s: .nan ", 1), "timing -> reply_s"),
])
def test_hostile_config_nan_weights_and_negative_limits_are_refused_with_the_key_path(tmp_path, capsys, edit, key):
    p = rubric_copy(tmp_path, edit)
    with pytest.raises(RubricError, match=key):
        load_rubric(p)
    code, _, err = run_main(capsys, "rubric", "validate", p)
    assert_one_line_error(code, err)
    assert key in err and "r.yaml" in err


@pytest.mark.parametrize("category, key", [
    ("blame:\n  window: x\n  phrases: [a]\n", "blame -> window"),
    ("blame:\n  window: -1\n  phrases: [a]\n", "blame -> window"),
    ("blame:\n  phrases: 12\n", "blame -> phrases"),
    ("blame:\n  regex: ['(a']\n", "blame -> regex -> 0"),
    ("blame:\n  regex: [{a: 1}]\n", "blame -> regex -> 0"),
])
def test_hostile_config_a_bad_lexicon_category_names_the_lexicon_and_key(tmp_path, capsys, category, key):
    p = rubric_copy(tmp_path, lambda t: t.replace("lexicon: lexicon/zh.yaml", "lexicon: lex.yaml"))
    (tmp_path / "lex.yaml").write_text(category, encoding="utf-8")
    code, _, err = run_main(capsys, "rubric", "validate", p)
    assert_one_line_error(code, err)
    assert "lex.yaml" in err and key in err


@pytest.mark.parametrize("content", ["- a\n- b\n", "just a string\n"])
def test_hostile_config_a_lexicon_that_is_not_a_mapping_is_one_line(tmp_path, capsys, content):
    p = rubric_copy(tmp_path, lambda t: t.replace("lexicon: lexicon/zh.yaml", "lexicon: lex.yaml"))
    (tmp_path / "lex.yaml").write_text(content, encoding="utf-8")
    code, _, err = run_main(capsys, "rubric", "validate", p)
    assert_one_line_error(code, err)
    assert "lex.yaml" in err and "mapping" in err


def test_hostile_config_a_lexicon_not_in_utf8_is_one_line(tmp_path, capsys):
    p = rubric_copy(tmp_path)
    zh = tmp_path / "lexicon" / "zh.yaml"
    zh.write_bytes(zh.read_text(encoding="utf-8").encode("gb18030"))
    code, _, err = run_main(capsys, "rubric", "validate", p)
    assert_one_line_error(code, err)
    assert "zh.yaml" in err and "UTF-8" in err


@pytest.mark.parametrize("edit, key", [
    # a regex param of a check the dry run does not reach (no upset customer in it)
    (lambda t: t.replace("warmth: ['不客气',", "warmth: ['(unclosed', '不客气',", 1),
     "rules -> negative_emotion_unsoothed -> params -> warmth -> 0"),
    (lambda t: t.replace("intent: ['加',", "intent: ['加', '[x',", 1),
     "rules -> off_platform_diversion -> params -> intent -> 1"),
    (lambda t: t.replace("ask_for_human: [", "ask_for_human: ['*', ", 1),
     "rules -> no_proactive_confirmation -> params -> ask_for_human -> 0"),
    (lambda t: t.replace("warmth: ['不客气',", "warmth: '不客气'\n      x: ['不客气',", 1),
     "rules -> negative_emotion_unsoothed -> params -> warmth"),
    (lambda t: t.replace("params: {last_agent_messages: 5}", "params: {last_agent_messages: five}", 1),
     "rules -> missing_closing -> params -> last_agent_messages"),
    (lambda t: t.replace("params: {clock: wall}", "params: {clock: wall, seconds: .nan}", 1),
     "rules -> slow_first_response -> params -> seconds"),
])
def test_hostile_config_every_regex_and_number_param_is_checked_on_load(tmp_path, capsys, edit, key):
    p = rubric_copy(tmp_path, edit)
    with pytest.raises(RubricError, match=key):
        RuleEngine(load_rubric(p))
    code, _, err = run_main(capsys, "rubric", "validate", p)
    assert_one_line_error(code, err)
    assert key in err
    code, _, err = run_main(capsys, "check", CHATS, "-q", "--rubric", p, "--out", tmp_path / "f.jsonl")
    assert_one_line_error(code, err)
    assert key in err


def test_hostile_config_answer_types_regexes_are_checked(tmp_path):
    p = rubric_copy(tmp_path, lambda t: t.replace("          answer: ['(?:[0-9]|", "          answer: ['(元', '(?:[0-9]|", 1))
    with pytest.raises(RubricError, match="vague_reply -> params -> answer_types -> price -> answer -> 0"):
        RuleEngine(load_rubric(p))


def test_hostile_config_the_shipped_rubrics_still_validate(capsys):
    for p in sorted((ROOT / "rubrics").glob("*.yaml")):
        code, out, err = run_main(capsys, "rubric", "validate", p)
        assert code == 0 and "ok" in out, err


# -- column profiles ---------------------------------------------------------------------------------------

def _profile(tmp_path: Path, tz: str = "Asia/Shanghai") -> str:
    return (f"name: mine\ntimezone: {tz}\ncolumns:\n  conversation_id: 会话ID\n  ts: 时间\n  role: 角色\n"
            "  text: 内容\n")


def test_hostile_config_a_column_profile_not_in_utf8_is_one_line(tmp_path, capsys):
    (tmp_path / "cols.yaml").write_bytes(_profile(tmp_path).encode("gb18030"))
    (tmp_path / "x.csv").write_text("会话ID,时间,角色,内容\n1,2026-01-01 10:00,顾客,你好\n", encoding="utf-8")
    code, _, err = run_main(capsys, "check", tmp_path / "x.csv", "--columns", tmp_path / "cols.yaml",
                            "--out", tmp_path / "f.jsonl")
    assert_one_line_error(code, err)
    assert "cols.yaml" in err and "UTF-8" in err


def test_hostile_config_a_column_profile_with_an_unknown_timezone_is_refused_when_it_loads(tmp_path, capsys):
    from qa.io.profiles import load_profile
    (tmp_path / "cols.yaml").write_text(_profile(tmp_path, "Mars/Olympus"), encoding="utf-8")
    with pytest.raises(InputError, match="timezone"):
        load_profile(tmp_path / "cols.yaml")
    (tmp_path / "x.csv").write_text("会话ID,时间,角色,内容\n1,2026-01-01 10:00,顾客,你好\n", encoding="utf-8")
    code, _, err = run_main(capsys, "check", tmp_path / "x.csv", "--columns", tmp_path / "cols.yaml",
                            "--out", tmp_path / "f.jsonl")
    assert_one_line_error(code, err)
    assert "cols.yaml" in err and "Mars/Olympus" in err and not (tmp_path / "f.jsonl").exists()


# -- model folders -----------------------------------------------------------------------------------------

_GBK_RUBRIC = (MODEL / "rubric.yaml").read_text(encoding="utf-8").encode("gb18030")


@pytest.mark.parametrize("files, named", [
    ({"tokenizer.json": "{garbage"}, "tokenizer.json"),
    ({"tokenizer.json": "{}"}, "tokenizer.json"),
    ({"tokenizer.json": "[1]"}, "tokenizer.json"),
    ({"tokenizer_config.json": "{garbage"}, "tokenizer_config.json"),
    ({"ngrams.json": "{garbage"}, "ngrams.json"),
    ({"ngrams.json": "{}"}, "ngrams.json"),
    ({"rubric.yaml": _GBK_RUBRIC}, "rubric.yaml"),
    ({"ridge.json": "{garbage"}, "ridge.json"),
    ({"offsets.json": json.dumps({"offsets": {"douyin": {"attitude": float("nan")}}})}, "offsets.json"),
    ({"offsets.json": json.dumps({"offsets": {}, "flags": {"douyin": {"vague_reply": float("inf")}}})},
     "offsets.json"),
])
def test_hostile_config_a_broken_model_file_is_a_model_error_naming_it(tmp_path, files, named):
    pytest.importorskip("torch")
    from qa.model.predict import Classifier
    m = model_copy(tmp_path, **files)
    with pytest.raises(ModelError, match=f"cannot load model from {m}: .*{named}"):
        Classifier(m)


@pytest.mark.parametrize("missing, named", [
    ("tokenizer.json", "tokenizer.json: missing"),          # a tokenizer of 8 special tokens: every character [UNK]
    ("ridge.json", "ridge.json: missing (ridge.safetensors is there)"),      # the ridge channel dropped silently
    ("turnflags.json", "turnflags.json: missing (turnflags.safetensors is there)"),    # a KeyError when grading
    ("ngrams.json", "ngrams.json: missing (the network reads"),               # an AttributeError when grading
])
def test_hostile_config_a_missing_model_file_is_a_model_error_naming_it(tmp_path, missing, named):
    pytest.importorskip("torch")
    from qa.model.predict import Classifier
    m = model_copy(tmp_path)
    (m / missing).unlink()
    with pytest.raises(ModelError, match=re.escape(f"cannot load model from {m}: {named}")):
        Classifier(m)


@pytest.mark.parametrize("key, value", [("cutpoints", {"attitude": [float("nan"), 1.3, 1.6]}),
                                        ("temperatures", {"attitude": float("inf")}),
                                        ("cutpoints", {"attitude": [0.5]}),                  # only 5 and 4 reachable
                                        ("cutpoints_ungated", {"attitude": [0.1, 0.5, 1.0, 1.5, 2.0]}),   # IndexError
                                        ("cutpoints", {"attitude": [1.6, 1.3, 0.76]})])
def test_hostile_config_nan_calibration_numbers_in_config_are_a_model_error(tmp_path, key, value):
    pytest.importorskip("torch")
    from qa.model.predict import Classifier
    cfg = json.loads((MODEL / "config.json").read_text(encoding="utf-8"))
    cfg[key] = value
    m = model_copy(tmp_path, **{"config.json": json.dumps(cfg)})
    with pytest.raises(ModelError, match=f"config.json: {key}.attitude"):
        Classifier(m)


def test_hostile_config_predict_with_a_garbage_tokenizer_is_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    m = model_copy(tmp_path, **{"tokenizer.json": "{garbage"})
    code, _, err = run_main(capsys, "predict", CHATS, "--model", m, "--out", tmp_path / "p.jsonl")
    assert_one_line_error(code, err)
    assert "tokenizer.json" in err and "not valid JSON" in err


@pytest.mark.parametrize("config", ["[1]", '"x"', '{"dimension_list": 3}', '{"dimensions": {"attitude": 5}}'])
def test_hostile_config_grade_with_a_config_that_is_no_object_is_one_line(tmp_path, capsys, config):
    m = model_copy(tmp_path, **{"config.json": config})
    code, _, err = run_main(capsys, "grade", CHATS, "--model", m, "--workers", "1", "--out", tmp_path / "g.jsonl")
    assert_one_line_error(code, err)
    assert "config.json" in err and str(m) in err


def test_hostile_config_eval_with_corrupt_training_args_is_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    m = model_copy(tmp_path, **{"training_args.json": "{garbage"})
    code, _, err = run_main(capsys, "eval", m, labelled(tmp_path))
    assert_one_line_error(code, err)
    assert "training_args.json" in err and "--no-baselines" in err


# -- labelled data -----------------------------------------------------------------------------------------

def test_hostile_config_malformed_grades_are_skipped_with_a_counted_warning(tmp_path, caplog):
    from qa.model.data import load_examples

    def edit(r):
        if r["id"].endswith("1"):
            r["labels"]["reviews"][0]["grades"] = [5, 4]
        elif r["id"].endswith("2"):
            r["labels"]["reviews"][0]["grades"]["attitude"] = "x"
        elif r["id"].endswith("3"):
            r["labels"]["reviews"].append("not a review")
    p = labelled(tmp_path, edit=edit)
    dims = {d: [5, 4, 3, 2] for d in ("attitude", "etiquette", "professionalism", "clarity")}
    with caplog.at_level(logging.WARNING, logger="qa.model.data"):
        examples = load_examples([str(p)], dims)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(p) in warnings[0] and "conversation" in warnings[0], warnings
    bad = sum(r.endswith(("1", "2", "3")) for r in (json.loads(x)["id"] for x in p.read_text().splitlines()))
    assert f"in {bad} conversation(s)" in warnings[0]
    assert not any(e.conv.id.endswith("1") for e in examples)               # its only review had no usable grades
    two = [e for e in examples if e.conv.id.endswith("2")]
    assert two and all("attitude" not in e.targets and "etiquette" in e.targets for e in two)


def test_hostile_config_eval_with_a_list_of_grades_warns_and_scores_the_rest(tmp_path, capsys, caplog):
    pytest.importorskip("torch")

    def edit(r):
        if r["id"].endswith("1"):
            r["labels"]["reviews"][0]["grades"] = [5, 4]
    code, out, err = run_main(capsys, "eval", MODEL, labelled(tmp_path, edit=edit), "--no-baselines")
    assert code == 0 and "Traceback" not in err + out, err
    assert "attitude (n=10)" in out                     # 12 chats, the 2 with a list of grades left out
    assert any("labelled.jsonl: skipped malformed labels in 2 conversation(s)" in r.getMessage()
               for r in caplog.records)


def test_hostile_config_eval_with_no_usable_grade_for_a_dimension_is_one_line(tmp_path, capsys):
    pytest.importorskip("torch")

    def edit(r):
        r["labels"]["reviews"][0]["grades"]["attitude"] = "x"
    p = labelled(tmp_path, edit=edit)
    code, out, err = run_main(capsys, "eval", MODEL, p, "--no-baselines")
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert "attitude" in err and str(p) in err and "no examples to score" not in err


# -- float options -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("prior", ["nan", "inf", "-inf", "-1"])
def test_hostile_config_calibrate_refuses_a_non_finite_or_negative_prior(tmp_path, capsys, prior):
    code, _, err = run_main(capsys, "calibrate", MODEL, labelled(tmp_path), "--prior", prior, "--min-chats", "5",
                            "--out", tmp_path / "cal")
    assert_one_line_error(code, err)
    assert "--prior" in err and not (tmp_path / "cal").exists()


def test_hostile_config_calibrate_refuses_nan_in_the_library_too(tmp_path):
    from qa.model.offsets import calibrate
    with pytest.raises(ValueError, match="prior"):
        calibrate(MODEL, [str(labelled(tmp_path))], tmp_path / "cal", prior=float("nan"))
    assert not (tmp_path / "cal").exists()


@pytest.mark.parametrize("args", [["--lr", "nan"], ["--encoder-lr", "inf"], ["--lr", "0"],
                                  ["--weight", "*=nan"], ["--weight", "*=inf"], ["--dev-fraction", "nan"],
                                  ["--augment", "nan"], ["--excerpt", "inf"]])
def test_hostile_config_train_refuses_non_finite_float_options(tmp_path, capsys, args):
    code, _, err = run_main(capsys, "train", labelled(tmp_path), "--out", tmp_path / "t", *args)
    assert code == 2 and "Traceback" not in err, err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1 and err.startswith("error:"), err
    assert not (tmp_path / "t").exists()


def test_hostile_config_train_refuses_a_folder_holding_files(tmp_path, capsys):
    """A model written over another left its ridge channel and turn models beside the new network: loaded with it."""
    old = tmp_path / "old"
    shutil.copytree(MODEL, old)
    data = labelled(tmp_path)
    for target in (old, tmp_path / "c.jsonl"):
        if target.suffix:
            target.write_text("x", "utf-8")
        code, _, err = run_main(capsys, "train", data, "--out", target, "--max-steps", "1")
        assert code == 2 and "Traceback" not in err, err
        assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
        assert ("is not empty" in err and "--resume" in err) if target == old else "is a file" in err, err
    assert sorted(p.name for p in old.iterdir()) == sorted(p.name for p in Path(MODEL).iterdir())


@pytest.mark.parametrize("option,value", [("--lr", "nan"), ("--lr", "0"), ("--lr", "-1e-4"), ("--warmup", "nan"),
                                          ("--warmup", "1.5"), ("--warmup", "-0.1"), ("--mask-prob", "inf"),
                                          ("--mask-prob", "0"), ("--mask-prob", "2"), ("--minutes", "nan"),
                                          ("--minutes", "inf"), ("--minutes", "0"), ("--chat-weight", "inf"),
                                          ("--chat-weight", "-1"), ("--teacher-weight", "nan")])
def test_hostile_config_pretrain_refuses_bad_float_options_first(tmp_path, capsys, option, value):
    # refused before the corpus is looked for (there is none here) and before anything is written
    code, _, err = run_main(capsys, "pretrain", "--corpus", tmp_path / "no-corpus", "--out", tmp_path / "base",
                            option, value)
    one_line_error(code, err, option)
    assert "corpus" not in err and not (tmp_path / "base").exists()


def test_hostile_config_pretrain_takes_float_options_at_their_limits(tmp_path, capsys):
    code, _, err = run_main(capsys, "pretrain", "--corpus", tmp_path / "no-corpus", "--out", tmp_path / "base",
                            "--warmup", "0", "--mask-prob", "1", "--chat-weight", "0", "--teacher-weight", "0")
    one_line_error(code, err, "no pretraining corpus")          # got past the option checks


def test_hostile_config_pretrain_refuses_bad_floats_in_the_library_and_heads_in_one_line(tmp_path, capsys):
    from qa.model.pretrain import PretrainArgs
    for name, value in (("lr", float("nan")), ("mask_prob", 0.0), ("warmup", float("inf")), ("minutes", -1.0)):
        with pytest.raises(ValueError, match=name):
            PretrainArgs(out=str(tmp_path / "base"), **{name: value})
    code, _, err = run_main(capsys, "pretrain", "--corpus", tmp_path / "no-corpus", "--out", tmp_path / "base",
                            "--hidden", "100", "--heads", "3")
    one_line_error(code, err, "--hidden 100", "--heads 3")


@pytest.mark.parametrize("option,value", [("--batch-size", "0"), ("--steps", "0"), ("--heads", "0"),
                                          ("--layers", "0"), ("--eval-every", "-1"), ("--num-proc", "0")])
def test_hostile_config_pretrain_refuses_zero_or_negative_counts(tmp_path, capsys, option, value):
    code, _, err = run_main(capsys, "pretrain", "--corpus", tmp_path / "no-corpus", "--out", tmp_path / "base",
                            option, value)
    one_line_error(code, err, option, "at least")


DEEP_YAML = "a: " + "[" * 50_000 + "]" * 50_000 + "\n"   # nested past Python's recursion limit


@pytest.mark.parametrize("where", ["rubric", "lexicon", "columns"])
def test_hostile_config_yaml_nested_too_deep_is_one_line(tmp_path, capsys, where):
    p = rubric_copy(tmp_path)
    target = {"rubric": p, "lexicon": tmp_path / "lexicon" / "zh.yaml", "columns": tmp_path / "cols.yaml"}[where]
    target.write_text(DEEP_YAML, encoding="utf-8")
    if where == "columns":
        (tmp_path / "x.csv").write_text("会话ID,时间,角色,内容\n1,2026-01-01 10:00,顾客,你好\n", encoding="utf-8")
        args = ("check", tmp_path / "x.csv", "--columns", target, "--out", tmp_path / "f.jsonl")
    else:
        args = ("rubric", "validate", p)
    code, _, err = run_main(capsys, *args)
    assert_one_line_error(code, err)
    assert target.name in err and "nested too deep" in err


# -- training and calibration data nothing can be learnt from (session 40) -----------------------------------

def _off_scale_attitude(r):
    for rev in r["labels"]["reviews"]:
        rev["grades"]["attitude"] = 6


@pytest.mark.parametrize("n,edit,args,words", [
    (1, None, [], "n-gram channel needs"),                                   # one chat: no shared n-gram
    (5, _off_scale_attitude, [], "no training chat has a usable grade for attitude"),
    (5, None, ["--weight", "*=0"], "every training chat weighs 0"),
    (5, None, ["--threads", "-2"], "threads must be ≥ 1"),
    (5, None, ["--threads", "0"], "threads must be ≥ 1"),
    (5, None, ["--excerpt", "0.5", "--excerpt-dim", "nosuch"], "'nosuch' is not a dimension"),
])
def test_hostile_config_train_on_nothing_learnable_is_one_line(tmp_path, capsys, n, edit, args, words):
    code, _, err = run_main(capsys, "train", labelled(tmp_path, n, edit), "--out", tmp_path / "t", "--epochs", "1",
                            "--max-steps", "1", *args)
    assert_one_line_error(code, err)
    assert words in err


def test_hostile_config_train_with_every_chat_in_the_dev_split_is_one_line(tmp_path, capsys):
    data = labelled(tmp_path, 5)
    ids = tmp_path / "dev_ids.txt"
    ids.write_text("".join(json.loads(x)["id"] + "\n" for x in data.read_text("utf-8").splitlines()), "utf-8")
    code, _, err = run_main(capsys, "train", data, "--dev-ids", ids, "--out", tmp_path / "t", "--max-steps", "1")
    assert_one_line_error(code, err)
    assert "training split is empty" in err


def test_hostile_config_turn_labels_of_the_wrong_shape_are_no_labels():
    from qa.model.flags import turn_targets
    from qa.schema import Conversation
    conv = Conversation.model_validate({"id": "t", "messages": [{"role": "customer", "text": "在吗"}], "labels": {
        "turns": {"customer": "x", "agent": [None, 3, "y"]},
        "reviews": [{"turns": {"customer": [None, {"i": 0, "request": True, "answered_by": None}]}}]}})
    assert turn_targets(conv, {"customer": ["unanswered"], "agent": ["vague"]}) == {0: {"unanswered": 1.0}}


@pytest.mark.parametrize("base", ["foo/typo/base", "./not-here", "models/typo"])
def test_hostile_config_a_missing_base_model_path_fails_at_once_without_the_network(tmp_path, monkeypatch, base):
    from qa.model.train import base_source
    monkeypatch.chdir(ROOT)                      # models/ exists here: models/typo is a typo, not a hub id
    with pytest.raises(ModelError, match="not found"):
        base_source(base)


def test_hostile_config_the_default_base_model_is_found_from_any_folder(tmp_path, monkeypatch):
    from qa.model.train import DEFAULT_BASE, base_source
    monkeypatch.chdir(tmp_path)
    assert Path(base_source(DEFAULT_BASE)) == ROOT / "models" / "base"
    from qa.model import train as train_mod
    monkeypatch.setattr(train_mod, "_hub_unreachable", lambda: None)
    assert base_source("hfl/rbt3") == "hfl/rbt3"   # a hub id is passed on (only a user's own choice reaches it)


def test_hostile_config_a_hub_id_without_a_hub_fails_in_one_line_at_once(monkeypatch, tmp_path):
    """No network: the hub client retried for 54 s, each warning printed twice, before its error."""
    from qa.model.train import base_source
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="cannot be reached .HF_HUB_OFFLINE is set"):
        base_source("someone/nomodel")
    from qa.model.train import _hub_unreachable
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert _hub_unreachable() is None          # behind a proxy only the hub client can tell


def test_hostile_config_calibrate_one_chat_and_a_read_only_model(tmp_path, capsys):
    code, _, err = run_main(capsys, "calibrate", MODEL, labelled(tmp_path, 1), "--min-chats", "1",
                            "--out", tmp_path / "one")
    assert_one_line_error(code, err)
    assert "at least 2" in err
    ro = tmp_path / "ro"
    shutil.copytree(MODEL, ro)
    for p in [*ro.rglob("*"), ro]:
        p.chmod(0o555 if p.is_dir() else 0o444)   # a model installed read-only
    code, _, err = run_main(capsys, "calibrate", ro, labelled(tmp_path, 12), "--min-chats", "5",
                            "--out", tmp_path / "cal")
    assert code == 0, err
    assert all(p.stat().st_mode & 0o200 for p in [tmp_path / "cal", *(tmp_path / "cal").rglob("*")])


@pytest.mark.parametrize("mb", ["-5", "0", "99999999"])
def test_hostile_config_ray_object_store_out_of_range_is_one_line(tmp_path, capsys, mb):
    code, _, err = run_main(capsys, "grade", CHATS, "--engine", "ray", "--model", "none", "--object-store-mb", mb,
                            "--out", tmp_path / "r")
    assert_one_line_error(code, err)
    assert "--object-store-mb" in err and not (tmp_path / "r").exists()


def test_hostile_config_damaged_pretraining_files_are_model_errors(tmp_path):
    import numpy as np

    from qa.model import corpus as C
    from qa.model.distil import Teacher
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ModelError, match="not a teacher file"):
        Teacher(str(tmp_path / "empty.npz"), None, 16)
    np.savez(tmp_path / "texts.npz", texts=np.array(["在吗"]))                 # no vectors
    with pytest.raises(ModelError, match="not a teacher file"):
        Teacher(str(tmp_path / "texts.npz"), None, 16)
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "pack.json").write_text("[1,2", encoding="utf-8")
    with pytest.raises(ModelError, match="not a pack description"):
        C.read_pack(pack)
    (pack / "pack.json").write_text(json.dumps({"sources": {"tiny": {"weight": 1.0, "rows": 1, "stored_rows": 1}}}),
                                    encoding="utf-8")
    (pack / "train-tiny.npz").write_bytes(b"")                                 # a shard cut to nothing
    with pytest.raises(ModelError, match="damaged corpus pack"):
        C.read_pack(pack)
    (tmp_path / "manifest.json").write_text(json.dumps({"sources": {"tiny": {"chars": 3}}}), encoding="utf-8")
    with pytest.raises(ModelError, match="not a corpus manifest"):
        C.load_manifest(tmp_path)


@pytest.mark.parametrize("source, shard, message", [
    ({"shards": "tiny-0.txt"}, "在吗\n", "sources.tiny.shards: a list of file names"),   # read letter by letter
    ({"shards": ["tiny-0.txt"], "weight": "1.0x"}, "在吗\n", "sources.tiny.weight: a finite number"),
    ({"shards": ["tiny-0.txt"]}, "", "its shard .* is empty"),                         # datasets' traceback
    ({"shards": ["tiny-1.txt"]}, "在吗\n", "its shard .* is missing"),
])
def test_hostile_config_a_corpus_manifest_of_the_wrong_shape_is_one_model_error(tmp_path, source, shard, message):
    from qa.model import corpus as C
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "tiny-0.txt").write_text(shard, encoding="utf-8")
    (tmp_path / "manifest.json").write_text(json.dumps({"sources": {"tiny": {"chars": 3, **source}},
                                                        "total": {"chars": 3}}), encoding="utf-8")
    with pytest.raises(ModelError, match=message):
        C.load_manifest(tmp_path)


def test_hostile_config_a_shard_not_in_utf8_is_one_model_error(tmp_path):
    from qa.model import corpus as C
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "tiny-0.txt").write_bytes("怎么退货\n".encode("gb18030"))
    manifest = {"sources": {"tiny": {"chars": 4, "shards": ["tiny-0.txt"]}}, "total": {"chars": 4}}
    with pytest.raises(ModelError, match="tiny-0.txt: not UTF-8 text"):
        C.char_counts(tmp_path, manifest)


def test_hostile_config_pretrain_chats_that_cannot_be_read_are_counted_and_none_is_an_error(tmp_path, caplog):
    """Rejected chat files joined the corpus as 0 characters, and the run ended 'wrote' with exit 0."""
    from qa.model.pretrain import conversation_texts
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "b", "messages": [{"role": "shopper", "text": "发货呀"}]}) + "\n{not json\n",
                   encoding="utf-8")
    with pytest.raises(ModelError, match="bad.jsonl: no conversation could be read"):
        conversation_texts([str(bad)])
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"id": "g", "messages": [{"role": "customer", "text": "发货呀"}]}) + "\n",
                    encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="qa.model.pretrain"):
        texts, _ = conversation_texts([str(good), str(bad)])
    assert len(texts) == 1 and "read 3 · accepted 1 · rejected 2" in caplog.text and "unknown role" in caplog.text
