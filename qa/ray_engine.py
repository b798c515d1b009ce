"""Bulk grading on Ray Data (``qa grade --engine ray``): the same ``Grader`` as the local runner, one per actor.

Optional: needs the ``ray`` extra (``pip install 'qa[ray]'``); nothing else in ``qa`` imports this module or
Ray. The job, in three steps:

1. **Scan** — one Ray task per input file reads it with the project's own readers (``qa.io.read_path``: JSONL,
   DialEval JSON, CSV/TSV/XLSX exports) and sends back only each item's id (or its reject) and whether it was
   repaired. The driver counts them (``ReadStats``), rejects repeated ids exactly as ``read_many(unique_ids=True)``
   does, writes ``<out>.rejects.jsonl`` in input order, and works out which conversations to skip: repeats,
   and — on ``resume`` — ids already written.
2. **Grade** — ``ray.data.from_items`` (one block per file) → ``flat_map`` re-reads each file and emits the
   conversations to grade (pickled, so the actor sees exactly what the reader built) → ``map_batches`` over a
   pool of ``workers`` actors, each building ``Grader.from_settings`` once and returning Arrow tables in
   ``qa.grade.arrow_schema()`` → ``write_parquet`` into the parts folder (one file per block or more). Actors
   reserve a fraction of a CPU each so that read tasks always find one (a pool that reserves every CPU starves
   the reads and the job hangs, ray-project/ray#44687).
3. **Finish** — with ``--out DIR`` the parts are the result (any Parquet reader reads the folder); with
   ``--out FILE.parquet`` they are written into ``FILE.parquet.parts/`` and merged into one file at the end,
   so a kill never leaves a broken results file.

Resume: ``write_parquet`` appends, so a rerun with ``resume`` first reads the ids (and stamp) of the part files
already there — a torn file from a kill has no footer and is deleted, its conversations graded again — and
grades only the rest; a stamp that differs (rubric, model, profile) is refused as in ``qa.batch``. Without
``resume`` earlier parts are removed first. Records are those of the local engine (same ``Grader``, same
stamp, same Parquet schema); row order is not kept — key by ``id``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

from qa.errors import InputError, QAError
from qa.grade import NESTED, arrow_schema, dumps
from qa.grader import GradeSettings, ungradable
from qa.io.read import ReadStats, Reject, read_path

__all__ = ["grade_files_ray", "parts_dir", "rejects_path", "ray_available"]

READ_CPUS = 0.25          # logical CPUs a scan/read task reserves (reading is cheap next to grading)
LEFT_FOR_READS = 0.5      # logical CPUs the actor pool leaves free on a local Ray


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def _ray():
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise QAError(f"the Ray engine needs the 'ray' extra (pip install 'qa[ray]'): {e}") from None
    return ray


def parts_dir(out: Path) -> Path:
    """Where the Parquet parts are written: ``out`` itself for a folder, ``FILE.parquet.parts`` for a file."""
    return out.with_name(out.name + ".parts") if out.suffix == ".parquet" else out


def rejects_path(out: Path) -> Path:
    stem = out.name[: -len(out.suffix)] if out.suffix == ".parquet" else out.name
    return out.with_name(stem + ".rejects.jsonl")


# --- step 1: scan ----------------------------------------------------------------------------------------------

def _scan_file(path: str, tz: str | None, columns: str | None, platform: str | None = None
               ) -> tuple[list[str | None], list[int | None], list[tuple[int, Reject]], list[int],
                          dict[int, Reject]]:
    """Per item of one file, in order: its id (None for a reject) and line; the rejects with their positions; the
    positions of repaired conversations; the rejects of chats with nobody in them (``ungradable``), refused after
    the id check as the local engine refuses them."""
    ids: list[str | None] = []
    lines: list[int | None] = []
    rejects: list[tuple[int, Reject]] = []
    repaired: list[int] = []
    nobody: dict[int, Reject] = {}
    for seq, item in enumerate(read_path(path, tz=tz, columns=columns, platform=platform)):
        if isinstance(item, Reject):
            ids.append(None)
            lines.append(item.line)
            rejects.append((seq, item))
        else:
            ids.append(item.id)
            lines.append(item._line)
            if item.warnings:
                repaired.append(seq)
            if (r := ungradable(item, path)) is not None:
                nobody[seq] = r
    return ids, lines, rejects, repaired, nobody


# --- step 2: read and grade ------------------------------------------------------------------------------------

def _read_rows(row: dict, *, tz: str | None, columns: str | None, platform: str | None = None):
    """The conversations of one file to grade (those not in its skip set), pickled."""
    skip = pickle.loads(row["skip"])
    for seq, item in enumerate(read_path(row["path"], tz=tz, columns=columns, platform=platform)):
        if not isinstance(item, Reject) and seq not in skip:
            yield {"conv": pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)}


def records_to_table(recs: list[dict]):
    """Records → an Arrow table in the results schema (nested fields as JSON strings), as ``jsonl_to_parquet``."""
    import pyarrow as pa
    schema = arrow_schema()
    cols = {name: [r.get(name) for r in recs] for name in schema.names if name not in NESTED}
    cols.update({k: [dumps(r.get(k)) if r.get(k) is not None else None for r in recs] for k in NESTED})
    return pa.Table.from_pydict(cols, schema=schema)


class GradeActor:
    """One actor's grading state: a ``qa.batch.Worker`` (its ``Grader`` built once, the heap trimmer)."""

    def __init__(self, settings: GradeSettings):
        from qa.batch import Worker
        self.worker = Worker(settings)
        if self.worker.error is not None:
            raise self.worker.error

    def __call__(self, batch):
        convs = [pickle.loads(b) for b in batch["conv"]]
        grades = self.worker.grader.grade_batch(convs)
        table = records_to_table([g.to_record() for g in grades])
        del grades, convs
        self.worker._release_freed_memory()
        return table


