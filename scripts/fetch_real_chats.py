"""Rebuild the cache of real Chinese customer-service chats from public sources (text stays out of git).

Each source below is a raw file in a public GitHub repository, pinned to a commit. The script gets it
(HTTPS from raw.githubusercontent.com by default; ``--snapshot-root`` reads a local git snapshot of
the repository instead; ``--from-file NAME=PATH`` reads a local copy), converts every session into the
conversation schema of docs/schema.md and writes ``$QA_CACHE/real/chats.jsonl`` (QA_CACHE defaults to
``~/.cache/qa``). See docs/real-chats.md for the sources, their licences and what they gave.

Usage:
  python scripts/fetch_real_chats.py                                  # download (needs internet)
  python scripts/fetch_real_chats.py --snapshot-root /work/.mirror    # from local snapshots
  python scripts/fetch_real_chats.py --from-file ecd=train.tsv --only ecd --out chats.jsonl

Rules kept here: only train splits or unsplit data (never a file named test/dev/valid); no STC-3 /
DialEval / NTCIR data (the project reads its own copy elsewhere).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from qa.io.cards import card_type  # noqa: E402
from qa.text import unsegment  # noqa: E402  (the schema applies it too, to word-segmented chats on read)

OBTAINED = "2026-12-04"

# ---------------------------------------------------------------------------------------------------
# Text clean-up

_WS = re.compile(r"\s+")


def tidy(text: str) -> str:
    """Collapse whitespace runs (for unsegmented sources, where spaces are the writer's own)."""
    return _WS.sub(" ", text).strip()


def message(role: str, text: str) -> dict:
    mtype = (card_type(text) or "text") if role == "customer" else "text"
    return {"role": role, "type": mtype, "text": text}


# ---------------------------------------------------------------------------------------------------
# Parsers: raw text → iterator of (line number of the session's first row, conversation fields)

Session = tuple[int, dict]


def parse_ecd(raw: str) -> Iterator[Session]:
    """E-commerce Dialogue Corpus (Taobao): ``label \\t utt1 \\t … \\t response``, word-segmented.

    A line with label 1 holds a real session (context + the true response); label-0 lines repeat a
    context with a wrong response and are skipped. The response is the agent's; roles alternate
    backwards from it.
    """
    for ln, line in enumerate(raw.splitlines(), 1):
        cols = line.rstrip("\r\n").split("\t")
        if len(cols) < 3 or cols[0].strip() != "1":
            continue
        utts = cols[1:]
        n = len(utts)
        msgs = []
        for i, u in enumerate(utts):
            text = unsegment(u, punctuation=False)   # as the cache the shipped model learnt from was built
            if not text:
                continue
            role = "agent" if (n - 1 - i) % 2 == 0 else "customer"
            msgs.append(message(role, text))
        if msgs:
            yield ln, {"platform": "taobao", "messages": msgs}


_NULLS = {"", "null", "nan", "none"}


def parse_jddc(raw: str) -> Iterator[Session]:
    """JD Dialogue Corpus (JDDC 2019) ``chat.txt`` rows: ``session \\t user \\t waiter_send \\t transfer
    \\t repeat \\t sku \\t content``; waiter_send 1 = agent. Rows of a session are consecutive; sessions
    come in order of their first row. Personal data is already masked (``[订单x]``, ``[姓名x]`` …)."""
    order: list[str] = []
    sessions: dict[str, dict] = {}
    for ln, line in enumerate(raw.splitlines(), 1):
        cols = line.rstrip("\r\n").split("\t")
        if len(cols) < 7:
            continue
        sid, user, waiter, sku = cols[0].strip(), cols[1].strip(), cols[2].strip(), cols[5].strip()
        content = "\t".join(cols[6:])  # a stray tab inside the content stays part of it
        if not sid or waiter not in {"0", "1"}:
            continue
        s = sessions.get(sid)
        if s is None:
            s = sessions[sid] = {"line": ln, "user": user, "skus": [], "messages": []}
            order.append(sid)
        if sku.lower() not in _NULLS and sku not in {"0"} and sku not in s["skus"]:
            s["skus"].append(sku)
        text = tidy(content)
        if text.lower() in _NULLS:
            continue
        s["messages"].append(message("agent" if waiter == "1" else "customer", text))
    for sid in order:
        s = sessions[sid]
        if not s["messages"]:
            continue
        conv = {"platform": "other", "customer": s["user"] or None, "messages": s["messages"],
                "source_session": sid}
        if s["skus"]:
            conv["skus"] = s["skus"]
        yield s["line"], {k: v for k, v in conv.items() if v is not None}


# ---------------------------------------------------------------------------------------------------
# Sources


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    repo: str
    commit: str
    path: str
    licence: str
    parser: Callable[[str], Iterator[Session]]
    id_prefix: str
    sha256: str | None = None  # of the raw file at that commit (checked when present)

    @property
    def raw_url(self) -> str:
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{urllib.parse.quote(self.path)}"

    @property
    def url(self) -> str:
        return f"https://github.com/{self.repo}/blob/{self.commit}/{urllib.parse.quote(self.path)}"


SOURCES: list[Source] = [
    Source(
        name="ecd", repo="cooelf/DeepUtteranceAggregation",
        commit="f2e15d6600ccda0db32eee98b2ca67c322071964", path="ECD_sample/train",
        licence="no licence stated (sample of the E-commerce Dialogue Corpus, Zhang et al., COLING 2018)",
        parser=parse_ecd, id_prefix="ecd-train",
        sha256="f6612035923432e2d9f8b43e0d19e503c212fe9728c61d5ab16e61a5de90d70e",
    ),
    Source(
        name="jddc", repo="EndlessLethe/jddc2019-3th-retrieve-model",
        commit="2d443d1679cc3d00022d0ff1697eb0e4cbeedb01", path="data/chat_0.1per.txt",
        licence="no licence stated (0.1% sample of the JDDC 2019 training chat.txt, JD.com)",
        parser=parse_jddc, id_prefix="jddc-chat",
        sha256="600a136f9b0146c945cefc5e03c9080efb462b02257cbc8f7071998d8cbc4e39",
    ),
]
_FORBIDDEN = re.compile(r"(^|[/_.-])(test|dev|valid|validation)([/_.-]|$)", re.I)
for _s in SOURCES:  # guard the rule in code, not just in docs
    assert not _FORBIDDEN.search(_s.path), f"{_s.name}: test/dev/valid files are not allowed"


# ---------------------------------------------------------------------------------------------------
# Getting the raw text


def _git_dir(snapshot_root: Path, repo: str) -> Path | None:
    base = snapshot_root / repo.replace("/", "+")
    for cand in (base / "repo" / ".git", base / "repo", base / ".git", base):
        if (cand / "HEAD").is_file() and (cand / "objects").is_dir():
            return cand
    return None


def read_snapshot(src: Source, snapshot_root: Path) -> str:
    gd = _git_dir(snapshot_root, src.repo)
    if gd is None:
        raise FileNotFoundError(f"no snapshot of {src.repo} under {snapshot_root}")
    out = subprocess.run(["git", f"--git-dir={gd}", "show", f"{src.commit}:{src.path}"],
                         capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def download(src: Source, timeout: float = 60.0) -> str:
    req = urllib.request.Request(src.raw_url, headers={"User-Agent": "qa-fetch-real-chats/1"})
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (fixed https URL)
        return r.read().decode("utf-8")


def get_raw(src: Source, from_files: dict[str, Path], snapshot_root: Path | None) -> tuple[str, str]:
    """(text, how) for a source; checks the recorded sha256 except for --from-file copies."""
    if src.name in from_files:
        return from_files[src.name].read_text(encoding="utf-8"), f"file {from_files[src.name]}"
    if snapshot_root is not None:
        text, how = read_snapshot(src, snapshot_root), f"snapshot {snapshot_root}"
    else:
        text, how = download(src), f"download {src.raw_url}"
    if src.sha256:
        got = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if got != src.sha256:
            raise ValueError(f"{src.name}: sha256 {got} does not match the recorded {src.sha256}")
    return text, how


# ---------------------------------------------------------------------------------------------------
# Build


def session_key(conv: dict) -> str:
    return json.dumps([(m["role"], m["type"], m["text"]) for m in conv["messages"]], ensure_ascii=False)


def convert(src: Source, raw: str, seen: set[str], stats: Counter | None = None) -> list[dict]:
    """Parse one source, give ids ``<prefix>-NNNN`` in source order (before dedupe, so ids are
    stable), drop sessions identical to one already kept (``seen`` spans all sources)."""
    stats = stats if stats is not None else Counter()
    out = []
    for n, (line, conv) in enumerate(src.parser(raw), 1):
        stats["sessions"] += 1
        key = session_key(conv)
        if key in seen:
            stats["duplicates"] += 1
            continue
        seen.add(key)
        rec = {"id": f"{src.id_prefix}-{n:04d}", **conv,
               "meta": {"source": src.name, "url": src.url, "commit": src.commit, "line": line,
                        "licence": src.licence, "obtained": OBTAINED}}
        out.append(rec)
        stats["kept"] += 1
        stats["messages"] += len(conv["messages"])
        stats["cards"] += sum(m["type"] != "text" for m in conv["messages"])
    return out


def cache_path() -> Path:
    return Path(os.environ.get("QA_CACHE") or Path.home() / ".cache" / "qa") / "real" / "chats.jsonl"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshot-root", type=Path, help="read sources from git snapshots under this folder "
                    "(OWNER+NAME/repo/.git), at the recorded commit, instead of downloading")
    ap.add_argument("--from-file", action="append", default=[], metavar="NAME=PATH",
                    help="read source NAME from a local file (repeatable)")
    ap.add_argument("--only", nargs="*", help="source names to build (default: all, or those given "
                    "with --from-file when no other way to get sources is asked)")
    ap.add_argument("--out", type=Path, help="output JSONL (default $QA_CACHE/real/chats.jsonl)")
    ap.add_argument("--no-validate", action="store_true", help="skip the schema check of each record")
    a = ap.parse_args(argv)

    from_files = {}
    for spec in a.from_file:
        name, _, path = spec.partition("=")
        if not path:
            ap.error(f"--from-file wants NAME=PATH, got {spec!r}")
        from_files[name] = Path(path)
    known = {s.name for s in SOURCES}
    unknown = (set(from_files) | set(a.only or [])) - known
    if unknown:
        ap.error(f"unknown source(s) {sorted(unknown)}; known: {sorted(known)}")
    names = a.only or (sorted(from_files) if from_files and a.snapshot_root is None else sorted(known))
    sources = [s for s in SOURCES if s.name in names]

    validate = None
    if not a.no_validate:
        from qa.schema import Conversation
        validate = Conversation.model_validate

    seen: set[str] = set()
    records: list[dict] = []
    per: dict[str, Counter] = {}
    for src in sources:
        raw, how = get_raw(src, from_files, a.snapshot_root)
        stats = per[src.name] = Counter()
        recs = convert(src, raw, seen, stats)
        if validate:
            for r in recs:
                validate(r)
        records.extend(recs)
        print(f"{src.name:6s} {stats['kept']:5d} conversations ({stats['sessions']} sessions, "
              f"{stats['duplicates']} duplicates dropped), {stats['messages']} messages, "
              f"{stats['cards']} cards  <- {how}")

    out = a.out or cache_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(out)
    n_msgs = sum(len(r["messages"]) for r in records)
    avg = n_msgs / len(records) if records else 0.0
    print(f"total  {len(records):5d} conversations, {n_msgs} messages (avg {avg:.1f}/conversation) -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
