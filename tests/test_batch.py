"""qa.batch: the local runner — counts, resume (and its stamp), Parquet, --no-messages, the default two-worker
path, and a worker that cannot start."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from qa.batch import grade_files
from qa.errors import InputError, ModelError
from qa.grader import GradeSettings
from tests.conftest import ROOT


def _mixed_input(tmp_path):
    good = (ROOT / "data" / "samples" / "samples.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    bad = ['{"id": "broken-1", "messages": "not a list"}', "{this is not json", '{"messages": []}']
    lines = good[:7] + bad[:1] + good[7:15] + bad[1:] + good[15:]
    p = tmp_path / "mixed.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _rows(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_batch_counts_add_up_on_mixed_input(tmp_path):
    src = _mixed_input(tmp_path)
    out = tmp_path / "results.jsonl"
    run = grade_files([src], out, GradeSettings(model="none", profile="douyin", batch_size=4), workers=1)
    results = _rows(out)
    rejects = out.with_name("results.rejects.jsonl").read_text(encoding="utf-8").splitlines()
    assert run.stats.read == 23 == len(results) + len(rejects)
    assert len(results) == 20 and len(rejects) == 3
    assert all(json.loads(r).get("reason") for r in rejects)
    assert all(r["stamp"] == {"rubric": results[0]["stamp"]["rubric"], "model": None, "profile": "douyin"}
               for r in results)


def test_batch_resume_after_a_kill_neither_loses_nor_duplicates(tmp_path):
    src = _mixed_input(tmp_path)
    settings = GradeSettings(model="none", profile="douyin", batch_size=4)
    full = tmp_path / "full.jsonl"
    grade_files([src], full, settings, workers=1)
    expected = [r["id"] for r in _rows(full)]
    # a run killed mid-write: 9 complete lines and a torn tenth
    out = tmp_path / "results.jsonl"
    lines = full.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:9]) + lines[9][: len(lines[9]) // 2], encoding="utf-8")
    run = grade_files([src], out, settings, workers=1, resume=True)
    assert [r["id"] for r in _rows(out)] == expected and run.resumed == 9 and run.graded == 11


def test_batch_resume_refuses_a_changed_input(tmp_path):
    src = _mixed_input(tmp_path)
    out = tmp_path / "results.jsonl"
    settings = GradeSettings(model="none", profile="douyin")
    grade_files([src], out, settings, workers=1)
    first = _rows(out)[0]
    out.write_text(json.dumps({**first, "id": "someone-else"}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="cannot resume"):
        grade_files([src], out, settings, workers=1, resume=True)


def test_batch_refused_resume_leaves_the_results_as_they_were(tmp_path):
    """A resume refused (another input, another stamp, a damaged record mid-file) cuts nothing: not even a torn
    last line or what follows a blank one."""
    src = _mixed_input(tmp_path)
    settings = GradeSettings(model="none", profile="douyin", batch_size=4)
    out = tmp_path / "results.jsonl"
    grade_files([src], out, settings, workers=1)
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    body = "".join(lines[:3]) + "\n" + "".join(lines[3:9]) + lines[9][:20]   # a blank line, a torn last line
    other = tmp_path / "other.jsonl"
    other.write_text("".join(src.read_text(encoding="utf-8").splitlines(keepends=True)[1:]), encoding="utf-8")
    damaged = "".join(lines[:3]) + "{not json\n" + "".join(lines[3:9])
    for text, inp, st, why in ((body, other, settings, "the input changed"),
                               (body, src, GradeSettings(model="none", profile="kuaishou"), "different profile"),
                               (damaged, src, settings, "line 4 is not a complete result record")):
        out.write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=why):
            grade_files([inp], out, st, workers=1, resume=True)
        assert out.read_text(encoding="utf-8") == text
    out.write_text(body, encoding="utf-8")   # sound: the blank line is skipped, the torn line cut and graded again
    run = grade_files([src], out, settings, workers=1, resume=True)
    assert run.resumed == 9 and [r["id"] for r in _rows(out)] == [json.loads(x)["id"] for x in lines]


def test_batch_resume_refuses_a_different_stamp(tmp_path):
    src = _mixed_input(tmp_path)
    out = tmp_path / "results.jsonl"
    grade_files([src], out, GradeSettings(model="none", profile="douyin", batch_size=4), workers=1)
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:5]), encoding="utf-8")
    with pytest.raises(InputError, match="different profile"):
        grade_files([src], out, GradeSettings(model="none", profile="kuaishou"), workers=1, resume=True)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 5       # nothing mixed in
    other = tmp_path / "other.yaml"
    other.write_text((ROOT / "rubrics" / "default.yaml").read_text(encoding="utf-8")
                     .replace("lexicon: lexicon/zh.yaml", f"lexicon: {ROOT / 'rubrics' / 'lexicon' / 'zh.yaml'}")
                     .replace("first_response_s: 120 ", "first_response_s: 60 "), encoding="utf-8")
    with pytest.raises(InputError, match="different rubric"):
        grade_files([src], out, GradeSettings(rubric=str(other), model="none", profile="douyin"), workers=1,
                    resume=True)


def test_batch_resume_of_a_finished_parquet_checks_its_stamp_and_extends_it(tmp_path):
    """A finished Parquet run has no journal: a --resume regraded everything under any setup and overwrote it."""
    pytest.importorskip("pyarrow.parquet")
    import pyarrow.parquet as pq

    lines = (ROOT / "data" / "samples" / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    first, more = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("\n".join(lines[:12]) + "\n", encoding="utf-8")
    more.write_text("\n".join(lines[:30]) + "\n", encoding="utf-8")
    out = tmp_path / "r.parquet"
    grade_files([first], out, GradeSettings(model="none", profile="douyin"), workers=1)
    before = out.read_bytes()
    with pytest.raises(InputError, match="different profile"):
        grade_files([more], out, GradeSettings(model="none", profile="taobao"), workers=1, resume=True)
    assert out.read_bytes() == before and not list(tmp_path.glob("r.parquet.partial*"))
    run = grade_files([more], out, GradeSettings(model="none", profile="douyin"), workers=1, resume=True)
    assert (run.resumed, run.graded) == (12, 18)
    whole = tmp_path / "whole.parquet"
    grade_files([more], whole, GradeSettings(model="none", profile="douyin"), workers=1)
    drop = {"elapsed_ms"}
    assert ([{k: v for k, v in r.items() if k not in drop} for r in pq.read_table(out).to_pylist()]
            == [{k: v for k, v in r.items() if k not in drop} for r in pq.read_table(whole).to_pylist()])


def test_batch_resume_refuses_other_reading_options_and_a_default_run_keeps_its_stamp(tmp_path):
    src = _mixed_input(tmp_path)
    out = tmp_path / "results.jsonl"
    taobao = GradeSettings(model="none", batch_size=4, read=(("platform", "taobao"),))
    grade_files([src], out, taobao, workers=1, platform="taobao")
    assert _rows(out)[0]["stamp"]["read"] == {"platform": "taobao"}
    out.write_text("".join(out.read_text(encoding="utf-8").splitlines(keepends=True)[:3]), encoding="utf-8")
    with pytest.raises(InputError, match="different reading options"):
        grade_files([src], out, GradeSettings(model="none", read=(("platform", "douyin"),)), workers=1,
                    platform="douyin", resume=True)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3       # nothing mixed in
    grade_files([src], out, taobao, workers=1, platform="taobao", resume=True)
    plain = tmp_path / "plain.jsonl"
    grade_files([src], plain, GradeSettings(model="none"), workers=1)
    assert set(_rows(plain)[0]["stamp"]) == {"rubric", "model", "profile"}
    mixed = _rows(plain)[:2] + _rows(out)[2:4]                      # two setups' records in one file
    plain.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mixed), encoding="utf-8")
    with pytest.raises(InputError, match="line 3 was graded under another setup"):
        grade_files([src], plain, GradeSettings(model="none"), workers=1, resume=True)


def test_grade_resume_reads_a_column_profile_by_what_it_says_not_how_its_path_is_typed(tmp_path, monkeypatch):
    """--columns was stamped as typed: the same profile by another path was refused, an edited one accepted."""
    from typer.testing import CliRunner

    from qa.cli import app
    prof = tmp_path / "p.yaml"
    prof.write_text((ROOT / "qa" / "io" / "profiles" / "qianniu.yaml").read_text("utf-8"), "utf-8")
    src, out = ROOT / "data" / "samples" / "qianniu.csv", tmp_path / "r.jsonl"

    def grade(columns: str, *more: str):
        return CliRunner().invoke(app, ["grade", str(src), "--model", "none", "--workers", "1", "--columns", columns,
                                        "--out", str(out), *more])
    assert grade(str(prof)).exit_code == 0
    stamp = _rows(out)[0]["stamp"]["read"]["columns"]
    assert stamp.startswith("qianniu sha256:") and str(tmp_path) not in stamp
    out.write_text("".join(out.read_text(encoding="utf-8").splitlines(keepends=True)[:2]), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    r = grade("./p.yaml", "--resume")
    assert r.exit_code == 0, r.output
    prof.write_text(prof.read_text("utf-8") + "timezone: UTC\n", "utf-8")   # naive times read in another zone
    out.write_text("".join(out.read_text(encoding="utf-8").splitlines(keepends=True)[:2]), encoding="utf-8")
    r = grade("./p.yaml", "--resume")
    assert r.exit_code == 2 and "different reading options" in r.output, r.output


def test_batch_parquet_output_matches_jsonl(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from qa.grade import read_records
    src = _mixed_input(tmp_path)
    settings = GradeSettings(model="none", profile="kuaishou", batch_size=8)
    grade_files([src], tmp_path / "r.jsonl", settings, workers=1)
    grade_files([src], tmp_path / "r.parquet", settings, workers=1)
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    js = _rows(tmp_path / "r.jsonl")
    assert [r["id"] for r in table] == [r["id"] for r in js]
    assert [r["score"] for r in table] == [r["score"] for r in js]
    assert json.loads(table[0]["dimensions"]) == js[0]["dimensions"]
    assert list(read_records([tmp_path / "r.parquet"])) == list(read_records([tmp_path / "r.jsonl"]))
    assert not (tmp_path / "r.parquet.partial.jsonl").exists()


def test_batch_no_messages_keeps_results_small(tmp_path):
    from qa.review.records import read_results
    src = _mixed_input(tmp_path)
    full, small = tmp_path / "full.jsonl", tmp_path / "small.jsonl"
    grade_files([src], full, GradeSettings(model="none"), workers=1)
    grade_files([src], small, GradeSettings(model="none", messages=False), workers=1)
    assert all(r["messages"] is None for r in _rows(small))
    assert small.stat().st_size < full.stat().st_size * 0.75
    strip = [{k: v for k, v in r.items() if k != "messages"} for r in _rows(full)]
    assert strip == [{k: v for k, v in r.items() if k != "messages"} for r in _rows(small)]
    with pytest.raises(InputError, match="--no-messages"):        # the review needs the chat
        list(read_results([small]))


def test_batch_two_workers_match_one(tmp_path):
    """The default --workers 2 path (spawned pool) writes what one process writes, in input order."""
    src = _mixed_input(tmp_path)
    settings = GradeSettings(model="none", batch_size=3)
    grade_files([src], tmp_path / "one.jsonl", settings, workers=1)
    run = grade_files([src], tmp_path / "two.jsonl", settings, workers=2)
    assert run.graded == 20 and _rows(tmp_path / "two.jsonl") == _rows(tmp_path / "one.jsonl")


def test_batch_worker_that_cannot_load_the_model_ends_the_run(tmp_path):
    """A broken model folder used to make the pool respawn workers for ever; now the worker's error ends the
    run (the CLI: exit 2 and the message) within seconds."""
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    src = _mixed_input(tmp_path)
    t = time.perf_counter()
    with pytest.raises(ModelError, match="model"):
        grade_files([src], tmp_path / "r.jsonl", GradeSettings(model=str(broken)), workers=2)
    assert time.perf_counter() - t < 120


def test_platform_option_grades_unnamed_chats_as_that_platforms_chats(tmp_path):
    """``--platform taobao`` on Taobao chats whose records lost their platform grades them exactly as when the
    records name it (the rubric's taobao profile and the default model's Taobao offset); without it they read as
    ``other`` and grade differently."""
    named = [json.loads(line) for line in (ROOT / "data/samples/samples.jsonl").read_text(encoding="utf-8").splitlines()
             if json.loads(line).get("platform") == "taobao"][:6]
    (tmp_path / "named.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in named),
                                          encoding="utf-8")
    (tmp_path / "bare.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "platform"},
                                                            ensure_ascii=False) + "\n" for r in named),
                                         encoding="utf-8")
    settings = GradeSettings(batch_size=8)

    def graded(name, **kw):
        out = tmp_path / f"{name}-{kw.get('platform')}.jsonl"
        grade_files([tmp_path / f"{name}.jsonl"], out, settings, workers=1, **kw)
        return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]

    want, given, bare = graded("named"), graded("bare", platform="千牛"), graded("bare")
    assert [r["platform"] for r in given] == ["taobao"] * len(named) and {r["profile"] for r in given} == {"taobao"}
    assert [r["dimensions"] for r in given] == [r["dimensions"] for r in want]
    assert {r["platform"] for r in bare} == {"other"}
    expected = [[d["expected"] for d in r["dimensions"].values() if d["source"] == "model"] for r in (*bare, *want)]
    assert expected[: len(named)] != expected[len(named):]                  # the model's own grades move too


def test_the_model_stamp_reads_every_file_grading_reads(tmp_path):
    """A flag threshold in turnflags.json or the ridge channel changes what qa grade writes, so it changes the stamp
    a resumed run checks; the model card does not."""
    from qa.grader import model_hash
    model = tmp_path / "m"
    shutil.copytree(ROOT / "models" / "default", model)
    first = model_hash(model)
    (model / "MODEL_CARD.md").write_text("another card\n", encoding="utf-8")
    assert model_hash(model) == first
    meta = json.loads((model / "turnflags.json").read_text(encoding="utf-8"))
    meta["thresholds"]["uncivil_language"] += 0.05
    (model / "turnflags.json").write_text(json.dumps(meta), encoding="utf-8")
    second = model_hash(model)
    assert second != first
    ridge = json.loads((model / "ridge.json").read_text(encoding="utf-8"))
    (model / "ridge.json").write_text(json.dumps({**ridge, "beta": {}}), encoding="utf-8")
    assert model_hash(model) not in (first, second)


def test_a_second_run_into_the_same_output_stops_with_one_line(tmp_path):
    """Two runs into one --out: the second deleted the first one's journal (its records lost, exit 0 both), or with
    --resume both appended (ids twice). The output is held for the run."""
    import fcntl

    from qa.batch import output_lock
    src, out = _mixed_input(tmp_path), tmp_path / "r.jsonl"
    with open(tmp_path / "r.jsonl.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)   # another run holds it
        with pytest.raises(InputError, match="another qa grade is writing this output"):
            grade_files([src], out, GradeSettings(model="none"), workers=1)
    assert not out.exists()
    grade_files([src], out, GradeSettings(model="none"), workers=1)
    assert out.exists() and not (tmp_path / "r.jsonl.lock").exists()
    with output_lock(out), pytest.raises(InputError):
        with output_lock(out):
            pass


def test_parquet_output_is_renamed_into_place_whole(tmp_path, monkeypatch):
    """The conversion wrote straight into results.parquet: interrupted, it left a valid file of a quarter of the rows,
    or wiped the complete one there before."""
    pytest.importorskip("pyarrow.parquet")
    import pyarrow.parquet as pq

    from qa import batch
    src, out = _mixed_input(tmp_path), tmp_path / "r.parquet"
    grade_files([src], out, GradeSettings(model="none"), workers=1)
    rows = pq.read_table(out).num_rows
    journal = tmp_path / "j.jsonl"
    journal.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _rows_of(out)), encoding="utf-8")
    calls = []

    def dying(self, table, *a, **k):   # the second row group never comes
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(self, table, *a, **k)
    real = pq.ParquetWriter.write_table
    monkeypatch.setattr(pq.ParquetWriter, "write_table", dying)
    with pytest.raises(KeyboardInterrupt):
        batch.jsonl_to_parquet(journal, out, rows_per_group=1)
    assert pq.read_table(out).num_rows == rows and not list(tmp_path.glob("*.tmp"))


def _rows_of(path):
    import pyarrow.parquet as pq
    return pq.read_table(path).to_pylist()


def test_ctrl_c_in_a_multi_worker_run_exits_130_and_resumes(tmp_path):
    """Ctrl-C sets a flag the write loop reads: a KeyboardInterrupt raised inside the pool's locks left
    ``terminate()`` waiting for ever now and then (one start in eight)."""
    import os
    import signal
    import subprocess
    import sys

    recs = [json.loads(ln) for ln in (ROOT / "data" / "samples" / "samples.jsonl").read_text("utf-8").splitlines()]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({**recs[i % len(recs)], "id": f"c{i:05d}"}, ensure_ascii=False) + "\n"
                           for i in range(4000)), encoding="utf-8")
    out = tmp_path / "r.jsonl"
    cmd = [sys.executable, "-c", "from qa.cli import main; main()", "grade", str(src), "--model", "none", "--workers", "2",
           "--batch-size", "16", "--out", str(out)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    journal = out                                   # a JSONL output is its own journal
    deadline = time.monotonic() + 120
    while p.poll() is None and time.monotonic() < deadline and not (journal.exists() and journal.stat().st_size):
        time.sleep(0.05)
    assert p.poll() is None, p.stderr.read()
    p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(timeout=30)
    finally:
        p.kill()
    assert rc == 130 and "Traceback" not in p.stderr.read()
    assert 0 < len(out.read_text("utf-8").splitlines()) < 4000
    r = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300, env=os.environ)
    assert r.returncode == 0, r.stderr
    ids = [json.loads(ln)["id"] for ln in out.read_text("utf-8").splitlines()]
    assert sorted(ids) == [f"c{i:05d}" for i in range(4000)]


def test_a_chat_with_nobody_in_it_is_rejected_not_scored_100(tmp_path):
    """System events only (a session opened and closed): it was scored 100 / 优秀 on resolution alone."""
    good = (ROOT / "data" / "samples" / "samples.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    nobody = json.dumps({"id": "nobody", "messages": [
        {"role": "system", "type": "event", "event": "session_start", "ts": "2026-03-02T10:00:00+08:00"},
        {"role": "system", "type": "event", "event": "session_end", "ts": "2026-03-02T10:00:20+08:00"}]})
    src = tmp_path / "c.jsonl"
    src.write_text("\n".join([good[0], nobody, *good[1:]]) + "\n", encoding="utf-8")
    run = grade_files([src], tmp_path / "r.jsonl", GradeSettings(model="none"), workers=1)
    assert (run.stats.read, run.stats.accepted, run.stats.rejected, run.graded) == (4, 3, 1, 3)
    rejects = _rows(tmp_path / "r.rejects.jsonl")
    assert [(r["id"], r["line"], r["field"]) for r in rejects] == [("nobody", 2, "messages")]
    assert "nobody" not in {r["id"] for r in _rows(tmp_path / "r.jsonl")}
