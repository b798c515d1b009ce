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
