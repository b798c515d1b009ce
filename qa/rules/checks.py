"""The default checks, registered under versioned ids the rubric's rules refer to.

Each check reads the shared ``Context`` and yields ``Draft`` findings; thresholds come from the rule's
``params`` in the rubric (defaults below), phrases from the rubric's lexicon.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from qa.rules.base import AGENT_SIDE, Context, Draft, blank, content_chars, fact_chars, hit_draft, register
from qa.timing import acknowledges

NON_TEXT = ("image", "video", "emoji", "product_card", "order_card")
_PUNCT = re.compile(r"\[[^\]]{1,6}\]|[\s\W_]")


@register("uncivil_language.v1")
def uncivil_language(ctx: Context, params: dict[str, Any]) -> Iterator[Draft]:
    for i in ctx.texts(AGENT_SIDE):
        for h in ctx.hits_in("insult", i) + ctx.hits_in("blame", i):
            if ctx.has("apology", i) and (_quoted(ctx.norms[i], h.start, h.end) or _customer_said(ctx, i, h.text)):
                continue  # quoting someone else's words (or the customer's complaint) to apologise for them
            if _echoed(ctx, i, h.start, h.end):
                continue  # the customer's own words said back: a name (尼玛次仁), a cake's text, a product line (sb)
            yield hit_draft(h, "客服对顾客使用不文明/嘲讽用语")


_RETORT = re.compile(r"(?:你|您)(?:自己)?才(?:是|有)?\s*$")


def _customer_said(ctx: Context, i: int, words: str) -> bool:
    return any(words in (ctx.norms[k] or "") for k in range(i) if ctx.roles[k] == "customer")


def _echoed(ctx: Context, i: int, start: int, end: int) -> bool:
    """The words at norms[i][start:end], with two characters beside them (a Latin word: alone), are in an
    earlier customer message, and not thrown back at them (你才脑子有病)."""
    t = ctx.norms[i]
    word = t[start:end]
    if _RETORT.search(t, max(start - 6, 0), start):
        return False
    if re.fullmatch(r"[a-z0-9]+", word):
        pattern = re.compile(rf"(?<![a-z0-9]){word}(?![a-z0-9])")
        return any(pattern.search(ctx.norms[k] or "") for k in range(i) if ctx.roles[k] == "customer")
    spans = [t[max(start - 2, 0):end], t[start:end + 2], t[max(start - 1, 0):end + 1]]
    spans = [w for w in spans if len(w.strip()) >= end - start + 2 and " " not in w]
    return any(_customer_said(ctx, i, w) for w in spans)


_NAMED_WORDS = re.compile(r"[^，。！？,.!?]{0,3}?(?:这种|这样的|这句|这些|那种|那句)(?:话|字眼|词)")


def _quoted(text: str, start: int, end: int) -> bool:
    """The words at text[start:end] are quoted: inside quotation marks, or named as words (智商低这种话 …)."""
    before = text[:start]
    return (any(before.count(o) > before.count(c) for o, c in (("“", "”"), ("「", "」"))) or before.count('"') % 2 == 1
            or bool(_NAMED_WORDS.match(text, end)))


@register("off_platform_diversion.v1", params={"bare_apps": "strings", "intent": "regexes", "agree": "strings"})
def off_platform_diversion(ctx: Context, params: dict[str, Any]) -> Iterator[Draft]:
    bare = {w.lower() for w in params.get("bare_apps", ())}
    intent = _any_of(tuple(params.get("intent", ())))
    for i in ctx.texts(AGENT_SIDE):
        hotline = ctx.hits_in("hotline", i)
        moves = None   # the message moves the customer somewhere: searched once a message, not once a hit
        for h in ctx.hits_in("contact_app", i) + ctx.hits_in("offsite_pay", i):
            # 微信 or QQ named as a way to pay, to log in or to reach an official account is no diversion: the bare
            # name counts only in a message that also moves the customer to it (``intent``: 加, 联系, 发我, 扫码 …)
            # or gives a number
            if h.text.lower() in bare and not ctx.has("contact_number", i):
                moves = bool(intent.search(ctx.norms[i])) if moves is None else moves
                if not moves:
                    continue
            yield hit_draft(h, "客服引导顾客到站外联系或交易")
        numbers = [h for h in ctx.hits_in("contact_number", i) if not _customers_number(ctx, i, h)]
        if numbers and _someone_elses(ctx, i):
            continue  # another buyer's number: a privacy leak, not the agent's own contact
        for h in numbers:
            if not any(x.start <= h.start < x.end for x in hotline):
                yield hit_draft(h, "客服发送私人联系方式（含变体写法）")
    # the customer asks for WeChat/phone and the agent agrees
    yes = params.get("agree", ["可以", "好的", "行", "加吧", "好", "ok", "嗯", "没问题", "当然"])
    for i, m in enumerate(ctx.msgs):
        if m.role != "customer" or not ctx.has("contact_app", i) or ctx.has("platform_pay", i):
            continue
        nxt = next((j for j in range(i + 1, len(ctx.msgs)) if ctx.msgs[j].role in AGENT_SIDE), None)
        if nxt is None or not ctx.msgs[nxt].has_text:
            continue
        head = ctx.msgs[nxt].norm.lstrip("亲宝子您好，, ")[:4]
        if any(head.startswith(y) for y in yes) and not ctx.has("negators", nxt):
            yield Draft("顾客要求站外联系，客服同意", nxt, (0, len(ctx.msgs[nxt].text or "")))


@register("privacy_leak.v1")
def privacy_leak(ctx: Context, params: dict[str, Any]) -> Iterator[Draft]:
    need = [h.message for h in ctx.hits.get("privacy_need", ())]  # 专票, 清关, 提现 …
    for i in ctx.texts(AGENT_SIDE):
        # a message that refuses or warns (不能透露, 不需要提供, 请撤回) names the data it will not ask for or give
        safe = ctx.has("privacy_safe", i)
        # a need raised before or with the ask — not one made up afterwards, nor the customer's objection to it
        if not safe and not any(k <= i for k in need):
            for h in ctx.hits_in("privacy_ask", i):
                yield hit_draft(h, "客服索要非必要的敏感信息")
        for h in ctx.hits_in("privacy_never", i):
            yield hit_draft(h, "客服索要密码、验证码等任何情况下都不该提供的信息")
        reveal = not safe and ctx.has("privacy_reveal", i)
        for h in ctx.hits_in("privacy_reveal", i) if reveal else ():
            yield hit_draft(h, "客服泄露他人或敏感信息")
        if reveal or _someone_elses(ctx, i):
            for c in _PERSONAL:
                for h in ctx.hits_in(c, i):
                    if c != "contact_number" or _phone_like(ctx, i, h):
                        yield hit_draft(h, "客服泄露他人的电话或地址")


_PERSONAL = ("address", "contact_number", "masked_phone", "tail_number")


def _someone_elses(ctx: Context, i: int) -> bool:
    """A phone number or address in agent message i is another buyer's: the agent says whose, the customer
    asked earlier about another person's order, the customer or agent disowns it next (``_objected``), or it comes
    with a third person's name and is not the shop's own return address."""
    if not any(ctx.has(c, i) for c in _PERSONAL):
        return False
    key = ("third_party_from",)
    if key not in ctx._memo:   # the first customer message asking about someone else's order
        ctx._memo[key] = min((h.message for h in ctx.hits.get("third_party", ()) if ctx.roles[h.message] == "customer"),
                             default=len(ctx.msgs))
    if ctx.has("other_buyer", i) or ctx._memo[key] < i or _objected(ctx, i):
        return True
    return not ctx.has("return_address", i) and (_named_number(ctx, i) or _named_address(ctx, i))


def _digits(ctx: Context, i: int, hit) -> str:
    return re.sub(r"\D", "", ctx.norms[i][hit.start:hit.end])


def _phone_like(ctx: Context, i: int, hit) -> bool:
    """A number of 7+ digits (not a WeChat or QQ id) that the customer did not send first."""
    return len(_digits(ctx, i, hit)) >= 7 and not _customers_number(ctx, i, hit)


def _customers_number(ctx: Context, i: int, hit, min_digits: int = 5) -> bool:
    """The number hit in message i repeats digits the customer sent earlier (the agent confirms their new phone)."""
    digits = _digits(ctx, i, hit)
    if "customer_digits" not in ctx._memo:   # each customer message's digits, once per chat
        ctx._memo["customer_digits"] = [(k, re.sub(r"\D", "", ctx.norms[k] or ""))
                                        for k in range(len(ctx.msgs)) if ctx.roles[k] == "customer"]
    return len(digits) >= min_digits and any(digits in t for k, t in ctx._memo["customer_digits"] if k < i)


def _named_number(ctx: Context, i: int) -> bool:
    """Agent message i gives a full phone number with a third person named (寄件人刘女士, 司机, 机主…), and neither
    confirms the customer's own details (您的…, 核对…, 对吗) nor repeats a number the customer sent before."""
    if not (ctx.has("named_person", i) and ctx.has("contact_number", i)) or ctx.has("own_data", i):
        return False
    return any(_digits(ctx, i, h) and not _customers_number(ctx, i, h, min_digits=1)
               for h in ctx.hits_in("contact_number", i))