# --- resume ----------------------------------------------------------------------------------------------------

PART = "qa-part"   # how the part files this engine writes are named: qa-part_<write>_<task>….parquet
BASE_MARK = ".qa-resumes-the-file"   # in FILE.parquet.parts: these parts go on from the finished FILE.parquet


def _part_names():
    """Ray's file namer, naming each part as ours (``PART``), so a rerun tells its own parts from anyone else's."""
    from ray.data.datasource import FilenameProvider

    class Parts(FilenameProvider):
        def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
            return f"{PART}_{write_uuid}_{task_index:06}.parquet"
    return Parts(file_format="parquet")


def _ours(p: Path) -> bool:
    """A part file this engine wrote: named as ours. A finished results file kept in the folder (another day's
    ``qa grade --out qa_out/monday.parquet``) has the results' columns too, and is not a part to delete or resume."""
    return p.name.startswith(PART + "_")


def _check_folder(parts: Path) -> None:
    """``InputError`` when the parts folder holds a Parquet file that is not a qa part: a rerun deletes or resumes
    from the parts, and must never take someone's own data for one."""
    foreign = [p for p in sorted(parts.glob("*.parquet")) if not _ours(p)] if parts.is_dir() else []
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise InputError(f"{foreign[0].name}{more}: not a part this engine wrote; grading into this folder would delete "
                         "or mix it, so give an empty or new folder", file=str(parts))


def _finished(out: Path) -> tuple[list[str], dict | None]:
    """Ids and stamp of a finished results file that ``--resume`` goes on from; ``InputError`` when it is not one
    (someone's own Parquet file, a damaged one): it is never moved, rewritten or deleted before the run is sound."""
    import pyarrow.parquet as pq
    try:
        missing = [c for c in arrow_schema().names if c not in pq.read_schema(out).names]
        t = pq.read_table(out, columns=["id", "stamp"])
        ids = t.column("id").to_pylist()
        stamp = json.loads(t.column("stamp")[0].as_py() or "null") if ids else None
    except Exception as e:  # noqa: BLE001 — not Parquet, no id/stamp columns, a stamp that is not JSON
        missing = [f"readable id and stamp ({type(e).__name__})"]
    if missing:
        raise InputError(f"not a qa results file, so --resume cannot go on from it (no {', '.join(missing[:3])}"
                         f"{' …' if len(missing) > 3 else ''}); give another --out", file=str(out))
    return ids, stamp


