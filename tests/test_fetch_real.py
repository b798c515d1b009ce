"""scripts/fetch_real_chats.py and qa.io.cards, on a tiny self-written fixture (no real chat text)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from qa.io.cards import auto_reply, card_type, media_type, recall_notice
from qa.schema import Conversation

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "data" / "real_fixture"

_spec = importlib.util.spec_from_file_location("fetch_real_chats", ROOT / "scripts" / "fetch_real_chats.py")
frc = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("fetch_real_chats", frc)
_spec.loader.exec_module(frc)

SRC = {s.name: s for s in frc.SOURCES}


def _convert(name: str, fname: str, seen: set | None = None) -> tuple[list[dict], Counter]:
    stats: Counter = Counter()
    recs = frc.convert(SRC[name], (FIX / fname).read_text(encoding="utf-8"), set() if seen is None else seen, stats)
    return recs, stats


def _roles(rec):
    return [m["role"] for m in rec["messages"]]


# ----------------------------------------------------------------------------------------- text


@pytest.mark.parametrize("seg, plain", [
    ("有 的 亲 XL 还有 货 哦", "有的亲XL还有货哦"),
    ("这个 是 iPhone 8 的 壳 吗", "这个是iPhone 8的壳吗"),
    ("ok ok", "ok ok"),
    (" 48 小时 内 发 出 哦 ~ ", "48小时内发出哦~"),
    ("好 ， 谢谢 ！", "好，谢谢！"),
    ("   ", ""),
])
def test_unsegment(seg, plain):
    assert frc.unsegment(seg) == plain


# ----------------------------------------------------------------------------------------- ECD


def test_ecd_parse_roles_ids_dedupe():
    recs, stats = _convert("ecd", "ecd_train.tsv")
    # 4 label-1 lines (label-0 skipped), one identical to the first → dropped; ids keep source order
    assert stats["sessions"] == 4 and stats["duplicates"] == 1
    assert [r["id"] for r in recs] == ["ecd-train-0001", "ecd-train-0002", "ecd-train-0004"]
    first = recs[0]
    assert first["platform"] == "taobao"
    assert [m["text"] for m in first["messages"]] == ["在吗", "在的亲", "这款T恤有XL吗", "有的亲XL还有货哦"]
    assert _roles(first) == ["customer", "agent", "customer", "agent"]
    assert "我们周末不发货" not in json.dumps(recs, ensure_ascii=False)  # the label-0 wrong response
    assert all("ts" not in m for r in recs for m in r["messages"])
    assert first["meta"] == {"source": "ecd", "url": SRC["ecd"].url, "commit": SRC["ecd"].commit, "line": 1,
                             "licence": SRC["ecd"].licence, "obtained": frc.OBTAINED}
    assert recs[2]["meta"]["line"] == 5


def test_ecd_card_and_latin_spaces():
    rec = _convert("ecd", "ecd_train.tsv")[0][1]
    assert _roles(rec) == ["customer", "agent"] * 4
    card = rec["messages"][2]
    assert card == {"role": "customer", "type": "product_card", "text": "612345678901"}
    assert rec["messages"][4]["text"] == "这个是iPhone 8的壳吗"
    assert rec["messages"][5]["text"] == "是的亲适配iPhone 8和8 Plus"
    assert rec["messages"][6]["text"] == "ok ok"


def test_ecd_roles_alternate_backwards_from_response_and_empty_dropped():
    rec = _convert("ecd", "ecd_train.tsv")[0][2]
    # 3 utterances, the first empty: response = agent, the one before = customer, empty one dropped
    assert [(m["role"], m["text"]) for m in rec["messages"]] == [("customer", "什么时候发货"), ("agent", "48小时内发出哦~")]


# ----------------------------------------------------------------------------------------- JDDC


def test_jddc_parse():
    recs, stats = _convert("jddc", "jddc_chat.tsv")
    assert [r["id"] for r in recs] == ["jddc-chat-0001", "jddc-chat-0002", "jddc-chat-0003"]
    a = recs[0]
    assert a["platform"] == "other" and a["customer"] == "USERID_1" and a["source_session"] == "s0001"
    assert [(m["role"], m["type"]) for m in a["messages"]] == [
        ("customer", "text"), ("agent", "text"), ("customer", "order_card"), ("customer", "order_card"), ("agent", "text")]
    assert a["messages"][-1]["text"] == "好的 已为您提交申请 [姓名x]"  # NULL row dropped, whitespace collapsed
    assert a["messages"][0]["text"] == "你好 我要退货"  # not word-segmented: spaces kept
    assert recs[1]["skus"] == ["1234567"] and "skus" not in a
    assert recs[1]["meta"]["line"] == 7
    # a placeholder from the agent stays text; the customer's masked link is a product card
    assert [(m["role"], m["type"]) for m in recs[2]["messages"]] == [("agent", "text"), ("customer", "product_card")]


def test_dedupe_spans_sources():
    seen: set = set()
    _convert("ecd", "ecd_train.tsv", seen)
    again, stats = _convert("ecd", "ecd_train.tsv", seen)
    assert again == [] and stats["duplicates"] == 4


def test_records_fit_schema():
    for name, fname in (("ecd", "ecd_train.tsv"), ("jddc", "jddc_chat.tsv")):
        for r in _convert(name, fname)[0]:
            conv = Conversation.model_validate(r)
            assert conv.id == r["id"]


def test_main_writes_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QA_CACHE", str(tmp_path))
    rc = frc.main(["--from-file", f"ecd={FIX / 'ecd_train.tsv'}", "--from-file", f"jddc={FIX / 'jddc_chat.tsv'}"])
    assert rc == 0
    out = tmp_path / "real" / "chats.jsonl"
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in lines][:3] == ["ecd-train-0001", "ecd-train-0002", "ecd-train-0004"]
    assert len(lines) == 6
    printed = capsys.readouterr().out
    assert "ecd" in printed and "jddc" in printed and "total      6 conversations" in printed


def test_main_rejects_unknown_source(tmp_path):
    with pytest.raises(SystemExit):
        frc.main(["--from-file", f"nope={FIX / 'ecd_train.tsv'}", "--out", str(tmp_path / "x.jsonl")])


def test_sources_table_rules():
    for s in frc.SOURCES:
        assert not frc._FORBIDDEN.search(s.path)
        assert len(s.commit) == 40 and s.licence
        assert s.raw_url.startswith("https://raw.githubusercontent.com/") and s.commit in s.raw_url
        assert "stc" not in s.name.lower() and "dialeval" not in s.repo.lower() and "ntcir" not in s.repo.lower()


def test_download_uses_https(monkeypatch):
    seen = {}

    class Resp:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def read(self):
            return "1\t在 吗\t在 的\n".encode("utf-8")

    def fake_urlopen(req, timeout):
        seen["url"] = req.full_url
        return Resp()

    monkeypatch.setattr(frc.urllib.request, "urlopen", fake_urlopen)
    assert frc.download(SRC["ecd"]) == "1\t在 吗\t在 的\n"
    assert seen["url"] == SRC["ecd"].raw_url


def test_sha256_mismatch_is_an_error(monkeypatch):
    monkeypatch.setattr(frc, "download", lambda src: "not the file")
    with pytest.raises(ValueError, match="sha256"):
        frc.get_raw(SRC["ecd"], {}, None)


# ----------------------------------------------------------------------------------------- cards


@pytest.mark.parametrize("text, kind", [
    ("https://item.taobao.com/item.htm?id=612345678901", "product_card"),
    ("detail.tmall.com/item.htm?spm=a1z10&id=600000000001", "product_card"),
    ("https://item.jd.com/100012345678.html", "product_card"),
    ("https://m.tb.cn/h.AbCdE?tk=xyz", "product_card"),
    ("https://haohuo.jinritemai.com/views/product/detail?id=3500000000000000001", "product_card"),
    ("【https://item.jd.com/12345.html】", "product_card"),
    ("https://buyertrade.taobao.com/trade/detail/trade_item_detail.htm?bizOrderId=1234567890123456789", "order_card"),
    ("商品ID：612345678901", "product_card"),
    ("宝贝id 612345678901", "product_card"),
    ("item id: 612345678901", "product_card"),
    ("612345678901", "product_card"),
    (" 612345678901 ", "product_card"),
    ("订单号：1234567890123456", "order_card"),
    ("订单编号 123456789012345678", "order_card"),
    ("1234567890123456", "order_card"),
    ("[订单x]", "order_card"),
    ("[链接x]", "product_card"),
    ("订单号: [订单x]", "order_card"),
    ("订单号：；[订单x]", "order_card"),
    ("商品编号[数字x]", "product_card"),
    ("[数字x]", None),
    ("[订单编号:[订单x]，订单金额:[金额x]，下单时间:[日期x] [时间x]]", "order_card"),
    ("[订单编号:[数字x]，订单金额:，下单时间:]", "order_card"),     # JD's card with its amount and time left empty
    # an app's share text: the link, boilerplate, a bracketed title, a share code (淘口令)
    ("【淘宝】https://m.tb.cn/h.5XyZabc?tk=abc123 CZ0001 「夏季冰丝阔腿裤女高腰垂感」点击链接直接打开", "product_card"),
    ("【抖音商城】https://v.douyin.com/iRNBmXyZ/ 长按复制此条消息，打开抖音搜索，查看商品详情！", "product_card"),
    ("￥AbCd1234￥ 打开👉手机淘宝👈即可查看「纯棉四件套」", "product_card"),
    ("https://item.taobao.com/item.htm?id=6723412345 这个", "product_card"),
    # the Taobao app's own share text keeps a space before its second instruction; Pinduoduo, Kuaishou, TikTok links
    ("【淘宝】https://m.tb.cn/h.5Xyz12Ab?tk=AbCdEfGh 「2024新款纯棉T恤女宽松短袖」点击链接直接打开 或者 淘宝搜索直接打开",
     "product_card"),
    ("https://mobile.yangkeduo.com/goods.html?goods_id=123456789", "product_card"),
    ("https://mobile.yangkeduo.com/goods2.html?goods_id=123456789&page_from=23", "product_card"),
    ("https://v.kuaishou.com/Ab12Cd 看看这个", "product_card"),
    ("https://vt.tiktok.com/ZSabc123/", "product_card"),
    # session 46: the Taobao app's newer share text (a price-like prefix, a spaced code, 我在淘宝发现了【title】) and item
    # pages under a.m.taobao.com/i….htm and world.taobao.com/item/…
    ("88¥ CZ3457 MJUe3ZKjpB3¥ https://m.tb.cn/h.gP0Bx6A  我在淘宝发现了【夏季冰丝阔腿裤】", "product_card"),
    ("https://a.m.taobao.com/i612345678901.htm", "product_card"),
    ("https://world.taobao.com/item/612345678901.htm", "product_card"),
    ("https://m.tb.cn/h.gP0Bx6A 我在淘宝发现了这个 能便宜点吗", None),
    ("[商品] 2024新款纯棉T恤 ¥59", "product_card"), ("【商品卡片】纯棉T恤", "product_card"),
    ("[订单]订单号：1234567890123456 待发货", "order_card"), ("[订单x]这个", None),
    ("https://www.kuaishou.com", None),          # a site, not an item
    ("https://mobile.yangkeduo.com 这家店靠谱吗", None),
    ("https://m.tb.cn/h.5XyZabc 这个还有货吗 我想要黑色的", None),   # a question with the link: text
    ("这个链接的裤子还有M码吗 https://item.taobao.com/item.htm?id=6723412345", None),
    ("https://www.taobao.com 看看", None),
    ("价格是$12$吗", None),
    ("13812345678", None),               # a mobile number, not an item id
    ("https://www.taobao.com", None),    # a site, not an item
    ("https://example.com/item.htm?id=1", None),
    ("我的订单号是1234567890123456", None),
    ("396", None),
    ("在吗", None),
    ("", None),
    (None, None),
])
def test_card_type(text, kind):
    assert card_type(text) == kind


@pytest.mark.parametrize("text, kind", [
    ("[图片]", "image"), ("[图片][图片]", "image"), (" [截图] ", "image"),
    ("https://img.alicdn.com/imgextra/i1/123/O1CN01abc.jpg", "image"),
    ("[视频]", "video"),
    ("[表情]", "emoji"), ("[捂脸][捂脸]", "emoji"), ("/:^_^", "emoji"), ("/:087", "emoji"), ("👌🏻", "emoji"),
    ("🌹🌹", "emoji"), ("❤️", "emoji"),
    ("[语音]", None), ("[文件]", None), ("[位置]", None),          # not a sticker: flattened voice, file, location
    ("[数字x]", None), ("[姓名x]", None),                           # JDDC masks
    ("好的👌", None), ("[微笑] 在吗", None), ("这张图片看一下", None), ("", None), (None, None),
])
def test_media_type(text, kind):
    assert media_type(text) == kind


def test_a_customer_placeholder_is_read_as_its_media_with_a_warning():
    from qa.schema import Conversation
    conv = Conversation.model_validate({"id": "m", "messages": [
        {"role": "customer", "type": "text", "text": "[图片]"}, {"role": "agent", "type": "text", "text": "[图片]"},
        {"role": "customer", "type": "text", "text": "https://item.jd.com/100012345678.html"}]})
    assert [m.type for m in conv.messages] == ["image", "text", "product_card"]   # the agent's text stays text
    assert [m.text for m in conv.messages][0] == "[图片]"
    assert "media_from_text:0" in conv.warnings and "card_from_text:2" in conv.warnings


@pytest.mark.parametrize("text, auto", [
    ("[自动回复]亲，欢迎光临", True), ("【自动回复】您好", True), ("自动回复：亲 在的", True), ("(自动回复)您好", True),
    ("[auto-reply] hi", True), ("亲 自动回复的话不准 我来说", False), ("您好", False), ("", False), (None, False),
])
def test_auto_reply(text, auto):
    assert auto_reply(text) is auto


@pytest.mark.parametrize("sender, auto", [
    ("店小蜜", True), ("阿里店小蜜", True), ("飞鸽机器人", True), ("智能客服", True), ("Chatbot", True),
    ("小美", False), ("客服-小柚", False), ("Robert", False), ("智能客服转人工-小安", False), (None, False),
])
def test_auto_reply_by_sender(sender, auto):
    assert auto_reply("您好 在的", sender) is auto


def test_an_agent_auto_reply_is_read_as_the_bot_with_a_warning():
    from qa.schema import Conversation
    conv = Conversation.model_validate({"id": "a", "messages": [
        {"role": "customer", "type": "text", "text": "在吗"},
        {"role": "agent", "type": "text", "text": "[自动回复]亲，欢迎光临"},
        {"role": "customer", "type": "text", "text": "[自动回复]是什么"},
        {"role": "agent", "type": "text", "text": "您好 在的"}]})
    assert [m.role for m in conv.messages] == ["customer", "bot", "customer", "agent"]
    assert [w for w in conv.warnings if "from_text" in w] == ["bot_from_text:1"]


@pytest.mark.parametrize("text, notice", [
    ("对方撤回了一条消息", True), ("你撤回了一条消息", True), ("客服小柚撤回了一条消息", True), ("[消息已撤回]", True),
    ("此消息已撤回", True), ("我想撤回订单", False), ("你们怎么撤回了一条消息都不说", False), ("这个能撤回吗", False),
    ("", False), (None, False),
])
def test_recall_notice(text, notice):
    assert recall_notice(text) is notice


def test_a_recall_notice_is_an_event_not_a_message():
    from qa.schema import Conversation
    conv = Conversation.model_validate({"id": "r", "messages": [
        {"role": "customer", "type": "text", "text": "在吗"},
        {"role": "agent", "type": "text", "text": "对方撤回了一条消息"},
        {"role": "agent", "type": "text", "text": "您好 在的"}]})
    assert [(m.role, m.type, m.event) for m in conv.messages][1] == ("system", "event", "message_recalled")
    assert conv.messages[1].text == "对方撤回了一条消息"
    assert [w for w in conv.warnings if "from_text" in w] == ["event_from_text:1"]