def _named_address(ctx: Context, i: int) -> bool:
    """Agent message i gives a street address with a third person named (锦绣花园3栋的刘先生, 收件人王建国 …), does
    not confirm the customer's own details back to them, and the customer has sent no address before."""
    if not (ctx.has("named_person", i) and ctx.has("address", i)) or ctx.has("own_data", i):
        return False
    return not any(ctx.roles[k] == "customer" and ctx.has("address", k) for k in range(i))


def _objected(ctx: Context, i: int) -> bool:
    """The phone number or address in agent message i was someone else's: the customer's next two messages
    say so (你把别人信息发我了, 不是 我姓陈), or the agent's next message does (那个是另一个客户的)."""
    customer = [k for k in range(i + 1, len(ctx.msgs)) if ctx.roles[k] == "customer"][:2]
    agent = next((k for k in range(i + 1, len(ctx.msgs)) if ctx.roles[k] == "agent"), None)
    disowned = agent is not None and ctx.has("other_buyer", agent)
    return disowned or any(ctx.has("privacy_complaint", k) for k in customer)


def _runs(ctx: Context) -> list[tuple[list[int], int | None]]:
    return ctx.runs


@register("no_proactive_confirmation.v1", params={"stated_need_chars": "count", "ask_for_human": "regexes"})
def no_proactive_confirmation(ctx: Context, params: dict[str, Any]) -> Iterator[Draft]:
    if not ctx.side(("agent",)):
        return
    asked = ctx.texts(("customer",))
    stated = int(params.get("stated_need_chars", 8))   # an earlier customer text this long (greetings aside) says the need
    human = _any_of(tuple(params.get("ask_for_human", ())))
    for run, reply in _runs(ctx):
        kinds = [ctx.msgs[k].type for k in run]
        if not any(t in NON_TEXT for t in kinds):
            continue
        # a text that only asks for a human agent (人工, 不要机器人) says nothing about the card before it
        kinds = [t for k, t in zip(run, kinds) if not (ctx.is_text[k] and human.fullmatch(ctx.norms[k].strip()))]
        if not kinds or any(t not in NON_TEXT for t in kinds):
            continue
        before = [k for k in range(run[0]) if ctx.msgs[k].role in AGENT_SIDE]
        if before and all(t == "emoji" for t in kinds):
            continue  # an emoji after the agent spoke reacts to it ([赞], [OK] once it is solved): nothing to confirm
        if before and ctx.has("request_media", before[-1]):
            continue  # the agent asked for this photo/order
        if any(ctx.has("question", k) or ctx.content_len(k, "greeting") >= stated for k in asked if k < run[0]):
            continue  # the customer already asked or said in words what they want: the card shows what about
        if reply is None:
            yield Draft("顾客只发了图片/表情/卡片，客服未回应", run[-1])
            continue
        if not any(ctx.has("confirm_ask", k) for k in _confirm_window(ctx, reply)):
            yield Draft("顾客只发了图片/表情/卡片，客服未主动询问或确认需求", reply)


def _confirm_window(ctx: Context, reply: int) -> list[int]:
    """The agent's first two messages from ``reply`` on, past a customer's bare greeting or another card in between
    (card → 您好 → 你好 → 有什么问题我可以帮您处理呢; card → 您好 → card → 有什么可以帮助您的亲: the agent still asks
    before the customer has said anything)."""
    window = []
    for k in range(reply, len(ctx.msgs)):
        role = ctx.msgs[k].role
        if role == "agent":
            window.append(k)
            if len(window) == 2:
                break
        elif role == "customer":
            bare_greeting = ctx.is_text[k] and not ctx.has("question", k) and ctx.content_len(k, "greeting") <= 2
            if not bare_greeting and ctx.msgs[k].type not in NON_TEXT:   # another card: the ask after it covers both
                break
    return window


@register("vague_reply.v1", params={"min_fact_chars": "count", "filler_words": "regexes", "yes_no_question": "regexes",
                                   "yes_no_answer": "strings", "wh_question": "regexes", "answer_after_hold": "regexes",
                                   "min_followup_chars": "count", "answer_types": "answer_types",
                                   "bare_answer": "regexes", "weak_answer": "regexes", "later_promise": "regexes"})
