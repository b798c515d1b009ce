"""Recognise chat messages that are really a product card, an order card, an image or an emoji.

Exports of real chats often flatten cards to text: a customer "sends" an item by pasting its link or
its item id, or an order by pasting its order number. ``card_type`` tells such a message apart from
ordinary text so that readers can set ``type`` to ``product_card`` / ``order_card`` (keeping the text).
``media_type`` does the same for an export's placeholder of a picture or a sticker ([图片], [捂脸], /:^_^, 👌).
``auto_reply`` tells a shop account's automatic reply ([自动回复]亲，欢迎光临…) from its human agent's;
``recall_notice`` finds an export's line for a withdrawn message (对方撤回了一条消息), which is no message at all.
``reread`` puts them together: what the readers make of a text message (``qa.schema``).

Only a message that is *nothing but* the link / number (optionally with a short label such as
``商品ID:`` or ``订单号：`` and surrounding brackets) counts; a sentence that mentions a number does not.
Pure functions, no I/O.
"""

from __future__ import annotations

import functools
import re

__all__ = ["auto_reply", "card_type", "media_type", "recall_notice", "reread"]

# Hosts whose links are item (product) pages: Taobao/Tmall (incl. short links), JD, Douyin shop, Kuaishou,
# Pinduoduo, TikTok. Subdomains are bounded as DNS bounds them (labels of at most 63 characters), so a long run of
# text cannot make a search for a link backtrack quadratically.
_ITEM_HOSTS = (
    r"(?:[\w-]{1,63}\.){0,8}(?:taobao\.com|tmall\.com|tmall\.hk|tb\.cn|jd\.com|jd\.hk|3\.cn|"
    r"jinritemai\.com|v\.douyin\.com|douyin\.com|kwaixiaodian\.com|kuaishou\.com|yangkeduo\.com|pinduoduo\.com|"
    r"tiktok\.com)"
)
_URL = re.compile(rf"^(?:https?://)?{_ITEM_HOSTS}(?::\d+)?(?:[/?#]\S*)?$", re.I)
# Order pages: a link of those hosts whose path or query names an order.
_ORDER_IN_URL = re.compile(r"(?:biz_?order_?id|order_?id|orderid|/order/|trade_?item_?detail|order\.jd\.com|"
                           r"details\.jd\.com)", re.I)
# A product link that is a shop/search page, not an item, is still sent as a link card by most
# platforms; we only claim product_card for URLs that look like an item page or a share short-link.
_ITEM_IN_URL = re.compile(
    r"(?:item\.htm|[?&]id=\d|[?&]goods_id=\d|item\.(?:m\.)?jd\.(?:com|hk)/\d|/product/|/detail|/goods|"
    r"^(?:https?://)?(?:m\.tb\.cn|tb\.cn|s\.tb\.cn|e\.tb\.cn|u\.jd\.com|3\.cn|v\.douyin\.com|v\.kuaishou\.com|"
    r"(?:vt|vm)\.tiktok\.com)/|"
    r"item\.taobao\.com|/i\d{6,20}\.htm|/item/\d{6,20}|detail\.tmall\.(?:com|hk)|chaoshi\.detail\.tmall\.com|haohuo\.jinritemai\.com)",
    re.I,
)

_LABEL_ITEM = r"(?:商品|宝贝|产品|货品)\s*(?:id|编号|编码|号|链接|sku)|item\s*id|itemid|sku(?:\s*id)?"
_LABEL_ORDER = r"(?:订单|order)\s*(?:号码|编号|号|id|no\.?|number)?"
_SEP = r"\s*[:：#]?\s*"

_ITEM_LABELLED = re.compile(rf"^(?:{_LABEL_ITEM}){_SEP}(\d{{5,20}})$", re.I)
_ORDER_LABELLED = re.compile(rf"^(?:{_LABEL_ORDER}){_SEP}(\d{{8,25}})$", re.I)
_ORDER_NUMBER = re.compile(r"^\d{15,20}$")
_ITEM_NUMBER = re.compile(r"^\d{10,13}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")

