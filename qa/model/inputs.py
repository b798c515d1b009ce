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
ROLE_TOKENS = {"customer": "[CUS]", "agent": "[AGT]", "bot": "[BOT]"}
TYPE_TEXT = {"image": "[图片]", "product_card": "[商品卡片]", "order_card": "[订单卡片]", "emoji": "[表情]",
             "video": "[视频]", "file": "[文件]"}


@dataclasses.dataclass(frozen=True)
class Turn:
    index: int          # message index in the conversation
    role: str           # customer | agent | bot
    text: str           # normalised text the encoder reads


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
