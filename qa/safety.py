"""One policy for every file written for people: personal data masked, formulas neutralised, cells clipped.

Use these for any new human-facing artefact (docs/security.md):

- ``mask_text`` / ``mask_value`` — personal data replaced by ``*``, keeping the text's length so finding spans
  still point at the same characters: mobile numbers (digits, with spaces or dashes, 3-4-4 with dots or the
  first group in brackets, after +86, in Chinese numerals 一三八… or with 幺 for 1), landlines with an area code
  (010-12345678, (0755)8888 6666), 18-digit and old 15-digit ID numbers, 16–19
  digit bank-card-like numbers (order numbers of that length too, on purpose), e-mail addresses (``＠`` too),
  WeChat and QQ ids (after 微信/vx/wx/QQ/扣扣/加v, and bare ``wxid_…``), the detail of a street address after its
  district / county / town, and a numbered street right after a city (上海市南京东路100号).
- ``neutralise_cell`` — a text value that a spreadsheet would run as a formula (it begins with ``=``, ``+``,
  ``-``, ``@``, their full-width forms ``＝＋－＠``, any of these behind spaces or line breaks, tab or CR) gets a
  leading ``'`` (numbers are written as numbers, so only text is touched).
  ``unneutralise_cell`` undoes it exactly (a value that already began with ``'`` before such a character
  gets one more ``'``, so the round trip is lossless).
- ``printable`` (part of ``neutralise_cell``) — control characters no sheet can hold become U+FFFD.
- ``mask_messages`` — a chat's messages masked one by one and across what one sender sends in a row (a number
  typed over two messages).
- ``clip`` — text cut short for a record or a list (evidence, questions), never inside a number masking needs whole.
- ``clip_cell`` — text longer than Excel's cell limit (32,767 characters) is cut with a note.
- ``safe_row`` / ``write_csv`` — all three over a flat row, and a CSV writer (UTF-8 with BOM) that applies them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from qa.text import INVISIBLE

# -- masking -----------------------------------------------------------------------------------------

_SEP = r"[ \-－]{0,2}"
# Boundaries: a number is not part of a longer run of digits (directly, or through a dash: 138-1234-5678-9). A
# digit beyond a space does not protect it ("13812345678 3点前", "第3 13812345678", "卡号… 2张"): spaced groups
# of a longer number are caught whole first (IDs, then cards, then phones), so a phone-like tail of a spaced
# card number is masked as part of the card.
_PHONE = re.compile(r"(?:(?<=86)|(?<=86[ \-])|(?<!\d)(?<!\d-))(?P<p>1" + _SEP + "[3-9]" + (_SEP + r"\d") * 9
                    + r")(?!\d)(?![\-－]\d)")
_ID = re.compile(r"(?<![0-9A-Za-z])\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
                 r"(?![0-9A-Za-z])")
# 3-4-4 groups joined by dots, or the first group in brackets: 138.1234.5678, (138)1234-5678, （138）12345678
_PHONE_GROUPED = re.compile(r"(?<!\d)(?<!\d[.．\-－])(?P<p>[(（]?1[3-9]\d[)）]?[ \-－.．]?\d{4}[ \-－.．]?\d{4})"
                            r"(?!\d)(?![.．\-－]\d)")
# two dates side by side (2026-03-01 2026-03-05, 20260301-20260305) are no card: no card number begins with 19 or 20
_DATE = r"(?:19|20)\d{2}[\-－ ]?(?:0[1-9]|1[0-2])[\-－ ]?(?:0[1-9]|[12]\d|3[01])"
_CARD = re.compile(r"(?<!\d)(?!" + _DATE + r"[\-－ ]" + _DATE + r"(?!\d))\d{4}(?:[ \-－]?\d){12,15}(?!\d)(?![\-－]\d)")
# the first-generation 15-digit ID: region, YYMMDD, three digits
_ID15 = re.compile(r"(?<![0-9A-Za-z])\d{6}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}(?![0-9A-Za-z])")
# a landline: area code (010, 02X, 03XX–09XX; a dash, space or brackets after it, or nothing), then a 7–8 digit
# local number that does not begin with 0 or 1; the area code stays. 400 / 800 service lines have no area code and
# are a shop's, so they stay too
_LANDLINE = re.compile(r"(?<![\d\-－.．])(?P<p>[(（]?(?P<area>010|02\d|0[3-9]\d{2})[)）]?[ \-－]?[2-9]\d{2,3}[ \-－]?\d{4})"
                       r"(?!\d)(?![\-－.．]\d)")
# Chinese numerals (幺 and 两 as spoken in phone numbers) and full-width digits, one character for one
_NUMERALS = str.maketrans("零〇○一幺二两三四五六七八九０１２３４５６７８９", "000112234567890123456789")
# what else is typed between the groups of a number, read as a space: the IME's full-width space, no-break and
# invisible characters (``qa.text.INVISIBLE``: 138​1234​5678 shows as one number), _ / and dashes
_NUMERALS.update(str.maketrans("\u3000\u00a0\u202f" + INVISIBLE + "_/—–", " " * (7 + len(INVISIBLE))))
# the @ may be full-width (＠), the domain's dots full-width (．) or 。
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])(?P<user>[A-Za-z0-9._%+\-*]{1,64}|(?<![\u4e00-\u9fff])[\u4e00-\u9fff]{1,4})"
                    r"(?P<at>[@＠])"
                    r"(?P<domain>[A-Za-z0-9\-]+(?:[.．。][A-Za-z0-9\-]+)+)")
_IM = re.compile(r"(?i)(?:微信号?|威信|薇信|v信|vx|wx|weixin|wechat|qq号?|扣扣|企鹅号?|[加+]v(?![a-z])|加微|[薇微](?=\s*[:：])|"
                 r"(?<![A-Za-z])v(?=\s*[:：]|\s+[A-Za-z]))\s*(?:号码|号)?\s*[:：]?\s*(?:是|为)?\s*"
                 r"(?P<id>[A-Za-z0-9_\-]{5,30})")
_WXID = re.compile(r"(?i)(?<![A-Za-z0-9])wxid_[A-Za-z0-9_\-]{4,30}")
_HAN = r"\u4e00-\u9fff"
_ADDRESS = re.compile(
    rf"(?:[{_HAN}]{{2,6}}(?:省|自治区))?(?:[{_HAN}]{{1,7}}(?:市|州|盟))?[{_HAN}]{{1,7}}?(?:区|县|镇|街道)"
    rf"(?P<detail>[ ，,]?[{_HAN}A-Za-z0-9#＃\-－()（）]{{2,60}})")
# a city, then a street and a number with no district between: 上海市南京东路100号5楼
_CITY_STREET = re.compile(
    rf"(?:[{_HAN}]{{2,6}}(?:省|自治区))?[{_HAN}]{{1,7}}?市"
    rf"(?P<detail>[{_HAN}]{{1,10}}?(?:路|街|大道|巷|弄|胡同)[{_HAN}A-Za-z0-9#＃\-－()（）]{{1,50}})")
# a numbered street with neither city nor district before it: 建国路88号3栋2单元501室
_STREET_NO = re.compile(
    rf"[{_HAN}]{{1,8}}?(?:路|街|大道|巷|弄|胡同)(?P<detail>[0-9]{{1,5}}[号弄](?:[0-9A-Za-z#＃\-－]|号楼|栋|幢|座|单元"
    rf"|楼|层|室|号|院)*)")
# a name after the label a shipping form gives it: 收件人：张三, 联系人是李小明 (the surname stays)
_NAME = re.compile(rf"(?:收件人|收货人|联系人|寄件人|真实姓名|姓名)(?:姓名)?\s*(?:[:：]|是|为|叫)\s*"
                   rf"(?![什多哪谁啥怎写填的不没要有对错改])(?P<name>[{_HAN}·]{{2,4}})")
# numbers outside the mainland (TikTok Shop MY/SG/TH…): after a country code (+60 12-738 4291, +65 9123 4567), and a
# Malaysian mobile written locally (012-738 4291, 011-2345 6789)
_INTL_PHONE = re.compile(r"(?<![\d+])\+(?!86)\d{1,3}[ \-]?(?P<p>\(?\d\)?(?:[ \-]?\d){6,11})(?!\d)")
_MY_MOBILE = re.compile(r"(?<![\d\-])(?P<p>01\d[ \-]\d{3,4}[ \-]?\d{4})(?!\d)")   # written with its dash (no tracking no.)
# a Singapore mobile written locally (8 digits from 8 or 9): grouped 4 + 4 as Singapore writes it, or after a word
# that says it is a number to call
# (with a space, as a phone is written, not a dash, as a range is: 8000-9000; no round thousands: 8000 5000)
_SG_MOBILE = re.compile(r"(?<![\d+\-])(?<!\d[ \-])(?P<p>[89]\d{3} (?!\d000)\d{4})(?<!000 \d{4})(?![ \-]?\d|\-|"
                        r"\s*[件个元块米克斤台套只条双份次天年月日号%])|(?:电话|手机|联系|致电|(?<![a-z])(?i:call|phone|tel|hp|"
                        r"mobile|whats\s?app|wa)(?![a-z]))[^\d\n]{0,8}(?<![\d+\-])(?P<q>[89]\d{7})(?!\d)")
# an address written the Latin way: the street and its number (Jalan Dedap 12), the house (No. 28, Lot 5, Blk 3)
_LATIN_STREET = re.compile(r"(?i)\b(?:jalan|jln|lorong|persiaran|street|road|avenue|lane|soi|thanon)\b"
                           r"(?P<detail>[ A-Za-z/\-]{1,30}?\d[0-9A-Za-z/\-]*)")
_ESTATE = re.compile(r"(?i)\b(?:taman|kampung|kg|bandar|desa|condo|apartment)\b")   # a house number only beside these
_LATIN_HOUSE = re.compile(r"(?i)\b(?:no|lot|unit|blk|block|house)\.?[ ]?(?P<detail>\d+[0-9A-Za-z/\-]*)")
# bidi controls: text between them shows reversed (‮87654321831 reads as a phone number)
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_DETAIL_MARK = re.compile(r"\d|路|街|巷|弄|村|号|栋|幢|单元|室|小区|苑|大厦|公寓|花园|广场|社区|楼")
_ADMIN_PREFIX = re.compile(r"省|自治区|市|州|盟")
NO_MASK = frozenset({"id", "ts", "day", "review_key"})  # keys whose values are identifiers or times


def _hide(chars: list[str], norm: list[str], start: int, end: int, head: int, tail: int) -> None:
    """Within [start, end) every digit (``X`` of an ID too) becomes ``*`` except the first ``head`` and last
    ``tail``; separators stay. ``norm`` (the numeral-normalised copy) is kept in step."""
    idx = [i for i in range(start, end) if norm[i].isdigit() or norm[i] in "Xx"]
    for i in idx[head:len(idx) - tail]:
        chars[i] = norm[i] = "*"


def _address(m: re.Match) -> str:
    detail = m.group("detail")
    prefix = m.group(0)[: m.start("detail") - m.start(0)]
    strong = _ADMIN_PREFIX.search(prefix[:-1]) is not None
    if not _DETAIL_MARK.search(detail) or not (strong or re.search(r"\d", detail)):
        return m.group(0)
    return prefix + "".join(ch if ch in " ，," else "*" for ch in detail)


def _city_street(m: re.Match) -> str:
    detail = m.group("detail")
    if not re.search(r"\d", detail):
        return m.group(0)
    return m.group(0)[: m.start("detail") - m.start(0)] + "*" * len(detail)


def _stars(s: str, keep: int = 1) -> str:
    return s[:keep] + "*" * (len(s) - keep)


def mask_text(text: str | None) -> str | None:
    """``text`` with personal data replaced by ``*``; same length as the input. Idempotent: a pass that masked
    something runs again on its result, as a star can end a number that a longer run of digits hid (the second
    group of ``000000000000 0000000000000000`` masked makes the first a card number), until nothing changes."""
    if not text or not isinstance(text, str):
        return text
    while (masked := _mask_once(text)) != text:   # each pass only turns characters into stars: it ends
        text = masked
    return text


def _mask_once(text: str) -> str:
    chars, norm = list(text), list(text.translate(_NUMERALS))
    for rx, group, head, tail in ((_ID, 0, 3, 4), (_ID15, 0, 3, 3), (_CARD, 0, 4, 4), (_PHONE, "p", 3, 4),
                                  (_PHONE_GROUPED, "p", 3, 4), (_LANDLINE, "p", None, 2), (_INTL_PHONE, "p", 2, 2),
                                  (_MY_MOBILE, "p", 3, 2), (_SG_MOBILE, "p", 2, 2), (_SG_MOBILE, "q", 2, 2)):
        for m in list(rx.finditer("".join(norm))):
            if m.group(group) is not None:
                _hide(chars, norm, *m.span(group), len(m.group("area")) if head is None else head, tail)
    if _BIDI.search(text):   # what shows reversed is read reversed too
        n = len(norm)
        for rx, group, head, tail in ((_ID, 0, 3, 4), (_ID15, 0, 3, 3), (_CARD, 0, 4, 4), (_PHONE, "p", 3, 4)):
            for m in list(rx.finditer("".join(reversed(norm)))):
                _hide(chars, norm, n - m.end(group), n - m.start(group), tail, head)
    text = "".join(chars)
    text = _EMAIL.sub(lambda m: _stars(m.group("user")) + m.group("at") + m.group("domain"), text)
    text = _WXID.sub(lambda m: _stars(m.group(0), 2), text)
    text = _IM.sub(lambda m: m.group(0)[: m.start("id") - m.start(0)] + _stars(m.group("id")), text)
    text = _NAME.sub(lambda m: m.group(0)[: m.start("name") - m.start(0)] + _stars(m.group("name")), text)
    text = _CITY_STREET.sub(_city_street, _ADDRESS.sub(_address, text))
    for rx in (_LATIN_STREET, _LATIN_HOUSE) if _LATIN_STREET.search(text) or _ESTATE.search(text) else ():
        text = rx.sub(lambda m: m.group(0)[: m.start("detail") - m.start(0)]
                      + "".join(c if c == " " else "*" for c in m.group("detail")), text)
    return _STREET_NO.sub(lambda m: m.group(0)[: m.start("detail") - m.start(0)] + "*" * len(m.group("detail")), text)


def mask_messages(messages: list[Any]) -> list[Any]:
    """Messages (dicts with ``role`` and ``text``, text masked already or not) masked, and masked across the
    messages one sender sends in a row too: a number typed in two messages (「138」「1234 5678」) is masked in both.
    Each run's texts are masked joined by a space, and a character masked there is masked in its message."""
    out = [dict(m) if isinstance(m, dict) else m for m in messages]
    for m in out:
        if isinstance(m, dict) and isinstance(m.get("text"), str):
            m["text"] = mask_text(m["text"])
    i = 0
    while i < len(out):
        j = i + 1
        role = out[i].get("role") if isinstance(out[i], dict) else None
        while j < len(out) and isinstance(out[j], dict) and out[j].get("role") == role:
            j += 1
        run = [m for m in out[i:j] if isinstance(m, dict) and isinstance(m.get("text"), str) and m["text"]]
        if len(run) > 1:
            joined = mask_text(" ".join(m["text"] for m in run))
            at = 0
            for m in run:
                part, at = joined[at:at + len(m["text"])], at + len(m["text"]) + 1
                m["text"] = "".join("*" if b == "*" else a for a, b in zip(m["text"], part))
        i = j
    return out


