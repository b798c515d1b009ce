"""qa.grader: the assembly — platform → profile policy from rubric data, the model/rubric dimension check
(exit 2 naming both), the stamp, and the stc3 rubric with a stc3 model end to end."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from qa.errors import ModelError, RubricError
from qa.grader import Grader, GradeSettings, check_model_dir, profile_for, rubric_hash
from qa.rubric import load_rubric
from tests.conftest import ROOT, SAMPLES, STC3

STC3_RUBRIC = ROOT / "rubrics" / "stc3.yaml"


def test_grader_profile_policy_is_rubric_data(rubric):
    assert profile_for(rubric, "kuaishou") == "kuaishou"
    assert profile_for(rubric, "other") == rubric.default_profile == "douyin"
    assert profile_for(rubric, "kuaishou", "taobao") == "taobao"
    stc3 = load_rubric(STC3_RUBRIC)
    assert profile_for(stc3, "douyin") == "dialeval"


def test_grader_default_profile_must_be_a_profile(tmp_path):
    text = STC3_RUBRIC.read_text(encoding="utf-8").replace("default_profile: dialeval", "default_profile: nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(RubricError, match=r"\[default_profile\].*'nope'"):
        load_rubric(bad)


def test_grader_model_must_fit_the_rubric():
    stc3 = load_rubric(STC3_RUBRIC)
    with pytest.raises(ModelError) as err:
        check_model_dir(None, stc3)
    msg = str(err.value)
    assert "models/default" in msg and "'stc3'" in msg and "stc3.yaml" in msg and "attitude" in msg
    check_model_dir(None, load_rubric())                         # the shipped pair fits


def test_grade_cli_mismatched_model_and_rubric_exits_2(tmp_path):
    from qa.cli import app
    r = CliRunner().invoke(app, ["grade", str(SAMPLES / "samples.jsonl"), "--rubric", str(STC3_RUBRIC),
                                 "--profile", "dialeval", "--out", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2 and "stc3" in r.output and "models/default" in r.output
    assert not (tmp_path / "o.jsonl").exists()


def test_grade_cli_exits_2_on_broken_rubric_and_model(tmp_path):
    from qa.cli import app
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nscale: [5, 4]\ndimensions: {a: {name: A, source: model, levels: {5: x}}}\n")
    src = SAMPLES / "samples.jsonl"
    r = CliRunner().invoke(app, ["grade", str(src), "--rubric", str(bad), "--out", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2 and "bad.yaml" in r.output
    r = CliRunner().invoke(app, ["grade", str(src), "--model", str(tmp_path), "--out", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2 and "model" in r.output
    r = CliRunner().invoke(app, ["grade", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2


def test_grader_stamp_names_rubric_model_and_profile(rubric):
    g = Grader.from_settings(GradeSettings(model="none", profile="tiktok"))
    assert g.stamp == {"rubric": rubric_hash(rubric), "model": None, "profile": "tiktok"}
    assert rubric_hash(load_rubric(STC3_RUBRIC)) != rubric_hash(rubric)


@pytest.fixture(scope="module")
def stc3_model(tmp_path_factory):
    """A tiny stc3 classifier (n-gram channel only, a few steps on 40 DialEval dialogues)."""
    if not STC3.is_file():
        pytest.skip("STC-3 data not in ../shared")
    pytest.importorskip("torch")
    from qa.model.train import TrainArgs, train
    d = tmp_path_factory.mktemp("stc3")
    (d / "train.json").write_text(json.dumps(json.loads(STC3.read_text(encoding="utf-8"))[:40], ensure_ascii=False),
                                  encoding="utf-8")
    train(TrainArgs(data=[str(d / "train.json")], out=str(d / "model"), rubric=str(STC3_RUBRIC), use_encoder=False,
                    use_features=False, epochs=1, max_ngrams=500, ngram_init="joint", max_steps=2, threads=1))
    return d


def test_grade_cli_stc3_rubric_with_a_stc3_model_end_to_end(stc3_model):
    from qa.cli import app
    out = stc3_model / "results.jsonl"
    r = CliRunner().invoke(app, ["grade", str(stc3_model / "train.json"), "--rubric", str(STC3_RUBRIC),
                                 "--model", str(stc3_model / "model"), "--out", str(out), "--workers", "1"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 40
    for row in rows:
        assert row["profile"] == "dialeval" and row["rubric"] == "stc3" and row["model"] == "model"
        assert set(row["dimensions"]) == {"A", "S", "E"} and row["not_graded"] == {}
        assert 0 <= row["score"] <= 100 and row["stamp"]["model"]
    # and the default model refuses the stc3 rubric's model directory the other way round
    r = CliRunner().invoke(app, ["grade", str(SAMPLES / "samples.jsonl"), "--model", str(stc3_model / "model"),
                                 "--out", str(stc3_model / "x.jsonl")])
    assert r.exit_code == 2 and "does not fit rubric 'default'" in r.output
