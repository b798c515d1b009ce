"""Hostile outputs, second part: personal data on the console (``qa topics``, ``qa shop-score``) and in topic key
terms, ``--out`` paths inside the model folder being read, the masking of less common phone / e-mail spellings,
and ``qa eval`` saying it updated the model card only when it did."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from qa.cli.common import console
from qa.safety import mask_text
from tests.conftest import one_line_error, run_main, write_jsonl

qa = run_main   # the ``qa`` entry point in process: (exit code, stdout, stderr)


def chat(cid: str, question: str, shop: str = "店A") -> dict:
    return {"id": cid, "platform": "douyin", "shop": shop, "agent": "客服A",
            "messages": [{"role": "customer", "type": "text", "text": question, "ts": "2026-03-02T10:15:03+08:00"},
                         {"role": "agent", "type": "text", "text": "亲，今天发货", "ts": "2026-03-02T10:15:33+08:00"}]}


@pytest.fixture
def wide(monkeypatch):
    """A console wide enough that no table cell wraps (a wrapped number would hide from a substring check)."""
    monkeypatch.setattr(console, "_width", 250)   # the attribute: undoing a set of the property would pin the width


# -- 1. personal data on the console and in key terms -------------------------------------------------------

TOPIC_QUESTIONS = (["我的手机13812345678 请问什么时候发货？"] * 3 + ["邮箱zhangsan@example.com 请问什么时候发货？"] * 2
                   + ["身份证11010119900307123X 请问什么时候发货？", "请问什么时候发货？"])
RAW = ("13812345678", "11010119900307123", "zhangsan")


def test_topics_console_and_key_terms_are_masked(tmp_path, capsys, wide):
    src = write_jsonl(tmp_path / "q.jsonl", [chat(f"t{i}", q) for i, q in enumerate(TOPIC_QUESTIONS)])
    code, out, err = qa(capsys, "topics", src, "--backend", "lsa", "--out", tmp_path / "tp")
    assert code == 0, err
    assert "138****5678" in out                          # the most frequent question is the example shown
    for raw in RAW:
        assert raw not in out.lower() and raw not in err.lower(), (raw, out)
    with open(tmp_path / "tp" / "topics.csv", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    terms = " ".join(r["key_terms"] + " " + r["label"] for r in rows).lower()
    assert "发货" in terms
    for bad in (*RAW, "example", "com", "*"):            # nothing from inside a masked span, nor the mask itself
        assert bad not in terms, (bad, terms)
    for name in ("topics.csv", "questions.csv", "topic_shops.csv"):
        text = (tmp_path / "tp" / name).read_text(encoding="utf-8-sig").lower()
        for raw in RAW:
            assert raw not in text, (name, raw)


def test_topic_key_terms_drop_masked_tokens_only():
    from qa.topics.terms import ctfidf, unmasked

    assert "zhangsan" not in unmasked("邮箱zhangsan@example.com 发货") and "发货" in unmasked("邮箱zhangsan@example.com 发货")
    assert "5678" not in unmasked("手机138-1234-5678 退款")
    terms = [w for w, _ in ctfidf([[("邮箱zhangsan@example.com 发货", 2), ("微信 lily2020x 退款", 1)]])[0]]
    assert "zhangsan" not in terms and "lily2020x" not in terms and "发货" in terms and "退款" in terms


def test_shop_score_console_masks_the_shop(tmp_path, capsys, wide):
    stats = tmp_path / "s.csv"
    stats.write_text("shop,day,orders,reviews_5,reviews_4,reviews_3,reviews_2,reviews_1,complaints,refunds\n"
                     "店13812345678,2026-03-02,100,50,10,5,2,1,1,3\n", encoding="utf-8")
    code, out, err = qa(capsys, "shop-score", stats, "--out", tmp_path / "o.csv")
    assert code == 0, err
    assert "店138****5678" in out and "13812345678" not in out
    assert "13812345678" not in (tmp_path / "o.csv").read_text(encoding="utf-8-sig")


# -- 2. no output inside the model folder being read ---------------------------------------------------------

@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A stand-in model folder: every refusal happens before the model is read, so one file is enough."""
    m = tmp_path / "M"
    m.mkdir()
    (m / "config.json").write_text('{"keep": "me"}', encoding="utf-8")
    return m


@pytest.fixture
def labelled(tmp_path) -> Path:
    return write_jsonl(tmp_path / "labelled.jsonl", [chat("l1", "请问什么时候发货？")])


