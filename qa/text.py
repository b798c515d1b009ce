"""Text normalisation for analysis: traditional → simplified Chinese (OpenCC), full-width → ASCII, lower case.

Normalisation keeps the length of the text, so a character span found in the normalised text is the same
span in the original, which is always kept for display.
"""

from __future__ import annotations

import functools

# Full-width ASCII variants (！ to ～) and the ideographic space fold one-to-one onto ASCII.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


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
    return text.lower()
