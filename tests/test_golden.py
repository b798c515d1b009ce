"""Golden file: the sample chats graded with the shipped model and rubric, field for field.

A difference means grades changed. If on purpose (a retrained model, a rubric edit), regenerate with
``python scripts/make_golden.py``, review ``python scripts/make_golden.py --diff`` and note why in
``tests/data/golden/CHANGES.md``.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import ROOT, SAMPLES

sys.path.insert(0, str(ROOT / "scripts"))
from make_golden import OUT as GOLDEN, differences  # noqa: E402

MODEL_DIMS = ("attitude", "etiquette", "professionalism", "clarity")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    pytest.importorskip("torch")
    from qa.batch import grade_files
    from qa.grader import GradeSettings
    out = tmp_path_factory.mktemp("golden") / "results.jsonl"
    grade_files([SAMPLES / "samples.jsonl"], out, GradeSettings(), workers=1)
    return [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]


def test_golden_records_unchanged_field_for_field(graded):
    golden = [json.loads(x) for x in GOLDEN.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in graded] == [r["id"] for r in golden]
    for new, old in zip(graded, golden):
        # the stamp's hashes change with any rubric or model edit; what it holds is checked below
        assert set(new.pop("stamp")) == set(old.pop("stamp")) == {"rubric", "model", "profile"}
        diffs = list(differences(old, new))
        assert not diffs, f"{old['id']}: {diffs[:5]} (python scripts/make_golden.py --diff; see {GOLDEN.parent})"


def test_golden_shipped_model_grades_every_sample(graded):
    """The README's main job: every sample chat graded by the shipped model, offline, with model evidence."""
    assert len(graded) == 64 and all(row["model"] == "default" for row in graded)
    for row in graded:
        assert 0 <= row["score"] <= 100
        for d in MODEL_DIMS:
            if row["not_graded"].get(d) == "no_reply_turn":
                continue
            dim = row["dimensions"][d]
            assert dim["level"] in (5, 4, 3, 2) and sum(dim["probs"].values()) == pytest.approx(1, abs=1e-3)
    by_id = {row["id"]: row for row in graded}
    assert by_id["dy-0001"]["dimensions"]["attitude"]["level"] == 5
    assert min(row["dimensions"]["professionalism"]["level"] for row in graded
               if "professionalism" in row["dimensions"]) <= 3
