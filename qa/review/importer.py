"""Read filled-in review sheets (XLSX/CSV) back, row by row, into reviews and labelled conversations.

Each row is accepted or rejected (``rows read = accepted + rejected``; wholly empty rows are not rows);
every problem names file, row, column and a code: ``missing_column``, ``duplicate_column``, ``missing_id``,
``unknown_conversation``, ``id_mismatch``, ``ambiguous_id``, ``not_reviewed``, ``blank_grade``, ``bad_grade``,
``unknown_rule``, ``duplicate_review``.

A row finds its conversation by its 复核键 (review key, see ``qa.review.export``) and must carry that
conversation's id (else ``id_mismatch``); a row without a key (an older export, a deleted column) is found by
its id only when exactly one conversation has that id (else ``ambiguous_id``). So a review never lands on
another chat that shares the id. The reviewer is the 评审人 cell, else the file's name. A merged cell's value
holds for every row it covers, as the reviewer sees it. The conversations come from the
export itself (hidden ``_qa`` sheet, or ``<csv>.records.json``) or from ``records`` (a sidecar, an exported
XLSX, or results JSONL/Parquet); they are masked whatever the source.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import json
import math
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from qa.errors import InputError
from qa.grade import check_record
from qa.io.table import CELL_LIMIT, detect_encoding
from qa.review.export import META_SHEET, REVIEW_SHEET, columns, review_key, review_meta
from qa.review.mask import mask_record, unsafe_cell
from qa.review.records import read_results
from qa.rubric import Rubric
from qa.safety import printable
from qa.shape import WORDS, FieldError, check, check_fields, check_list, check_map, kind

_SPLIT = re.compile(r"[,，、;；\s]+")
LABEL_FIELDS = ("id", "platform", "shop", "agent", "messages", "rating")


@dataclasses.dataclass(frozen=True)
class Problem:
    file: str
    row: int
    column: str | None
    code: str
    message: str
    id: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def __str__(self) -> str:
        col = f" {self.column}" if self.column else ""
        return f"{self.file}:{self.row}{col}: {self.message}"


@dataclasses.dataclass(frozen=True)
class Review:
    id: str
    reviewer: str
    grades: dict[str, int]
    rules: list[str]
    reason: str
    file: str
    row: int
    key: str = ""          # the conversation's review key: what ``Imported.records`` is keyed by

    def to_label(self) -> dict[str, Any]:
        return {"reviewer": self.reviewer, "grades": self.grades, "rules": self.rules, "reason": self.reason}


@dataclasses.dataclass
class Imported:
    reviews: list[Review]
    problems: list[Problem]
    records: dict[str, dict[str, Any]]      # review key → masked record
    meta: dict[str, Any]
    read: int = 0
    rejected: int = 0
    warnings: list[str] = dataclasses.field(default_factory=list)
    by_id: dict[str, list[str]] = dataclasses.field(default_factory=dict)   # conversation id → review keys

    @property
    def accepted(self) -> int:
        return len(self.reviews)

    def labelled(self) -> Iterator[dict[str, Any]]:
        """One conversation record per reviewed conversation, ``labels.reviews`` one per reviewer."""
        by_key: dict[str, list[Review]] = {}
        for r in self.reviews:
            by_key.setdefault(r.key, []).append(r)
        for key, reviews in by_key.items():
            rec = self.records[key]
            out = {k: rec[k] for k in LABEL_FIELDS if rec.get(k) is not None}
            out["meta"] = {"source": "qa import-review", "files": sorted({r.file for r in reviews})}
            out["labels"] = {"reviews": [r.to_label() for r in reviews]}
            yield out


# -- where the conversations come from -------------------------------------------------------------

def _xlsx_records(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        if META_SHEET not in wb.sheetnames:
            return None, []
        ws = wb[META_SHEET]
        ws.reset_dimensions()   # the size a file says its sheet has may be stale (another program saved it)
        rows = ws.iter_rows(values_only=True)
        meta = json.loads(next(rows)[0])
        recs = [(n, json.loads("".join(c for c in row[1:] if c)))
                for n, row in enumerate(rows, 2) if row and row[0] is not None]
    except (StopIteration, TypeError, json.JSONDecodeError, KeyError) as e:
        raise InputError(f"the hidden {META_SHEET} sheet is damaged ({e})", file=str(path)) from None
    except RecursionError:
        raise InputError(f"the hidden {META_SHEET} sheet is damaged (JSON nested too deep)", file=str(path)) from None
    finally:
        wb.close()
    return _checked(path, meta, [r for _, r in recs], f"the hidden {META_SHEET} sheet is damaged",
                    rows=[n for n, _ in recs])


def _sidecar(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"not a review sidecar ({e})", file=str(path)) from None
    except RecursionError:
        raise InputError("not a review sidecar (JSON nested too deep)", file=str(path)) from None
    if not isinstance(data, dict):
        raise InputError(f"not a review sidecar (a JSON object with \"records\", not {WORDS.get(kind(data), kind(data))})",
                         file=str(path))
    return _checked(path, {k: v for k, v in data.items() if k != "records"}, data.get("records"),
                    "the review sidecar is damaged")


# what ``review_meta`` writes and ``_Sheet`` reads: the column headers, the scale, grade and rule names
META_FIELDS = {"format": "str|null", "rubric": "str|null", "id": "str", "reviewer": "str", "comment": "str",
               "rules": "str", "key": "str|null"}


def _checked(path: Path, meta: Any, recs: Any, damaged: str, *, rows: list[int] | None = None
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The export's meta and records, each checked once (types as ``review_meta`` and ``qa grade`` write
    them), so a damaged one stops with one message naming the file, the row (XLSX ``rows``: the sheet row of
    each record; a sidecar: ``records[i]``) and the field."""
    try:
        check_fields("", meta, META_FIELDS)
        check_list("scale", meta.get("scale"), "int", null=False)
        if not meta["scale"]:
            raise FieldError("scale", "must list the levels")
        check_map("grades", meta.get("grades"), "str", null=False)
        check_map("rule_ids", meta.get("rule_ids"), "str", null=False)
        check("records", recs, "list")
    except FieldError as e:
        what = e.message if e.field else f"the review settings {e.message}"
        raise InputError(f"{what} ({damaged})", file=str(path), field=e.field or None) from None
    for i, r in enumerate(recs):
        try:
            check_record(r, required=("id",))
        except ValueError as e:
            field = getattr(e, "field", None)
            if rows is None:
                field = f"records[{i}]" + (f".{field}" if field else "")
            raise InputError(f"{getattr(e, 'message', e)} ({damaged})", file=str(path),
                             line=rows[i] if rows else None, field=field) from None
        r["id"] = str(r["id"])
    return meta, recs


