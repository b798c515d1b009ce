"""The overall score: arithmetic per profile, red lines, renormalised weights; bulk grading counts and resume."""

from __future__ import annotations

import json

import pytest

from qa.model.predict import DimensionPrediction
from qa.rules.base import Finding
from qa.rules.engine import RuleEngine
from qa.score import band, grade
from qa.timing import compute_timing
from tests.conftest import ROOT, make_conv

PROFILES = ("douyin", "kuaishou", "tiktok", "taobao")
MODEL_DIMS = ("attitude", "etiquette", "professionalism", "clarity")


def _pred(**levels) -> dict:
    out = {}
    for d in MODEL_DIMS:
        lv = levels.get(d, 5)
        probs = {k: (0.7 if k == lv else 0.1) for k in (5, 4, 3, 2)}
        out[d] = DimensionPrediction(probs, lv, sum(k * p for k, p in probs.items()), 0.7, [1])
    return out


def _conv():
    return make_conv(("customer", "在吗 这件有M码吗", 0), ("agent", "亲亲您好 有M码的哦", 30),
                     ("customer", "好的谢谢", 60), ("agent", "感谢您的支持 祝您生活愉快", 80))


def _finding(rule, severity="major", message=1):
    return Finding(rule, severity, rule, "测试", message, (0, 2), "亲亲")


@pytest.mark.parametrize("profile", PROFILES)
def test_score_all_best_is_100(rubric, profile):
    conv = _conv()
    r = grade(conv, rubric, profile=profile, findings=[], timing=compute_timing(conv, rubric), prediction=_pred())
    assert r["score"] == pytest.approx(100) and r["band"] == "优秀" and not r["failed"]
    assert r["deductions"] == []
    assert sum(d["weight"] for d in r["dimensions"].values()) == pytest.approx(100)


@pytest.mark.parametrize("profile", PROFILES)
def test_score_model_level_and_rule_effects(rubric, profile):
    conv = _conv()
    w = rubric.profile(profile).weights
    r = grade(conv, rubric, profile=profile, findings=[_finding("vague_reply"), _finding("vague_reply", message=3)],
              timing=compute_timing(conv, rubric), prediction=_pred(attitude=4))
    # attitude 4 on 5/4/3/2 keeps 2/3 of its weight; vague_reply caps professionalism at 3 (keeps 1/3) and takes
    # one level off resolution (keeps 2/3) — once per conversation, however many findings
    lost = w["attitude"] / 3 + w["professionalism"] * 2 / 3 + w["resolution"] / 3
    assert r["score"] == pytest.approx(100 - lost, abs=0.02)
    assert r["dimensions"]["professionalism"]["level"] == 3 and r["dimensions"]["resolution"]["level"] == 4
    assert sum(d["points"] for d in r["deductions"]) == pytest.approx(lost, abs=0.03)
    rule_rows = [d for d in r["deductions"] if d["rule"] == "vague_reply"]
    assert {d["dimension"] for d in rule_rows} == {"professionalism", "resolution"}
    assert all(d["message"] == 1 and d["span"] == [0, 2] for d in rule_rows)
    model_row = next(d for d in r["deductions"] if d["source"] == "model")
    assert model_row["dimension"] == "attitude" and model_row["confidence"] == 0.7


def test_score_red_line_fails_the_conversation(rubric):
    conv = _conv()
    r = grade(conv, rubric, profile="douyin", findings=[_finding("off_platform_diversion", "red_line")],
              timing=compute_timing(conv, rubric), prediction=_pred())
    assert r["failed"] and r["score"] == 0 and r["band"] == "不合格"
    assert r["deductions"][0]["rule"] == "off_platform_diversion" and r["deductions"][0]["dimension"] is None
    assert r["dimensions"]["professionalism"]["level"] == 2


def test_score_without_model_spreads_weights_over_the_rest(rubric):
    conv = _conv()
    r = grade(conv, rubric, profile="douyin", findings=[], timing=compute_timing(conv, rubric), prediction=None)
    assert set(r["dimensions"]) == {"reply_speed", "chat_time", "resolution"}
    assert r["score"] == pytest.approx(100)
    r2 = grade(conv, rubric, profile="douyin", findings=[_finding("unanswered_question")],
               timing=compute_timing(conv, rubric), prediction=None)
    # resolution capped at 3 → keeps 1/3 of its weight 10, out of 30 weighted points, scaled to 100
    assert r2["score"] == pytest.approx(100 - 10 * 2 / 3 * 100 / 30, abs=0.02)


def test_score_bands():
    assert [band(s) for s in (95, 90, 80, 60, 59.9)] == ["优秀", "优秀", "良好", "合格", "不合格"]
    assert band(99, failed=True) == "不合格"