def _check_writable(folder: Path) -> None:
    """The OSError a part write would meet (a read-only folder), before Ray starts: Ray's write task reports it as
    pages of its own traceback."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".{PART}-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(folder)) from None     # the folder, not the probe, is the user's
    probe.unlink()


def _check_reachable(address: str) -> None:
    """``InputError`` when nothing answers at a ``host:port`` (or ``ray://host:port``) address: ``ray.init`` would
    wait on it for ever. ``auto`` and other forms are left to Ray."""
    import socket
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as e:
        raise InputError(f"no Ray cluster answers at {address} ({e.strerror or type(e).__name__}); start one "
                         "(ray start --head) or leave --address out to run Ray on this machine",
                         field="--address") from None


def _written(parts: Path) -> tuple[list[str], dict | None, list[Path]]:
    """Ids and stamp of the part files already in ``parts`` (all ours: ``_check_folder``); a part that cannot be
    read (torn by a kill) is deleted."""
    import pyarrow.parquet as pq
    ids: list[str] = []
    stamp, files = None, []
    if not parts.is_dir():
        return ids, stamp, files
    for p in sorted(parts.glob("*.parquet")):
        try:
            t = pq.read_table(p, columns=["id", "stamp"])
        except Exception:  # noqa: BLE001 — no footer: the write was killed; its rows are graded again
            p.unlink()
            continue
        got = t.column("id").to_pylist()
        if got and stamp is None:
            stamp = json.loads(t.column("stamp")[0].as_py() or "null")
        ids.extend(got)
        files.append(p)
    return ids, stamp, files


def _rows_in(files) -> int:
    import pyarrow.parquet as pq
    return sum(pq.ParquetFile(p).metadata.num_rows for p in files)


# --- the job ---------------------------------------------------------------------------------------------------

# how long a SIGINT/SIGTERM leaves the run to stop cleanly before the driver leaves without it (_StuckWatch): a
# scheduler that signals the whole process group takes Ray's own processes down too, and ray.shutdown() or a wait
# inside Ray's C++ then lasts a minute on a GCS that is gone
TERM_GRACE_S = 15.0
REACH_TIMEOUT_S = 5.0   # how long --address may take to accept a connection before the run is refused
CONNECT_TIMEOUT_S = 120.0  # and how long ray.init may take to join the cluster there


class _Deferred:
    """The SIGINT/SIGTERM handler while ``ray.init`` runs: the first signal is kept and acted on once Ray is up (raised
    inside the start, it segfaulted or aborted the driver); a second one leaves at once."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum, frame) -> None:
        if self.signum is not None:
            os._exit(128 + signum)
        self.signum = signum
        sys.stderr.write("qa: stopping once Ray has started (a second Ctrl-C or signal stops at once)\n")
        sys.stderr.flush()


class _StuckWatch:
    """Ends the process ``grace`` seconds after a SIGINT or SIGTERM unless ``close()`` comes first. The signal's
    number arrives through ``signal.set_wakeup_fd``, which the interpreter writes at once, not when the main thread
    next runs Python: a SIGTERM to the whole process group takes Ray's own processes down, and the main thread can
    then sit inside Ray's C++ for a minute, where no Python handler runs. Main thread only."""

    def __init__(self, grace: float) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        self._old = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        self._closed = threading.Event()
        self._grace = grace
        threading.Thread(target=self._watch, daemon=True, name="qa-stuck-watch").start()

    def _watch(self) -> None:
        while True:
            try:
                data = os.read(self._r, 1)
            except OSError:
                return
            if not data or self._closed.is_set():
                return
            if data[0] in (signal.SIGINT, signal.SIGTERM) and not self._closed.wait(self._grace):
                sys.stderr.write(f"qa: Ray did not stop within {self._grace:.0f} s of the signal; leaving without it "
                                 "(the parts written so far are kept)\n")
                sys.stderr.flush()
                os._exit(128 + data[0])

    def close(self) -> None:
        self._closed.set()
        signal.set_wakeup_fd(self._old)
        os.close(self._w)                                   # the watcher's read ends


def _quiet_teardown() -> None:
    """Once a run is stopped (SIGTERM, Ctrl-C), drop the "Exception ignored in …" tracebacks of objects collected
    half-built: a stop that lands inside Ray Data's ``Dataset.__init__`` leaves one whose ``__del__`` reads an
    attribute never set. The run is over; a user must see one line, not Ray's teardown."""
    sys.unraisablehook = lambda unraisable: None


def _terminated(signum, frame) -> None:
    code = 128 + signum
    sys.stderr.write(f"qa: stopped by signal {signum}; the parts written so far are kept (--resume goes on)\n")
    sys.stderr.flush()
    _quiet_teardown()
    raise SystemExit(code)                                  # _StuckWatch bounds how long the stop may take


def _init(ray, address: str | None, workers: int, object_store_memory: int | None) -> bool:
    """Connect to ``address`` or start a local Ray with ``workers`` CPUs; True when this call started it."""
    if ray.is_initialized():
        return False
    if address:                                         # a running cluster, or ray:// through Ray Client
        # something that answers but is not Ray (the dashboard's port) leaves ray.init waiting for ever
        watchdog = threading.Timer(CONNECT_TIMEOUT_S, _no_cluster, args=(address,))
        watchdog.daemon = True
        watchdog.start()
        try:
            ray.init(address=address, logging_level="WARNING")
        except (ValueError, ConnectionError, RuntimeError) as e:   # a malformed address, a refused handshake
            why = str(e.args[0]) if e.args else type(e).__name__
            raise InputError(f"cannot connect to a Ray cluster at {address}: {why.splitlines()[0]}",
                             field="--address") from None
        finally:
            watchdog.cancel()
    else:                                               # "local": a new Ray here, even when `ray start` runs one
        ray.init(address="local", num_cpus=workers, object_store_memory=object_store_memory, include_dashboard=False,
                 logging_level="WARNING")
    return True


def _no_cluster(address: str) -> None:
    sys.stderr.write(f"error: --address: no Ray cluster answered at {address} within {CONNECT_TIMEOUT_S:.0f} s (is it "
                     "the GCS port, 6379 by default, or ray://HOST:10001?)\n")
    sys.stderr.flush()
    os._exit(2)


def _actor_cpus(ray, workers: int) -> float:
    """Logical CPUs per actor: one each when the cluster has room for the pool and the reads, else an equal
    share of all but ``LEFT_FOR_READS``."""
    total = float(ray.cluster_resources().get("CPU", workers))
    return max(0.01, min(1.0, (total - LEFT_FOR_READS) / workers))


def _here(path: str | None, kind: str) -> str | None:
    """``path`` made absolute when it names a file (``kind`` "file") or model folder ("model") here; a column
    profile's name (``kuaishou``), ``none`` and a hub id stay as given, even beside a folder of that name."""
    if not path:
        return path
    p = Path(path)
    if kind == "model":
        here = path != "none" and p.is_dir()
    elif kind == "columns":
        here = p.suffix in (".yaml", ".yml") and p.is_file()
    else:
        here = p.is_file()
    return str(p.resolve()) if here else path


def _unwrap(e: BaseException) -> BaseException:
    """The project's own error, or an OSError (a full disk), inside a Ray task/actor error, if there is one."""
    seen, found = set(), None
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, QAError):
            return e
        if isinstance(e, OSError):
            found = e                                   # the innermost names the path
        e = getattr(e, "cause", None) or e.__cause__
    return found


