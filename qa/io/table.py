"""CSV and XLSX exports with one message per row, grouped into conversations by the session column.

CSV may be UTF-8, UTF-8 with BOM, UTF-16 (with BOM) or GB18030/GBK (what Chinese Excel writes); the
encoding is detected. Rows are grouped in memory per file (exports are per shop and day); a conversation's
rows need not be contiguous. A row that cannot be read rejects its whole conversation, naming the line
and the column.
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from qa.errors import InputError
from qa.io.build import Reject, build
from qa.io.profiles import Profile, resolve_profile
from qa.schema import MESSAGE_TYPES, ROLES, Conversation

log = logging.getLogger(__name__)
Row = tuple[int, dict[str, Any]]  # (line number, header → cell)
CELL_LIMIT = 1 << 26   # characters a CSV cell may hold (the csv module's own 131,072 failed the whole file on one)


def detect_encoding(path: Path) -> str:
    """utf-8-sig / utf-16 by BOM, else utf-8 if the whole file decodes, else gb18030 (a superset of GBK)."""
    with open(path, "rb") as f:
        head = f.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        f.seek(0)
        dec = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := f.read(1 << 20):
                dec.decode(chunk)
            dec.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError:
            return "gb18030"


def _csv_rows(path: Path) -> tuple[list[str], int, Iterator[Row]]:
    """Header (the first line that is not blank), its line number, and the rows under it."""
    enc = detect_encoding(path)
    f = open(path, encoding=enc, newline="")
    sample = f.read(8192)
    f.seek(0)
    top = next((line for line in sample.split("\n") if line.strip(" ,;\t\r")), "")   # the header's line
    delim = "\t" if path.suffix.lower() == ".tsv" or top.count("\t") > top.count(",") else ","
    csv.field_size_limit(max(csv.field_size_limit(), CELL_LIMIT))
    reader = csv.reader(f, delimiter=delim)
    at, first = 1, next(reader, None)
    while first is not None and not any(c.strip() for c in first):   # blank lines above the header
        at, first = reader.line_num + 1, next(reader, None)
    for i, cell in enumerate(first or []):
        if _swallowed(cell, delim, len(first)):
            f.close()
            name = cell.splitlines()[0].split(delim)[0].strip() or f"column {i + 1}"
            raise InputError(f"unbalanced quote (\") in the header cell {name!r}: it runs on over the rows of the "
                             "file; fix the quoting (no row of the file was read)", file=str(path), line=at,
                             field=name)
    header = [h.strip() for h in first or []]

    def rows() -> Iterator[Row]:
        with f:
            end, start, cells = reader.line_num, 0, []
            for cells in reader:
                start, end = end + 1, reader.line_num
                _check_quotes(path, start, header, cells, delim)
                if any(c.strip() for c in cells):
                    yield end, dict(zip(header, cells))
        if cells and _open_at_end(path, enc, delim, cells[-1]):
            column = header[len(cells) - 1] if len(cells) <= len(header) else f"column {len(cells)}"
            raise InputError(f"unbalanced quote (\") in column {column!r}: the cell that starts here is never "
                             "closed and runs to the end of the file, taking in the cells after it; fix the "
                             "quoting (no row of the file was read)", file=str(path), line=start, field=column)
    return header, at, rows()


def _swallowed(cell: str, delim: str, width: int) -> int:
    """How many of the later lines of a multi-line cell carry a row's worth of delimiters (``width`` − 1): rows
    an unclosed quote took in (a multi-line message rarely has them). 0 for a single column: nothing to tell by."""
    if width < 2 or ("\n" not in cell and "\r" not in cell):
        return 0
    return sum(part.count(delim) >= width - 1 for part in cell.splitlines()[1:])


def _check_quotes(path: Path, line: int, header: list[str], cells: list[str], delim: str) -> None:
    """A quote that is never closed swallows the rows after it into one cell: raise ``InputError`` when a cell
    holds line breaks followed by a line with a row's worth of delimiters."""
    for i, cell in enumerate(cells):
        if "\n" not in cell and "\r" not in cell:     # the common case, without a call
            continue
        rows = _swallowed(cell, delim, len(header))
        if rows:
            column = header[i] if i < len(header) else f"column {i + 1}"
            raise InputError(f"unbalanced quote (\") in column {column!r}: the cell that starts here runs on over "
                             f"{rows} line(s) that look like rows of this file; fix the quoting (no row of the "
                             "file was read)", file=str(path), line=line, field=column)