def test_grade_real_rules_on_samples(rubric):
    from qa.io.read import read_path
    engine = RuleEngine(rubric)
    for conv in read_path(ROOT / "data" / "samples" / "samples.jsonl"):
        t = compute_timing(conv, rubric)
        f = engine.check(conv, t)
        r = grade(conv, rubric, profile="douyin", findings=f, timing=t, prediction=_pred())
        assert 0 <= r["score"] <= 100
        assert r["failed"] == any(x.severity == "red_line" for x in f)
        if not r["failed"]:
            assert r["score"] == pytest.approx(100 - sum(d["points"] for d in r["deductions"]), abs=0.1)
        json.dumps(r, ensure_ascii=False)


def _mixed_input(tmp_path):
    good = (ROOT / "data" / "samples" / "samples.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    bad = ['{"id": "broken-1", "messages": "not a list"}', "{this is not json", '{"messages": []}']
    lines = good[:7] + bad[:1] + good[7:15] + bad[1:] + good[15:]
    p = tmp_path / "mixed.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_grade_files_counts_add_up_on_mixed_input(tmp_path):
    from qa.batch import GradeSettings, grade_files
    src = _mixed_input(tmp_path)
    out = tmp_path / "results.jsonl"
    run = grade_files([src], out, GradeSettings(model="none", profile="douyin", batch_size=4), workers=1)
    results = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    rejects = out.with_name("results.rejects.jsonl").read_text(encoding="utf-8").splitlines()
    assert run.stats.read == 23 == len(results) + len(rejects)
    assert len(results) == 20 and len(rejects) == 3
    assert all(json.loads(r).get("reason") for r in rejects)


def test_grade_resume_after_a_kill_neither_loses_nor_duplicates(tmp_path):
    from qa.batch import GradeSettings, grade_files
    src = _mixed_input(tmp_path)
    settings = GradeSettings(model="none", profile="douyin", batch_size=4)
    full = tmp_path / "full.jsonl"
    grade_files([src], full, settings, workers=1)
    expected = [json.loads(x)["id"] for x in full.read_text(encoding="utf-8").splitlines()]
    # a run killed mid-write: 9 complete lines and a torn tenth
    out = tmp_path / "results.jsonl"
    lines = full.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:9]) + lines[9][: len(lines[9]) // 2], encoding="utf-8")
    run = grade_files([src], out, settings, workers=1, resume=True)
    got = [json.loads(x)["id"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert got == expected and run.resumed == 9 and run.graded == 11


def test_grade_resume_refuses_a_changed_input(tmp_path):
    from qa.batch import GradeSettings, grade_files
    from qa.errors import InputError
    src = _mixed_input(tmp_path)
    out = tmp_path / "results.jsonl"
    out.write_text(json.dumps({"id": "someone-else"}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="cannot resume"):
        grade_files([src], out, GradeSettings(model="none", profile="douyin"), workers=1, resume=True)


def test_grade_parquet_output_matches_jsonl(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from qa.batch import GradeSettings, grade_files
    src = _mixed_input(tmp_path)
    settings = GradeSettings(model="none", profile="kuaishou", batch_size=8)
    grade_files([src], tmp_path / "r.jsonl", settings, workers=1)
    grade_files([src], tmp_path / "r.parquet", settings, workers=1)
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    js = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in table] == [r["id"] for r in js]
    assert [r["score"] for r in table] == [r["score"] for r in js]
    assert json.loads(table[0]["dimensions"]) == js[0]["dimensions"]
    assert not (tmp_path / "r.parquet.partial.jsonl").exists()


def test_grade_cli_exits_2_on_broken_rubric_and_model(tmp_path):
    from typer.testing import CliRunner

    from qa.cli import app
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nscale: [5, 4]\ndimensions: {a: {name: A, source: model, levels: {5: x}}}\n")
    src = ROOT / "data" / "samples" / "samples.jsonl"
    r = CliRunner().invoke(app, ["grade", str(src), "--rubric", str(bad), "--out", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2 and "bad.yaml" in r.output
    r = CliRunner().invoke(app, ["grade", str(src), "--model", str(tmp_path), "--out", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2 and "model" in r.output
    r = CliRunner().invoke(app, ["grade", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2


def test_grade_samples_with_the_shipped_default_model(tmp_path):
    """The README's main job: every sample chat graded by models/default, offline, with model evidence."""
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from qa.cli import app
    out = tmp_path / "results.jsonl"
    r = CliRunner().invoke(app, ["grade", str(ROOT / "data" / "samples" / "samples.jsonl"), "--out", str(out),
                                 "--workers", "1"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 64 and all(row["model"] == "default" for row in rows)
    for row in rows:
        assert 0 <= row["score"] <= 100
        for d in MODEL_DIMS:
            dim = row["dimensions"][d]
            assert dim["level"] in (5, 4, 3, 2) and sum(dim["probs"].values()) == pytest.approx(1, abs=1e-3)
    # the shipped model tells a warm, complete chat from one that failed the customer
    by_id = {row["id"]: row for row in rows}
    assert by_id["dy-0001"]["dimensions"]["attitude"]["level"] == 5
    assert min(row["dimensions"]["professionalism"]["level"] for row in rows) <= 3
