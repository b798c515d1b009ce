"""Shop calibration (``qa calibrate``, ``qa.model.offsets``): offsets fitted on a shop's reviews move its grades."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qa.model.offsets import Offsets, fit_offsets
from tests.conftest import ROOT
from tests.test_hostile import assert_one_line_error, run_main

DIMS = ("attitude", "etiquette", "professionalism", "clarity")


def test_fit_offsets_is_the_shrunk_mean_gap_of_platforms_with_enough_chats():
    gaps = {"attitude": np.r_[np.full(30, -1.0), np.full(5, 2.0), np.nan]}
    got = fit_offsets(gaps, ["taobao"] * 30 + ["douyin"] * 5 + ["taobao"], prior=10, min_chats=20)
    assert got == {"taobao": {"attitude": -0.75}}                  # −30 / (30 + 10); douyin: 5 chats, none
    both = Offsets({"taobao": {"attitude": -0.5}}).plus(got)
    assert both.by_platform == {"taobao": {"attitude": -1.25}}
    assert list(both.grade_shift(["taobao", "other"], "attitude")) == [-1.25, 0.0]


def _stricter_lead(tmp_path, platform="taobao", drop=1):
    """The written held-out chats of one platform, reviewed by a lead who grades each one ``drop`` lower."""
    rows = [json.loads(x) for x in (ROOT / "data/labelled/eval/eval_eval-f.jsonl").read_text(encoding="utf-8")
            .splitlines()]
    mine = [r for r in rows if r["platform"] == platform]
    for r in mine:
        for rev in r["labels"]["reviews"]:
            rev["grades"] = {d: max(2, g - drop) for d, g in rev["grades"].items()}
    path = tmp_path / "reviewed.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mine), encoding="utf-8")
    return path, mine, [r for r in rows if r["platform"] != platform][:10]


def test_calibrate_moves_a_platforms_grades_toward_a_stricter_lead_and_leaves_the_rest(tmp_path):
    from qa.model.offsets import calibrate
    from qa.model.predict import Classifier
    from qa.schema import Conversation

    reviewed, mine, others = _stricter_lead(tmp_path)
    rep = calibrate(ROOT / "models/default", [str(reviewed)], tmp_path / "mine")
    assert rep["chats"] == len(mine) >= 30 and set(rep["fitted"]) == {"taobao"}
    for d in DIMS:
        m = rep["dimensions"][d]
        assert rep["fitted"]["taobao"][d] < -0.3                      # graded down toward the stricter lead
        assert abs(m["after"]["gap"]) < abs(m["before"]["gap"]) - 0.2  # out of fold: most of the gap closed
    old, new = Classifier(ROOT / "models/default"), Classifier(tmp_path / "mine")
    convs = [Conversation.model_validate(r) for r in mine[:8]]
    a, b = old.predict(convs), new.predict(convs)
    for d in DIMS:
        moved = [y[d].expected - x[d].expected for x, y in zip(a, b)]
        assert np.allclose(moved, rep["fitted"]["taobao"][d], atol=1e-6)
    rest = [Conversation.model_validate(r) for r in others]
    assert [p["clarity"].expected for p in old.predict(rest)] == [p["clarity"].expected for p in new.predict(rest)]
    assert "Shop calibration" in (tmp_path / "mine" / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert not (tmp_path / "mine" / "eval.json").exists()            # the default's held-out figures are not its
    saved = json.loads((tmp_path / "mine" / "offsets.json").read_text(encoding="utf-8"))["flags"]
    assert {f for th in saved.values() for f in th} == {f for f, r in rep["flags"].items() if r["kept"]}
    again = calibrate(tmp_path / "mine", [str(reviewed)], tmp_path / "again")    # what the prior left: a fifth
    for d, v in again["fitted"]["taobao"].items():
        assert abs(v) < abs(rep["fitted"]["taobao"][d]) / 3
    total = json.loads((tmp_path / "again" / "offsets.json").read_text(encoding="utf-8"))
    assert total["offsets"]["taobao"]["clarity"] == pytest.approx(rep["fitted"]["taobao"]["clarity"]
                                                                  + again["fitted"]["taobao"]["clarity"], abs=1e-4)
    assert len(total["info"]["calibrations"]) == 2


def test_calibrate_cli_refuses_a_used_folder_and_too_few_chats(tmp_path, capsys):
    reviewed, _, _ = _stricter_lead(tmp_path)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    code, _, err = run_main(capsys, "calibrate", ROOT / "models/default", reviewed, "--out", tmp_path / "used")
    assert_one_line_error(code, err)
    few = tmp_path / "few.jsonl"
    few.write_text("".join(reviewed.read_text(encoding="utf-8").splitlines(keepends=True)[:5]), encoding="utf-8")
    code, _, err = run_main(capsys, "calibrate", ROOT / "models/default", few, "--out", tmp_path / "new")
    assert_one_line_error(code, err)
    assert "at least 20" in err and not (tmp_path / "new").exists()


@pytest.mark.parametrize("bad", [{"offsets": {"taobao": {"attitude": "x"}}}, {"no": 1}])
def test_a_broken_offsets_file_is_a_model_error(tmp_path, bad):
    import shutil

    from qa.errors import ModelError
    from qa.model.predict import Classifier
    shutil.copytree(ROOT / "models/default", tmp_path / "m")
    (tmp_path / "m" / "offsets.json").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(ModelError, match="offsets.json"):
        Classifier(tmp_path / "m")


def test_fit_flag_thresholds_picks_the_best_f1_per_platform_with_enough_flagged_chats():
    from qa.model.offsets import fit_flag_thresholds
    rng = np.random.default_rng(0)
    gold = np.r_[np.ones(20), np.zeros(60), np.ones(3), np.zeros(10), np.full(5, np.nan)]
    probs = np.r_[rng.uniform(0.5, 0.9, 20), rng.uniform(0.0, 0.4, 60), rng.uniform(0, 1, 18)]
    fired = np.zeros(98, bool)
    plats = ["taobao"] * 80 + ["douyin"] * 13 + ["taobao"] * 5
    got = fit_flag_thresholds({"vague_reply": probs}, {"vague_reply": gold}, {"vague_reply": fired}, plats)
    assert set(got) == {"taobao"}                                      # douyin: 3 flagged chats, under 10
    assert 0.4 <= got["taobao"]["vague_reply"] <= 0.5                  # between the two clouds: F1 1


def test_a_shop_flag_threshold_decides_the_models_flag_for_its_platform_only(tmp_path):
    import shutil

    from qa.model.predict import Classifier
    from qa.schema import Conversation
    rows = [json.loads(x) for x in (ROOT / "data/labelled/eval/eval_eval-f.jsonl").read_text(encoding="utf-8")
            .splitlines()]
    convs = [Conversation.model_validate(r) for r in rows if r["platform"] in ("taobao", "douyin")][:24]
    shutil.copytree(ROOT / "models/default", tmp_path / "m")
    flag = "unanswered_question"

    def raised(thresholds):
        Offsets({}, flags={"taobao": {flag: thresholds}}).save(tmp_path / "m")
        return [any(r.rule == flag for r in p.raised) for p in Classifier(tmp_path / "m").predict_all(convs)]
    plain = [any(r.rule == flag for r in p.raised) for p in Classifier(ROOT / "models/default").predict_all(convs)]
    always, never = raised(0.0), raised(1.01)
    for c, a, n, p in zip(convs, always, never, plain):
        assert (a, n) == ((True, False) if c.platform == "taobao" else (p, p)), c.id


def test_calibrate_counts_add_up_on_a_file_with_broken_and_unreviewed_lines(tmp_path, capsys):
    reviewed, mine, _ = _stricter_lead(tmp_path)
    bare = {k: v for k, v in mine[0].items() if k != "labels"}
    with open(reviewed, "a", encoding="utf-8") as f:
        f.write('{"id": "broken", "messages": [\n')
        f.write(json.dumps({**bare, "id": "unreviewed"}, ensure_ascii=False) + "\n")
    code, out, err = run_main(capsys, "calibrate", ROOT / "models/default", reviewed, "--out", tmp_path / "m")
    assert code == 0, err
    assert f"read {len(mine) + 2} · used {len(mine)} reviewed chats" in out and "skipped 2" in out
    assert "unreviewed: no grades" in out and "reviewed.jsonl:" in out


def test_the_readme_loop_grade_sample_review_import_calibrate(tmp_path, capsys):
    """The README's loop for a shop: grade, sample, export review sheets, a lead fills them in (here one level
    under each of the model's grades), import them, calibrate, grade again: the shop's grades come down."""
    import openpyxl
    res, sample, sheet = tmp_path / "results.jsonl", tmp_path / "sample.jsonl", tmp_path / "review.xlsx"
    chats = ROOT / "data/samples/samples.jsonl"
    for args in (["grade", chats, "--out", res], ["sample", res, "--n", "40", "--out", sample],
                 ["export-review", sample, "--out", sheet]):
        code, _, err = run_main(capsys, *args)
        assert code == 0, err
    wb = openpyxl.load_workbook(sheet)
    ws = wb["复核"]
    col = {c.value: c.column for c in ws[1]}
    names = {"attitude": "服务态度", "etiquette": "礼仪", "professionalism": "专业水平", "clarity": "语言沟通能力"}
    graded = {r["id"]: r for r in map(json.loads, res.read_text(encoding="utf-8").splitlines())}
    ids = [ws.cell(r, col["会话ID"]).value for r in range(2, ws.max_row + 1)]
    for r, cid in enumerate(ids, 2):
        dims = graded[cid]["dimensions"]
        for d, name in names.items():
            if d in dims:                                          # a bot-only chat has no model grades
                ws.cell(r, col[f"复核·{name}"]).value = max(2, dims[d]["level"] - 1)
        ws.cell(r, col["评审人"]).value = "lead"
    wb.save(tmp_path / "filled.xlsx")
    reviewed = tmp_path / "reviewed.jsonl"
    code, _, err = run_main(capsys, "import-review", tmp_path / "filled.xlsx", "--out", reviewed,
                            "--report", tmp_path / "agreement.json")
    assert code == 0, err
    code, out, err = run_main(capsys, "calibrate", ROOT / "models/default", reviewed, "--out", tmp_path / "mine",
                              "--min-chats", "5")
    assert code == 0, err
    n = len(reviewed.read_text(encoding="utf-8").splitlines())      # the chats the lead graded
    assert n >= 30 and f"read {n} · used {n} reviewed chats" in out
    fitted = json.loads((tmp_path / "mine" / "offsets.json").read_text(encoding="utf-8"))["offsets"]
    assert fitted and all(v < 0 for dims in fitted.values() for v in dims.values())