def vague_reply(ctx: Context, params: dict[str, Any]) -> Iterator[Draft]:
    """A question answered with a non-answer and too few other characters to hold a fact, counted over the whole
    reply (an export splits one); or a reply the customer says did not answer; or a "let me look" with nothing after
    it, to a question or to a request to check (``check_request``: 您帮我看下我已经拍下 → 稍等). A yes or a no to a
    yes/no question is an answer even with reassurance beside it (会掉色吗 → 不会掉色的 放心哦);
    so is a hold that goes on in its own message with a number (``answer_after_hold``: 我看下哦 5月7日) or, to a
    yes/no question, with a yes or a no (稍等一下呢 没有这个功能的哦). A price, a time, a size or a courier asked
    (``answer_types``) and met by a non-answer, or only by a promise for later (``later_promise``: 会短信通知您的), with
    no fact of that kind and no number is vague however long the reply; one that names the kind asked outright (寄什么
    快递 → 快递随机) answers it however short, but not with a ``weak_answer`` word alone (已经在安排了 耐心等待)."""
    min_fact = int(params.get("min_fact_chars", 8))
    followup = int(params.get("min_followup_chars", min_fact))   # a later message that ends a hold (已经到达站点了)
    # words around a non-answer that carry no fact, and a promise for later beside it (我这边不清楚呢 白天的客服会联系您哦)
    no_fact = _any_of(tuple(params.get("filler_words", ())) + tuple(params.get("later_promise", ())))
    yes_no_q = _any_of(tuple(params.get("yes_no_question", ())))
    yes_no_a = tuple(params.get("yes_no_answer", ()))
    wh_q = _any_of(tuple(params.get("wh_question", (r"[\s\S]",))))
    after_hold = _any_of(tuple(params.get("answer_after_hold", ())))
    kinds = answer_kinds(params.get("answer_types") or {})
    bare = _any_of(tuple(params.get("bare_answer", ())))   # a number answers whatever kind was asked (T+3, 到手189)
    weak = _any_of(tuple(params.get("weak_answer", ())))   # words of a kind that do not name it in a short reply (已经)
    promise = _any_of(tuple(params.get("later_promise", ())))   # 会短信通知您的: no price, time or size, only "later"
    runs = _runs(ctx)
    for n, (run, reply) in enumerate(runs):
        asked = any(ctx.has("question", k) for k in run)
        if reply is None or not (asked or any(ctx.has("check_request", k) for k in run)):
            continue
        nxt_customer = next((k for k in range(reply, len(ctx.msgs)) if ctx.msgs[k].role == "customer"), len(ctx.msgs))
        answer = [k for k in range(reply, nxt_customer) if ctx.msgs[k].role == "agent" and ctx.msgs[k].has_text]
        if not asked and not (answer and ctx.has("holding", answer[-1])):
            continue   # a request to check (您帮我看下 → 稍等) is left unmet only by a hold with nothing after it
        pushed = asked and n + 1 < len(runs) and any(ctx.has("ignored", k) for k in runs[n + 1][0])
        if answer and pushed:  # the customer says the reply did not answer them
            yield Draft("回复没有回答顾客的问题，顾客随即追问", answer[-1], (0, len(ctx.msgs[answer[-1]].text or "")))
            continue
        # the fact may come in another message of the same reply (an export splits 请耐心等待 / 明天发货)
        # a non-answer said while the agent goes to look (请您耐心等待下呢，妹子帮您查询下哦) is a hold, judged below
        non = [k for k in answer if ctx.has("nonanswer", k) and not ctx.has("holding", k)] if asked else []
        # a price, a time or a size asked and only a "we will let you know" given (几时有结果 → 会短信通知您的), with
        # nothing asked back: counted only when the kind asked is named nowhere (below)
        promised = [k for k in answer if promise.search(ctx.norms[k])] if asked and not non and not any(
            ctx.has("question", k) or ctx.has("request_media", k) for k in answer) else []
        short = non and sum(ctx.content_len(k, "nonanswer", "deferral", "greeting", "apology", "closing", drop=no_fact)
                            for k in answer) < min_fact
        # a price, a time or a size asked and a non-answer given with no such fact (什么时候退回 → 会尽快处理的)
        wants = _wants(ctx, run, kinds) if non or promised else []
        named = bool(wants) and any(a.search(ctx.blanked(k, "holding")) for a in wants for k in answer)
        # the kind asked named outright, however short the reply (寄什么快递 → 快递随机哦 具体按仓库发货为准), is no
        # non-answer; a weak word of it (已经在安排了 耐心等待, 预售款按付款顺序发货) is (session 45)
        if short and named and any(a.search(weak.sub(" ", ctx.blanked(k, "holding"))) for a in wants for k in answer):
            short = False
        if short or (wants and not named and not any(bare.search(ctx.blanked(k, "holding")) for k in answer)):
            q = [ctx.norms[k] for k in run if ctx.has("question", k)]
            said_yes_no = bool(yes_no_a) and _asks_yes_no(q, yes_no_q, wh_q) and \
                any(_yes_no_answered(ctx, k, yes_no_a, q) for k in answer)
            for k in (non if short else non[:1]) if not said_yes_no else ():
                yield hit_draft(ctx.hits_in("nonanswer", k)[0], "对具体问题给出敷衍的非回答")
            for k in promised[:1] if not said_yes_no else ():
                m = promise.search(ctx.norms[k])
                yield Draft(f"对具体问题给出敷衍的非回答：「{m.group()}」", k, m.span())
        holding = [k for k in answer if ctx.has("holding", k)]
        if holding:
            later = [k for k in range(holding[-1] + 1, len(ctx.msgs)) if ctx.msgs[k].role == "agent"
                     and ctx.msgs[k].has_text and ctx.content_len(k, "holding", "greeting", "apology", "closing") >= followup]
            rest = [k for k in answer if k != holding[-1] and ctx.content_len(k, "holding", "greeting", "apology") >= min_fact]
            if not later and not rest and ctx.content_len(holding[-1], "holding", "greeting", "apology") < min_fact \
                    and not _answered_after_hold(ctx, holding[-1], after_hold, yes_no_a, yes_no_q, wh_q, run):
                yield hit_draft(ctx.hits_in("holding", holding[-1])[0], "说了“帮您看看”之后再无下文")


def _wants(ctx: Context, run: list[int], kinds: _Kinds) -> list[re.Pattern]:
    """The answer patterns of the kinds of fact (``answer_types``: a price, a time, a size) the run's questions ask."""
    q = [ctx.norms[k] for k in run if ctx.has("question", k)]
    if not any(kinds.any_ask.search(t) for t in q):
        return []
    return [a for ask, a in kinds.pairs if any(ask.search(t) for t in q)]


def _asks_yes_no(questions: list[str], yes_no_q: re.Pattern, wh_q: re.Pattern) -> bool:
    """One of the questions asks for a yes or a no: a yes/no pattern, or no wh-word at all (所以这样就行？)."""
    return any(yes_no_q.search(t) or not wh_q.search(t) for t in questions)


_LEAD = " \t\n，,。.!！?？~～；;、:：亲嗯恩哦噢呢哈呀啊的"


def _answered_after_hold(ctx: Context, k: int, after_hold: re.Pattern, yes_no: tuple[str, ...], yes_no_q: re.Pattern,
                         wh_q: re.Pattern, run: list[int]) -> bool:
    """The text after message k's last hold phrase answers: it holds a number (``after_hold``), or, when the
    customer asked a yes/no question, it opens with a yes or a no (稍等一下呢 没有这个功能的哦)."""
    after = ctx.norms[k][max(h.end for h in ctx.hits_in("holding", k)):].lstrip(_LEAD)   # hits may overlap
    if not after:
        return False
    if after_hold.search(after):
        return True
    asked_yes_no = _asks_yes_no([ctx.norms[i] for i in run if ctx.has("question", i)], yes_no_q, wh_q)
    return asked_yes_no and any(after.startswith(t) and (len(t) > 1 or _CLAUSE_TAIL.match(after, 1)) for t in yes_no)