def _untouched(m: Path) -> None:
    assert sorted(p.name for p in m.iterdir()) == ["config.json"]
    assert (m / "config.json").read_text(encoding="utf-8") == '{"keep": "me"}'


@pytest.mark.parametrize("rel", ["config.json", "eval.json", "sub/e.json", "../M/x.json"])
def test_eval_out_inside_model_is_refused(tmp_path, capsys, model_dir, labelled, rel):
    code, _, err = qa(capsys, "eval", model_dir, labelled, "--no-baselines", "--out", model_dir / rel)
    one_line_error(code, err, "--out", "inside the model folder")
    _untouched(model_dir)


def test_eval_out_inside_model_through_a_link_is_refused(tmp_path, capsys, model_dir, labelled):
    link = tmp_path / "Mlink"
    link.symlink_to(model_dir, target_is_directory=True)
    code, _, err = qa(capsys, "eval", link, labelled, "--no-baselines", "--out", model_dir / "e.json")
    one_line_error(code, err, "inside the model folder")
    _untouched(model_dir)


@pytest.mark.parametrize("name", ["labels.json", "config.json", "tokenizer.json"])
def test_predict_out_inside_model_is_refused(tmp_path, capsys, model_dir, labelled, name):
    code, _, err = qa(capsys, "predict", labelled, "--model", model_dir, "--out", model_dir / name)
    one_line_error(code, err, "--out", "inside the model folder")
    _untouched(model_dir)


def test_grade_out_inside_model_is_refused(tmp_path, capsys, model_dir, labelled):
    code, _, err = qa(capsys, "grade", labelled, "--model", model_dir, "--workers", "1",
                      "--out", model_dir / "r.jsonl")
    one_line_error(code, err, "--out", "inside the model folder")
    _untouched(model_dir)


def test_grade_without_model_may_write_anywhere(tmp_path, capsys, labelled):
    code, _, err = qa(capsys, "grade", labelled, "--model", "none", "--workers", "1",
                      "--out", tmp_path / "none" / "r.jsonl")
    assert code == 0, err


@pytest.mark.parametrize("rel", [".", "cal", "a/b"])
def test_calibrate_out_equal_to_or_inside_model_is_refused(tmp_path, capsys, model_dir, labelled, rel):
    code, _, err = qa(capsys, "calibrate", model_dir, labelled, "--out", model_dir / rel)
    one_line_error(code, err, "--out", "the model folder")
    _untouched(model_dir)


def test_check_not_inputs_inside_names_the_derived_file(tmp_path, capsys):
    import typer

    from qa.cli.common import check_not_inputs
    m = tmp_path / "M"
    m.mkdir()
    with pytest.raises(typer.Exit):
        check_not_inputs([], [tmp_path / "o.json", m / "o.rejects.jsonl"], inside=[m])
    err = capsys.readouterr().err
    assert "written with --out" in err and "inside the model folder" in err
    check_not_inputs([], [tmp_path / "o.json"], inside=[m, None])          # outside: no exit
    check_not_inputs([], [tmp_path / "Mx" / "o.json"], inside=[m])         # a sibling with a longer name


# -- 4. qa eval names the model card only when it wrote it -----------------------------------------------------

def test_eval_says_updated_card_only_with_card(tmp_path, capsys):
    pytest.importorskip("torch")
    from tests.test_hostile_config import labelled as labelled_rows, model_copy
    m = model_copy(tmp_path)
    data = labelled_rows(tmp_path, n=6)
    files = (m / "MODEL_CARD.md", m / "eval.json")
    before = [f.read_bytes() if f.exists() else None for f in files]
    code, out, err = qa(capsys, "eval", m, data, "--no-baselines", "--out", tmp_path / "e.json")
    assert code == 0, err
    assert "MODEL_CARD" not in out and "updated" not in out, out
    assert [f.read_bytes() if f.exists() else None for f in files] == before
    assert json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))["dimensions"]


# -- 3. masking of less common spellings ------------------------------------------------------------------------

