"""The shipped default on short real-shop chats: brevity that gives the fact asked is not poor service."""

from __future__ import annotations

from qa.io import read_path
from tests.conftest import ROOT


def test_default_model_does_not_read_short_factual_replies_as_poor_professionalism():
    from qa.model.predict import Classifier
    convs = list(read_path(ROOT / "tests" / "data" / "short_replies.jsonl"))
    assert len(convs) == 4
    preds = Classifier(ROOT / "models" / "default").predict(convs)
    for conv, p in zip(convs, preds):
        assert p["professionalism"].level >= 4, (conv.id, p["professionalism"].level)
        assert min(p[d].level for d in ("attitude", "etiquette", "professionalism", "clarity")) >= 3, conv.id


def test_eval_platform_option_reads_unnamed_chats_as_that_platform(tmp_path):
    """``qa eval --platform taobao`` on written Taobao chats whose records lost their platform reports what it
    reports when the records name it."""
    import json

    from qa.model.evaluate import evaluate
    rows = [json.loads(line) for line in (ROOT / "data/labelled/eval/eval_eval-f.jsonl").read_text(encoding="utf-8")
            .splitlines() if '"taobao"' in line][:12]
    assert len(rows) == 12 and all(r["platform"] == "taobao" for r in rows)
    named, bare = tmp_path / "named.jsonl", tmp_path / "bare.jsonl"
    named.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    bare.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "platform"}, ensure_ascii=False) + "\n"
                            for r in rows), encoding="utf-8")
    model = ROOT / "models" / "default"
    want = evaluate(model, [str(named)], baselines=False)["systems"]
    assert evaluate(model, [str(bare)], baselines=False, platform="千牛")["systems"] == want
    assert evaluate(model, [str(bare)], baselines=False)["systems"] != want     # read as `other`: graded apart