_CLAUSE_TAIL = re.compile(r"[的哦呢哈呀啊滴嘛啦噢亲]{0,3}(?:$|[\s，,。.!！?？~～；;、])")
_CLAUSE_HEAD = frozenset(" \t\n，,。.!！?？~～；;、:：亲嗯恩哦噢")


def _yes_no_answered(ctx: Context, k: int, tokens: tuple[str, ...], questions: list[str]) -> bool:
    """Message k says yes or no outside its non-answer and courtesy phrases: a token (不会, 有, 可以 …) that is its
    clause whole (不会的亲, 有的), or one that says back the question's words (会掉色吗 → 都不会掉色, 能投屏吗 → 能投屏).
    您可以看看详情页, 一般是不会的, 感谢您对极光影视的支持 are no yes."""
    if ctx.has("unsure", k):   # 行 这个不太清楚 / 应该要寄回吧: a yes from someone who does not know
        return False
    text = list(ctx.norms[k])
    for cat in ("nonanswer", "deferral", "greeting", "apology", "closing"):   # courtesy is no yes (感谢您的支持)
        for h in ctx.hits_in(cat, k):
            text[h.start:h.end] = ["\0"] * (h.end - h.start)
    text = "".join(text)
    for tok in tokens:
        core = tok.lstrip("不没") or tok   # 不会掉色 echoes 会掉色吗
        start = text.find(tok)
        while start >= 0:
            end = start + len(tok)
            echo = text[end:end + 2]
            if (_CLAUSE_TAIL.match(text, end) and (start == 0 or text[start - 1] in _CLAUSE_HEAD)) or (
                    len(echo) == 2 and "\0" not in echo and any(core + echo in q for q in questions)):
                return True
            start = text.find(tok, start + 1)
    return False


@register("mechanical_repetition.v1", params={"min_chars": "count", "similarity": "fraction", "courtesy": "regexes",
                                             "min_block": "count", "extract_chars": "count"})
def mechanical_repetition(ctx: Context, params: dict[str, Any]) -> Iterator[Draft]:
    """The same or nearly the same canned text sent again to another question: character-bigram Jaccard ≥
    ``similarity``, or the one text whole inside the other (real agents resend a reply with a word or a closing
    offer added), or both holding the same block of at least ``min_block`` characters besides courtesy (JD's log
    joins an agent's run into one message, so a resent paragraph comes back with other words before and after it;
    session 45). A message that is only courtesy (a stock greeting, closing offer or apology sent twice, or the
    stock wording of ``courtesy``: 感谢您对京东的支持, 您客气的呢; session 45) or a hold (请稍等，我帮您查一下) is not a
    repeated answer, nor is a text that answered an acknowledgement (好的 谢谢: a closing said to it twice answers no
    question; session 42). Nor is a shorter text found whole inside an earlier answer that says at least
    ``extract_chars`` more characters besides courtesy (手机碎屏是不支持保修的…涉及费用，售后会联系您确认的哟, then
    售后会联系您确认的哟 to 现在能确定价格吗: one fact of a fuller answer said again to the question it answers; session
    46). An exact pre-test comes first: each character only one text has puts it in a bigram only that text has,
    so Jaccard ≥ sim needs |chars(a) ^ chars(b)| ≤ 2 (1 − sim) (|a| + |b| − 2); bigrams are built only for the
    pairs that pass."""
    min_len, sim = int(params.get("min_chars", 6)), float(params.get("similarity", 0.8))
    block = int(params.get("min_block", 0))   # 0: no block test
    extract = int(params.get("extract_chars", 0))   # 0: an extract is a repeat too
    stock = _any_of(tuple(params.get("courtesy", ())))
    seen: list[tuple[int, str, str]] = []  # (index, text, customer text it answered): answers to a question only
    flagged: set[int] = set()
    for i, (t, last_customer, _) in _agent_texts(ctx).items():
        if len(t) < min_len or len(_answer_text(ctx, i, stock)) < min_len:   # courtesy only: no answer
            continue
        if ctx.has("holding", i) and _hold_only(ctx, i, min_len):   # a hold is said again by design
            continue
        if acknowledges(last_customer):   # said to 好的 谢谢: it answers no question, now or as the earlier text
            continue
        for j in range(max(0, len(seen) - _LOOK_BACK), len(seen)):
            k, other, asked = seen[j]
            if j in flagged:
                continue
            # equal, or one whole inside the other, or nearly the same: a repeat
            if t not in other and other not in t and not _similar(ctx, i, k, sim) and not (
                    block and len(t) >= block and len(other) >= block   # (cheap bounds first: t, other hold the blocks)
                    and _shared_block(_answer_text(ctx, i, stock), _answer_text(ctx, k, stock), block)):
                continue
            if extract and t != other and t in other and _extract(ctx, i, k, stock, extract):
                continue
            if _same_question(asked, last_customer):  # tested last: it is the costliest test
                continue
            flagged.add(j)
            yield Draft(f"同一段话术重复发送（第 {k} 条与第 {i} 条）", i, (0, len(ctx.msgs[i].text or "")))
            break
        seen.append((i, t, last_customer))


_COURTESY = ("greeting", "closing", "apology")   # what a message says besides its answer


def _answer_text(ctx: Context, i: int, stock: re.Pattern) -> str:
    """Agent message i's characters that can carry a fact, once its courtesy hits and the ``stock`` courtesy matches
    (found on the text itself: 感谢您对京东的支持 holds the closing hit 感谢) are removed."""
    key = ("answer_text", i, stock.pattern)
    if key not in ctx._memo:
        ctx._memo[key] = fact_chars(_without_stock(ctx, i, _COURTESY, stock))
    return ctx._memo[key]


def _extract(ctx: Context, i: int, k: int, stock: re.Pattern, n: int) -> bool:
    """Agent text i, found inside the earlier agent text k, is an extract of it: k's answer says at least n
    characters more than i's (a fuller answer, not the same reply with a closing offer added)."""
    return len(_answer_text(ctx, k, stock)) - len(_answer_text(ctx, i, stock)) >= n


def _shared_block(a: str, b: str, n: int) -> bool:
    """a and b hold a common block of at least n characters. Pre-test: such a block contains one of the shorter
    text's aligned chunks of n // 2 characters whole, so a pair with no chunk of one inside the other has none."""
    if len(a) > len(b):
        a, b = b, a
    if len(a) < n:
        return False
    half = n // 2
    if not any(a[j:j + half] in b for j in range(0, len(a) - half + 1, half)):
        return False
    return difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size >= n


_CLAUSE = re.compile(r"[^\s，,。.!！?？~～；;、]+")
_HOLD_WORDS = 6   # the hold's own words around its phrase in a clause: 小妹正在火速(为您查询), 我这边马上(为您查询)下下哦