# Masked placeholders of de-identified corpora (JDDC): an order number, a link, and JD's order card
# "[订单编号:…，订单金额:…，下单时间:…]".
_MASKED_ORDER = re.compile(r"^\[订单x\]$")
_MASKED_LINK = re.compile(r"^\[链接x\]$")
_MASKED_SEP = r"[\s:：#;；]*"
_MASKED_ORDER_LABELLED = re.compile(rf"^(?:{_LABEL_ORDER}){_MASKED_SEP}\[订单x\]$", re.I)
_MASKED_ITEM_LABELLED = re.compile(rf"^(?:{_LABEL_ITEM}){_MASKED_SEP}\[(?:数字|链接)x\]$", re.I)
_JD_ORDER_CARD = re.compile(r"^\[?订单编号[:：].{1,40}[,，]\s*订单金额[:：].{0,40}[,，]\s*下单时间[:：].{0,60}\]?$")

_STRIP = " \t\r\n\u3000[]【】()（）<>《》「」\"'“”‘’"
# The label an export puts before a card it writes out as text (飞鸽 / 快手: [商品卡片]…, [订单]…)
_CARD_LABEL = re.compile(r"^[\[【]\s*(商品|宝贝|商品卡片|宝贝卡片|商品链接|宝贝链接|商品详情|订单|订单卡片|订单信息|订单详情)\s*[\]】]")

# An app's share text: an item link with the app's boilerplate around it, the item's title in brackets and a
# share code (【淘宝】https://m.tb.cn/h.xxx?tk=… CZ0001 「夏季冰丝阔腿裤」点击链接直接打开 / 【抖音商城】https://v.douyin.com/…/
# 长按复制此条消息，打开抖音搜索，查看商品详情！). Once those are taken out, at most a few characters may be left.
_URL_IN_TEXT = re.compile(rf"(?:https?://)?{_ITEM_HOSTS}(?::\d+)?(?:[/?#][!-~]*)?", re.I)
_SHARE_NOISE = re.compile(
    r"「[^」]{0,80}」|【[^】]{0,30}】|《[^》]{0,80}》|[￥$€₤¢₳₴](?:[A-Za-z0-9]{4,20})[￥$€₤¢₳₴]|[A-Za-z0-9]{4,}|"
    r"点击链接直接打开|或者?\s*(?:淘宝|天猫)搜索直接打开|复制(?:这条|此条|整段|本条)(?:信息|消息|内容)?|长按复制此条消息|"
    r"(?:打开|去)(?:👉)?(?:手机)?(?:淘宝|天猫|抖音|京东|快手|tiktok)(?:👈)?(?:app|搜索|看看)?|查看商品详情|"
    r"我在(?:淘宝|天猫|抖音|京东|拼多多)发现了|复制链接|链接|看看|商品|宝贝|分享|给你|推荐",
    re.I)
_SHARE_HINT = re.compile(r"[./￥$€₤¢₳₴]")   # a link's dot or slash, a share code's sign: most texts have none
_SHARE_CODE = re.compile(r"[￥$€₤¢₳₴][A-Za-z0-9]{6,20}[￥$€₤¢₳₴]")
_SHARE_LEFT = re.compile(r"[\u4e00-\u9fff]")   # what a share text may not keep much of: words
_SHARE_ASK = re.compile(r"[吗么嘛?？]")   # a question beside the link (有s码吗 https://item.taobao.com/…) is a message


def _share_card(text: str) -> str | None:
    """The card an app's share text stands for: an item (or order) link, and nothing left beside it but the
    app's boilerplate, a bracketed title and a share code (at most four characters of words, and no question:
    链接 有货吗 asks something)."""
    urls = [u for u in _URL_IN_TEXT.findall(text) if _ITEM_IN_URL.search(u) or _ORDER_IN_URL.search(u)]
    if not urls and not _SHARE_CODE.search(text):   # a Taobao share code (淘口令) stands for an item too
        return None
    rest = _SHARE_NOISE.sub("", _URL_IN_TEXT.sub("", text))
    if len(_SHARE_LEFT.findall(rest)) > 4 or _SHARE_ASK.search(rest):
        return None
    return "order_card" if any(_ORDER_IN_URL.search(u) for u in urls) else "product_card"


