"""Conversation → model inputs.

The encoder reads each message on its own (short sequences keep attention cheap and let a chat of any length
be read whole); a message-level layer then gives each turn its context, and each dimension attends over the
agent turns — so the turns that drove a grade are known. Long chats keep their first and last
``max_messages // 2`` messages (greeting and closing live there).
"""

from __future__ import annotations

import dataclasses

from qa.schema import Conversation

ROLES = ("customer", "agent", "bot")
JOIN_ROLES = ("agent", "bot")   # the sides whose runs ``joined`` joins
ROLE_TOKENS = {"customer": "[CUS]", "agent": "[AGT]", "bot": "[BOT]"}
TYPE_TEXT = {"image": "[图片]", "product_card": "[商品卡片]", "order_card": "[订单卡片]", "emoji": "[表情]",
             "video": "[视频]", "file": "[文件]"}


@dataclasses.dataclass(frozen=True)
class Turn:
    index: int          # message index in the conversation
    role: str           # customer | agent | bot
    text: str           # normalised text the encoder reads


MAX_CHARS = 1000   # the longest message the model reads whole; no training message is longer than 320 characters


def clipped(conv: Conversation, max_chars: int = MAX_CHARS) -> Conversation:
    """``conv`` with every text cut to ``max_chars``: the n-gram, ridge and turn-level channels count lengths and
    n-grams, and a 100,000-character message read whole lies far outside what they were fitted on (it raised a
    privacy red line by length alone). No text that long: ``conv`` itself."""
    if all(len(m.text or "") <= max_chars for m in conv.messages):
        return conv
    out = tuple(m.with_text(m.text[:max_chars]) if len(m.text or "") > max_chars else m for m in conv.messages)
    return conv.model_copy(update={"messages": out})


def joined(conv: Conversation) -> tuple[Conversation, list[list[int]]]:
    """The chat as the classifier reads it: each run of the agent's (or bot's) consecutive text messages joined
    into one, with a space, as the JD training chats join them. Platform exports split a reply into several
    messages, but the real training chats have none, so a split reply read piece by piece is graded lower and
    flagged vague more often. The customer's runs stay apart: each of several questions sent in a row is judged
    answered or not on its own. Also, per message of the view, the indexes of the messages it joins. No run:
    ``conv`` itself."""
    msgs = conv.messages
    if not any(_joins(a, b) for a, b in zip(msgs, msgs[1:])):
        return conv, [[i] for i in range(len(msgs))]
    where: list[list[int]] = []
    for i, m in enumerate(msgs):
        if where and _joins(msgs[i - 1], m):
            where[-1].append(i)
        else:
            where.append([i])
    out = tuple(msgs[w[0]] if len(w) == 1 else msgs[w[0]].with_text(" ".join(msgs[i].text for i in w)) for w in where)
    return conv.model_copy(update={"messages": out}), where


def _joins(a, b) -> bool:
    return (a.role == b.role and a.role in JOIN_ROLES and a.type == b.type == "text"
            and bool(a.text and a.text.strip()) and bool(b.text and b.text.strip()))


def turns(conv: Conversation, max_messages: int = 40, max_chars: int = 120) -> list[Turn]:
    """The messages the model reads: text and cards, events dropped, long chats cut in the middle."""
    out = []
    for i, m in enumerate(conv.messages):
        if m.type == "event" or m.role not in ROLES:
            continue
        text = m.norm if m.type == "text" and m.text else TYPE_TEXT.get(m.type, f"[{m.type}]")
        if m.type != "text" and m.text and m.type in ("product_card", "order_card"):
            text += m.norm[:30]
        out.append(Turn(i, m.role, text[:max_chars] or "[空]"))
    if len(out) > max_messages:
        half = max_messages // 2
        out = out[:half] + out[-half:]
    return out


def flat_text(conv: Conversation) -> str:
    """The whole chat as one string with role markers (for the char n-gram channel and baselines)."""
    return " ".join(("客:" if t.role == "customer" else "服:") + t.text for t in turns(conv, 10_000, 10_000))