def _hold_only(ctx: Context, i: int, min_len: int) -> bool:
    """Agent message i is a hold and courtesy alone: fewer than ``min_len`` characters are left once its courtesy
    phrases are removed and each clause holding a hold phrase goes whole when the clause says at most ``_HOLD_WORDS``
    characters besides it (亲爱滴~，我这边马上为您查询下下哦~，请您稍等下哦: JD's stock holds wrap the phrase in words
    of their own). A clause that goes on to a fact (稍等 已发货 明天到) keeps it."""
    text = ctx.blanked(i, *_COURTESY, "holding")
    holds = ctx.hits_in("holding", i)
    for m in _CLAUSE.finditer(ctx.norms[i]):
        if any(m.start() <= h.start < m.end() for h in holds) and content_chars(text[m.start():m.end()]) <= _HOLD_WORDS:
            text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
    return content_chars(text) < min_len


# How many earlier agent texts a message is compared with for a resend: every one in any real chat (the longest have
# a few hundred messages), and a bound on the pairwise cost of a 10,000-message export.
_LOOK_BACK = 300


def _similar(ctx: Context, i: int, k: int, sim: float) -> bool:
    """Agent texts i and k have character-bigram Jaccard ≥ ``sim``. The exact pre-test comes first (see
    ``mechanical_repetition``); bigrams are built once per message, only for pairs that pass it."""
    texts = _agent_texts(ctx)
    (t, _, a), (o, _, b) = texts[i], texts[k]
    if len(a ^ b) > 2 * (1 - sim) * (len(t) + len(o) - 2):
        return False
    grams = ctx._memo.setdefault("bigrams", {})
    ga = grams[i] if i in grams else grams.setdefault(i, _bigrams(t))
    gb = grams[k] if k in grams else grams.setdefault(k, _bigrams(o))
    return _jaccard(ga, gb) >= sim


def _bigrams(t: str) -> set[str]:
    """The text's character bigrams."""
    return {t[j:j + 2] for j in range(len(t) - 1)}


def _jaccard(a: set[str], b: set[str]) -> float:
    """|a ∩ b| / |a ∪ b| (0 for two empty sets), without building the union."""
    both = len(a & b)
    return both / max(1, len(a) + len(b) - both)


def _same_question(a: str, b: str) -> bool:
    """The customer asked the same thing again (so repeating the same fact is right)."""
    a, b = _PUNCT.sub("", a), _PUNCT.sub("", b)
    if a == b or (a and b and (a in b or b in a)):
        return True
    ga, gb = _bigrams(a), _bigrams(b)
    return bool(ga and gb) and _jaccard(ga, gb) >= 0.3


@register("unanswered_question.v1", params={
    "min_fact_chars": "count", "yes_no_question": "regexes", "yes_no_answer": "strings", "wh_question": "regexes",
    "filler_words": "regexes", "min_chars": "count", "similarity": "fraction", "answer_types": "answer_types",
    "bare_answer": "regexes", "yes_no_beside_non_answer": "strings", "count_question": "regexes", "courtesy": "regexes",
    "praise": "regexes", "weak_answer": "regexes"})
def unanswered_question(ctx: Context, params: dict[str, Any]) -> Iterator[Draft]:
    """A question run counts as answered by a reply segment with a fact in it (or, to a yes/no question, a
    short yes or no) that the customer does not then push back on (我问的是…, 还没回答…). Only the replies up
    to the one after the customer's next question count: a fact given later answers something else.
    A question for a price, a time or a size (``answer_types``) wants a fact of that kind (59元, 明天, m码) and
    stays open until one comes; a bare number (``bare_answer``) answers it only before another question. A run that
    asks two such kinds (多少钱 什么时候发货) and gets only one of them by the end (→ 明天发) leaves the other open."""
    min_fact = int(params.get("min_fact_chars", 4))
    yes_no_q = _any_of(tuple(params.get("yes_no_question", ())))
    yes_no_a = tuple(params.get("yes_no_answer", ()))
    beside = tuple(params.get("yes_no_beside_non_answer", ()))   # 不会的亲 放心哦: read as vague_reply reads it
    wh_q = _any_of(tuple(params.get("wh_question", (r"[\s\S]",))))  # no list: every question asks a fact
    # stock courtesy (感谢您对京东的支持, 有您这样的客户真是我们的福气): no fact, no number, no yes
    stock = tuple(params.get("courtesy", ())) + tuple(params.get("praise", ()))
    filler = _any_of(tuple(params.get("filler_words", ())) + stock)   # words that carry no fact: 这个, 一般, 都 …
    stock = _any_of(stock)
    responders = ("agent",) if ctx.side(("agent",)) else AGENT_SIDE
    runs = ctx.runs_by(responders)   # in a chat no agent joined, the bot's answer ends the customer's run
    min_len, sim = int(params.get("min_chars", 6)), float(params.get("similarity", 0.8))
    kinds = answer_kinds(params.get("answer_types") or {})
    bare = _any_of(tuple(params.get("bare_answer", ())))
    count_q = _any_of(tuple(params.get("count_question", ())))   # 多少, 几个: a number answers, however short
    weak = _any_of(tuple(params.get("weak_answer", ())))   # words of a kind that name none (已经, 马上)
    for n, (run, _) in enumerate(runs):
        q = [k for k in run if ctx.has("question", k)]
        if not q:
            continue
        asked = [(ask, answer) for ask, answer in kinds.pairs if any(ask.search(ctx.norms[j]) for j in q)] \
            if kinds.pairs and any(kinds.any_ask.search(ctx.norms[j]) for j in q) else []
        asks, wants = [a for a, _ in asked], [a for _, a in asked]
        counts = not wants and any(count_q.search(ctx.norms[j]) for j in q)
        # a sales pitch answers only a question about the deal (有优惠吗 → 满99减10)
        no_fact = _NO_FACT if any(ctx.has("promo_ask", j) for j in run) else _NO_FACT + ("promo",)
        yes_no = None  # whether the run asks a yes/no question: looked up only for a short reply
        answered, fresh = False, True   # fresh: no other question asked since (a bare number still answers)
        for m in range(n, len(runs)):
            if m > n and wants and any(ctx.has("question", k) and not any(a.search(ctx.norms[k]) for a in asks)
                                       for k in runs[m][0]):
                fresh = False
            named = [*wants, bare] if fresh else wants
            end = runs[m + 1][0][0] if m + 1 < len(runs) else len(ctx.msgs)
            seg = [k for k in range(runs[m][0][-1] + 1, end) if ctx.msgs[k].role in responders and ctx.msgs[k].has_text]
            has_fact = False
            for k in seg:
                if ctx.content_len(k, *no_fact, drop=filler) >= min_fact and _fact_besides_asking(ctx, k, no_fact, filler,
                                                                                                 min_fact):
                    # a price, a time or a size asked for: only a reply that names one answers it
                    has_fact = not wants or any(a.search(_besides_hold_and_stock(ctx, k, stock)) for a in named)
                elif wants and not ctx.has("nonanswer", k):   # 明天, 3天内, m码; not a hold's 马上为您查询
                    has_fact = any(a.search(_besides_hold_and_stock(ctx, k, stock)) for a in named)
                elif counts and fresh and not ctx.has("nonanswer", k) and bare.search(ctx.norms[k]):
                    has_fact = True   # 点数多少 → 6%左右, 几个 → 3
                elif not wants and not ctx.has("nonanswer", k) and _choice_answered(ctx, k, q):
                    has_fact = True   # 闲聊还是工作 → 基本都是工作, 这两款哪个耐用 → 都是一样的
                elif (not wants and not ctx.has("nonanswer", k) and _names_offered(ctx, k, q, kinds, weak, stock)) or (
                        # another value of the kind the yes/no question names (今天可以到吗 → 明天吧), or a yes or a no
                        yes_no_a and not ctx.has("nonanswer", k) and any(map(ctx.norms[k].__contains__, yes_no_a))
                        and any(map(_besides_asking_back(ctx, k, stock, yes_no_a).__contains__, yes_no_a))) or (
                        # not the 可以 of 还有什么可以帮您, nor the 是 / 可以 of a question back (是这个订单吗, 您看可以吗)
                        beside and ctx.has("nonanswer", k) and _yes_no_answered(ctx, k, beside, [ctx.norms[j] for j in q])):
                    if yes_no is None:  # a yes/no pattern, or a question with no wh-word (所以这样就行？)
                        yes_no = _asks_yes_no([ctx.norms[j] for j in q], yes_no_q, wh_q)
                    has_fact = yes_no
                if has_fact and _resent(ctx, k, min_len, sim, min_fact, filler):
                    has_fact = False   # a canned text sent before to another question
                if has_fact:
                    break
            pushed = m + 1 < len(runs) and any(ctx.has("ignored", k) for k in runs[m + 1][0])
            if has_fact and not pushed:
                answered = True
                break
            # the customer's new question met by a question back (是哪个订单呢?): the matter is still being worked out,
            # so the earlier question stays open
            if m > n and not wants and not pushed and not any(
                    ctx.has("question", k) and not ctx.has("closing", k) and not ctx.has("greeting", k) for k in seg) and any(
                    ctx.has("question", k) and not any(_same_question(ctx.norms[k], ctx.norms[j]) for j in q)
                    for k in runs[m][0]):
                break  # the customer has moved on to another question (a price, a time or a size asked stays open;
                # the same question asked again stays open too: its answer answers both)
        if not answered:
            yield Draft("顾客的问题到最后都没有得到回答", q[0], (0, len(ctx.msgs[q[0]].text or "")))
        elif len(asked) > 1 and (unmet := _unmet_part(ctx, run, q, asked, responders, bare, stock)):
            j, ask = unmet
            yield Draft(f"顾客同时问的「{ask.group()}」到最后都没有得到回答", j, ask.span())


