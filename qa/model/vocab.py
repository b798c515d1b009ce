"""A character vocabulary and its tokenizer (a ``BertTokenizerFast``, so the model directory is standard).

BERT's basic tokenizer already splits every CJK character into its own token; the vocabulary adds single
ASCII letters and digits with their ``##`` continuations, so any Latin word or number is spelt out instead of
becoming ``[UNK]``.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable

from qa.model.inputs import ROLE_TOKENS

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ASCII = list(string.ascii_lowercase + string.digits)


def char_vocab(texts: Iterable[str], *, size: int = 6000, min_count: int = 2) -> list[str]:
    """The most frequent characters of ``texts`` (after the special, role and ASCII tokens)."""
    counts = Counter()
    for t in texts:
        counts.update(t.lower())
    return vocab_from_counts(counts, size, min_count)


def vocab_from_counts(counts: Counter, size: int, min_count: float = 2) -> list[str]:
    """Special, role and ASCII tokens, then the most frequent other characters of ``counts``."""
    fixed = SPECIAL + list(ROLE_TOKENS.values()) + ASCII + ["##" + c for c in ASCII]
    seen, out = set(fixed), list(fixed)
    for ch, n in counts.most_common():
        if len(out) >= size or n < min_count:
            break
        if ch.isspace() or ch in seen or (ch.isascii() and ch.isalnum()):
            continue
        out.append(ch)
        seen.add(ch)
    return out


def make_tokenizer(vocab: list[str]):
    """A ``BertTokenizerFast`` over ``vocab`` with the role markers as special tokens."""
    from transformers import BertTokenizerFast

    tok = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True,
                            tokenize_chinese_chars=True, strip_accents=False)
    tok.add_special_tokens({"additional_special_tokens": list(ROLE_TOKENS.values())})
    return tok


def ensure_role_tokens(tokenizer) -> int:
    """Add the role markers to a foreign tokenizer (e.g. a hub model's); returns how many were new."""
    missing = [t for t in ROLE_TOKENS.values() if t not in tokenizer.get_vocab()]
    return tokenizer.add_special_tokens({"additional_special_tokens": list(ROLE_TOKENS.values())}) if missing else 0