def clip(text: str, n: int) -> str:
    """``text`` cut to at most ``n`` characters, and shorter where the cut would split personal data: up to the first
    character that masking hides in the whole text but not in the cut one. What is cut first and masked later (a
    finding's evidence in a results record, a topic's question) then holds no number masking sees only part of."""
    if len(text) <= n:
        return text
    whole, cut = mask_text(text)[:n], mask_text(text[:n])
    return text[:next((i for i, (a, b) in enumerate(zip(whole, cut)) if a != b), n)]


def mask_value(value: Any, keep: Iterable[str] = NO_MASK) -> Any:
    """Every string inside ``value`` (dicts, lists) masked, except under the keys in ``keep``."""
    keep = keep if isinstance(keep, frozenset) else frozenset(keep)
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: v if k in keep else mask_value(v, keep) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v, keep) for v in value]
    return value


# -- spreadsheet cells -------------------------------------------------------------------------------

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
MAX_CELL = 32_000                     # Excel holds at most 32,767 characters in a cell
CLIPPED = "…（内容过长，已截断）"
# A formula start, also behind blanks an importer may trim (spaces, the IME's full-width space, no-break and
# zero-width spaces, line breaks, a BOM), and in its full-width form, which a CJK spreadsheet may read as ASCII
_FORMULA = re.compile(r"[ \n\u3000\u00a0\u202f\u200b-\u200d\u2060\ufeff]*[=+\-@＝＋－＠]|[\t\r]")


