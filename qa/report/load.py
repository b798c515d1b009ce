"""Load graded-result files (docs/results.md) into one DuckDB table, checking the fields a report needs.

Each file becomes rows of ``results(file, record, id, platform, shop, agent, day, profile, score, band,
failed, dimensions, findings, timing, rating)``; the nested fields are DuckDB ``JSON`` whatever the format.
A missing file, an unreadable one, or a record without a required field raises ``InputError`` naming the
file, the record and the field.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from qa.errors import InputError
from qa.grade import SCORE_RANGE

JSONL = (".jsonl", ".ndjson")
PARQUET = (".parquet", ".pq")
NESTED = ("dimensions", "findings", "timing", "rating")

# field → (JSON types it may have, how to say so); every field must be present, even when null.
FIELDS: dict[str, tuple[tuple[str, ...], str]] = {
    "id": (("VARCHAR", "BIGINT", "UBIGINT"), "a string"),
    "platform": (("VARCHAR", "NULL"), "a string or null"),
    "shop": (("VARCHAR", "NULL"), "a string or null"),
    "agent": (("VARCHAR", "NULL"), "a string or null"),
    "day": (("VARCHAR", "NULL"), "a YYYY-MM-DD string or null"),
    "profile": (("VARCHAR",), "a string"),
    "score": (("DOUBLE", "BIGINT", "UBIGINT"), "a number"),
    "band": (("VARCHAR",), "a string"),
    "failed": (("BOOLEAN",), "true or false"),
    "dimensions": (("OBJECT",), "an object"),
    "findings": (("ARRAY",), "a list"),
    "timing": (("OBJECT",), "an object"),
    "rating": (("OBJECT", "NULL"), "an object or null"),
}
_TYPE_WORDS = {"VARCHAR": "a string", "BIGINT": "an integer", "UBIGINT": "an integer", "DOUBLE": "a number",
               "BOOLEAN": "a boolean", "ARRAY": "a list", "OBJECT": "an object", "NULL": "null"}
# the timing figures the KPIs are computed from (qa.timing.Timing.as_dict writes all of them)
TIMING_KEYS = ("human_service", "first_response_ok", "reply_runs", "replies_ok", "reply_delays_s",
               "responded_24h")

_SCHEMA = """CREATE TABLE IF NOT EXISTS results (
    file VARCHAR, record BIGINT, id VARCHAR, platform VARCHAR, shop VARCHAR, agent VARCHAR, day VARCHAR,
    profile VARCHAR, score DOUBLE, band VARCHAR, failed BOOLEAN,
    dimensions JSON, findings JSON, timing JSON, rating JSON)"""


def load_results(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> int:
    """Append every file to the ``results`` table; returns the number of records loaded."""
    con.execute(_SCHEMA)
    for path in paths:
        _load_one(con, Path(path))
    return con.execute("SELECT count(*) FROM results").fetchone()[0]


def _load_one(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    if not path.is_file():
        raise InputError("no such results file", file=str(path))
    suffix = path.suffix.lower()
    try:
        if suffix in JSONL:
            con.execute("CREATE OR REPLACE TEMP TABLE raw AS SELECT row_number() OVER () AS record, json AS j "
                        "FROM read_json_objects(?, format='newline_delimited')", [str(path)])
        elif suffix in PARQUET:
            _parquet_raw(con, path)
        else:
            raise InputError(f"unsupported results file type {suffix or '(none)'!r} "
                             f"(expected {', '.join(JSONL + PARQUET)})", file=str(path))
    except duckdb.Error as e:
        raise InputError(f"cannot read: {_first_line(e)}", file=str(path)) from None
    _check(con, path)
    con.execute("""INSERT INTO results SELECT ?, record, j->>'id', j->>'platform', j->>'shop', j->>'agent',
        j->>'day', j->>'profile', CAST(j->>'score' AS DOUBLE), j->>'band', CAST(j->>'failed' AS BOOLEAN),
        j->'dimensions', j->'findings', j->'timing', j->'rating' FROM raw""", [str(path)])
    con.execute("DROP TABLE raw")


def _parquet_raw(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Parquet rows as JSON objects, so both formats are checked and read by the same SQL."""
    cols = {r[0]: r[1] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()}
    missing = [f for f in FIELDS if f not in cols]
    if missing:
        raise InputError(f"column missing (a graded-results file has {', '.join(FIELDS)})",
                         file=str(path), field=missing[0])
    for f in NESTED:
        if cols[f] in ("VARCHAR", "JSON"):
            bad = con.execute(f'SELECT min(record) FROM (SELECT row_number() OVER () AS record, "{f}" AS v '
                              "FROM read_parquet(?)) WHERE v IS NOT NULL AND NOT json_valid(v)",
                              [str(path)]).fetchone()[0]
            if bad is not None:
                raise InputError("not valid JSON", file=str(path), line=bad, field=f)
    parts = ", ".join(f"'{f}', " + (f'CAST("{f}" AS JSON)' if f in NESTED and cols[f] in ("VARCHAR", "JSON")
                                    else f'to_json("{f}")' if f in NESTED else f'"{f}"') for f in FIELDS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw AS SELECT row_number() OVER () AS record, "
                f"json_object({parts}) AS j FROM read_parquet(?)", [str(path)])


def _check(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Raise on the first record (in field order) that lacks a field or has it with the wrong type."""
    bad = con.execute("SELECT min(record) FROM raw WHERE json_type(j) <> 'OBJECT'").fetchone()[0]
    if bad is not None:
        raise InputError("not a JSON object", file=str(path), line=_line(path, bad))
    checks: list[tuple[str, str, str]] = []
    for f, (types, _) in FIELDS.items():
        listed = ", ".join(f"'{t}'" for t in types)
        checks += [(f, f"(j->'{f}') IS NULL", "missing"), (f, f"json_type(j->'{f}') NOT IN ({listed})", "type")]
    # a score outside 0–100 (negative, huge, NaN, Infinity) was not written by qa grade: refused, not clamped
    lo, hi = SCORE_RANGE
    checks.append(("score", f"NOT (TRY_CAST(j->>'score' AS DOUBLE) BETWEEN {lo} AND {hi})", "range"))
    for k in TIMING_KEYS:
        checks.append((f"timing.{k}", f"json_type(j->'timing') = 'OBJECT' AND (j->'timing'->'{k}') IS NULL",
                       "missing"))
    sql = ", ".join(f"min(record) FILTER (WHERE {cond})" for _, cond, _ in checks)
    firsts = con.execute(f"SELECT {sql} FROM raw").fetchone()
    for (field, _, kind), record in zip(checks, firsts):
        if record is None:
            continue
        if kind == "missing":
            raise InputError("required field missing (see docs/results.md)", file=str(path),
                             line=_line(path, record), field=field)
        if kind == "range":
            got = con.execute(f"SELECT j->>'{field}' FROM raw WHERE record = ?", [record]).fetchone()[0]
            raise InputError(f"must be a number from {lo:g} to {hi:g}, not {got}", file=str(path),
                             line=_line(path, record), field=field)
        got = con.execute(f"SELECT json_type(j->'{field}') FROM raw WHERE record = ?", [record]).fetchone()[0]
        raise InputError(f"must be {FIELDS[field][1]}, not {_TYPE_WORDS.get(got, got)}", file=str(path),
                         line=_line(path, record), field=field)


def _line(path: Path, record: int) -> int:
    """The line of the ``record``-th JSON object (blank lines are skipped on read); the row for Parquet."""
    if path.suffix.lower() not in JSONL:
        return record
    seen = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            seen += bool(line.strip())
            if seen == record:
                return n
    return record


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0]
