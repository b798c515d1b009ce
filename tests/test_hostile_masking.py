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


@pytest.mark.parametrize("text", [
    "发货 2026-03-01 2026-03-05 到", "2026-03-01-2026-03-05", "2026－03－01 2026－03－05", "有效期 20260301-20260305",
    "20250506 20250507",
])
def test_mask_text_leaves_date_pairs(text):
    assert mask_text(text) == text


@pytest.mark.parametrize("text, masked", [
    ("6222 0212 3456 7890", "6222 **** **** 7890"),
    ("订单号 2026030120260305", "订单号 2026********0305"),       # no separator: an order number, masked on purpose
    ("2026-03-02 6222021234567890", "2026-03-02 6222********7890"),
])
def test_mask_text_still_masks_cards_near_dates(text, masked):
    assert mask_text(text) == masked
