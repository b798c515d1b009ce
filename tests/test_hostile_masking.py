"""Hostile inputs for ``qa.safety.mask_text``: masking twice masks nothing more, and date pairs are no card."""

from __future__ import annotations

import pytest

from qa.safety import mask_text


# a first pass's stars end a run of digits that hid a number: a second pass must not find it
@pytest.mark.parametrize("text", [
    "000000000000 0000000000000000",           # card after 12 digits: the 12 + 4 become a card
    "0000000000000000 000000000000",           # card, then 12 digits + its last 4
    "000000000000 03002000000",                # landline after 12 digits
    "000000000008613000000000",                # phone after 86 inside a long run
    "八区00３00000000000000000",                # address detail, then full-width digits
])
def test_mask_text_is_idempotent(text):
    once = mask_text(text)
    assert mask_text(once) == once
    assert len(once) == len(text)