def _unmet_part(ctx: Context, run: list[int], q: list[int], asked: list[tuple[re.Pattern, re.Pattern]],
                responders: tuple[str, ...], bare: re.Pattern, stock: re.Pattern) -> tuple[int, re.Match] | None:
    """Of two kinds of fact or more that the run asks (多少钱 什么时候发货), one that no later reply names while
    another is named, and that no other number in the replies before the customer's next message could be (→ 明天发,
    not 59 明天发): the customer message and the words that ask it. A kind asked again is judged with that question."""
    later = [k for k in range(run[-1] + 1, len(ctx.msgs))
             if ctx.msgs[k].role in responders and ctx.msgs[k].has_text]
    met = [a for _, a in asked if any(a.search(_besides_hold_and_stock(ctx, k, stock)) for k in later)]
    if not met or len(met) == len(asked):
        return None
    nxt = next((k for k in range(run[-1] + 1, len(ctx.msgs)) if ctx.msgs[k].role == "customer"), len(ctx.msgs))
    for k in (k for k in later if k < nxt):
        text = _besides_hold_and_stock(ctx, k, stock)
        if bare.search(blank(text, (m.span() for a in met for m in a.finditer(text)))):
            return None   # 59 明天发: a number the named kind does not take may be the other answer
    for ask, a in asked:
        if a not in met and not any(ask.search(ctx.norms[k]) for k in range(nxt, len(ctx.msgs))
                                    if ctx.msgs[k].role == "customer"):
            return next(((j, m) for j in q if (m := ask.search(ctx.norms[j]))), None)
    return None


_EITHER = re.compile(r"([^\s，,。.!！?？~～；;、]{1,6})还是([^\s，,。.!！?？~～；;、]{1,6})")
_WHICH = re.compile(r"哪(?:个|款|种|一个|一款|一种|样)")
_SAME = re.compile(r"一样|没(?:有|什么|啥)?区别")


def _names_offered(ctx: Context, k: int, q: list[int], kinds: _Kinds, weak: re.Pattern, stock: re.Pattern) -> bool:
    """Agent message k names a value of a kind that customer questions q name one of (今天可以到吗 → 明天吧, 是m码吗 →
    l码); a ``weak`` word (现在, 已经) names none. The kinds the questions name are looked up once per question run."""
    key = ("offered", q[0])
    if key not in ctx._memo:
        ctx._memo[key] = [a for _, a in kinds.pairs if any(a.search(weak.sub(" ", ctx.norms[j])) for j in q)]
    return any(a.search(weak.sub(" ", _besides_hold_and_stock(ctx, k, stock))) for a in ctx._memo[key])


def _choice_answered(ctx: Context, k: int, q: list[int]) -> bool:
    """Agent message k answers a choice the customer asked: it names one side of an A还是B question (闲聊还是工作 →
    工作; two characters of either side), or says the options are the same (哪个耐用 → 都一样)."""
    reply = ctx.norms[k]
    for j in q:
        t = ctx.norms[j]
        if _WHICH.search(t) and _SAME.search(reply):
            return True
        for m in _EITHER.finditer(t):
            sides = [side for side in m.groups() if not side.startswith(("是", "呢"))] + [m.group(1)[1:]]
            if any(side[i:i + 2] in reply for side in sides for i in range(len(side) - 1)
                   if content_chars(side[i:i + 2]) == 2):
                return True
    return False


def _without_stock(ctx: Context, k: int, strip: tuple[str, ...], stock: re.Pattern) -> str:
    """Agent message k's text with the ``strip`` categories' hits and the ``stock`` courtesy blanked."""
    key = ("without_stock", k, strip, stock.pattern)   # checks read different stock lists
    if key not in ctx._memo:
        ctx._memo[key] = blank(ctx.blanked(k, *strip), (m.span() for m in stock.finditer(ctx.norms[k])))
    return ctx._memo[key]


def _fact_besides_asking(ctx: Context, k: int, no_fact: tuple[str, ...], filler: re.Pattern, min_fact: int) -> bool:
    """Agent message k still has ``min_fact`` characters of fact once the clauses in which it asks the customer
    something back (您拍了吗, 是哪个订单呢; with 吗, 呢, 么, 嘛 or a question mark) are removed: a question back is
    no answer."""
    if not ctx.has("question", k):
        return True
    text = blank(ctx.blanked(k, *no_fact), (m.span() for m in _asking_clauses(ctx, k) if _ASKING.search(m.group())))
    return content_chars(filler.sub("", text)) >= min_fact


def _asking_clauses(ctx: Context, k: int) -> list[re.Match]:
    """Message k's clauses (``_ASK_BACK``) in which one of its question hits starts."""
    key = ("asking_clauses", k)
    if key not in ctx._memo:
        asks = sorted(h.start for h in ctx.hits_in("question", k))
        ctx._memo[key] = [m for m in _ASK_BACK.finditer(ctx.norms[k]) if _starts_in(asks, m.start(), m.end())]
    return ctx._memo[key]


