"""Turn-level flag models: one logistic regression per flag over a message read in its context.

A flag whose rubric entry names a turn label (``customer.unanswered``, ``agent.vague``) gets a classifier of that
label, fitted on the turn labels of the ridge channel's chats (the real chats: ``data/labelled/real/FORMAT.md``).
It reads a message with the other side's messages just before and just after it and the same side's next
message — the reply a question got and what the customer said next — through the ridge channel's projection:
its char n-grams (one TF-IDF vocabulary for every block) and its sentence vectors (cosines between the blocks),
plus a few counts, and the message's own char n-grams in a vocabulary of the turn-labelled messages (the
projection's is fitted on other texts and misses much of what insults and data requests are made of). A chat's
probability is its most likely message's, which is also the finding's evidence; a question's (``unanswered``) is
its lowest over the reply right after it and each later reply run about the same matter (``later_replies``), so a
question the agent answers only when pressed, or a human answers after a bot stalled, is answered. Grading raises the flag when this
(times the ridge gate) reaches the flag's threshold here, chosen on the dev split beside the network's own.
Measured: ``docs/real-chats.md``, "Turn-level flag models"; the focus vocabulary: ``docs/rules.md``, "Session 25".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.model import tfidf
from qa.model.projection import Projection, _vectorizer
from qa.schema import Conversation

FILE, TENSORS = "turnflags.json", "turnflags.safetensors"
BLOCKS = ("focus", "before", "after", "next")   # the message; the other side's before / after; own side's next
MIN_POSITIVE = 20                                # fewer positive turns than this: no classifier for the flag
C = 1.0
FOCUS_NGRAMS = 20000                             # the focus vocabulary's size, per side (0: none)
MAX_CLAUSES = 16   # asking clauses read per customer message
LATER_RUNS = 8     # later reply runs a question is read with, and messages before one read as re-asks (linear in a chat)
_FACT = re.compile(r"\d|\[(?:数字|日期|时间|金额|订单|链接|地址)")
_ASK = re.compile(r"[?？]|吗|么|呢$|怎么|什么|多久|几")


def side(role: str) -> str | None:
    return "customer" if role == "customer" else "agent" if role in ("agent", "bot") else None


def contexts(conv: Conversation, role: str) -> list[tuple[int, list[str]]]:
    """Per text message of ``role``'s side: (index, [focus, the other side's messages before it and after it
    (past the side's own run of messages), the side's next message after those])."""
    ms = [(i, side(m.role), m.norm if m.type == "text" and m.text else "") for i, m in enumerate(conv.messages)]
    ms = [x for x in ms if x[1] is not None]
    out = []
    for k, (i, s, text) in enumerate(ms):
        if s != role or not text:
            continue
        before, j = [], k - 1
        while j >= 0 and ms[j][1] == role:       # past the same side's own run (several messages in a row)
            j -= 1
        while j >= 0 and ms[j][1] != role:
            before.insert(0, ms[j][2])
            j -= 1
        after, j = [], k + 1
        while j < len(ms) and ms[j][1] == role:
            j += 1
        while j < len(ms) and ms[j][1] != role:
            after.append(ms[j][2])
            j += 1
        nxt = ms[j][2] if j < len(ms) else ""
        out.append((i, [text, " ".join(t for t in before if t), " ".join(t for t in after if t), nxt]))
    return out


# the asking frame, not the matter asked about: these words and characters split a message into the runs whose
# two-character grams (and Latin/digit words) say what it is about
_FRAME = re.compile("这个|那个|这款|那款|这边|那边|可以|什么|怎么|为什么|时候|请问|想问|问下|问一下|一下|你们|我们|"
                    "您好|你好|亲亲|知道|告诉|还是|就是|现在|的话|一直|还有|多少|到底|"
                    "[的了吗呢吧啊哦呀哈嘛么亲是有在我你您他她它们和也都就还很会能要不没一个这那下，。？！?!,.~～ ]")
_WORD = re.compile(r"[0-9a-z]+|[\u4e00-\u9fff]+")


def _grams(text: str, singles: bool = False, chars: bool = False) -> set[str]:
    """What a message is about: the two-character grams of its CJK runs and its Latin/digit words, once the
    asking frame (``_FRAME``) is taken out. A question and a later reply that share one are about one matter.
    ``singles``: a one-character run counts too (会不会坏 → 坏); ``chars``: every character of a run too (what a
    reply says, for a question's one-character run to meet: 不会坏掉 holds 坏)."""
    out = set()
    for run in _WORD.findall(_FRAME.sub(" ", text.lower())):
        if run.isascii() or (singles and len(run) == 1):
            out.add(run)
        else:
            out.update(run[k:k + 2] for k in range(len(run) - 1))
            if chars:
                out.update(run)
    return out


def _runs(keys: Sequence, want) -> list[tuple[int, int]]:
    """(first, past the last) position of each run of consecutive ``keys`` equal to ``want``."""
    out, k = [], 0
    while k < len(keys):
        if keys[k] != want:
            k += 1
            continue
        j = k
        while j < len(keys) and keys[j] == want:
            j += 1
        out.append((k, j))
        k = j
    return out


def later_replies(conv: Conversation, ctx: dict[int, list[str]] | None = None,
                  kinds=None) -> list[tuple[int, list[str], list[int]]]:
    """Per customer text message, one row per later agent reply run past the one right after it that shares a
    gram with it (``_grams``) or, for a question of one of ``kinds`` (the rubric's ``answer_types`` compiled by
    ``qa.rules.checks.answer_kinds``: a price, a time, a size asked), holds an answer of that kind (多大尺寸 → 长48
    宽25 高8厘米, no word shared): (index, [the message, the agent's messages before it, that run, the customer's
    message after that run], the messages that run would answer: this one and the customer's re-asks of the same
    matter before the run). The question was answered when any of these answers it: the customer pressed and the
    agent answered on the third try, or a bot stalled and the human took over with the answer. ``ctx``: the
    customer's ``contexts`` by message index, when the caller has them."""
    ms = [(i, side(m.role), m.norm if m.type == "text" and m.text else "") for i, m in enumerate(conv.messages)]
    ms = [x for x in ms if x[1] is not None]
    # the agent side's runs: (first k, last k, their texts joined)
    runs = [(k, j - 1, " ".join(t for _, _, t in ms[k:j] if t)) for k, j in _runs([s for _, s, _ in ms], "agent")]
    out = []
    ctx = ctx if ctx is not None else dict(contexts(conv, "customer"))
    grams_of = {k: _grams(text) for k, (i, s, text) in enumerate(ms) if s == "customer" and i in ctx}
    wants = {k: _wanted(ms[k][2], kinds) for k in grams_of}   # the answer kinds each question asks for
    run_grams = [_grams(r[2]) for r in runs]
    first = 0                     # the first run that starts after the message at k
    for k, (i, s, text) in enumerate(ms):
        while first < len(runs) and runs[first][0] <= k:
            first += 1
        if k not in grams_of:
            continue
        grams = grams_of[k]
        for n in range(first + 1, min(first + 1 + LATER_RUNS, len(runs))):
            r = runs[n]
            if r[2] and (grams & run_grams[n] or any(a.search(r[2]) for a in wants[k])):
                nxt = next((t for _, s2, t in ms[r[1] + 1:r[1] + 2] if s2 == "customer"), "")
                # the customer's re-asks of the matter before that run: what answers the question answers them
                again = [ms[j][0] for j in range(max(k + 1, r[0] - LATER_RUNS), r[0])
                         if j in grams_of and (grams & grams_of[j] or set(wants[k]) & set(wants[j]))]
                out.append((i, [text, ctx[i][1], r[2], nxt], [i, *again]))
    return out


def _wanted(text: str, kinds) -> list[re.Pattern]:
    """The answer patterns of the ``kinds`` (``answer_kinds``) whose question ``text`` asks (多少钱 → a price's)."""
    if kinds is None or not kinds.any_ask.search(text):
        return []
    return [answer for ask, answer in kinds.pairs if ask.search(text)]


# a customer message's clauses (split after a question mark, at spaces and commas) and the ones that ask something;
# not ``_ASK``, which is one of the fitted models' features and must read as it did when they were fitted (它这么好 is
# no question here, 好不好 is)
_CLAUSE = re.compile(r"(?<=[?？])|[\s，,。!！；;]+")
_ASKS = re.compile(r"吗|(?<![这那怎什多])么|[?？]|怎么|什么|多少|(?<![好没这十前])几|哪|咋|啥|(\S)[不没]\1|\S\S不$|没$")
_HOW_MUCH = re.compile(r"多少|(?<![好没这十前])几|多[大重长久宽高厚]")   # the run's one such clause a later number takes up (净重多少 → 500克)


def partial_misses(conv: Conversation) -> list[int]:
    """The customer messages that hold a question the agent never took up while taking up another asked with it:
    in a run of the customer's messages with two or more asking clauses, a clause none of whose grams (``_grams``)
    any later agent or bot text shares, where another clause's are shared (鸡蛋一箱多少个 / 路上破了包赔不 →
    鸡蛋一箱30枚的亲: the breakage question was left). The part of a many-question turn left unanswered."""
    ms = conv.messages
    runs = _runs([m.role for m in ms], "customer")   # the customer's runs of messages
    out: list[int] = []
    later: set[str] = set()                  # the grams of every agent-side text after the run at hand
    number, end = False, len(ms)             # whether one of those texts holds a number
    for k, j in reversed(runs):
        for m in ms[j:end]:
            if side(m.role) == "agent" and m.type == "text" and m.text:
                later |= _grams(m.norm, singles=True, chars=True)
                number = number or any(ch.isdigit() for ch in m.norm)
        end = k
        asks = [(i, g, c) for i in range(k, j) if ms[i].type == "text" and ms[i].text
                for c in _CLAUSE.split(ms[i].norm)[:MAX_CLAUSES] if c and _ASKS.search(c) and _grams(c)
                for g in [_grams(c, singles=True)]]
        if len(asks) >= 2 and later:
            how = [bool(_HOW_MUCH.search(c)) for _, _, c in asks]   # one such clause: the number is its answer
            taken = [bool(g & later) or (number and h and sum(how) == 1) for (_, g, _), h in zip(asks, how)]
            if any(taken):
                out += sorted({i for (i, _, _), t in zip(asks, taken) if not t})
    return sorted(out)


def _score(m: dict, x, d: np.ndarray) -> np.ndarray:
    """A flag model's probability for rows of sparse ``x`` (the columns it read) and dense ``d``."""
    z = np.asarray(x @ m["coef"][:x.shape[1]]).ravel() + ((d - m["mean"]) / m["scale"]) @ m["coef"][x.shape[1]:]
    return 1 / (1 + np.exp(-(z + m["bias"])))


def _counts(blocks: list[str], pos: float, last: bool) -> list[float]:
    f, b, a, n = blocks
    return [math.log1p(len(f)), math.log1p(len(b)), math.log1p(len(a)), math.log1p(len(n)),
            float(not b), float(not a), float(not n), float(bool(_FACT.search(f))), float(bool(_FACT.search(a))),
            float(bool(_ASK.search(f))), float(bool(_ASK.search(a))), pos, float(last)]


class TurnFlags:
    """Per flag: (role, coefficients over the blocks' n-grams and the dense features, bias, dense scaling)."""

    def __init__(self, projection: Projection, models: dict[str, dict], info: dict | None = None,
                 thresholds: dict[str, float] | None = None, thresholds_real: dict[str, float] | None = None,
                 focus: dict | None = None, frozen: dict[str, dict] | None = None,
                 partial: dict[str, float] | None = None):
        self.projection, self.models, self.info = projection, models, dict(info or {})
        self.focus = dict(focus or {})             # side → TF-IDF vectorizer of its messages' own n-grams
        # flag → the model the ridge channel's structure part was fitted on, where the flag's model was refitted
        # after it (scripts/refit_turnflags.py): the stack reads what it was calibrated on, the flags the new model
        self.frozen = dict(frozen or {})
        self.thresholds = dict(thresholds or {})   # flag → threshold on the gated chat probability (dev split)
        self.thresholds_real = dict(thresholds_real or {})   # flag → threshold for the chats the ridge gate claims
        # flag → threshold on one message's turn probability for a message of ``partial_misses`` (dev split + probes)
        self.partial = dict(partial or {})
        self.kinds = None   # the answer kinds a question is also paired by (``read_answers``); None: by words alone

    def chat_thresholds(self, gate: np.ndarray) -> dict[str, np.ndarray]:
        """Flag → [n] each chat's threshold: ``thresholds`` blended with ``thresholds_real`` by the ridge gate
        (``scripts/pooled_betas.py calibrate`` fits the real side on the real training chats)."""
        g = np.asarray(gate, dtype=float)
        return {f: g * self.thresholds_real[f] + (1 - g) * t if f in self.thresholds_real else np.full(len(g), t)
                for f, t in self.thresholds.items()}

    def read_answers(self, rubric) -> None:
        """Pair a question with a later reply that holds an answer of the kind it asks for, as the rubric's rule
        of the same flag reads one (``answer_types`` of the flag whose model reads ``unanswered``; ``later_replies``).
        The rubric is the grader's, so a shop's own answer types reach the model too."""
        from qa.rules.checks import answer_kinds
        for flag, m in self.models.items():
            rule = rubric.rules.get(flag) if m["label"] == "unanswered" else None
            if rule is not None and rule.params.get("answer_types"):
                self.kinds = answer_kinds(rule.params["answer_types"])

    def partial_hit(self, flag: str, conv: Conversation, probs: dict[int, float]) -> tuple[int, float] | None:
        """(message, probability): the likeliest of ``conv``'s ``partial_misses`` whose turn probability (``probs``,
        this flag's per message) reaches the flag's ``partial`` threshold, else None. A question the agent left while
        answering the one asked with it is raised on less evidence than a whole chat's mean."""
        if flag not in self.partial:
            return None
        hits = [(probs[i], i) for i in partial_misses(conv) if probs.get(i, 0.0) >= self.partial[flag]]
        return (max(hits)[1], max(hits)[0]) if hits else None

    @property
    def flags(self) -> list[str]:
        return list(self.models)

    @property
    def combine(self) -> str:
        """How grading joins them with the network's flag probability: "or" (gated models fitted on the ridge
        chats alone: either one past its threshold) or "mean" (models that also learnt from other chats: their
        mean past one threshold)."""
        return "or" if self.info.get("gated", True) else "mean"

    def features(self, convs: Sequence[Conversation], roles: Sequence[str]) -> dict[str, tuple]:
        """Per role: (rows as (chat, message index), sparse [rows, 4·vocab (+ the focus vocabulary)], dense [rows,
        counts + cosines]) for its text messages, or ([], None, None) when it has none. Each distinct text is
        analysed once."""
        from scipy import sparse
        per = {}
        for role in roles:
            rows, blocks, dense = [], [], []
            for ci, c in enumerate(convs):
                ctx = contexts(c, role)
                for k, (i, bl) in enumerate(ctx):
                    rows.append((ci, i))
                    blocks.append(bl)
                    dense.append(_counts(bl, i / max(len(c.messages), 1), k == len(ctx) - 1))
            per[role] = (rows, blocks, dense)
        return self._read(per)

    def later_features(self, convs: Sequence[Conversation]) -> tuple:
        """``features``' customer rows for ``later_replies``: each question read with a later reply run."""
        rows, blocks, dense = [], [], []
        for ci, c in enumerate(convs):
            ctx = dict(contexts(c, "customer"))
            last = max(ctx, default=None)
            for i, bl, covers in later_replies(c, ctx, self.kinds):
                rows.append((ci, i, covers))
                blocks.append(bl)
                dense.append(_counts(bl, i / max(len(c.messages), 1), i == last))
        return self._read({"customer": (rows, blocks, dense)})["customer"]

    def _read(self, per: dict[str, tuple]) -> dict[str, tuple]:
        from scipy import sparse
        texts = sorted({t for _, blocks, _ in per.values() for bl in blocks for t in bl})
        where = {t: n for n, t in enumerate(texts)}
        x = self.projection.ngram_rows(texts) if texts else None
        emb = self.projection.embed_ngrams(x) if texts else None
        if "" in where:
            emb[where[""]] = 0.0                                           # an empty block has no vector
        out = {}
        for role, (rows, blocks, dense) in per.items():
            if not rows:
                out[role] = (rows, None, None)
                continue
            idx = np.array([[where[t] for t in bl] for bl in blocks])
            e = emb[idx]                                                   # [rows, 4, dims]
            cos = [np.einsum("nd,nd->n", e[:, p], e[:, q]) for p, q in ((0, 1), (0, 2), (0, 3), (2, 3))]
            d = np.c_[np.array(dense, np.float32), np.stack(cos, 1)].astype(np.float32)
            own = [tfidf.transform(self.focus[role], [bl[0] for bl in blocks])] if role in self.focus else []
            out[role] = (rows, sparse.hstack([x[idx[:, b]] for b in range(len(BLOCKS))] + own).tocsr(), d)
        return out

    def focus_readers(self, role: str) -> list[str]:
        """The models (``frozen:FLAG`` for a frozen one) that read ``role``'s focus vocabulary: those with more sparse
        columns than the four blocks' n-grams. A refit that fits the vocabulary again must refit them all."""
        blocks = len(BLOCKS) * len(self.projection.vec.vocabulary_)
        models = {**self.models, **{f"frozen:{f}": m for f, m in self.frozen.items()}}
        return [f for f, m in models.items() if m["role"] == role and len(m["coef"]) - len(m["mean"]) > blocks]

    def chat_probs(self, convs: Sequence[Conversation]) -> dict[str, tuple[np.ndarray, list[int | None]]]:
        """Flag → ([n] probability of the chat's likeliest message, [n] that message's index or None)."""
        return self.both_probs(convs)[0]

    def both_probs(self, convs: Sequence[Conversation]) -> tuple[dict, dict, dict]:
        """(``chat_probs``, the same from the models the ridge channel's structure part was fitted on: ``frozen``
        where a flag's model was refitted after the channel, else the flag's model, and per flag and chat each read
        message's probability {message index: p}), from one reading."""
        models = {**self.models, **{f"frozen:{f}": m for f, m in self.frozen.items()}}
        feats = self.features(convs, sorted({m["role"] for m in models.values()}))
        out, cols, each, later = {}, {}, {}, None
        for flag, m in models.items():
            rows, x, d = feats[m["role"]]
            probs, where = np.zeros(len(convs), np.float32), [None] * len(convs)
            per = each[flag] = [{} for _ in convs]
            if x is not None:
                # the sparse columns the model read: one fitted without the focus vocabulary reads the first ones
                nx = len(m["coef"]) - len(m["mean"])
                if (m["role"], nx) not in cols:
                    cols[m["role"], nx] = x if nx == x.shape[1] else x[:, :nx]
                for (ci, i), q in zip(rows, _score(m, cols[m["role"], nx], d)):
                    per[ci][i] = float(q)
                if m["label"] == "unanswered" and not flag.startswith("frozen:"):
                    if later is None:
                        later = self.later_features(convs)
                    lrows, lx, ld = later
                    if lx is not None:     # answered later: the question's probability is its best reading's
                        for (ci, _, covers), q in zip(lrows, _score(m, lx if nx == lx.shape[1] else lx[:, :nx], ld)):
                            for i in covers:
                                per[ci][i] = min(per[ci][i], float(q))
                for ci, ps in enumerate(per):
                    for i, q in ps.items():
                        if where[ci] is None or q > probs[ci]:
                            probs[ci], where[ci] = q, i
            out[flag] = (probs, where)
        flags = {f: out[f] for f in self.models}
        return flags, {f: out.get(f"frozen:{f}", out[f]) for f in self.models}, {f: each[f] for f in self.models}

    # -- fitting ------------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, convs: Sequence[Conversation], projection: Projection, flag_turns: dict[str, str | None],
            info: dict | None = None, focus: dict | None = None) -> "TurnFlags | None":
        """One classifier per flag with a turn label (``flag_turns``: flag → "role.label"), target: most of
        the chat's reviewers gave the message that label; only messages some reviewer labelled count. ``focus``:
        a side's focus vocabulary to keep (a refit beside models that read it) instead of fitting one."""
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression
        from qa.model.flags import turn_targets
        model = cls(projection, {}, info, focus=focus)
        by_role: dict[str, list[str]] = {}
        for flag, turn in flag_turns.items():
            role, _, label = (turn or "").partition(".")
            if role in ("customer", "agent") and label:
                by_role.setdefault(role, []).append(label)
        targets = [turn_targets(c, by_role) for c in convs]
        for role in set(by_role) - set(model.focus):   # the focus vocabulary: the side's turn-labelled messages
            texts = [bl[0] for ci, c in enumerate(convs) for i, bl in contexts(c, role) if targets[ci].get(i)]
            if FOCUS_NGRAMS and len(texts) >= 2 * MIN_POSITIVE:
                model.focus[role] = _vectorizer(max_features=FOCUS_NGRAMS).fit(texts)
        for flag, turn in flag_turns.items():
            role, _, label = (turn or "").partition(".")
            if role not in by_role or label not in by_role[role]:
                continue
            rows, x, d = model.features(convs, [role])[role]
            keep = [n for n, (ci, i) in enumerate(rows) if label in targets[ci].get(i, {})]
            y = np.array([targets[rows[n][0]][rows[n][1]][label] >= 0.5 for n in keep])
            if y.sum() < MIN_POSITIVE or (~y).sum() < MIN_POSITIVE:
                model.info.setdefault("skipped", {})[flag] = int(y.sum())
                continue
            mean, scale = d[keep].mean(0), d[keep].std(0) + 1e-6
            xx = sparse.hstack([x[keep], sparse.csr_matrix((d[keep] - mean) / scale)]).tocsr()
            lr = LogisticRegression(C=C, class_weight="balanced", max_iter=3000).fit(xx, y)
            model.models[flag] = {"role": role, "label": label, "coef": lr.coef_[0].astype(np.float32),
                                 "bias": np.float32(lr.intercept_[0]), "mean": mean.astype(np.float32),
                                 "scale": scale.astype(np.float32)}
            model.info.setdefault("turns", {})[flag] = {"rows": len(keep), "positive": int(y.sum())}
        return model if model.models else None

    # -- files --------------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        from safetensors.numpy import save_file
        t, meta = {}, {"flags": {}, "info": self.info, "thresholds": self.thresholds}
        if self.thresholds_real:
            meta["thresholds_real"] = self.thresholds_real
        if self.partial:
            meta["partial"] = self.partial
        for role, vec in self.focus.items():
            meta.setdefault("focus", {})[role] = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
            t[f"focus.{role}.idf"] = vec.idf_.astype(np.float32)
        for key, models in (("flags", self.models), ("frozen", self.frozen)):
            prefix = "frozen." if key == "frozen" else ""
            for f, m in models.items():
                for k in ("coef", "mean", "scale"):
                    t[f"{prefix}{f}.{k}"] = m[k].astype(np.float16 if k == "coef" else np.float32)
                t[f"{prefix}{f}.bias"] = np.array([m["bias"]], np.float32)
                meta.setdefault(key, {})[f] = {"role": m["role"], "label": m["label"]}
        save_file(t, str(Path(directory) / TENSORS))
        (Path(directory) / FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, projection: Projection | None) -> "TurnFlags | None":
        from safetensors.numpy import load_file
        directory = Path(directory)
        if not (directory / FILE).is_file() or projection is None:
            return None
        meta = json.loads((directory / FILE).read_text(encoding="utf-8"))
        t = load_file(str(directory / TENSORS))
        def read(key: str, prefix: str) -> dict[str, dict]:
            return {f: {**m, "coef": t[f"{prefix}{f}.coef"].astype(np.float32), "mean": t[f"{prefix}{f}.mean"],
                        "scale": t[f"{prefix}{f}.scale"], "bias": np.float32(t[f"{prefix}{f}.bias"][0])}
                    for f, m in (meta.get(key) or {}).items()}
        models, frozen = read("flags", ""), read("frozen", "frozen.")
        focus = {}
        for role, vocab in (meta.get("focus") or {}).items():
            focus[role] = _vectorizer(vocabulary={g: i for i, g in enumerate(vocab)}).fit(["x"])
            focus[role].idf_ = np.asarray(t[f"focus.{role}.idf"], dtype=np.float32)
        return cls(projection, models, meta.get("info"), meta.get("thresholds"), meta.get("thresholds_real"), focus,
                   frozen, meta.get("partial"))
