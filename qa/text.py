"""Text normalisation for analysis: traditional → simplified Chinese (OpenCC), full-width → ASCII, lower case.

Normalisation keeps the length of the text, so a character span found in the normalised text is the same
span in the original, which is always kept for display. ``unsegment`` is the one change that moves text: it
undoes the word segmentation of corpus exports, which the schema applies when both sides of a chat are segmented.
"""

from __future__ import annotations

import functools
import re

# Full-width ASCII variants (！ to ～) and the ideographic space fold one-to-one onto ASCII.
# Invisible characters (zero-width spaces and joiners, LRM/RLM, the word joiner and invisible operators, BOM, soft
# hyphen, the Mongolian vowel separator, the grapheme joiner, the Hangul filler) read as a space, as a
# plain space between the characters of 加 我 微 信 is read: hidden in a word they split what the rules look for.
INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f\u3164"
_FULLWIDTH = ({cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
              | dict.fromkeys(map(ord, INVISIBLE), 0x20))


@functools.lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def normalize(text: str) -> str:
    """Simplified, half-width, lower-case text of the same length as ``text``."""
    if not text:
        return ""
    if not text.isascii():
        text = text.translate(_FULLWIDTH)
        converted = _t2s().convert(text)
        if len(converted) != len(text):  # a phrase mapping changed the length: convert char by char
            converted = "".join(c if len(s := _t2s().convert(c)) != 1 else s for c in text)
        text = converted
    low = text.lower()
    if len(low) != len(text):   # İ lower-cases to two characters: every span after it would shift
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return low


# Chinese characters, CJK punctuation and full-width forms: a space beside one of them is a word-segmentation space
# (and, in a segmented chat, one beside ASCII or general punctuation: 08 : 00, TPU + PC, 1 .).
_CJK = (r"\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
        r"\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0002fa1f")
_PUNCT = r"!-/:-@\[-`{-~\u2010-\u206f"
_SEG_SPACE = re.compile(rf"(?<=[{_CJK}])[ \t\u3000]+|[ \t\u3000]+(?=[{_CJK}])")
_SEG_JOIN = re.compile(rf"(?<=[{_CJK}{_PUNCT}])[ \t\u3000]+|[ \t\u3000]+(?=[{_CJK}{_PUNCT}])")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_WS = re.compile(r"\s+")
SEGMENTED_SHARE = 0.3   # word-segmented Chinese has a space for every 1.5–2 characters; typed chats far fewer
SEGMENTED_MIN_HAN = 4   # on each side (none of our ~15,000 typed chats passes both tests, even at 2)


def unsegment(text: str, punctuation: bool = True) -> str:
    """Undo word segmentation: drop spaces next to a Chinese character, a CJK punctuation mark or full-width form,
    or (``punctuation``) a punctuation mark; keep single spaces between Latin/digit words (``"ok ok"``,
    ``"iPhone 8"``)."""
    return (_SEG_JOIN if punctuation else _SEG_SPACE).sub("", _WS.sub(" ", text)).strip()


def segmented_share(texts) -> tuple[float, int]:
    """Spaces beside a Chinese character per Chinese character over ``texts``, and the number of characters."""
    spaces = han = 0
    for t in texts:
        spaces += len(_SEG_SPACE.findall(t))
        han += len(_HAN.findall(t))
    return spaces / max(han, 1), han


def word_segmented(customer_texts, agent_texts) -> bool:
    """True when both sides of a chat read as word-segmented (a corpus export such as the E-commerce Dialogue
    Corpus), not as one writer's spaced-out message: each side has at least ``SEGMENTED_MIN_HAN`` Chinese
    characters and a space beside at least ``SEGMENTED_SHARE`` of them."""
    sides = (customer_texts, agent_texts)
    for texts in sides:   # the cheap test first: a segmented side has at least two spaces, one a tenth of its length
        spaces = sum(t.count(" ") + t.count("\u3000") + t.count("\t") for t in texts)
        if spaces < 2 or spaces * 10 < sum(map(len, texts)):
            return False
    for texts in sides:
        share, han = segmented_share(texts)
        if han < SEGMENTED_MIN_HAN or share < SEGMENTED_SHARE:
            return False
    return True