def load_records(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Meta (or None) and the records of a sidecar, an exported XLSX, or results JSONL/Parquet."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".xlsx":
            return _xlsx_records(path)
        if suffix == ".json":
            return _sidecar(path)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as e:
        raise InputError(f"cannot read this file ({type(e).__name__}: {e})", file=str(path)) from None
    return None, list(read_results([path]))


# -- reading the sheets ------------------------------------------------------------------------------

def _xlsx_rows(path: Path) -> list[tuple[Any, ...]]:
    """The review sheet's rows, every cell of a merged range holding the range's value. Read whole (not read-only):
    the rows are those the sheet holds, whatever size the file claims, and its merged ranges are known."""
    from openpyxl import load_workbook

    wb = load_workbook(path, data_only=False)   # a typed "=…" comes back as its text
    try:
        ws = wb[REVIEW_SHEET] if REVIEW_SHEET in wb.sheetnames else wb.worksheets[0]
        rows = [[getattr(v, "text", v) for v in r] for r in ws.iter_rows(values_only=True)]
        for rng in ws.merged_cells.ranges:
            if rng.min_row > len(rows) or rng.min_col > len(rows[rng.min_row - 1]):
                continue
            value = rows[rng.min_row - 1][rng.min_col - 1]
            for r in range(rng.min_row - 1, min(rng.max_row, len(rows))):
                for c in range(rng.min_col - 1, min(rng.max_col, len(rows[r]))):
                    rows[r][c] = value
        return [tuple(r) for r in rows]
    finally:
        wb.close()


def _csv_rows(path: Path) -> list[tuple[Any, ...]]:
    """Rows of a review CSV or tab-separated text: UTF-8, UTF-16 (Excel's "Unicode Text") or GB18030 (Excel on
    Chinese Windows), as the chat reader detects them; tab-separated when the header has more tabs than commas."""
    text = path.read_text(encoding=detect_encoding(path))
    top = next((line for line in text.split("\n") if line.strip(" ,;\t\r")), "")
    delim = "\t" if path.suffix.lower() == ".tsv" or top.count("\t") > top.count(",") else ","
    csv.field_size_limit(max(csv.field_size_limit(), CELL_LIMIT))
    return [tuple(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delim)]


def sheet_rows(path: Path) -> list[tuple[Any, ...]]:
    if not path.is_file():
        raise InputError("no such file", file=str(path))
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            return _xlsx_rows(path)
        except (zipfile.BadZipFile, OSError, KeyError, ValueError) as e:
            raise InputError(f"not a readable workbook ({type(e).__name__}: {e})", file=str(path)) from None
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        return _csv_rows(path)
    raise InputError(f"unknown review file type {path.suffix!r}: use .xlsx or .csv", file=str(path))


def _letter(j: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(j + 1)


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def parse_grade(value: Any, scale: Sequence[int]) -> int | str:
    """A level on the scale, or the problem code (``blank_grade`` / ``bad_grade``)."""
    if _blank(value):
        return "blank_grade"
    if isinstance(value, bool):
        return "bad_grade"
    if isinstance(value, int):
        level = value
    elif isinstance(value, float):
        level = int(value) if math.isfinite(value) and value.is_integer() else None
    else:
        s = unicodedata.normalize("NFKC", str(value)).strip()
        level = int(s.partition(".")[0]) if re.fullmatch(r"\d{1,9}(\.0+)?", s) else None
    return level if level in scale else "bad_grade"


class _Sheet:
    """One file: its header checked against the export's columns, then each row validated."""

    def __init__(self, path: Path, meta: dict[str, Any], known: set[str], imp: Imported, seen: dict):
        self.path, self.meta, self.imp, self.seen = path, meta, imp, seen
        self.name = str(path)
        rows = sheet_rows(path)
        self.header = [("" if h is None else str(h).strip()) for h in (rows[0] if rows else ())]
        self.rows = rows[1:]
        self.col = {h: j for j, h in enumerate(self.header) if h}
        required = [meta["id"], *meta["grades"], meta["reviewer"], meta["comment"]]
        self.missing = [h for h in required if h not in self.col]
        read = {*required, meta.get("rules"), meta.get("key")}   # the columns a row is read from
        counts = collections.Counter(h for h in self.header if h in read)
        self.twice = {h: [j for j, h2 in enumerate(self.header) if h2 == h] for h, n in counts.items() if n > 1}
        self.unexpected = [(j, h) for j, h in enumerate(self.header) if h and h not in known]

    def letter(self, header: str) -> str:
        j = self.col.get(header)
        return f"{_letter(j)} {header}" if j is not None else header

    def read(self) -> None:
        for h in self.missing:
            hint = "; found instead: " + ", ".join(h2 for _, h2 in self.unexpected) if self.unexpected else ""
            self.imp.problems.append(Problem(self.name, 1, h, "missing_column",
                                             f"column {h!r} is missing or renamed{hint}"))
        for h, js in self.twice.items():
            self.imp.problems.append(Problem(self.name, 1, h, "duplicate_column",
                                             f"column {h!r} appears {len(js)} times ({', '.join(map(_letter, js))}):"
                                             " keep the one to read, rename or delete the others"))
        if self.unexpected and not self.missing:
            self.imp.warnings.append(f"{self.name}: columns not read: " + ", ".join(h for _, h in self.unexpected))
        for r, row in enumerate(self.rows, 2):
            if all(_blank(v) for v in row):
                continue
            self.imp.read += 1
            problems, review = self._row(r, row)
            if problems:
                self.imp.rejected += 1
                self.imp.problems += problems
            else:
                self.imp.reviews.append(review)
                self.seen[(review.key, review.reviewer)] = (self.name, r)

    def _cell(self, row: tuple[Any, ...], header: str) -> Any:
        j = self.col.get(header)
        return unsafe_cell(row[j]) if j is not None and j < len(row) else None

    def _row(self, r: int, row: tuple[Any, ...]) -> tuple[list[Problem], Review | None]:
        meta, name = self.meta, self.name
        raw_id = self._cell(row, meta["id"])
        cid = None if _blank(raw_id) else _id_key(raw_id)
        out: list[Problem] = []

        def problem(column: str | None, code: str, message: str) -> None:
            out.append(Problem(name, r, self.letter(column) if column else None, code, message, cid))

        if self.missing:
            problem(None, "missing_column", "row not read: column(s) missing: " + ", ".join(self.missing))
            return out, None
        if self.twice:
            problem(None, "duplicate_column", "row not read: column(s) twice: " + ", ".join(self.twice))
            return out, None
        if cid is None:
            problem(meta["id"], "missing_id", "no conversation id")
            return out, None
        key = self._key(row, cid, problem)
        values = {h: self._cell(row, h) for h in meta["grades"]}
        reviewer_cell, comment = self._cell(row, meta["reviewer"]), self._cell(row, meta["comment"])
        if all(_blank(v) for v in values.values()) and _blank(reviewer_cell) and _blank(comment):
            problem(None, "not_reviewed", "no grades, reviewer or comment: not reviewed")
            return out, None
        grades: dict[str, int] = {}
        for h, v in values.items():
            g = parse_grade(v, meta["scale"])
            if isinstance(g, str):
                levels = "/".join(map(str, meta["scale"]))
                shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:40] + "…"
                problem(h, g, "grade is blank" if g == "blank_grade" else f"grade {shown} is not a level ({levels})")
            else:
                grades[meta["grades"][h]] = g
        rules = []
        for tok in _SPLIT.split(str(self._cell(row, meta["rules"]) or "").strip()):
            rid = meta["rule_ids"].get(tok, tok if tok in meta["rule_ids"].values() else None)
            if tok and rid is None:
                problem(meta["rules"], "unknown_rule", f"unknown rule {tok!r}")
            elif rid:
                rules.append(rid)
        reviewer = self.path.stem if _blank(reviewer_cell) else str(reviewer_cell).strip()
        if key is not None and (key, reviewer) in self.seen:
            f, rr = self.seen[(key, reviewer)]
            problem(meta["reviewer"], "duplicate_review", f"{reviewer} already reviewed {cid} ({f}:{rr})")
        if out:
            return out, None
        return [], Review(cid, reviewer, grades, rules, "" if _blank(comment) else str(comment).strip(), name, r,
                          key=key)

    def _key(self, row: tuple[Any, ...], cid: str, problem) -> str | None:
        """The review key of the row's conversation (None after reporting why there is none)."""
        header = self.meta.get("key")
        raw = self._cell(row, header) if header else None
        if not _blank(raw):
            key = str(raw).strip()
            rec = self.imp.records.get(key)
            if rec is None:
                problem(header, "unknown_conversation", f"review key {key!r} is not in the export")
                return None
            if cid not in self.imp.by_id:
                problem(self.meta["id"], "unknown_conversation", f"conversation {cid!r} is not in the export")
                return None
            if _id_key(rec["id"]) != cid:
                problem(self.meta["id"], "id_mismatch", f"the row says conversation {cid!r} but its {header} "
                        f"{key!r} belongs to {rec['id']!r}: the row was edited or moved")
                return None
            return key
        keys = self.imp.by_id.get(cid, [])
        if not keys:
            problem(self.meta["id"], "unknown_conversation", f"conversation {cid!r} is not in the export")
            return None
        if len(keys) > 1:
            problem(self.meta["id"], "ambiguous_id", f"{len(keys)} conversations have id {cid!r}; the row needs "
                    f"its {header or '复核键'} to say which")
            return None
        return keys[0]


def _id_key(value: Any) -> str:
    """A conversation id as its cell shows it: control characters as U+FFFD (``printable``), no outer blanks."""
    return printable(str(value)).strip()


def import_reviews(files: Sequence[Path], rubric: Rubric, *, records: Sequence[Path] = ()) -> Imported:
    """Read every review file; ``records`` adds sources of conversations (needed for a CSV without sidecar)."""
    meta: dict[str, Any] | None = None
    recs: dict[str, dict[str, Any]] = {}
    by_id: dict[str, list[str]] = {}
    sources = [*records]
    for f in files:
        side = f.with_name(f.name + ".records.json")
        sources.append(f if f.suffix.lower() == ".xlsx" else side if side.is_file() else None)
    for src in filter(None, sources):
        m, rs = load_records(Path(src))
        meta = meta or m
        for rec in rs:
            masked = mask_record(rec)
            key = review_key(masked)
            if key not in recs:
                recs[key] = {**masked, "review_key": key}
                by_id.setdefault(_id_key(masked["id"]), []).append(key)
    if not recs:
        raise InputError("no conversations: an XLSX export carries them in a hidden sheet; for a CSV keep its "
                         "<file>.records.json beside it or pass --records", file=", ".join(map(str, files)))
    meta = meta or review_meta(rubric)
    known = {c.header for c in columns(rubric)} | set(meta["grades"]) | {meta["id"], meta["reviewer"],
                                                                         meta["comment"], meta["rules"]}
    imp = Imported([], [], recs, meta, by_id=by_id)
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    for f in files:
        _Sheet(Path(f), meta, known, imp, seen).read()
    return imp