def is_formula_like(value: Any) -> bool:
    """True for text a spreadsheet could read as a formula (a lone dash, the placeholder for nobody, cannot)."""
    return isinstance(value, str) and _FORMULA.match(value) is not None and value.strip() not in ("-", "－")


# characters XML 1.0, and so XLSX, has no place for (openpyxl refuses them), and the bidi overrides and isolates
# that make the text after them show in another order than it is read (a reviewer would see another number)
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\u202a-\u202e\u2066-\u2069]")


def printable(value: Any) -> Any:
    """Text with each control character a sheet cannot hold (NUL, BEL, ESC …; tab, LF and CR stay) or that reorders
    what follows (bidi overrides) replaced by U+FFFD, one for one, so finding spans still point at the same
    characters."""
    return _UNWRITABLE.sub("\ufffd", value) if isinstance(value, str) else value


def neutralise_cell(value: Any) -> Any:
    """A value that cannot run as a formula (formula-like text gets a leading ``'``, see module doc) and that a
    sheet can hold (``printable``)."""
    value = printable(value)
    if isinstance(value, str) and (is_formula_like(value) or (value.startswith("'")
                                                               and is_formula_like(value.lstrip("'")))):
        return "'" + value
    return value


def unneutralise_cell(value: Any) -> Any:
    """Undo ``neutralise_cell`` on a value read back."""
    if isinstance(value, str) and value.startswith("'") and is_formula_like(value.lstrip("'")):
        return value[1:]
    return value