def grade_files_ray(inputs: list[Path], out: Path, settings: GradeSettings, *, workers: int = 2,
                    address: str | None = None, resume: bool = False, columns: str | None = None,
                    tz: str | None = None, platform: str | None = None, object_store_memory: int | None = None,
                    unique_ids: bool = True):
    """Grade every conversation of ``inputs`` on Ray into ``out`` (a folder of Parquet parts, or one
    ``.parquet`` file) and ``<out>.rejects.jsonl``; returns a ``qa.batch.GradeRun``. One run per output at a time
    (``qa.batch.output_lock``)."""
    from qa.batch import output_lock

    out = Path(out).resolve()                           # `.` has no name to put a lock or rejects file beside
    if out.suffix not in ("", ".parquet"):
        raise InputError("the Ray engine writes Parquet: give a folder (a name without a dot, e.g. out/2026-12-04) "
                         "or a .parquet file", file=str(out))
    parts = parts_dir(out)
    made = _missing(parts)
    try:
        with output_lock(out):
            try:
                return _grade_files_ray(inputs, out, settings, workers=workers, address=address, resume=resume,
                                        columns=columns, tz=tz, platform=platform,
                                        object_store_memory=object_store_memory, unique_ids=unique_ids)
            except Exception:
                if out.suffix == ".parquet" and not any(parts.glob("*.parquet")):   # a refused run leaves no
                    with contextlib.suppress(OSError):                                # empty FILE.parquet.parts
                        (parts / BASE_MARK).unlink(missing_ok=True)
                        parts.rmdir()
                raise
    except BaseException:                               # refused, failed, or stopped (Ctrl-C, SIGTERM): once the
        _remove_empty(made, parts)                      # lock is gone, no empty folder of this run's is left
        raise


