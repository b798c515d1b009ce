from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from qa.cli import app
from qa.errors import RubricError
from qa.rubric import DEFAULT_RUBRIC, load_rubric
from qa.rules import RuleEngine
from tests.conftest import make_conv


def _variant(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(DEFAULT_RUBRIC.read_text(encoding="utf-8"))
    edit(data)
    data["lexicon"] = str((DEFAULT_RUBRIC.parent / data["lexicon"]).resolve())
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def _bands(d, bands):
    d["dimensions"]["reply_speed"]["bands"] = bands


@pytest.mark.parametrize("edit,key,msg", [   # fuzzing, session 41: each passed validation and graded wrongly
    (lambda d: _bands(d, [[1800, 3], [600, 4], [3600, 2], [None, 2]]), "dimensions -> reply_speed",
     "each bound above the one before"),
    (lambda d: _bands(d, [[600, 5], [None, 4], [3600, 2], [None, 2]]), "dimensions -> reply_speed", "null only last"),
    (lambda d: d["timing"]["service_hours"].update(start=1500), "timing -> service_hours -> start",   # 25:00
     "25:00 is not a time of day"),
    (lambda d: d["profiles"]["douyin"]["kpis"].update(first_response_rate_2min={"min": 85}),
     "profiles -> douyin -> kpis", "a share from 0 to 1"),
    (lambda d: d["profiles"]["douyin"]["kpis"].update(reply_rate_3min={"min": 0.9, "max": 0.8}),
     "profiles -> douyin -> kpis", "no value passes"),
    (lambda d: d.update(dimensions={}), "dimensions", "at least 1"),
])
def test_rubric_settings_that_graded_wrongly_are_refused(tmp_path, edit, key, msg):
    p = _variant(tmp_path, edit)
    with pytest.raises(RubricError) as e:
        load_rubric(p)
    assert key in str(e.value) and msg in str(e.value), str(e.value)


@pytest.mark.parametrize("spec, key, msg", [
    ({"regex": [""]}, "x -> regex -> 0", "would match every message"),
    ({"regex": ["^"]}, "x -> regex -> 0", "can match nothing"),
    ({"regex": ["(?:哈+)+嘛"]}, "x -> regex -> 0", "exponential time"),       # one message hung `qa check`
    ({"phrases": ["  "]}, "x -> phrases -> 0", "would match every message"),
    ({"phrases": ["滚"], "exlude": ["滚动"]}, "x -> exlude", "unknown key 'exlude'"),   # silently not applied
])
def test_lexicon_entries_that_match_everything_hang_or_are_misspelt_are_refused(spec, key, msg):
    from qa.rules.lexicon import Lexicon
    with pytest.raises(RubricError) as e:
        Lexicon({"x": spec}, source="lex.yaml")
    assert key in str(e.value) and msg in str(e.value), str(e.value)


def test_lexicon_phrases_in_traditional_characters_match():
    from qa.rules.lexicon import Lexicon
    from qa.text import normalize
    hits = Lexicon({"x": {"phrases": ["加我微信", "退貨"]}}).scan([normalize("亲 加我微信吧"), normalize("怎么退货")])
    assert [(h.message, h.text) for h in hits["x"]] == [(0, "加我微信"), (1, "退货")]


def test_rule_params_regex_that_matches_nothing_is_refused(tmp_path):
    def edit(d):
        d["rules"]["off_platform_diversion"]["params"]["intent"] = ["加", "^"]
    with pytest.raises(RubricError, match="can match nothing"):
        RuleEngine(load_rubric(_variant(tmp_path, edit)))


@pytest.mark.parametrize("edit,key,msg", [
    (lambda d: d["rules"]["vague_reply"].update(severity="fatal"), "rules -> vague_reply -> severity", "red_line"),
    (lambda d: d["rules"]["overpromise"]["effects"][0].update(dimension="speed"),
     "rules -> overpromise -> effects -> 0 -> dimension", "unknown dimension"),
    (lambda d: d["dimensions"]["attitude"]["levels"].pop(2), "dimensions -> attitude -> levels", "scale"),
    (lambda d: d["profiles"]["douyin"]["kpis"].update(fast_rate={"min": 1}), "profiles -> douyin -> kpis", "unknown KPI"),
    (lambda d: d["rules"]["overpromise"]["effects"][0].update(deduct=1), "rules -> overpromise -> effects -> 0",
     "exactly one of cap or deduct"),
])
def test_rubric_errors_name_file_and_key(tmp_path, edit, key, msg):
    p = _variant(tmp_path, edit)
    with pytest.raises(RubricError) as e:
        load_rubric(p)
    assert str(p) in str(e.value) and key in str(e.value) and msg in str(e.value)


def test_rubric_unknown_check_lists_registered(tmp_path):
    p = _variant(tmp_path, lambda d: d["rules"]["vague_reply"].update(check="vague_reply.v9"))
    with pytest.raises(RubricError, match="registered: .*vague_reply.v1"):
        RuleEngine(load_rubric(p))


def test_rubric_duplicate_key_is_an_error_not_a_silent_overwrite(tmp_path):
    """A second ``regex:`` under one lexicon category would erase the first; the loader names it and its line."""
    lex = tmp_path / "lexicon.yaml"
    lex.write_text("upset:\n  phrases: [差评]\n  regex: ['[!！]{2,}']\n  regex: ['[?？]{3,}']\n", encoding="utf-8")
    p = _variant(tmp_path, lambda d: d.update(lexicon=str(lex)))
    with pytest.raises(RubricError, match=r"line 4.*duplicate key 'regex'"):
        load_rubric(p)


def test_rubric_bad_yaml_names_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\ndimensions: [\n", encoding="utf-8")
    with pytest.raises(RubricError, match="not valid YAML"):
        load_rubric(p)


def test_rubric_cli_validate_and_show(tmp_path):
    r = CliRunner().invoke(app, ["rubric", "validate"])
    assert r.exit_code == 0 and "12 rules" in r.output
    r = CliRunner().invoke(app, ["rubric", "show", "--profile", "douyin"], env={"COLUMNS": "300"})
    assert r.exit_code == 0 and "服务态度" in r.output and "off_platform_diversion" in r.output
    bad = _variant(tmp_path, lambda d: d["rules"]["vague_reply"].update(severity="fatal"))
    r = CliRunner().invoke(app, ["rubric", "validate", str(bad)])
    assert r.exit_code == 2 and "severity" in r.output


def test_rules_span_points_into_original_traditional_text(rubric):
    c = make_conv(("customer", "這個多少錢", 0), ("agent", "您好，加我薇信　ＡＢＣ１２３４５ 給您優惠", 20))
    f = [x for x in RuleEngine(rubric).check(c) if x.rule == "off_platform_diversion"]
    assert f and all(c.messages[x.message].text[x.span[0]:x.span[1]] == x.evidence for x in f)


def test_rules_span_after_a_dotted_capital_i_points_at_the_evidence(rubric):
    """İ lower-cases to two characters: every span after it pointed one character too far (「傻」 shown, 「尺」 marked)."""
    c = make_conv(("customer", "İSTANBUL 尺码偏大吗", 0), ("agent", "İstanbul仓发货 你傻吗 尺码标准", 20))
    f = [x for x in RuleEngine(rubric).check(c) if x.rule == "uncivil_language"]
    assert f and all(c.messages[x.message].text[x.span[0]:x.span[1]] == x.evidence == "傻" for x in f)


def test_rules_customer_mentioning_wechat_is_not_diversion(rubric):
    c = make_conv(("customer", "可以加你微信吗", 0), ("agent", "亲亲抱歉，平台规定不能加微信哦，有问题在这里问我就好", 20))
    assert not [x for x in RuleEngine(rubric).check(c) if x.rule == "off_platform_diversion"]


def test_rules_check_cli_writes_one_line_per_conversation(tmp_path):
    from tests.conftest import SAMPLES
    out = tmp_path / "f.jsonl"
    r = CliRunner().invoke(app, ["check", str(SAMPLES / "samples.jsonl"), "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 64
    import json
    recs = {json.loads(x)["id"]: json.loads(x) for x in lines}
    assert any(f["rule"] == "off_platform_diversion" for f in recs["dy-0008"]["findings"])
    assert not any(f["rule"] == "off_platform_diversion" for f in recs["tt-0008"]["findings"])


def test_a_profile_without_weights_weighs_every_dimension_equally_and_model_only_weights_need_a_model(tmp_path):
    """A profile that set only KPI thresholds scored every chat 0 with no deduction; one weighing only model
    dimensions did the same under --model none."""
    import json
    src = Path(__file__).parents[1] / "data" / "samples" / "samples.jsonl"
    one = tmp_path / "one.jsonl"
    one.write_text(src.read_text("utf-8").splitlines()[0] + "\n", "utf-8")
    p = _variant(tmp_path, lambda d: d["profiles"]["douyin"].pop("weights"))
    r = CliRunner().invoke(app, ["grade", str(one), "--rubric", str(p), "--model", "none", "--workers", "1",
                                 "--out", str(tmp_path / "r.jsonl")])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "r.jsonl").read_text("utf-8"))
    assert rec["profile"] == "douyin" and rec["score"] > 90 and len({d["weight"] for d in rec["dimensions"].values()}) == 1
    (tmp_path / "q").mkdir()   # another path: rubrics are cached by path
    q = _variant(tmp_path / "q", lambda d: d["profiles"]["douyin"].update(weights={"attitude": 50, "etiquette": 50}))
    r = CliRunner().invoke(app, ["grade", str(one), "--rubric", str(q), "--model", "none", "--workers", "1",
                                 "--out", str(tmp_path / "q.jsonl")])
    assert r.exit_code == 2 and "weighs only model dimensions" in r.output, r.output