def clip_cell(value: Any, limit: int = MAX_CELL, note: str = CLIPPED) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - len(note)] + note
    return value


def safe_row(row: dict[str, Any], *, mask: bool = True, keep: Iterable[str] = NO_MASK) -> dict[str, Any]:
    """A flat row ready for a CSV or a sheet: masked (except ``keep`` keys), neutralised, clipped."""
    keep = frozenset(keep)
    out = {}
    for k, v in row.items():
        if mask and k not in keep:
            v = mask_value(v, keep)
        if isinstance(v, (list, tuple)):
            v = "; ".join("" if x is None else str(x) for x in v)
        out[k] = clip_cell(neutralise_cell(v))
    return out


def write_csv(path: str | Path, rows: Iterable[dict[str, Any]], *, mask: bool = True,
              keep: Iterable[str] = NO_MASK, columns: Iterable[str] = ()) -> None:
    """Rows as CSV (UTF-8 with BOM, so Excel reads Chinese): masked, neutralised and clipped cell by cell.
    ``columns`` fixes the header (and its order) even when there are no rows."""
    rows = [safe_row(r, mask=mask, keep=keep) for r in rows]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields: list[str] = list(columns)
    for r in rows:
        fields += [k for k in r if k not in fields]
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if v is None else v for k, v in r.items()})