def _missing(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first: the folders a run creates."""
    made = []
    for p in [folder, *folder.parents]:
        if p.exists():
            break
        made.append(p)
    return made


def _remove_empty(made: list[Path], parts: Path) -> None:
    """Remove the folders in ``made`` (this run created them) that are empty, or hold only the resume mark this
    run wrote in ``parts``; a folder holding anything else (a part, the rejects) is kept."""
    for d in made:
        with contextlib.suppress(OSError):
            if d == parts and [p.name for p in d.iterdir()] == [BASE_MARK]:
                (d / BASE_MARK).unlink()
            d.rmdir()


def _grade_files_ray(inputs: list[Path], out: Path, settings: GradeSettings, *, workers: int, address: str | None,
                     resume: bool, columns: str | None, tz: str | None, platform: str | None,
                     object_store_memory: int | None, unique_ids: bool):
    from qa.batch import GradeRun, check_stamp, run_stamp
    from qa.io.write import JsonlWriter

    if workers < 1:
        raise ValueError("workers must be ≥ 1")
    ray = _ray()
    started = time.perf_counter()
    names = [str(p) for p in inputs]                    # rejects name the files as given, as qa.batch does
    inputs = [Path(p).resolve() for p in inputs]       # every node reads the same (shared) paths
    # so do the rubric, model and column profile: a relative path is opened from the folder `ray start` ran in on a
    # cluster's node, which graded with that folder's file of the same name
    settings = dataclasses.replace(settings, rubric=_here(settings.rubric, "file"), model=_here(settings.model, "model"))
    columns = _here(columns, "columns")
    out = Path(out).resolve()
    parts = parts_dir(out)
    stages: dict[str, float] = {}

    # what is there already
    _check_folder(parts)
    done, old_stamp, old_files = _written(parts) if resume else ([], None, [])
    stamp = run_stamp(settings) if resume else None
    if done:
        check_stamp(parts, old_stamp, stamp)
    # a finished file goes on as one more part: it is only read here, and rewritten with the new parts once the run
    # is done. Parts beside it go on from it only when a resume wrote them (BASE_MARK): a stopped run without
    # --resume replaces the file, which may hold another day's chats or another stamp. A chat both hold comes from
    # the parts; the rest are kept, not graded again
    base = parts / BASE_MARK
    earlier = (out if resume and out.suffix == ".parquet" and out.is_file() and (not old_files or base.exists())
               else None)
    regraded: set[str] = set(done)
    if earlier is not None:
        ids, earlier_stamp = _finished(earlier)
        if ids:
            check_stamp(earlier, earlier_stamp, stamp)
        done += [i for i in ids if i not in regraded]
    if not resume and parts.is_dir():
        for p in parts.glob("*.parquet"):
            p.unlink()

    _check_writable(parts)
    if earlier is not None:
        base.touch()                                    # the parts of this run go on from the finished file
    else:
        base.unlink(missing_ok=True)
    if address:
        _check_reachable(address)

    # Ray's own SIGTERM handler dumps a native stack and aborts the driver: a SIGTERM (a job scheduler, `kill`)
    # ends the run as an interrupt instead, after ray.shutdown(); the parts written so far are resumable. While
    # ray.init runs, a Ctrl-C or SIGTERM raised inside it segfaulted or aborted the driver: it waits for the start.
    main = threading.current_thread() is threading.main_thread()
    deferred = _Deferred()
    if main:
        on_int = signal.signal(signal.SIGINT, deferred)
        on_term = signal.signal(signal.SIGTERM, deferred)
        stuck = _StuckWatch(TERM_GRACE_S)
    ours = merging = False
    after = on_term if main and on_term is not None else signal.SIG_DFL   # SIGTERM's handler once the run is over
    try:
        t = time.perf_counter()
        try:
            ours = _init(ray, address, workers, object_store_memory)
        finally:
            if main:
                signal.signal(signal.SIGINT, on_int if on_int is not None else signal.default_int_handler)
                signal.signal(signal.SIGTERM, _terminated)
        stages["ray start"] = time.perf_counter() - t
        if deferred.signum == signal.SIGINT:
            raise KeyboardInterrupt
        if deferred.signum is not None:
            _terminated(deferred.signum, None)

        from ray.data import DataContext
        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False
        # small blocks, so that one big input file is spread over every actor (an actor takes whole blocks)
        ctx.target_max_block_size = max(256 << 10, settings.batch_size * (8 << 10))
        logging.getLogger("ray.data").setLevel(logging.WARNING)

        # 1. scan
        t = time.perf_counter()
        scan = ray.remote(num_cpus=READ_CPUS)(_scan_file)
        scanned = ray.get([scan.remote(str(p), tz, columns, platform) for p in inputs])
        stats = ReadStats()
        done_set = set(done)
        seen: dict[str, tuple[int, int | None]] = {}
        skips: list[set[int]] = []
        resumed = 0
        rej_path = rejects_path(out)
        rej_path.parent.mkdir(parents=True, exist_ok=True)
        with JsonlWriter(rej_path) as rej:
            for fi, (path, (ids, lines, rejects, repaired, nobody)) in enumerate(zip(inputs, scanned)):
                reject_at = dict(rejects)
                repaired_at = set(repaired)
                skip: set[int] = set()
                for seq, cid in enumerate(ids):
                    stats.read += 1
                    if cid is None:
                        stats.rejected += 1
                        r = reject_at[seq]
                        if r.file == str(path):
                            r = dataclasses.replace(r, file=names[fi])
                        rej.write(r.to_record())
                        continue
                    if unique_ids:
                        first = seen.get(cid)
                        if first is not None:
                            at = f" at line {first[1]}" if first[1] is not None else ""
                            where = (f"earlier in this file{at}" if first[0] == fi
                                     else f"first read in {names[first[0]]}{at}")
                            stats.rejected += 1
                            skip.add(seq)
                            rej.write(Reject(names[fi], lines[seq], f"duplicate conversation id {cid!r} "
                                             f"({where}); the first one is kept", field="id", id=cid).to_record())
                            continue
                        seen[cid] = (fi, lines[seq])
                    if seq in nobody:
                        stats.rejected += 1
                        skip.add(seq)
                        rej.write(dataclasses.replace(nobody[seq], file=names[fi]).to_record())
                        continue
                    stats.accepted += 1
                    stats.repaired += seq in repaired_at
                    if cid in done_set:
                        skip.add(seq)
                        resumed += 1
                skips.append(skip)
        del scanned, seen
        if resumed < len(done_set):
            raise InputError(f"cannot resume: {len(done_set) - resumed} conversations in the results so far are not "
                             "in the input; the input changed", file=str(parts))
        stages["scan"] = time.perf_counter() - t

        # 2. read, grade, write
        t = time.perf_counter()
        todo = stats.accepted - resumed
        parts.mkdir(parents=True, exist_ok=True)
        before = set(parts.glob("*.parquet"))
        if todo > 0:
            rows = [{"path": str(p), "skip": pickle.dumps(s)} for p, s in zip(inputs, skips)]
            ds = ray.data.from_items(rows, override_num_blocks=len(rows))
            ds = ds.flat_map(_read_rows, fn_kwargs={"tz": tz, "columns": columns, "platform": platform},
                             num_cpus=READ_CPUS)
            # settings baked into a subclass rather than passed as constructor arguments (which Ray keeps in the
            # object store, and warns about on every run)
            actor = type("GradeActorWith", (GradeActor,), {"__init__": lambda self: GradeActor.__init__(self, settings),
                                                          "__qualname__": "GradeActorWith"})
            ds = ds.map_batches(actor, batch_size=settings.batch_size, batch_format="numpy",
                                compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=_actor_cpus(ray, workers))
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*won't fully utilize.*")
                    ds.write_parquet(str(parts), min_rows_per_file=max(settings.batch_size, 1000),
                                     filename_provider=_part_names())
            except Exception as e:  # noqa: BLE001 — surface the project's own error (a model that will not load)
                inner = _unwrap(e)
                if inner is not None:
                    raise inner from None
                raise
        new_files = set(parts.glob("*.parquet")) - before
        graded = _rows_in(new_files)
        stages["grade+write"] = time.perf_counter() - t
        merging = main and out.suffix == ".parquet"     # SIGTERM stays _terminated through the merge (below)
    except KeyboardInterrupt:
        _quiet_teardown()
        raise
    finally:
        if ours:
            ray.shutdown()
        if main:
            stuck.close()
            # ray.shutdown() puts back the default action underneath Python's handler: set again, also for the merge
            signal.signal(signal.SIGTERM, _terminated if merging else after)

    # 3. one file, when asked for one. A SIGTERM here stops the run as one while grading does (before, Python's
    # default action ended the driver); the parts are deleted only once the file is whole, so --resume goes on
    result = parts
    if out.suffix == ".parquet":
        t = time.perf_counter()
        try:
            _merge(sorted(parts.glob("*.parquet")), out, earlier=earlier, drop=regraded)
            for p in parts.glob("*.parquet"):
                p.unlink()
            base.unlink(missing_ok=True)
            try:
                parts.rmdir()
            except OSError:
                pass
        finally:
            if merging:
                signal.signal(signal.SIGTERM, after)
        result = out
        stages["merge"] = time.perf_counter() - t
    return GradeRun(stats, graded, resumed, result, rej_path, time.perf_counter() - started, stages)


def _merge(files: list[Path], dst: Path, *, earlier: Path | None = None, drop: set[str] = frozenset()) -> None:
    """An ``earlier`` finished file (less its rows whose id is in ``drop``) and the part files → one Parquet file,
    streamed by row group."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    schema = arrow_schema()
    tmp = dst.with_name(dst.name + ".tmp")
    gone = pa.array(sorted(drop), pa.string())
    try:
        writer = pq.ParquetWriter(tmp, schema)
        try:
            for p in ([earlier] if earlier is not None else []) + files:
                pf = pq.ParquetFile(p)
                for i in range(pf.num_row_groups):
                    t = pf.read_row_group(i).select(schema.names).cast(schema)
                    if p == earlier and len(gone):
                        t = t.filter(pc.invert(pc.is_in(t.column("id"), value_set=gone)))
                    writer.write_table(t)
        finally:
            writer.close()
        os.replace(tmp, dst)
    except BaseException:                               # stopped or failed: no half-written .tmp is left
        tmp.unlink(missing_ok=True)
        raise