def _starts_in(starts: list[int], start: int, end: int) -> bool:
    """One of the sorted ``starts`` lies in [start, end)."""
    i = bisect.bisect_left(starts, start)
    return i < len(starts) and starts[i] < end


def _besides_hold_and_stock(ctx: Context, k: int, stock: re.Pattern) -> str:
    """Agent message k's text with its hold phrases and the ``stock`` courtesy blanked: 马上为您查询 gives no time,
    感谢您对[数字x]的支持 no number."""
    return _without_stock(ctx, k, ("holding",), stock)


def _besides_asking_back(ctx: Context, k: int, stock: re.Pattern, yes_no: tuple[str, ...]) -> str:
    """Agent message k's text with its closing phrases, its ``stock`` courtesy (遇到您这样的客户真是对我莫大的支持) and the
    clauses in which it asks the customer something back blanked (是这个订单吗, 您看可以吗, 是哪个订单呢; not a clause
    with a closing offer or a greeting in it: 是的哦还有什么问题吗, 有什么问题我可以帮您的?). A yes that opens such a
    clause stays (可以的亲要拍几件呢: Taobao's messages often have no punctuation)."""
    text = _without_stock(ctx, k, ("closing",), stock)
    if not ctx.has("question", k):
        return text
    offers = sorted(h.start for h in (*ctx.hits_in("closing", k), *ctx.hits_in("greeting", k)))
    return blank(text, ((m.start() + _opening_yes(m.group(), yes_no), m.end()) for m in _asking_clauses(ctx, k)
                        if not _starts_in(offers, m.start(), m.end()) and _ASKED_BACK.search(m.group())))


def _opening_yes(clause: str, yes_no: tuple[str, ...]) -> int:
    """How many characters of ``clause`` a yes or a no opens it with (可以的亲要拍几件呢 → 可以): a word of two
    characters or more, or one that ends its run of words (是的 but not 是这个订单吗); 0 if none."""
    head = clause.lstrip(_LEAD)
    skip = len(clause) - len(head)
    for t in yes_no:
        if head.startswith(t) and (len(t) > 1 or _CLAUSE_TAIL.match(head, 1) or head[1:2] in "的哦呢哈呀啊滴啦噢亲") \
                and head[len(t):len(t) + 1] not in ("吗", "么", "嘛", "?", "？"):
            return skip + len(t)
    return 0


_ASKED_BACK = re.compile(r"[吗么嘛?？]|哪|什么|啥|几")   # a question put to the customer (是这个吗, 是哪个呢); 可以的呢 answers
_ASK_BACK = re.compile(r"[^\s，,。.!！；;~～]+[?？]*")
_ASKING = re.compile(r"[吗呢么嘛?？]")   # a question put to the customer, not a retort (爱信不信)


class _Kinds(NamedTuple):
    """The rubric's answer types, compiled: (question pattern, answer pattern) pairs and every question at once."""

    any_ask: re.Pattern
    pairs: list[tuple[re.Pattern, re.Pattern]]


_NO_KINDS = _Kinds(re.compile(r"(?!)"), [])
_KINDS: dict[int, tuple[dict, _Kinds]] = {}


def answer_kinds(types: dict) -> _Kinds:
    """``answer_types`` compiled once per rubric: 多少钱 wants a price, 多久 a time (also read by the turn-level
    models, ``qa.model.turnflags.later_replies``)."""
    if not types:
        return _NO_KINDS
    hit = _KINDS.get(id(types))
    if hit is None or hit[0] is not types:
        pairs = [(tuple(t.get("ask", ())), tuple(t.get("answer", ()))) for t in types.values()]
        kinds = _Kinds(_any_of(tuple(a for ask, _ in pairs for a in ask)), [(_any_of(a), _any_of(b)) for a, b in pairs])
        hit = _KINDS[id(types)] = (types, kinds)
    return hit[1]


_NO_FACT = ("holding", "greeting", "closing", "apology", "nonanswer", "deferral", "request_media")


def _resent(ctx: Context, k: int, min_len: int, sim: float, min_fact: int, filler: re.Pattern) -> bool:
    """Agent message k resends, whole or nearly (bigram Jaccard ≥ ``sim``), an earlier agent message sent to a
    different customer question, adding fewer than ``min_fact`` characters of fact to it: a canned text resent
    tells the new question nothing."""
    texts = _agent_texts(ctx)
    t, asked, _ = texts.get(k, ("", "", None))
    if len(t) < min_len:
        return False
    keys = ctx._memo.get("agent_text_keys")
    if keys is None:   # once per conversation: _resent runs for every reply
        keys = ctx._memo["agent_text_keys"] = list(texts)
    at = bisect.bisect_left(keys, k)
    for j in keys[max(0, at - _LOOK_BACK):at]:
        other, asked_j, _ = texts[j]
        if not other:
            continue   # a masked number or an emoticon alone ([数字x]) is in every text
        copied = t in other or (other in t and ctx.content_len(k, *_NO_FACT, drop=filler) - len(other) < min_fact)
        if (copied or _similar(ctx, k, j, sim)) and not _same_question(asked_j, asked) and (
                j in _after_question(ctx) or ctx.content_len(j, *_NO_FACT, drop=filler) < min_fact):
            return True   # (a fact first sent after no question, a number or 好的, is first used as an answer here)
    return False


def _after_question(ctx: Context) -> set[int]:
    """Agent-side messages whose last customer message before them asked a question."""
    if "after_question" not in ctx._memo:
        out, asked = set(), False
        for i, m in enumerate(ctx.msgs):
            if m.role == "customer":
                asked = ctx.has("question", i)
            elif asked:
                out.add(i)
        ctx._memo["after_question"] = out
    return ctx._memo["after_question"]


def _agent_texts(ctx: Context) -> dict[int, tuple[str, str, set[str]]]:
    """Agent-side text message index → (its text without punctuation, the customer text it followed, the
    text's characters)."""
    if "agent_texts" not in ctx._memo:
        out, last = {}, ""
        for i, m in enumerate(ctx.msgs):
            if m.role == "customer":
                last = ctx.norms[i] or m.type
            elif m.role in AGENT_SIDE and ctx.is_text[i]:
                t = _PUNCT.sub("", ctx.norms[i])
                out[i] = (t, last, set(t))
        ctx._memo["agent_texts"] = out
    return ctx._memo["agent_texts"]


@functools.lru_cache(maxsize=64)   # one entry per list of patterns: the default rubric has 26
def _any_of(patterns: tuple[str, ...]) -> re.Pattern:
    """One regex for a list of the rubric's patterns (never matching when there are none)."""
    return re.compile("|".join(f"(?:{p})" for p in patterns) or r"(?!)")