@pytest.mark.parametrize("text, masked", [
    ("手机138.1234.5678 请问", "手机138.****.5678 请问"),
    ("手机(138)1234-5678", "手机(138)****-5678"),
    ("手机（138）1234-5678", "手机（138）****-5678"),
    ("手机（138）12345678", "手机（138）****5678"),
    ("138．1234．5678", "138．****．5678"),
    ("邮箱zhangsan＠example.com 请问", "邮箱z*******＠example.com 请问"),
    ("zhangsan@example．com", "z*******@example．com"),
    ("地址：北京市朝阳区，建国路88号 请问", "地址：北京市朝阳区，****** 请问"),
    ("地址上海市南京东路100号5楼 请问", "地址上海市********** 请问"),
    ("加v lily2020x", "加v l********"),
    ("+V：lily2020x", "+V：l********"),
    # session 40: what an IME or a paste puts between the groups, and WeChat / e-mail as shoppers write them
    ("电话 138\u30001234\u30005678", "电话 138\u3000****\u30005678"),
    ("电话 138  1234  5678", "电话 138  ****  5678"),
    ("电话 138\u200b1234\u200b5678", "电话 138\u200b****\u200b5678"),
    ("电话 138\u00a01234\u00a05678", "电话 138\u00a0****\u00a05678"),
    ("电话 138_1234_5678 或 139/1234/5678", "电话 138_****_5678 或 139/****/5678"),
    ("退款卡号 6222\u30000202\u30000000\u30001234567", "退款卡号 6222\u3000****\u3000****\u3000***4567"),
    ("加微 wangxm88 私聊", "加微 w******* 私聊"),
    ("薇:lily2020 或 微：lily2022", "薇:l******* 或 微：l*******"),
    ("邮箱 李雷@example.com", "邮箱 李*@example.com"),
    ("日期 2026/03/02 尺码 150/160/170 V领毛衣 微笑 S/M/L", "日期 2026/03/02 尺码 150/160/170 V领毛衣 微笑 S/M/L"),
])
def test_mask_text_less_common_spellings(text, masked):
    assert mask_text(text) == masked
    assert len(mask_text(text)) == len(text)


@pytest.mark.parametrize("text", [
    "订单号 2024.0101.1234", "价格 1.38元 13.8元", "v1.3.8.1234.5678", "138.1234.5678.9", "加vip12345",
    "这个城市的路很好走", "我在朝阳区，明天到", "上海市很热",
])
def test_mask_text_leaves_look_alikes(text):
    assert mask_text(text) == text


def test_pii_spellings_are_masked_in_topics_outputs(tmp_path, capsys, wide):
    qs = ["手机138.1234.5678 请问什么时候发货？", "手机(138)1234-5678 请问什么时候发货？",
          "邮箱zhangsan＠example.com 请问什么时候发货？", "请问什么时候发货？"]
    src = write_jsonl(tmp_path / "g.jsonl", [chat(f"g{i}", q) for i, q in enumerate(qs)])
    code, out, err = qa(capsys, "topics", src, "--backend", "lsa", "--out", tmp_path / "tp")
    assert code == 0, err
    texts = [out] + [(tmp_path / "tp" / n).read_text(encoding="utf-8-sig") for n in
                     ("topics.csv", "questions.csv", "topic_shops.csv")]
    for t in texts:
        assert "1234" not in t and "zhangsan" not in t.lower(), t



@pytest.mark.parametrize("text,n", [("请联系我" + "JT0012 " * 10 + "13812345678 好的谢谢", 78),
                                    ("电话 138 1234 5678 地址", 12), ("身份证110101199003071234 请问", 15)])
def test_clip_never_leaves_part_of_a_number_masking_would_hide(text, n):
    from qa.safety import clip, mask_text
    cut = clip(text, n)
    assert len(cut) <= n and text.startswith(cut)
    assert mask_text(cut) == mask_text(text)[:len(cut)]   # masked later, it shows no more than the whole text masked


def test_console_prints_control_characters_of_input_as_replacement(capsys):
    from rich.table import Table

    from qa.cli.common import console
    t = Table()
    t.add_column("shop")
    t.add_row("\x1b[2J假店\x1b]8;;http://evil.example/\x1b\\点我")
    console.print(t)
    console.print("id \x1b[1A\x1b[2K伪造", highlight=False)
    out = capsys.readouterr().out
    assert "\x1b" not in out and out.count("\ufffd") == 5


def test_report_chart_labels_are_cut_in_one_pass():
    import time

    from qa.report.charts import _clip, text_width
    assert _clip("店铺名称很长很长很长很长很长", 60) == "店铺名称…" and _clip("abc", 60) == "abc"
    started = time.perf_counter()
    label = _clip("店" * 200_000, 120)
    assert text_width(label) <= 120 and time.perf_counter() - started < 5
