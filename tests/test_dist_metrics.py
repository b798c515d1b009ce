import math

import numpy as np
import pytest

from bench.bench_stc3 import split_ids
from qa.model.dist_metrics import (jsd, mean_nmd, mean_rsnod, nmd, nugget_labels, nugget_score, rnss, rsnod,
                                   soft_labels)
from qa.rubric import ROOT, load_rubric
from tests.conftest import STC3

METRICS = [nmd, rsnod, jsd, rnss]


@pytest.mark.parametrize("metric", METRICS)
def test_identical_is_zero_and_symmetric(metric):
    p, q = [0.1, 0.2, 0.3, 0.4, 0.0], [0.0, 0.5, 0.25, 0.25, 0.0]
    assert metric(p, p) == pytest.approx(0, abs=1e-12)
    assert metric(p, q) == pytest.approx(metric(q, p)) and metric(p, q) > 0


def test_two_bin_shift_by_hand():
    p, q = [1, 0, 0, 0, 0], [0, 0, 1, 0, 0]   # all mass moved two bins
    # NMD: cumsums [1,1,1,1,1] vs [0,0,1,1,1] → |diff| sums to 2; / (5-1) = 0.5
    assert nmd(p, q) == pytest.approx(0.5)
    # DW_i = Σ_j |i-j| (p_j-q_j)²: squared diffs 1 at bins 0 and 2. OD(p‖q) = DW_0 = 0·1 + 2·1 = 2;
    # OD(q‖p) = DW_2 = 2·1 + 0·1 = 2. SNOD = 2, RSNOD = sqrt(2 / 4) = 0.7071
    assert rsnod(p, q) == pytest.approx(math.sqrt(0.5))
    # disjoint supports: JSD = 1 bit; RNSS = sqrt((1 + 1) / 2) = 1
    assert jsd(p, q) == pytest.approx(1) and rnss(p, q) == pytest.approx(1)
    # order matters for NMD/RSNOD only: a one-bin shift is half the NMD and ~ RSNOD sqrt(1/4) = 0.5
    assert nmd(p, [0, 1, 0, 0, 0]) == pytest.approx(0.25) and rsnod(p, [0, 1, 0, 0, 0]) == pytest.approx(0.5)
    assert jsd(p, [0, 1, 0, 0, 0]) == pytest.approx(1)


def test_half_shift_by_hand():
    p, q = [0.5, 0.5, 0], [0, 0.5, 0.5]
    # NMD: cumsums [.5,1,1] vs [0,.5,1] → (.5+.5+0)/2 = 0.5
    assert nmd(p, q) == pytest.approx(0.5)
    # (p-q)² = [.25, 0, .25]; OD(p‖q) over B*={0,1}: DW_0 = 0 + 2·.25 = .5, DW_1 = .25 + .25 = .5 → .5;
    # OD(q‖p) over {1,2}: DW_1 = .5, DW_2 = 2·.25 = .5 → .5. RSNOD = sqrt(.5 / 2) = 0.5
    assert rsnod(p, q) == pytest.approx(0.5)
    # RNSS = sqrt(.5 / 2) = 0.5; JSD: m = [.25,.5,.25], KL(p‖m) = .5·log2(2) = .5 → 0.5
    assert rnss(p, q) == pytest.approx(0.5) and jsd(p, q) == pytest.approx(0.5)


def test_inputs_are_renormalised_and_checked():
    assert nmd([2, 0, 0], [0, 0, 5]) == pytest.approx(1)
    with pytest.raises(ValueError):
        nmd([1, 0], [1, 0, 0])
    with pytest.raises(ValueError):
        jsd([0, 0], [1, 0])


def test_batch_means_and_nugget_score():
    assert mean_nmd([[1, 0, 0], [1, 0, 0]], [[1, 0, 0], [0, 0, 1]]) == pytest.approx(0.5)
    assert mean_rsnod([[1, 0, 0]], [[1, 0, 0]]) == 0
    # one dialogue: customer turns score 1 and 0, helpdesk 0 → 0.5·0.5 + 0.5·0 = 0.25
    preds = [[[1, 0], [1, 0], [1, 0]]]
    golds = [[[0, 1], [1, 0], [1, 0]]]
    assert nugget_score(rnss, preds, golds, [["customer", "agent", "customer"]]) == pytest.approx(0.25)


def test_soft_labels_from_reviews():
    reviews = [{"reviewer": "a", "grades": {"A": 2, "S": 0}},
               {"reviewer": "b", "grades": {"A": 2, "S": -2}},
               {"reviewer": "c", "grades": {"A": "-1"}},
               {"reviewer": "d", "grades": {"A": 1, "S": 0}}]
    assert soft_labels(reviews, "A").tolist() == [0.5, 0.25, 0, 0.25, 0]
    assert soft_labels(reviews, "S", [2, 1, 0, -1, -2]) == pytest.approx([0, 0, 2 / 3, 0, 1 / 3])
    with pytest.raises(ValueError, match="no reviewer"):
        soft_labels(reviews, "E")
    with pytest.raises(ValueError, match="scale"):
        soft_labels([{"grades": {"A": 5}}], "A")
    nug = [{"nuggets": ["CNUG0", "HNUG"]}, {"nuggets": ["CNUG0", "HNaN"]}]
    assert nugget_labels(nug, 1, ("HNUG", "HNUG*", "HNaN")).tolist() == [0.5, 0, 0.5]


def test_stc3_rubric_loads():
    r = load_rubric(ROOT / "rubrics" / "stc3.yaml")
    assert r.scale == [2, 1, 0, -1, -2] and r.model_dimensions == ["A", "S", "E"] and not r.rules
    assert [r.dimensions[d].name for d in "ASE"] == ["任务完成度", "用户满意度", "对话效率"]
    assert r.lower(1, 5) == -2


def test_split_is_deterministic():
    ids = [str(i) for i in range(100)]
    tr, te = split_ids(ids, seed=0, n_test=20)
    assert (tr, te) == split_ids(list(reversed(ids)), seed=0, n_test=20)
    assert len(te) == 20 and not set(tr) & set(te) and set(tr) | set(te) == set(ids)
    assert split_ids(ids, seed=1, n_test=20)[1] != te


@pytest.mark.skipif(not STC3.is_file(), reason="STC-3 data not in ../shared")
def test_split_on_stc3_data():
    from bench.bench_stc3 import load

    ids = [c.id for c in load(STC3)]
    tr, te = split_ids(ids)
    assert len(tr) == 2500 and len(te) == 500
    assert split_ids(ids) == (tr, te)