@register("missing_greeting.v1", params={"first_messages": "positive"})
def missing_greeting(ctx: Context, params: dict[str, Any]) -> Iterator[Draft]:
    agent = ctx.texts(("agent",))
    if not agent:
        return
    # counted in runs of messages, so a reply split over several messages (请稍等 / 亲爱的 / 您好) counts once
    replies = _replies(ctx)[:max(int(params.get("first_messages", 2)), 1)]
    # a later reply's greeting opens the service only after a hold or a bare 嗯 (稍等 → 您好，…): once the agent
    # has answered or asked for the order number without one (可以叠加的 → 您好~), the greeting did not come at the start
    for run in replies:
        if any(ctx.has("greeting", k) for k in run):
            return
        if not all(ctx.has("holding", k) or not ctx.content_len(k) for k in run):
            break
    yield Draft("人工客服接待开始时没有问候语", replies[0][0])


@register("missing_closing.v1", params={"last_agent_messages": "positive"})
def missing_closing(ctx: Context, params: dict[str, Any]) -> Iterator[Draft]:
    agent = ctx.texts(("agent",))
    if not agent:
        return
    last_customer = max((i for i, m in enumerate(ctx.msgs) if m.role == "customer"), default=-1)
    # what the agent said after the customer's last word, else the agent's last reply: the run of messages
    # it ends with (an export splits a reply such as 感谢理解 / 请问还有什么其他咨询的呢 over two messages)
    replies = _replies(ctx)
    tail = [k for k in agent if k > last_customer] or replies[-1]
    # a closing offer in the agent's last few messages still closes the chat when the customer answers it
    # with a short word and the agent adds a last fact ("请问还有其他可以帮您的吗" … "没有了" … "好的")
    # (counted in runs of messages, so a reply split over several messages counts once)
    window = [k for k in _flat(replies[-max(int(params.get("last_agent_messages", 1)), 1):]) if k not in tail]
    if not any(ctx.has("closing", k) for k in tail) and not any(ctx.has("closing_offer", k) for k in window):
        yield Draft("人工客服结束时没有礼貌结束语", agent[-1])


def _replies(ctx: Context) -> list[list[int]]:
    """The agent's texts grouped into replies: runs with no customer message between them (an export splits a
    reply over several messages)."""
    if "replies" not in ctx._memo:
        out: list[list[int]] = []
        for k in ctx.texts(("agent",)):
            if out and not any(m.role == "customer" for m in ctx.msgs[out[-1][-1] + 1:k]):
                out[-1].append(k)
            else:
                out.append([k])
        ctx._memo["replies"] = out
    return ctx._memo["replies"]


def _flat(runs: list[list[int]]) -> list[int]:
    return [k for run in runs for k in run]


@register("slow_first_response.v1", params={"clock": "clock", "seconds": "seconds"})
def slow_first_response(ctx: Context, params: dict[str, Any]) -> Iterator[Draft]:
    """The human agent's first reply comes more than ``seconds`` (the rubric's first_response_s) after human
    service began, or never. ``clock: wall`` (the default) counts every second, as the grading guide and a
    reviewer reading the timestamps do (a 23:50 question answered at 00:05 waited 15 minutes); ``clock: service``
    counts only the service hours, as the platforms' 2-minute rate and ``qa metrics`` do."""
    clock = params.get("clock", "wall")
    if clock not in ("wall", "service"):
        raise ValueError(f"clock must be wall or service, not {clock!r}")
    t = ctx.timing
    if not t.human_service or t.first_response_ok is None:
        return
    limit = params.get("seconds", ctx.first_response_s)
    if t.first_response_s is None:
        yield Draft("人工客服一直未回复")
        return
    waited = t.first_response_s if clock == "service" else t.first_response_wall_s
    if waited > limit:
        first_agent = next(i for i, m in enumerate(ctx.msgs) if m.role == "agent" and m.ts and m.ts >= t.human_start)
        within = "（服务时间内）" if clock == "service" else ""
        yield Draft(f"人工客服首次响应用了 {_duration(waited)}{within}，超过 {_duration(limit)}", first_agent)


def _duration(seconds: float) -> str:
    """390 → 390 秒, 30378 → 8 小时 26 分: as a reviewer reads a wait."""
    s = round(seconds)
    if s < 3600:
        return f"{s} 秒"
    return f"{s // 3600} 小时 {s % 3600 // 60} 分"


@register("negative_emotion_unsoothed.v1", params={"warmth": "regexes", "request": "regexes", "reported": "regexes",
                                                  "fix_request": "regexes"})
def negative_emotion_unsoothed(ctx: Context, params: dict[str, Any]) -> Iterator[Draft]:
    upset = [h for h in ctx.hits.get("upset", ()) if ctx.msgs[h.message].role == "customer"]
    # a plainly reported problem (坏了, 掉色, 质量问题) counts unless the customer asks in the same message how to
    # fix it (坏了怎么保修, 充电仓坏了 保修吗): that is a practical request, not an upset customer
    # nor when it asks for the repair itself (我想要申请售后服务 屏幕裂了) or answers the agent's own question about the
    # fault (哪里出问题了呢 → 屏幕裂了; session 46)
    fix = _any_of(tuple(params.get("fix_request", ())))
    upset += [h for h in ctx.hits.get("upset_weak", ())
              if ctx.msgs[h.message].role == "customer" and not ctx.has("question", h.message)
              and not fix.search(ctx.norms[h.message]) and not _answers_agent(ctx, h.message)]
    # exclamation runs and crying faces count only in a message that does not praise or thank (五分好评!!)
    upset += [h for h in ctx.hits.get("upset_marks", ())
              if ctx.msgs[h.message].role == "customer" and not ctx.has("pleased", h.message)]
    # a merchant or a courier passing on what their buyer said (客户这边反馈…有点质量问题, 用户表示…还没到货) is not
    # upset themselves (session 45)
    reported = _any_of(tuple(params.get("reported", ())))
    upset = [h for h in upset if not reported.search(ctx.norms[h.message])]
    if not upset:
        return
    first = min(upset, key=lambda h: (h.message, h.start))
    warm = _any_of(tuple(params.get("warmth", ())))   # 不客气, 有问题随时找我, [比心]: the agent's warmth soothes too
    ask = _any_of(tuple(params.get("request", ())))   # 辛苦您提供下订单号, 辛苦您给小妹评价: a polite ask soothes no one
    soothed = any(any(not ask.match(ctx.norms[k], h.start) for h in ctx.hits_in("apology", k)) or warm.search(ctx.norms[k])
                  for k in ctx.texts(AGENT_SIDE) if k > first.message)
    if not soothed:
        yield hit_draft(first, "顾客情绪不满，客服没有道歉或安抚")


def _answers_agent(ctx: Context, i: int) -> bool:
    """The agent's last message before customer message i asks a question that is not a greeting's or a closing's
    offer of help (请问您的手机哪里出问题了呢, 申请的理由是什么呢; not 有什么问题我可以帮您处理或解决呢?)."""
    k = next((k for k in range(i - 1, -1, -1) if ctx.roles[k] in AGENT_SIDE), None)
    return (k is not None and ctx.has("question", k) and not ctx.has("greeting", k)
            and not ctx.has("closing_offer", k))


@register("overpromise.v1")
def overpromise(ctx: Context, params: dict[str, Any]) -> Iterator[Draft]:
    for i in ctx.texts(AGENT_SIDE):
        for h in ctx.hits_in("overpromise", i):
            yield hit_draft(h, "客服使用绝对化承诺或极限用语")