def _open_at_end(path: Path, enc: str, delim: str, cell: str) -> bool:
    """The file ends inside a quoted cell: the last row's last cell (``cell``) is what a quote never closed
    keeps — the rest of the file — so the raw file ends with ``"`` and the cell (quotes doubled) right after a
    delimiter or line break, where a closed cell ends with its closing quote or the line break after it. One
    short read at the end of the file. A blank cell is let be (nothing was taken in)."""
    if not cell.strip():
        return False
    with open(path, "rb") as f:
        codec = {"utf-8-sig": "utf-8", "utf-16": "utf-16-be" if f.read(2) == codecs.BOM_UTF16_BE else "utf-16-le"
                 }.get(enc, enc)
        tail, unit = ('"' + cell.replace('"', '""')).encode(codec), len(delim.encode(codec))
        size = f.seek(0, 2)
        if size < len(tail) + unit:
            return False
        f.seek(size - len(tail) - unit)
        raw = f.read()
    return raw.endswith(tail) and raw[:unit] in {c.encode(codec) for c in (delim, "\n", "\r")}


def _xlsx_rows(path: Path, sheet: str | None, uncached: dict[int, dict[str, str]] | None = None
               ) -> tuple[list[str], int, Iterator[Row]]:
    """Header (the first row that is not blank, on the first sheet that has one), its row number, and the rows
    under it, a formula cell read as its cached value (the value Excel saved). A formula saved without one (by a
    program that does not calculate) reads as empty; with ``uncached`` given, each such cell under a header is
    noted there: line → {column: cell reference}."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    header, at, it, ws = [], 1, iter(()), None
    for ws in [wb[sheet]] if sheet and sheet in wb.sheetnames else wb.worksheets:
        ws.reset_dimensions()   # else every row is padded to the used range: one far cell makes it 1M × 16K
        it = enumerate(ws.iter_rows(values_only=True), 1)
        at, first = next(((n, r) for n, r in it if r and any(_filled(c) for c in r)), (1, ()))
        header = ["" if h is None else str(h).strip() for h in first]
        if any(header):
            break
    if not sheet and ws is not None:   # one sheet is read: say so of any later one that holds rows
        for other in wb.worksheets[wb.worksheets.index(ws) + 1:]:
            other.reset_dimensions()
            if any(r and any(map(_filled, r)) for r in other.iter_rows(max_row=200, values_only=True)):
                log.warning("%s: sheet %r is not read (one sheet per file: the first with a header, %r, or the "
                            "profile's `sheet:`); save it as its own file to grade it", path, other.title, ws.title)
    member = getattr(ws, "_worksheet_path", None)   # the sheet's XML in the zip, as openpyxl reads it
    merged, formulas = _scan_sheet(path, member) if member else ([], False)
    if uncached is not None and formulas:
        uncached.update(_uncached_formulas(path, member, header))
    top: dict[tuple[int, int, int, int], Any] = {}   # a merged range → the value of its top-left cell

    def rows() -> Iterator[Row]:
        try:
            for n, cells in it:   # a missing row comes as (), a row as far as its last cell
                for rng in merged:   # a merged cell (one conversation id over its rows) holds for every row
                    c0, r0, c1, r1 = rng
                    if n == r0:
                        top[rng] = cells[c0 - 1] if c0 <= len(cells) else None
                    elif r0 < n <= r1 and top.get(rng) is not None:
                        cells = list(cells) + [None] * max(0, c1 - len(cells))
                        cells[c0 - 1:c1] = [top[rng]] * (c1 - c0 + 1)
                if cells and any(map(_filled, cells)):   # blank as a CSV row is blank: whitespace only
                    yield n, dict(zip(header, cells))
        finally:
            wb.close()
    return header, at, rows()


_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+[0-9]+):([A-Z]+[0-9]+)"')


def _scan_sheet(path: Path, member: str) -> tuple[list[tuple[int, int, int, int]], bool]:
    """One pass over a sheet's XML, in chunks (regular expressions: C speed): (min col, min row, max col, max row)
    of each merged range (the read-only reader does not know them; they sit after the rows), and whether a formula
    cell was saved with no cached value (only then is the sheet walked cell by cell, ``_uncached_formulas``)."""
    from openpyxl.utils.cell import coordinate_to_tuple

    out, tail, overlap, formulas = [], b"", b"", False
    with zipfile.ZipFile(path) as z, z.open(member) as f:
        while chunk := f.read(1 << 20):
            formulas = formulas or any(r.search(overlap + chunk) for r in _UNCACHED)   # a cell split by the cut too
            overlap = chunk[-4096:]
            data = tail + chunk
            cut = data.rfind(b"<")   # a tag cut by the chunk's end is read whole with the next chunk
            end = cut if cut > 0 else len(data)
            for m in _MERGE.finditer(data, 0, end):
                (r0, c0), (r1, c1) = coordinate_to_tuple(m[1].decode()), coordinate_to_tuple(m[2].decode())
                out.append((min(c0, c1), min(r0, r1), max(c0, c1), max(r0, r1)))
            tail = data[cut:] if cut > 0 else b""
    return out, formulas


def _filled(cell: Any) -> bool:
    return cell is not None and (not isinstance(cell, str) or bool(cell.strip()))


# the end of a formula — </f>, or <f t="shared" …/> — closing its cell with no value or an empty one (any
# namespace prefix); two patterns that start with a literal, so the search runs at the speed of unzipping
_NS = rb"(?:[A-Za-z_][\w.-]*:)?"
_NO_VALUE = rb"\s*(?:<" + _NS + rb"v\s*/>|<" + _NS + rb"v>\s*</" + _NS + rb"v>)?\s*</" + _NS + rb"c>"
_UNCACHED = (re.compile(rb"f>" + _NO_VALUE), re.compile(rb"/>" + _NO_VALUE))


def _uncached_formulas(path: Path, member: str, header: list[str]) -> dict[int, dict[str, str]]:
    """Line → {column: cell} of the sheet's formula cells under a header that were saved with no cached value
    (or an empty one): what ``data_only`` reads as empty; called when ``_scan_sheet`` found one (cells without an
    ``r`` reference are not named)."""
    from xml.etree.ElementTree import iterparse

    from openpyxl.utils.cell import coordinate_to_tuple

    out: dict[int, dict[str, str]] = {}
    with zipfile.ZipFile(path) as z:
        with z.open(member) as f:
            for _, el in iterparse(f):
                tag = el.tag.rpartition("}")[2]
                if tag == "c":
                    kids = {k.tag.rpartition("}")[2]: k for k in el}
                    ref = el.get("r")
                    if "f" in kids and not ("v" in kids and kids["v"].text) and ref:
                        line, col = coordinate_to_tuple(ref)
                        if col <= len(header) and header[col - 1]:
                            out.setdefault(line, {})[header[col - 1]] = ref
                    el.clear()
                elif tag == "row":
                    el.clear()
    return out


def _cell(row: dict[str, Any], profile: Profile, field: str) -> Any:
    col = profile.columns.get(field)
    v = row.get(col) if col else None
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


def _message(line: int, row: dict[str, Any], p: Profile) -> dict[str, Any]:
    role_raw = _cell(row, p, "role")
    role = p.roles.get(str(role_raw), str(role_raw).lower() if role_raw is not None else None)
    if role not in ROLES:
        raise _RowError(line, p.columns["role"], f"unknown role {role_raw!r} (profile {p.name} knows "
                        f"{', '.join(p.roles) or '|'.join(ROLES)})")
    type_raw = _cell(row, p, "type")
    mtype = "text" if type_raw is None else p.types.get(str(type_raw), str(type_raw).lower())
    if mtype not in MESSAGE_TYPES:
        raise _RowError(line, p.columns["type"], f"unknown message type {type_raw!r}")
    text = _cell(row, p, "text")
    msg: dict[str, Any] = {"role": role, "type": mtype, "text": None if text is None else str(text),
                           "ts": _sheet_time(_cell(row, p, "ts")), "sender": _cell(row, p, "sender")}
    event = _cell(row, p, "event") or (text if mtype == "event" else None)
    if event is not None:
        msg["event"] = p.events.get(str(event), str(event))
    return {k: v for k, v in msg.items() if v is not None}


def _sheet_time(v: Any) -> Any:
    """A number a sheet holds in a time column below Excel's last day (2,958,466: 9999-12-31) is the day count Excel
    stores a time as (a time cell that lost its date format; in a CSV saved from such a sheet, its text 46083.31),
    not epoch seconds, which are in the billions."""
    if isinstance(v, str) and re.fullmatch(r"\d{1,7}(\.\d+)?", v):
        v = float(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 2958466:
        from openpyxl.utils.datetime import from_excel
        return from_excel(v)
    return v


class _RowError(Exception):
    def __init__(self, line: int, column: str, reason: str):
        self.line, self.column, self.reason = line, column, reason


def _conversation(cid: str, rows: list[Row], p: Profile) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": cid, "platform": p.platform, "messages": [_message(n, r, p) for n, r in rows]}
    for field in ("shop", "agent", "customer", "platform"):
        v = next((c for _, r in rows if (c := _cell(r, p, field)) is not None), None)
        if v is not None:
            rec[field] = str(v)
    stars = next((c for _, r in rows if (c := _cell(r, p, "stars")) is not None), None)
    label = next((c for _, r in rows if (c := _cell(r, p, "rating_label")) is not None), None)
    if stars is not None or label is not None:
        rating: dict[str, Any] = {}
        if stars is not None:
            try:
                value = float(stars)
                if not value.is_integer():   # 4.5 is not a star count (the JSONL reader refuses it too)
                    raise ValueError
                rating["stars"] = int(value)
            except (ValueError, TypeError, OverflowError):
                line = next(n for n, r in rows if _cell(r, p, "stars") is not None)
                raise _RowError(line, p.columns["stars"], f"stars {stars!r} is not a number of whole stars") from None
        if label is not None:
            rating["label"] = str(label)
        rec["rating"] = rating
    return rec


def read_table(path: Path, *, tz: str | None = None, columns: str | Path | None = None
               ) -> Iterator[Conversation | Reject]:
    name = str(path)
    if path.stat().st_size == 0:
        log.warning("%s: empty file, no conversations", name)
        return
    uncached: dict[int, dict[str, str]] = {}   # XLSX: line → {column: cell} of formulas with no cached value
    header, at, rows = _xlsx_rows(path, None, uncached) if path.suffix.lower() in (".xlsx", ".xlsm") \
        else _csv_rows(path)
    if not any(header):
        log.warning("%s: no header row, no conversations", name)
        return
    profile = resolve_profile(columns, header, name, at)
    missing = profile.missing_columns(header)
    if missing:
        yield Reject(name, at, f"missing column(s) {missing} required by profile {profile.name!r}",
                     field=missing[0])
        return
    twice = [c for c in dict.fromkeys(profile.columns.values()) if header.count(c) > 1]
    if twice:
        yield Reject(name, at, f"column {twice[0]!r} appears {header.count(twice[0])} times in the header; profile "
                     f"{profile.name!r} reads it, so which one holds the data is ambiguous: rename or delete the "
                     "extra one (no row of the file was read)", field=twice[0])
        return
    absent = [f"{col!r} ({field})" for field, col in profile.columns.items() if col not in header]
    if absent:   # an optional column renamed or left out reads as empty in every row: said, not silent
        log.warning("%s: profile %r reads column(s) %s, not in the header: read as empty in every row (rename the "
                    "column, or pass --columns with a profile that names it)", name, profile.name, ", ".join(absent))
    tz = tz or profile.timezone
    yield from _grouped(name, _group(name, rows, profile, uncached), profile, tz, uncached)


def _group(name: str, rows: Iterable[Row], p: Profile, uncached: dict[int, dict[str, str]]
           ) -> Iterator[Reject | tuple[str, list[Row]]]:
    groups: dict[str, list[Row]] = {}
    col = p.columns["conversation_id"]
    for line, row in rows:
        cid = _cell(row, p, "conversation_id")
        if cid is None:
            yield Reject(name, line, "row has no conversation id" + _formula_note(uncached, line, col), field=col)
            continue
        groups.setdefault(str(cid), []).append((line, row))
    yield from groups.items()


def _formula_note(uncached: dict[int, dict[str, str]], line: int, column: str) -> str:
    """For a reject: that its cell held a formula saved with no cached value, if it did."""
    cell = uncached.get(line, {}).get(column) if uncached else None
    return f" (cell {cell} holds a formula with no cached value: open and save the file in Excel)" if cell else ""


def _grouped(name: str, items: Iterable[Reject | tuple[str, list[Row]]], p: Profile, tz: str,
             uncached: dict[int, dict[str, str]]) -> Iterator[Conversation | Reject]:
    read = set(p.columns.values())
    for item in items:
        if isinstance(item, Reject):
            yield item
            continue
        cid, rows = item
        try:
            rec = _conversation(cid, rows, p)
        except _RowError as e:
            yield Reject(name, e.line, e.reason + _formula_note(uncached, e.line, e.column), field=e.column, id=cid)
            continue
        if uncached:   # a formula cell the profile reads, saved without a value: read as empty, said so
            notes = [f"formula_no_cached_value:{ref}" for n, _ in rows
                     for col, ref in uncached.get(n, {}).items() if col in read]
            if notes:
                rec["warnings"] = notes
        conv = build(rec, file=name, line=rows[0][0], tz=tz)
        if isinstance(conv, Reject) and conv.field and conv.field.startswith("messages."):
            conv = _locate(conv, [n for n, _ in rows], p)
        yield conv


def _locate(rej: Reject, lines: list[int], p: Profile) -> Reject:
    """Point a message-level reject at the row's line and the export's column name."""
    parts = rej.field.split(".")
    try:
        line = lines[int(parts[1])]
    except (IndexError, ValueError):
        return rej
    column = p.columns.get(parts[2], parts[2]) if len(parts) > 2 else None
    return Reject(rej.file, line, rej.reason, field=column, id=rej.id)
