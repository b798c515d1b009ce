"""Pick each chat's customer question and the agent's answer to it; the dedupe key of a question."""

from __future__ import annotations

import re
import unicodedata

from qa.chatrecords import Chat
from qa.safety import clip
from qa.text import normalize

MAX_CHARS = 80
# greetings and fillers a customer opens with (在吗, 你好, 亲…) and an agent greets with; stripped before judging
# A word that is also the start of a question (亲子装, 宝宝几个月能穿, 宝贝什么时候发, 客服电话多少, history) is a
# greeting only when a break or another greeting follows it.
_SURE = r"在吗|在不在|在么|有人吗|有人在吗|你好|您好|哈喽|嗨|亲亲|请问|问一下|问下|咨询一下|咨询下"
_BREAK = r"\s|[,.!?~，。！？～、…]|$"
_CUSTOMER_FILLER = re.compile(
    rf"^(?:{_BREAK}|{_SURE}|(?:hello|hi)(?![a-z])|(?:亲|宝宝|宝|客服|老板|姐妹|美女|小姐姐)(?={_BREAK}|{_SURE})|"
    r"\[[^\]]{1,6}\])+", re.I)
_AGENT_GREETING = re.compile(
    r"亲亲|亲爱的|亲|您好|你好|在的|在呢|欢迎光临|欢迎|很高兴为您服务|很高兴为你服务|我是[^，。,!！~]{0,8}|客服|"
    r"请问有什么可以帮(?:到)?您的?|有什么可以帮(?:到)?您的?|呢|哦|哈|呀|\[[^\]]{1,6}\]|[^\w]", re.I)
_PUNCT_CATS = ("P", "S", "Z", "C")


def clean_question(text: str) -> str:
    """The question without the greeting the customer opened with, on one line, at most MAX_CHARS."""
    t = " ".join(text.split())
    return clip(_CUSTOMER_FILLER.sub("", t).strip(), MAX_CHARS)   # masked when written: no number cut


def dedupe_key(text: str) -> str:
    """Questions that differ only in case, width, spacing, punctuation, emoji or script (怎麼退貨 = 怎么退货) share a
    key."""
    t = unicodedata.normalize("NFKC", normalize(text)).lower()
    return "".join(c for c in t if unicodedata.category(c)[0] not in _PUNCT_CATS)


def is_greeting(text: str) -> bool:
    """An agent message that only greets (fewer than 4 characters left once greetings are removed)."""
    return len(_AGENT_GREETING.sub("", text)) < 4


def question_and_answer(chat: Chat) -> tuple[str | None, str | None, int | None]:
    """(question, answer, index of the question): the first customer text message with ≥ 2 characters of
    content once greetings are stripped, and the first human-agent text after it that is not only a greeting
    (None when no agent answered)."""
    msgs = chat.messages
    qi = None
    question = None
    for i, m in enumerate(msgs):
        if m.role == "customer" and m.type == "text" and m.text:
            q = clean_question(m.text)
            if len(dedupe_key(q)) >= 2:
                qi, question = i, q
                break
    if qi is None:
        return None, None, None
    answer = None
    for m in msgs[qi + 1:]:
        if m.role == "agent" and m.type == "text" and m.text and not is_greeting(m.text):
            answer = " ".join(m.text.split())
            break
    return question, answer, qi


def answered(chat: Chat, qi: int) -> bool:
    """A human agent wrote after the question (a greeting counts: the customer was attended)."""
    return any(m.role == "agent" for m in chat.messages[qi + 1:])