def card_type(text: str | None) -> str | None:
    """``"product_card"``, ``"order_card"`` or ``None`` for a message text.

    Recognised:

    - a Taobao/Tmall/JD/Douyin (and Kuaishou/TikTok shop) item link alone → product_card; such a link
      to an order page (``bizOrderId=``, ``order.jd.com`` …) → order_card;
    - an item id alone: ``商品ID: 123…``, ``宝贝ID 123…``, ``item id 123…``, ``SKU:123…``, or a bare
      10–13 digit number that is not a mainland mobile number → product_card;
    - an order number alone: ``订单号：…``, ``订单编号 …`` or a bare 15–20 digit number → order_card;
    - an app's share text of such a link (【淘宝】… 「title」点击链接直接打开, 【抖音商城】… 长按复制此条消息) → the
      link's card;
    - an export's card written out as text behind its label: ``[商品]夏季冰丝阔腿裤 ¥59``, ``【商品卡片】…``
      (product_card), ``[订单]订单号：…`` (order_card);
    - the masked placeholders of de-identified corpora: ``[订单x]`` or ``订单号:[订单x]`` (order_card),
      ``[链接x]`` or ``商品编号:[数字x]`` (product_card), and the JD order card
      ``[订单编号:…，订单金额:…，下单时间:…]`` (order_card).
    """
    if not text:
        return None
    raw = text.strip()
    if not raw:
        return None
    label = _CARD_LABEL.match(raw)   # an export's flattened card: [商品]夏季冰丝阔腿裤 ¥59 / 【订单】订单号：…
    if label:
        return "order_card" if label.group(1).startswith("订单") else "product_card"
    if _JD_ORDER_CARD.match(raw) or _MASKED_ORDER.match(raw) or _MASKED_ORDER_LABELLED.match(raw):
        return "order_card"
    if _MASKED_LINK.match(raw) or _MASKED_ITEM_LABELLED.match(raw):
        return "product_card"
    s = raw.strip(_STRIP)
    if not s:
        return None
    if " " not in s and _URL.match(s):
        if _ORDER_IN_URL.search(s):
            return "order_card"
        if _ITEM_IN_URL.search(s):
            return "product_card"
        return None
    if (" " in s or not _URL.match(s)) and _SHARE_HINT.search(raw):
        share = _share_card(raw)
        if share:
            return share
    if _ORDER_NUMBER.match(s):
        return "order_card"
    if _ITEM_NUMBER.match(s) and not _MOBILE.match(s):
        return "product_card"
    if _ORDER_LABELLED.match(s):
        return "order_card"
    m = _ITEM_LABELLED.match(s)
    if m and not _MOBILE.match(m.group(1)):
        return "product_card"
    return None


# Media placeholders: what 千牛 / 飞鸽 / 快手 exports write for a picture, a video or a sticker, and Wangwang's
# emoticon codes. A bracketed name of one to four Chinese characters is a sticker ([微笑], [捂脸], Weibo's [哈哈])
# unless it names something else an export flattens (a voice message, a file, a location, a red packet …).
_IMAGE = re.compile(r"^(?:\[(?:图片|照片|截图|图片消息|相册)\]\s*)+$")
_VIDEO = re.compile(r"^(?:\[(?:视频|视频消息|小视频)\]\s*)+$")
NOT_STICKER = frozenset("语音 语音消息 文件 位置 定位 红包 转账 链接 商品 订单 卡片 名片 小程序 音频 通话 语音通话 视频通话 撤回 系统消息 消息 "
                         "图片 照片 截图 视频 地址 姓名 数字 日期 时间 金额 站点".split())
# an emoji: a base character and its modifiers (variation selector, joiner, skin tone). The skin tones are left out
# of the bases, so a run of them parses one way only (else a long run backtracks exponentially).
_STICKER = r"(?:\[([\u4e00-\u9fff]{1,4})\]|/:[^\s/]{1,4}|[\U0001F300-\U0001F3FA\U0001F400-\U0001FAFF\u2600-\u27BF" \
           r"\u2B50\u2764][\uFE0F\u200D\U0001F3FB-\U0001F3FF]*)"
