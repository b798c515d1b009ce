"""Shared fixtures: build conversations from compact tuples."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest

from qa.rubric import load_rubric
from qa.schema import Conversation

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
STC3 = ROOT.parent / "shared" / "data" / "stc3" / "dch1_train_cn_3000.json"
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def make_conv(*msgs, start: dt.datetime = T0, cid: str = "c1", **fields) -> Conversation:
    """Messages as (role, text, seconds_from_start[, type[, event]]); type defaults to text."""
    out = []
    for m in msgs:
        role, text, sec = m[0], m[1], m[2]
        mtype = m[3] if len(m) > 3 else ("event" if role == "system" else "text")
        msg = {"role": role, "type": mtype, "text": text,
               "ts": None if sec is None else (start + dt.timedelta(seconds=sec)).isoformat()}
        if mtype == "event":
            msg["event"] = m[4] if len(m) > 4 else text
        out.append(msg)
    return Conversation.model_validate({"id": cid, "platform": "douyin", "messages": out, **fields})


@pytest.fixture(scope="session", autouse=True)
def _ngram_fit_cache(tmp_path_factory):
    """Training runs cache their n-gram fits in a per-session folder, not in the user's cache."""
    import os
    old = os.environ.get("QA_NGRAM_CACHE")
    os.environ["QA_NGRAM_CACHE"] = str(tmp_path_factory.mktemp("ngram-fits"))
    yield
    if old is None:
        os.environ.pop("QA_NGRAM_CACHE", None)
    else:
        os.environ["QA_NGRAM_CACHE"] = old


@pytest.fixture(scope="session")
def rubric():
    return load_rubric()


def run_main(capsys, *args) -> tuple[int, str, str]:
    """The installed ``qa`` entry point, in process: (exit code, stdout, stderr)."""
    from qa.cli import main
    old = sys.argv
    sys.argv = ["qa", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(code: int, err: str, *words: str) -> str:
    """Exit 2 and one ``error:`` line holding every one of ``words``, no traceback: the line, spaces collapsed."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    text = " ".join(err.split())
    for w in words:
        assert w in text, (w, err)
    return text


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def fill_review_sheet(ws, grades, reviewer: str = "甲") -> dict[str, int]:
    """A reviewer's pass over an exported 复核 sheet: every 复核· grade column of each row (``grades``: row → grade)
    set, the rule column left as is, the reviewer named. Returns header → column number."""
    col = {c.value: c.column for c in ws[1]}
    for r, g in grades.items():
        for h in col:
            if h.startswith("复核·") and h != "复核·违规规则":
                ws.cell(r, col[h]).value = g
        ws.cell(r, col["评审人"]).value = reviewer
    return col


def run_bounded(code: str, text: str, timeout: float) -> str:
    """Run ``code`` in a fresh Python with ``text`` (JSON) on stdin and a wall-clock ``timeout`` — for inputs built to
    make a pattern backtrack, where a regression hangs rather than fails — and return its stdout."""
    import json
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(text), capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-500:]
    return out.stdout.strip()
