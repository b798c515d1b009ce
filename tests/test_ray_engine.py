"""qa.ray_engine (``qa grade --engine ray``): records equal to the local engine's, the same rejects and counts,
resume after a kill, the CLI. One local Ray with 2 CPUs for the whole module; skipped without the ray extra."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from qa.batch import grade_files
from qa.errors import InputError
from qa.grade import read_records
from qa.grader import GradeSettings
import qa.ray_engine as eng
from qa.ray_engine import grade_files_ray, parts_dir, ray_available
from tests.conftest import ROOT

SAMPLES = ROOT / "data" / "samples" / "samples.jsonl"
NO_MODEL = GradeSettings(model="none", profile="douyin", batch_size=4)
needs_ray = pytest.mark.skipif(not ray_available(), reason="the Ray engine needs the 'ray' extra (pip install 'qa[ray]')")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs, no dashboard) for the module: ``ray.init`` costs seconds, not per test."""
    import ray
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", object_store_memory=256 << 20)
    yield
    if started:
        ray.shutdown()


def test_nothing_in_the_core_imports_ray():
    code = ("import sys, qa.batch, qa.grader, qa.grade, qa.ray_engine, qa.cli, qa.cli.grade\n"
            "sys.exit('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def _mixed_input(tmp_path):
    good = SAMPLES.read_text(encoding="utf-8").splitlines()[:20]
    bad = ['{"id": "broken-1", "messages": "not a list"}', "{this is not json", '{"messages": []}',
           '{"id": "nobody", "messages": [{"role": "system", "type": "event", "event": "session_start"}]}']
    lines = good[:7] + bad[:1] + good[7:15] + bad[1:] + good[15:]
    p = tmp_path / "mixed.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _more_input(tmp_path):
    """10 chats of the samples that ``_mixed_input`` does not hold, ids m0…m9."""
    more = tmp_path / "more.jsonl"
    recs = [json.loads(x) for x in SAMPLES.read_text("utf-8").splitlines()[20:30]]
    more.write_text("".join(json.dumps({**r, "id": f"m{i}"}, ensure_ascii=False) + "\n" for i, r in enumerate(recs)),
                    encoding="utf-8")
    return more


def _by_id(path):
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    recs = list(read_records(files))
    out = {r["id"]: r for r in recs}
    assert len(out) == len(recs), "an id was written twice"
    return out


@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_records_equal_the_local_engines_on_the_samples_with_the_model(tmp_path):
    settings = GradeSettings(profile="douyin", batch_size=16)
    local = grade_files([SAMPLES], tmp_path / "local.parquet", settings, workers=1)
    run = grade_files_ray([SAMPLES], tmp_path / "ray", settings, workers=2)
    want, got = _by_id(local.out), _by_id(run.out)
    assert run.stats == local.stats and run.graded == local.graded == 64
    assert set(got) == set(want)
    for cid, rec in want.items():
        assert got[cid]["stamp"] == rec["stamp"] and rec["stamp"]["model"]
        assert got[cid]["findings"] == rec["findings"]
        assert {k: d["level"] for k, d in got[cid]["dimensions"].items()} == \
               {k: d["level"] for k, d in rec["dimensions"].items()}
        # the model runs on other batches (other padding), so probabilities may differ in the last bits
        assert got[cid]["score"] == pytest.approx(rec["score"], abs=1e-6)
        assert {k: v for k, v in got[cid].items() if k not in ("dimensions", "score", "deductions")} == \
               {k: v for k, v in rec.items() if k not in ("dimensions", "score", "deductions")}


@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_counts_and_rejects_equal_the_local_engines_on_broken_input(tmp_path):
    src = _mixed_input(tmp_path)
    local = grade_files([src], tmp_path / "local.parquet", NO_MODEL, workers=1)
    run = grade_files_ray([src], tmp_path / "ray.parquet", NO_MODEL, workers=2)
    assert run.out.is_file() and not parts_dir(run.out).exists()
    assert run.stats == local.stats
    assert (run.stats.read, run.stats.accepted, run.stats.rejected) == (24, 20, 4)
    assert '"id":"nobody"' in run.rejects.read_text(encoding="utf-8").replace(" ", "")
    assert run.graded == 20 and run.resumed == 0
    assert run.rejects.read_text(encoding="utf-8") == local.rejects.read_text(encoding="utf-8")
    assert _by_id(run.out) == _by_id(local.out)


@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_resume_after_a_kill_neither_loses_nor_duplicates(tmp_path):
    import pyarrow.parquet as pq

    src = _mixed_input(tmp_path)
    full = grade_files([src], tmp_path / "full.parquet", NO_MODEL, workers=1)    # the local engine's records
    expected = _by_id(full.out)
    # a job killed part-way: one finished part with 9 records, one torn part (no footer)
    out = tmp_path / "out"
    out.mkdir()
    table = pq.read_table(full.out)
    pq.write_table(table.slice(0, 9), out / "qa-part_earlier_000000-0.parquet")
    torn = out / "qa-part_0f3e_000001-0.parquet"          # named as the engine names its parts
    pq.write_table(table.slice(9, 5), torn)
    data = torn.read_bytes()
    torn.write_bytes(data[: len(data) // 2])
    run = grade_files_ray([src], out, NO_MODEL, workers=2, resume=True)
    assert not torn.exists()
    assert run.resumed == 9 and run.graded == 11 and run.stats.accepted == 20
    assert _by_id(out) == expected
    # a second rerun has nothing left to do and writes nothing
    again = grade_files_ray([src], out, NO_MODEL, workers=2, resume=True)
    assert again.resumed == 20 and again.graded == 0 and _by_id(out) == expected


@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_resume_into_one_parquet_file_and_refusing_another_stamp(tmp_path):
    src = _mixed_input(tmp_path)
    out = tmp_path / "results.parquet"
    grade_files_ray([src], out, NO_MODEL, workers=1)
    first = _by_id(out)
    run = grade_files_ray([src], out, NO_MODEL, workers=1, resume=True)
    assert run.resumed == 20 and run.graded == 0 and _by_id(out) == first
    with pytest.raises(InputError, match="profile"):
        grade_files_ray([src], out, GradeSettings(model="none", profile="taobao"), workers=1, resume=True)
    # without --resume the earlier parts are replaced, not appended to
    shutil.rmtree(parts_dir(out), ignore_errors=True)
    run = grade_files_ray([src], out, NO_MODEL, workers=1)
    assert run.graded == 20 and _by_id(out) == first


@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_a_refused_resume_leaves_the_finished_file_as_it_was(tmp_path):
    """A resume refused for another profile, or for an input that lost chats, had already moved the finished
    results.parquet into results.parquet.parts/: the file the user had was gone from where it was."""
    src = _mixed_input(tmp_path)
    out = tmp_path / "results.parquet"
    grade_files_ray([src], out, NO_MODEL, workers=1)
    data = out.read_bytes()
    with pytest.raises(InputError, match="profile"):
        grade_files_ray([src], out, GradeSettings(model="none", profile="taobao"), workers=1, resume=True)
    fewer = tmp_path / "fewer.jsonl"
    fewer.write_text("".join(src.read_text("utf-8").splitlines(keepends=True)[:5]), encoding="utf-8")
    with pytest.raises(InputError, match="input changed"):
        grade_files_ray([fewer], out, NO_MODEL, workers=1, resume=True)
    assert out.read_bytes() == data and not parts_dir(out).exists()


@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_resume_goes_on_from_a_finished_file_and_the_parts_a_stopped_run_left(tmp_path):
    """A finished results.parquet extended with --resume, that run stopped after writing a part: the next resume
    left the finished file out and graded its chats again. Now its chats are kept, and a chat both hold (a run
    without --resume stopped after regrading it) is written once, from the part."""
    import pyarrow.parquet as pq
    src, more = _mixed_input(tmp_path), _more_input(tmp_path)
    local = grade_files([src, more], tmp_path / "local.parquet", NO_MODEL, workers=1)
    expected = _by_id(local.out)
    out = tmp_path / "results.parquet"
    grade_files_ray([src], out, NO_MODEL, workers=1)
    table = pq.read_table(local.out)
    parts = parts_dir(out)
    parts.mkdir()
    ids = table.column("id").to_pylist()
    rows = [ids.index(i) for i in ("m0", "m1", "m2", "m3")] + [0, 1]   # 4 new chats, and 2 graded again
    pq.write_table(table.take(rows), parts / "qa-part_stopped_000000-0.parquet")
    (parts / eng.BASE_MARK).touch()                      # what the stopped resume wrote when it started
    run = grade_files_ray([src, more], out, NO_MODEL, workers=1, resume=True)
    assert run.resumed == 24 and run.graded == 6 and run.stats.accepted == 30
    assert _by_id(out) == expected and not parts.exists()


@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_resume_after_a_stopped_run_without_resume_replaces_the_file(tmp_path):
    """Parts that a run without --resume left (it was stopped) replace the finished file: a resume goes on from the
    parts alone, even when the file holds another stamp (it was refused) or another day's chats."""
    import pyarrow.parquet as pq
    src = _mixed_input(tmp_path)
    out = tmp_path / "results.parquet"
    grade_files_ray([src], out, GradeSettings(model="none", profile="taobao"), workers=1)   # yesterday's, other stamp
    local = grade_files([src], tmp_path / "local.parquet", NO_MODEL, workers=1)
    parts = parts_dir(out)
    parts.mkdir()
    pq.write_table(pq.read_table(local.out).slice(0, 7), parts / "qa-part_stopped_000000-0.parquet")
    run = grade_files_ray([src], out, NO_MODEL, workers=1, resume=True)
    assert run.resumed == 7 and run.graded == 13 and _by_id(out) == _by_id(local.out)


def test_ray_makes_paths_absolute_but_not_names(tmp_path, monkeypatch):
    """A column profile's name or ``none`` beside a folder of that name stays a name (the whole file was rejected)."""
    monkeypatch.chdir(tmp_path)
    for d in ("kuaishou", "none", "models/mine"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "rub.yaml").write_text("x", encoding="utf-8")
    assert eng._here("kuaishou", "columns") == "kuaishou" and eng._here("none", "model") == "none"
    assert eng._here("models/mine", "model") == str(tmp_path / "models" / "mine")
    assert eng._here("rub.yaml", "file") == str(tmp_path / "rub.yaml") and eng._here("rub.yaml", "columns") == str(
        tmp_path / "rub.yaml")


@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_reads_a_relative_rubric_from_where_qa_runs_not_where_ray_started(tmp_path, monkeypatch):
    """On a cluster a relative --rubric (and --model, --columns) was opened from the folder `ray start` ran in on
    each node, which graded with that folder's file of the name, or failed with Ray's traceback."""
    src = _mixed_input(tmp_path)
    rub = tmp_path / "rub"
    shutil.copytree(ROOT / "rubrics", rub)
    (rub / "default.yaml").rename(rub / "mine.yaml")
    monkeypatch.chdir(tmp_path)                          # the module's Ray started in another folder
    mine = GradeSettings(rubric="rub/mine.yaml", model="none", profile="douyin", batch_size=4)
    run = grade_files_ray([src], tmp_path / "out", mine, workers=1)
    assert run.graded == 20
    local = grade_files([src], tmp_path / "local.jsonl", mine, workers=1)
    assert _by_id(tmp_path / "out") == _by_id(local.out)


@needs_ray
def test_ray_a_ctrl_c_while_ray_starts_is_acted_on_once_it_has_started(tmp_path, monkeypatch):
    """A Ctrl-C raised inside ray.init segfaulted the driver (2 tries in 4): the signal is kept until the start is
    over, then the run stops as an interrupt, with the handlers as they were."""
    import os
    import signal
    import time

    import qa.ray_engine as eng

    finished = []

    def init_hit_by_ctrl_c(*a, **k):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)                                  # the handler runs here, between bytecodes
        finished.append(True)                            # not reached when the Ctrl-C is raised inside the start
        return False
    monkeypatch.setattr(eng, "_init", init_hit_by_ctrl_c)
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)    # the stop quiets it; put it back after
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        grade_files_ray([_mixed_input(tmp_path)], tmp_path / "out", NO_MODEL, workers=1)
    assert finished == [True]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


@needs_ray
def test_ray_cli_a_malformed_address_is_one_line(tmp_path):
    """``--address bogus`` printed Ray's traceback (and ``--out .`` raised ValueError: a path with no name, below)."""
    src = _mixed_input(tmp_path)
    run = subprocess.run([sys.executable, "-c", "from qa.cli import main; main()", "grade", str(src), "--engine", "ray",
                          "--workers", "1", "--model", "none", "--address", "bogus", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "cannot connect to a Ray cluster at bogus" in run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    from typer.testing import CliRunner

    from qa.cli import app
    r = CliRunner().invoke(app, ["grade", str(src), "--engine", "ray", "--address", "auto", "--object-store-mb", "512",
                                 "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "--object-store-mb" in r.output and "cluster's own" in r.output


@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_cli_grades_into_dot(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from qa.cli import app
    src = _mixed_input(tmp_path)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    r = CliRunner().invoke(app, ["grade", str(src), "--engine", "ray", "--workers", "1", "--model", "none", "--out", "."])
    assert r.exit_code == 0, r.output
    assert len(_by_id(here)) == 20 and (tmp_path / "here.rejects.jsonl").is_file()


@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_never_resumes_from_or_deletes_a_parquet_file_it_did_not_write(tmp_path):
    """--resume --out someone's own Parquet file moved it into the parts folder and deleted it as a torn part; a
    finished results file of another day in the --out folder was taken for a part and deleted."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    src = _mixed_input(tmp_path)
    sales = tmp_path / "sales.parquet"
    pq.write_table(pa.table({"order_id": list(range(100))}), sales)
    data = sales.read_bytes()
    with pytest.raises(InputError, match="not a qa results file"):
        grade_files_ray([src], sales, NO_MODEL, workers=1, resume=True)
    assert sales.read_bytes() == data and not parts_dir(sales).exists()
    thin = tmp_path / "thin.parquet"                     # id and stamp, nothing else: failed in the merge, after grading
    for stamp, why in (("{}", "no platform"), ("{not json", "no readable id and stamp")):
        pq.write_table(pa.table({"id": ["x"], "stamp": [stamp]}), thin)
        with pytest.raises(InputError, match=f"not a qa results file, so --resume cannot go on from it \\({why}"):
            grade_files_ray([src], thin, NO_MODEL, workers=1, resume=True)
        assert not parts_dir(thin).exists()
    folder = tmp_path / "qa_out"
    folder.mkdir()
    monday = grade_files([src], folder / "monday.parquet", NO_MODEL, workers=1).out   # the local engine's file
    kept = monday.read_bytes()
    for resume in (False, True):
        with pytest.raises(InputError, match="monday.parquet: not a part this engine wrote"):
            grade_files_ray([src], folder, NO_MODEL, workers=1, resume=resume)
    assert monday.read_bytes() == kept


@needs_ray
def test_ray_an_address_nobody_answers_at_or_an_unwritable_output_is_one_error_before_ray_starts(tmp_path):
    """--address to a host:port where no Ray runs waited for ever; an output that cannot be written (a read-only
    folder was pages of Ray's traceback from its write task; here a parent that is a file, refused as early) is one
    OSError naming it."""
    import socket
    import time
    src = _mixed_input(tmp_path)
    with socket.socket() as s:                           # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    with pytest.raises(InputError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        grade_files_ray([src], tmp_path / "out", NO_MODEL, workers=1, address=f"127.0.0.1:{port}")
    assert time.monotonic() - t < 60
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(OSError) as e:
        grade_files_ray([src], blocker / "out", NO_MODEL, workers=1)
    assert str(blocker) in str(e.value.filename)


@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_cli_counts_line_and_a_repeated_id_across_files(tmp_path):
    from typer.testing import CliRunner

    from qa.cli import app
    src = _mixed_input(tmp_path)
    again = tmp_path / "again.jsonl"          # a conversation of mixed.jsonl, once more
    again.write_text(SAMPLES.read_text(encoding="utf-8").splitlines()[1] + "\n", encoding="utf-8")
    out = tmp_path / "res"
    r = CliRunner().invoke(app, ["grade", str(src), str(again), "--engine", "ray", "--workers", "1",
                                 "--model", "none", "--profile", "douyin", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "read 25 · accepted 20 · rejected 5 · repaired 0" in r.output and "graded 20 conversations" in r.output
    assert len(_by_id(out)) == 20
    rej = [json.loads(x) for x in (tmp_path / "res.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rej) == 5 and rej[-1]["line"] == 1 and rej[-1]["field"] == "id" and rej[-1]["file"] == str(again) and str(src) in rej[-1]["reason"]
    r = CliRunner().invoke(app, ["grade", str(src), "--engine", "ray", "--out", str(tmp_path / "r.jsonl")])
    assert r.exit_code == 2 and "Parquet" in r.output


@needs_ray
@pytest.mark.parametrize("resume", [False, True])
def test_ray_never_takes_someone_elses_parquet_for_a_part(tmp_path, resume):
    import pyarrow as pa
    import pyarrow.parquet as pq
    folder = tmp_path / "exports"
    folder.mkdir()
    pq.write_table(pa.table({"order_id": [1, 2]}), folder / "orders.parquet")
    (folder / "torn.parquet").write_bytes(b"PAR1 not finished")
    with pytest.raises(InputError, match="not a part this engine wrote"):   # refused before Ray starts
        grade_files_ray([SAMPLES], folder, NO_MODEL, workers=1, resume=resume)
    assert sorted(p.name for p in folder.iterdir()) == ["orders.parquet", "torn.parquet"]


def test_ray_cli_caps_workers_by_this_machines_cpus_when_ray_starts_here(tmp_path, monkeypatch, capsys):
    """``--engine ray --workers 500`` without --address started Ray here with 500 actors, each loading the model: on
    a 2-core box, out of memory. Without --address the local engine's cap applies (4 per CPU); with one, 1,024."""
    import os

    from tests.conftest import one_line_error, run_main
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    started = []

    def stub(inputs, out, settings, *, workers, address, **kw):   # the run itself is not this test's
        started.append((workers, address))
        raise InputError("stub run")
    monkeypatch.setattr(eng, "grade_files_ray", stub)
    src = _mixed_input(tmp_path)
    base = ["grade", src, "--engine", "ray", "--model", "none", "--out", tmp_path / "o"]
    code, _, err = run_main(capsys, *base, "--workers", "9")
    one_line_error(code, err, "--workers 9: must be from 1 to 8", "4 per CPU", "this machine has 2",
                   "without --address Ray starts here")
    code, _, err = run_main(capsys, *base, "--workers", "500", "--address", "auto")
    one_line_error(code, err, "stub run")
    code, _, err = run_main(capsys, *base, "--workers", "1025", "--address", "auto")
    one_line_error(code, err, "--workers 1025: must be from 1 to 1024", "actors on the cluster")
    code, _, err = run_main(capsys, *base, "--workers", "8")
    one_line_error(code, err, "stub run")
    assert started == [(500, "auto"), (8, None)] and not (tmp_path / "o").exists()


@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_a_stopped_run_leaves_no_empty_folder_it_made(tmp_path, monkeypatch):
    """A Ctrl-C or SIGTERM before any part was written left the empty FILE.parquet.parts or --out folder, and the
    folders made for them. The folders this run made are removed when empty (the resume mark it wrote aside);
    a folder that was there, or that holds a file (the rejects), is kept."""
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)    # the stop quiets it; put it back after
    src = _mixed_input(tmp_path)
    done = tmp_path / "done.parquet"
    grade_files_ray([src], done, NO_MODEL, workers=1)   # a finished file that a resume goes on from
    data = done.read_bytes()

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt
    with monkeypatch.context() as m:                     # stopped while Ray starts: nothing written yet
        m.setattr(eng, "_init", ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            grade_files_ray([src], tmp_path / "a" / "b" / "r.parquet", NO_MODEL, workers=1)
        mine = tmp_path / "mine"                         # the user's own empty folder
        mine.mkdir()
        with pytest.raises(KeyboardInterrupt):
            grade_files_ray([src], mine, NO_MODEL, workers=1)
    assert not (tmp_path / "a").exists() and mine.is_dir()
    with monkeypatch.context() as m:                     # SIGTERM after the scan, before the first part
        m.setattr(eng, "_actor_cpus", lambda *a: eng._terminated(15, None))
        with pytest.raises(SystemExit) as e:
            grade_files_ray([src], tmp_path / "c" / "res", NO_MODEL, workers=1)
        assert e.value.code == 143
        with pytest.raises(SystemExit):
            grade_files_ray([src, _more_input(tmp_path)], done, NO_MODEL, workers=1, resume=True)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["res.rejects.jsonl"]
    assert not parts_dir(done).exists() and done.read_bytes() == data