_STICKERS = re.compile(rf"^(?:{_STICKER}\s*)+$")
_IMAGE_URL = re.compile(r"^https?://\S+\.(?:jpe?g|png|gif|webp|heic)(?:[?#]\S*)?$", re.I)


def media_type(text: str | None) -> str | None:
    """``"image"``, ``"video"``, ``"emoji"`` or ``None`` for a message text that is *only* an export's placeholder
    of a picture ([图片], [截图], or a picture's link ending .jpg/.png …), of a video ([视频]), or stickers: bracketed
    sticker names ([微笑][捂脸]), Wangwang codes (/:^_^, /:087) or emoji characters (👌, 🌹🌹)."""
    s = (text or "").strip()
    c = s[:1]
    if not c or (c not in "[/hH\u2b50" and not "\u2600" <= c < "\u2800" and c < "\U0001f000"):
        return None   # every form starts with one of these: most texts are out at once
    if _IMAGE.match(s) or _IMAGE_URL.match(s):
        return "image"
    if _VIDEO.match(s):
        return "video"
    m = _STICKERS.match(s)
    if m and not any(name in NOT_STICKER for name in re.findall(r"\[([\u4e00-\u9fff]{1,4})\]", s)):
        return "emoji"
    return None


# The mark 千牛 / 飞鸽 / 快手 exports put before a shop account's automatic reply: [自动回复], 【自动回复】, 自动回复：
_AUTO_REPLY = re.compile(r"^\s*(?:[\[【(（［<《]\s*(?:自动回复|自动应答|auto[- ]?reply)\s*[\]】)）］>》]|"
                         r"(?:自动回复|自动应答)\s*[:：])", re.I)
_AUTO_FIRST = frozenset("[【(（［<《自aA")   # what an automatic-reply mark starts with
# a sender that is a robot by its whole name (not 智能客服转人工-小安, the human who took over)
_BOT_SENDER = re.compile(r"(?:阿里)?店小蜜\w{0,4}|\w{0,6}机器人\w{0,2}|智能客服|智能助手|自动回复|chat ?bot|bot", re.I)


def auto_reply(text: str | None, sender: str | None = None) -> bool:
    """The text of an agent-side message starts with an export's automatic-reply mark ([自动回复], 【自动回复】,
    自动回复：, (auto-reply)), or its sender is a robot by name (店小蜜, 智能客服, 飞鸽机器人): the shop's robot wrote
    it, not its human agent."""
    return bool(text and text.lstrip()[:1] in _AUTO_FIRST and _AUTO_REPLY.match(text)) or \
        bool(sender and _bot_sender(sender))


@functools.lru_cache(maxsize=1024)
def _bot_sender(sender: str) -> bool:
    """The sender is a robot by its whole name (senders repeat: read each once)."""
    return bool(_BOT_SENDER.fullmatch(sender.strip()))


def reread(role: str, text: str, sender: str | None = None) -> tuple[str, str, str | None, str] | None:
    """What an export's text message really is, when it is not text from ``role``: (role, type, event, what was
    read: ``event`` / ``bot`` / ``card`` / ``media``) for a recall notice (an event nobody sent), an agent's automatic
    reply (the bot's), or a customer's card or media placeholder; None for a plain text message."""
    if "撤回" in text and role != "system" and recall_notice(text):
        return "system", "event", "message_recalled", "event"
    if role == "agent":
        return ("bot", "text", None, "bot") if auto_reply(text, sender) else None
    if role == "customer":
        card = card_type(text)
        if card:
            return role, card, None, "card"
        media = media_type(text)
        if media:
            return role, media, None, "media"
    return None


_RECALL = re.compile(r"^[\[【(（]?\s*(?:(?:对方|你|您|我|客服|买家|顾客|商家|[^\s，,。]{1,16}?)\s*)?撤回了(?:一条|1条)?消息\s*[\]】)）]?$|"
                     r"^[\[【(（]?\s*(?:此|该|这条)?消息已(?:被)?撤回\s*[\]】)）]?$")


def recall_notice(text: str | None) -> bool:
    """The text is only an export's notice that a message was withdrawn (对方撤回了一条消息, 客服小柚撤回了一条消息,
    [消息已撤回]): an event, not something either side said."""
    return bool(text and _RECALL.match(text.strip()))
