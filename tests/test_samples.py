import collections
import json

import pytest
from typer.testing import CliRunner

from qa.cli import app
from qa.io import ReadStats, read_many, read_path
from qa.rubric import load_rubric
from qa.timing import compute_timing
from tests.conftest import SAMPLES

EXPORTS = {"douyin": "douyin_feige.csv", "kuaishou": "kuaishou.xlsx", "taobao": "qianniu.csv",
           "tiktok": "tiktok_shop.csv"}


@pytest.fixture(scope="module")
def samples():
    stats = ReadStats()
    convs = list(read_many([SAMPLES / "samples.jsonl"], stats))
    assert stats.rejected == 0
    return convs


def test_samples_cover_platforms_types_and_ratings(samples):
    assert len(samples) >= 60
    per_platform = collections.Counter(c.platform for c in samples)
    assert set(per_platform) == {"douyin", "kuaishou", "tiktok", "taobao"} and min(per_platform.values()) >= 12
    types = {m.type for c in samples for m in c.messages}
    assert types >= {"text", "image", "video", "emoji", "product_card", "order_card", "event"}
    assert any(m.event == "transfer_to_human" for c in samples for m in c.messages)
    assert any(c.rating and c.rating.stars for c in samples) and any(c.rating and c.rating.label for c in samples)


def test_samples_timing_mix(samples):
    rubric = load_rubric()
    timings = [compute_timing(c, rubric) for c in samples]
    assert any(t.first_response_ok for t in timings) and any(t.first_response_ok is False for t in timings)
    assert any(t.bot_only for t in timings)
    assert any(t.night_messages for t in timings)


@pytest.mark.parametrize("platform", sorted(EXPORTS))
def test_samples_exports_read_back_like_the_jsonl(samples, platform):
    stats = ReadStats()
    exported = {c.id: c for c in read_many([SAMPLES / EXPORTS[platform]], stats)}
    originals = {c.id: c for c in samples if c.platform == platform}
    assert stats.rejected == 0 and set(exported) == set(originals)
    rubric = load_rubric()
    for cid, orig in originals.items():
        got = exported[cid]
        assert [m.role for m in got.messages] == [m.role for m in orig.messages]
        assert [m.ts for m in got.messages] == [m.ts for m in orig.messages]
        assert compute_timing(got, rubric) == compute_timing(orig, rubric)


def test_samples_metrics_cli_writes_outputs_and_counts_add_up(tmp_path):
    bad = tmp_path / "mixed.jsonl"
    lines = (SAMPLES / "samples.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    bad.write_text("\n".join(lines + ["{broken", '{"id": "x", "messages": []}']) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["metrics", str(bad), "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "m" / "metrics.json").read_text(encoding="utf-8"))
    assert out["counts"] == {"read": 7, "accepted": 5, "rejected": 2, "repaired": 0}
    assert len((tmp_path / "m" / "rejects.jsonl").read_text().splitlines()) == 2
    assert len((tmp_path / "m" / "timing.jsonl").read_text().splitlines()) == 5
    overall = [g for g in out["groups"] if g["level"] == "platform"]
    assert sum(g["conversations"] for g in overall) == 5
    assert (tmp_path / "m" / "metrics.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_samples_metrics_cli_missing_input_exits_2(tmp_path):
    res = CliRunner().invoke(app, ["metrics", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2 and "no such input file" in res.output


def test_samples_kpi_thresholds_follow_profile(samples):
    from qa.kpis import aggregate
    rubric = load_rubric()
    rows = aggregate(((c, compute_timing(c, rubric)) for c in samples), rubric)
    dy = next(r for r in rows if r["level"] == "platform" and r["platform"] == "douyin")
    assert dy["first_response_rate_2min_threshold"] == "≥ 0.85"
    assert dy["first_response_rate_2min_pass"] == (dy["first_response_rate_2min"] >= 0.85)
    ks = next(r for r in rows if r["level"] == "platform" and r["platform"] == "kuaishou")
    assert ks["good_review_rate_threshold"] == "≥ 0.9"
    assert sum(r["conversations"] for r in rows if r["level"] == "platform") == len(samples)
