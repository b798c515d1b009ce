"""The ridge channel: a grade score per dimension from ridge regressions fitted on one set of reviewed chats
(``qa train --ridge-on``: for the default, the real shop chats), added to the level logits as a tilt.

Why: the network and its n-gram channel learn from every training chat, and the written and generated ones
outnumber the real ones; on real chats their grades rank barely better than a model fitted on the real chats
alone. Small regressions fitted only on the chosen chats, one on the char 1–3-gram TF-IDF of the agent's
text, one on projected sentence vectors (``qa.model.projection``: mean agent and mean customer message
vector) and, when fitted with rule findings, one on the chat's structure (``struct_features``: style counts,
how often each rule fired, the agent's message lengths and run-on sentences, and the turn-level flag models'
chat probabilities for unanswered questions and vague replies, out of fold when fitting), are z-scored on their
out-of-fold predictions, averaged (a dimension drops the structure part unless it ranks the held-out folds
better) and rescaled to unit out-of-fold spread into a score ``r`` (≈ N(0, 1), higher = better). Each
dimension's logits get ``beta · g · r · c``: ``c`` the centred ordinal position of each level (best level
highest), ``beta`` chosen on the dev split (0 = off), and ``g`` the **gate**, the probability that the chat is
like the ones the channel was fitted on rather than like the other training chats (a logistic regression on
char 1–2-grams, with bracketed masks such as ``[数字x]`` removed, and ten style counts: lengths, punctuation,
short replies, cards, digits). Fitted on real chats, the regressions rank real chats well and written ones
badly; the gate keeps them to the chats they know. Cheap: a few sparse products per chat.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.model import tfidf
from qa.model.projection import Projection
from qa.schema import Conversation

FILE, TENSORS = "ridge.json", "ridge.safetensors"
TEXT_ALPHA, SEM_ALPHA = 1.0, 3000.0     # chosen by 5-fold CV on the real training chats (docs/real-chats.md)
STRUCT_ALPHA = 100.0                    # the same way (30–300 score alike)
STRUCT_MIN_GAIN = 0.02                  # a dimension keeps the structure part if it lifts out-of-fold Spearman so much


_END = re.compile(r"[。！？!?.~～]$")
_PUNCT = re.compile(r"[，,。！？!?；;：:~～、]")
_MASK = re.compile(r"\[[^\]]{0,12}\]")
_CLAUSES = re.compile(r"[，,。！？!?；;：:~～、\s]+")
GATE_C, GATE_STYLE = 1.0, 0.3       # LR strength; weight of the standardised style counts beside the n-grams


def style_counts(conv: Conversation) -> list[float]:
    """Ten counts of how a chat is written: messages, agent and customer text lengths, sentence-final and inner
    punctuation, short agent replies, cards, digits, the agent's share of text messages."""
    ms = [m for m in conv.messages if m.role in ("agent", "customer") and m.type != "event"]
    txt = [m for m in ms if m.type == "text" and m.text]
    ag = [m.text for m in txt if m.role == "agent"]
    cu = [m.text for m in txt if m.role == "customer"]

    def mean(xs, fn):   # plain Python: numpy's mean costs more than the sums on a few short lists
        return sum(map(fn, xs)) / len(xs) if xs else 0.0
    return [math.log1p(len(ms)), math.log1p(mean(ag, len)), math.log1p(mean(cu, len)),
            mean(ag, lambda t: bool(_END.search(t))), mean(cu, lambda t: bool(_END.search(t))),
            mean(ag, lambda t: bool(_PUNCT.search(t[:-1]))),
            mean(ag, lambda t: len(t) <= 10), sum(m.type != "text" for m in ms) / max(len(ms), 1),
            mean([m.text for m in txt], lambda t: any(ch.isdigit() for ch in t)), len(ag) / max(len(txt), 1)]


def struct_features(conv: Conversation, findings, rules: Sequence[str]) -> list[float]:
    """How a chat is built, beside its words: the ten ``style_counts``, how often each of ``rules`` fired
    (capped at 3), and the agent's longest message, number of text messages, longest clause, share of messages
    with a clause over 40 characters (run-on replies) and total text (logs). Reviewers grade real chats on these
    as much as on phrasing: a reply that answers in one unpunctuated run is unclear, a chat that fires rules is
    worse handled."""
    fired: dict[str, int] = {}
    for f in findings or ():
        fired[f.rule] = fired.get(f.rule, 0) + 1
    ag = [m.norm for m in conv.messages if m.role == "agent" and m.type == "text" and m.text]
    lengths = [len(t) for t in ag] or [0]
    clauses = [max(map(len, _CLAUSES.split(t))) for t in ag] or [0]
    return (style_counts(conv) + [min(fired.get(r, 0), 3) for r in rules]
            + [math.log1p(max(lengths)), math.log1p(len(ag)), math.log1p(max(clauses)),
               sum(c > 40 for c in clauses) / max(len(ag), 1), math.log1p(sum(lengths))])


def flag_features(probs: np.ndarray) -> np.ndarray:
    """[n, 2·flags] from [n, flags] chat probabilities of the turn-level flag models: each as is and as a logit
    (clipped), so the regression can read both a likely flag and how sure the model is."""
    p = np.asarray(probs, np.float32).reshape(len(probs), -1)
    return np.c_[p, np.log(p + 1e-3) - np.log(1 - p + 1e-3)].astype(np.float32)


def gate_text(conv: Conversation) -> str:
    return _MASK.sub(" ", " ".join(m.norm for m in conv.messages if m.type == "text" and m.text))


def _gate_vectorizer(vocabulary=None):
    from sklearn.feature_extraction.text import TfidfVectorizer
    return TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True, min_df=5, dtype=np.float32,
                           vocabulary=vocabulary, max_features=None if vocabulary else 5000)


def agent_text(conv: Conversation) -> str:
    return " ".join(m.norm for m in conv.messages if m.type == "text" and m.role == "agent" and m.text)


def stacked_index(stack: dict, idx: np.ndarray, gz: np.ndarray, blend: np.ndarray,
                  platforms: Sequence[str] | None = None) -> np.ndarray:
    """[n] a dimension's expected level index under its real-side stack: idx + blend · (s − idx), with
    s = bias + offset(platform) + level · idx + gz · parts (``gz`` [n, parts]: the gated z-scored ridge parts;
    ``blend``: the gate, 0 for a chat with no agent text; ``platforms``: each chat's platform, whose offset is the
    stack's ``platform`` entry, 0 for a platform without one)."""
    s = stack["bias"] + stack["level"] * idx + gz @ np.asarray(stack["parts"], np.float64)
    offsets = stack.get("platform")
    if offsets and platforms is not None:
        s = s + np.array([offsets.get(p, 0.0) for p in platforms], np.float64)
    return idx + blend * (s - idx)


def centred(k: int) -> np.ndarray:
    """Ordinal position of each level, best first, centred: k=4 → [1.5, 0.5, −0.5, −1.5]."""
    return (k - 1) / 2 - np.arange(k, dtype=np.float32)


class RidgeChannel:
    """Fitted regressions, their z-scoring, the gate and the chosen betas; ``tilts`` is what grading adds."""

    def __init__(self, dims: list[str], text_vec, text_coef, text_bias, projection: Projection | None = None,
                 sem_mean=None, sem_scale=None, sem_coef=None, sem_bias=None, z_mean=None, z_std=None,
                 beta: dict[str, float] | None = None, info: dict | None = None, gate: dict | None = None,
                 struct: dict | None = None):
        self.dims, self.text_vec = dims, text_vec
        self.text_coef, self.text_bias = np.asarray(text_coef, np.float32), np.asarray(text_bias, np.float32)
        self.projection = projection
        self.sem_mean, self.sem_scale, self.sem_coef, self.sem_bias = sem_mean, sem_scale, sem_coef, sem_bias
        self.z_mean, self.z_std = np.asarray(z_mean, np.float32), np.asarray(z_std, np.float32)
        self.beta = dict(beta or {})
        self.r_std = np.ones(len(dims), np.float32)   # the averaged score's out-of-fold spread: r has unit spread
        self.info = dict(info or {})
        self.gate = gate   # {"vec", "mean", "scale", "coef", "bias"}, or None: every chat counts fully
        self.struct = struct   # {"rules", "flags", "mean", "scale", "coef", "bias", "use"}, or None: no structure part
        self.turn_flags = None   # qa.model.turnflags.TurnFlags fitted on the same chats, or None
        self.stack: dict[str, dict] = {}   # dimension → the real-side stack (``stack_shift``), when fitted
        self._last: dict[str, tuple[list, object]] = {}   # per kind, the previous batch and its result (``_memo``)

    # -- features -------------------------------------------------------------------------------------
    def part_weights(self) -> np.ndarray:
        """[dims, parts] 1 for the parts a dimension averages, 0 for a structure part it did not keep."""
        w = np.ones(self.z_mean.shape, np.float32)
        if self.struct is not None:
            w[:, -1] = self.struct["use"]
        return w

    @property
    def needs_findings(self) -> bool:
        """Whether scoring reads each chat's rule findings (the structure part)."""
        return self.struct is not None

    def components(self, convs: Sequence[Conversation], findings=None) -> np.ndarray:
        """[n, dims, parts] raw ridge predictions: text, sentence vectors when there is a projection, structure
        when there is a structure part (``findings``: per chat its rule findings)."""
        parts = [np.asarray(tfidf.transform(self.text_vec, [agent_text(c) for c in convs]) @ self.text_coef.T)
                 + self.text_bias]
        if self.projection is not None:
            s = (sem_features(convs, self.projection) - self.sem_mean) / self.sem_scale
            parts.append(s @ self.sem_coef.T + self.sem_bias)
        if self.struct is not None:
            if findings is None:
                raise ValueError("this ridge channel reads rule findings: pass findings")
            st = self.struct
            x = np.array([struct_features(c, f, st["rules"]) for c, f in zip(convs, findings)], np.float32)
            if st.get("flags"):
                probs = self._chat_flag_probs(convs, struct=True)
                x = np.c_[x, flag_features(np.stack([probs[f][0] for f in st["flags"]], 1))]
            x = (x - st["mean"]) / st["scale"]
            parts.append(x @ st["coef"].T + st["bias"])
        return np.stack(parts, -1)

    def zparts(self, convs: Sequence[Conversation], findings=None) -> np.ndarray:
        """[n, dims, parts] the z-scored components, kept for the batch (the scores and the stack read them)."""
        return self._memo("z", convs, lambda cs: (self.components(cs, findings) - self.z_mean) / self.z_std)

    def talks(self, convs: Sequence[Conversation]) -> np.ndarray:
        """[n] bool: the chat has agent text (kept for the batch: the scores and the stack each ask)."""
        return self._memo("talks", convs, lambda cs: np.array([bool(agent_text(c)) for c in cs], dtype=bool))

    def scores(self, convs: Sequence[Conversation], findings=None) -> np.ndarray:
        """[n, dims] mean of the z-scored components; 0 for a chat with no agent text."""
        if not convs:
            return np.zeros((0, len(self.dims)), dtype=np.float32)
        z = self.zparts(convs, findings)
        w = self.part_weights()
        r = ((z * w).sum(-1) / w.sum(-1) / self.r_std).astype(np.float32)
        r[~self.talks(convs)] = 0.0   # no agent text (bot-only chats): nothing to say
        return r

    def gated_scores(self, convs: Sequence[Conversation], findings=None) -> np.ndarray:
        """[n, dims]: ``scores`` × the gate's probability."""
        return self.scores(convs, findings) * self.gate_probs(convs)[:, None]

    def gate_probs(self, convs: Sequence[Conversation]) -> np.ndarray:
        """[n]: how like the channel's own chats each chat is (1 everywhere without a gate)."""
        if self.gate is None or not convs:
            return np.ones(len(convs), dtype=np.float32)
        return self._memo("gate", convs, self._gate)   # grading asks three times per batch

    def _gate(self, convs: Sequence[Conversation]) -> np.ndarray:
        g = self.gate
        x = np.asarray(tfidf.transform(g["vec"], [gate_text(c) for c in convs]) @ g["coef"][:-len(g["mean"])])
        style = (np.array([style_counts(c) for c in convs]) - g["mean"]) / g["scale"] * GATE_STYLE
        z = x + style @ g["coef"][-len(g["mean"]):] + g["bias"]
        return (1 / (1 + np.exp(-z))).astype(np.float32)

    def _memo(self, kind: str, convs: Sequence[Conversation], compute):
        """``compute(convs)``, or its result for the previous batch when ``convs`` are the same objects."""
        last = self._last.get(kind)
        if last is not None and len(last[0]) == len(convs) and all(a is b for a, b in zip(last[0], convs)):
            return last[1]
        out = compute(convs)
        self._last[kind] = (list(convs), out)
        return out

    def fit_gate(self, own: Sequence[Conversation], other: Sequence[Conversation]) -> None:
        """The gate: class-balanced logistic regression, ``own`` chats (the channel's) against ``other`` ones."""
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression
        convs = list(own) + list(other)
        vec = _gate_vectorizer().fit([gate_text(c) for c in convs])
        st = np.array([style_counts(c) for c in convs])
        mean, scale = st.mean(0), st.std(0) + 1e-6
        x = sparse.hstack([vec.transform([gate_text(c) for c in convs]),
                           sparse.csr_matrix((st - mean) / scale * GATE_STYLE)]).tocsr()
        y = np.r_[np.ones(len(own)), np.zeros(len(other))]
        lr = LogisticRegression(C=GATE_C, class_weight="balanced", max_iter=2000).fit(x, y)
        self._last.pop("gate", None)
        self.gate = {"vec": vec, "mean": mean.astype(np.float32), "scale": scale.astype(np.float32),
                     "coef": lr.coef_[0].astype(np.float32), "bias": np.float32(lr.intercept_[0])}

    def _chat_flag_probs(self, convs: Sequence[Conversation], struct: bool = False
                         ) -> dict[str, tuple[np.ndarray, list[int | None]]]:
        """``turn_flags.both_probs``, kept for the batch: grading asks twice, for the structure part's inputs
        (``struct``) and for the flags."""
        if self.turn_flags is None or not convs:
            return {}
        return self._memo("flags", convs, self.turn_flags.both_probs)[int(struct)]

    def turn_message_probs(self, convs: Sequence[Conversation]) -> dict[str, list[dict[int, float]]]:
        """Flag → per chat, each message its turn-level model read and that model's probability (not gated)."""
        if self.turn_flags is None or not convs:
            return {}
        return self._memo("flags", convs, self.turn_flags.both_probs)[2]

    def turn_flag_probs(self, convs: Sequence[Conversation]) -> dict[str, tuple[np.ndarray, list[int | None]]]:
        """Flag → ([n] the turn-level flag model's chat probability × the gate, [n] its evidence message); not
        gated when the models also learnt from other chats than the channel's (``qa train --turns-on``)."""
        if self.turn_flags is None or not convs:
            return {}
        g = self.gate_probs(convs) if self.turn_flags.combine == "or" else 1.0
        return {f: (p * g, where) for f, (p, where) in self._chat_flag_probs(convs).items()}

    def stack_shift(self, convs: Sequence[Conversation], dim: str, idx: np.ndarray, findings=None
                    ) -> np.ndarray | None:
        """[n] how far the real-side stack moves ``dim``'s expected level index ``idx`` (0 = best), or None when
        the dimension has no stack. The stack is a linear model fitted on the real training chats, each scored by
        a model that never saw it (``scripts/pooled_betas.py calibrate``): s = bias + offset(platform) + level · idx
        + parts · g·z, with z the z-scored ridge parts. It undoes what the tilt leaves, such as short real replies
        graded a third of a level low, and a platform whose real chats its reviewers grade apart from the rest.
        The shift is g · (s − idx): written chats (g ≈ 0) keep their index."""
        st = self.stack.get(dim)
        if not st or not convs:
            return None
        g = self.gate_probs(convs)
        gz = self.zparts(convs, findings)[:, self.dims.index(dim), :] * g[:, None]
        blend = g * self.talks(convs)   # bot-only chats: nothing to say
        idx = np.asarray(idx, np.float64)
        return stacked_index(st, idx, gz, blend, [c.platform for c in convs]) - idx

    def tilts(self, convs: Sequence[Conversation], levels: dict[str, int], findings=None) -> dict[str, np.ndarray]:
        """Per dimension with a non-zero beta: [n, k] to add to its logits."""
        if not any(self.beta.get(d) for d in self.dims):
            return {}
        r = self.gated_scores(convs, findings)
        return {d: self.beta[d] * r[:, j, None] * centred(levels[d])[None, :]
                for j, d in enumerate(self.dims) if self.beta.get(d) and d in levels}

    # -- fitting ----------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, convs: Sequence[Conversation], y: np.ndarray, dims: list[str], projection: Projection | None = None,
            folds: int = 5, seed: int = 0, info: dict | None = None, findings=None,
            rules: Sequence[str] = (), flag_probs: dict[str, np.ndarray] | None = None) -> "RidgeChannel":
        """``y`` [n, dims]: the reviews' mean ordinal score per dimension (higher = better; NaN = not graded).
        ``findings`` (per chat its rule findings) and ``rules`` (the rubric's rule ids): fit a structure part;
        ``flag_probs`` (flag → [n] out-of-fold chat probabilities of the turn-level flag models, which grading
        then takes from ``turn_flags``) join it."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import Ridge
        texts = [agent_text(c) for c in convs]
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2, dtype=np.float32)
        xt = vec.fit_transform(texts)
        xs = sem_features(convs, projection) if projection is not None else None
        if xs is not None:
            sem_mean, sem_scale = xs.mean(0), xs.std(0) + 1e-6
            xs = (xs - sem_mean) / sem_scale
        struct = None
        if findings is not None:
            xf = np.array([struct_features(c, f, list(rules)) for c, f in zip(convs, findings)], np.float32)
            names = sorted(flag_probs or {})
            if names:
                xf = np.c_[xf, flag_features(np.stack([flag_probs[f] for f in names], 1))]
            struct = {"rules": list(rules), "flags": names, "mean": xf.mean(0), "scale": xf.std(0) + 1e-6,
                      "coef": np.zeros((len(dims), xf.shape[1]), np.float32), "bias": np.zeros(len(dims), np.float32),
                      "use": np.zeros(len(dims), np.float32)}
            info = dict(info or {}, struct_oof_spearman={})
            xf = (xf - struct["mean"]) / struct["scale"]
        n_parts = 1 + (xs is not None) + (struct is not None)
        r_std = np.ones(len(dims), np.float32)
        text_coef = np.zeros((len(dims), xt.shape[1]), np.float32)
        text_bias = np.zeros(len(dims), np.float32)
        sem_coef = np.zeros((len(dims), xs.shape[1]), np.float32) if xs is not None else None
        sem_bias = np.zeros(len(dims), np.float32)
        z_mean = np.zeros((len(dims), n_parts), np.float32)
        z_std = np.ones((len(dims), n_parts), np.float32)
        rng = np.random.default_rng(seed)
        for j in range(len(dims)):
            rows = np.flatnonzero(~np.isnan(y[:, j]))
            if len(rows) < 2 * folds:
                continue
            xs_j = [xt[rows]] + ([xs[rows]] if xs is not None else []) + ([xf[rows]] if struct is not None else [])
            alphas = [TEXT_ALPHA] + ([SEM_ALPHA] if xs is not None else []) + ([STRUCT_ALPHA] if struct else [])
            oof = np.zeros((len(rows), n_parts), np.float32)
            fold = rng.permutation(len(rows)) % folds
            for f in range(folds):
                tr, te = fold != f, fold == f
                for p, (x, a) in enumerate(zip(xs_j, alphas)):
                    oof[te, p] = Ridge(alpha=a).fit(x[tr], y[rows[tr], j]).predict(x[te])
            z_mean[j], z_std[j] = oof.mean(0), oof.std(0) + 1e-6
            if struct is not None:   # keep the structure part where it ranks the held-out folds better
                from scipy.stats import spearmanr
                z = (oof - z_mean[j]) / z_std[j]
                without, with_ = (float(spearmanr(z[:, :-1].mean(-1), y[rows, j])[0]),
                                  float(spearmanr(z.mean(-1), y[rows, j])[0]))
                struct["use"][j] = float(with_ - without >= STRUCT_MIN_GAIN)
                info["struct_oof_spearman"][dims[j]] = {"without": round(without, 4), "with": round(with_, 4),
                                                        "kept": bool(struct["use"][j])}
                r_std[j] = ((z[:, :-1].mean(-1) if not struct["use"][j] else z.mean(-1)).std() + 1e-6)
            else:
                r_std[j] = ((oof - z_mean[j]) / z_std[j]).mean(-1).std() + 1e-6
            m = Ridge(alpha=TEXT_ALPHA).fit(xt[rows], y[rows, j])
            text_coef[j], text_bias[j] = m.coef_, m.intercept_
            if xs is not None:
                m = Ridge(alpha=SEM_ALPHA).fit(xs[rows], y[rows, j])
                sem_coef[j], sem_bias[j] = m.coef_, m.intercept_
            if struct is not None:
                m = Ridge(alpha=STRUCT_ALPHA).fit(xf[rows], y[rows, j])
                struct["coef"][j], struct["bias"][j] = m.coef_, m.intercept_
        channel = cls(dims, vec, text_coef, text_bias, projection,
                      sem_mean if xs is not None else None, sem_scale if xs is not None else None, sem_coef, sem_bias,
                      z_mean, z_std, info=info, struct=struct)
        channel.r_std = r_std
        return channel

    # -- files ------------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        from safetensors.numpy import save_file
        directory = Path(directory)
        vocab = sorted(self.text_vec.vocabulary_, key=self.text_vec.vocabulary_.get)
        t = {"text.idf": self.text_vec.idf_.astype(np.float32), "text.coef": self.text_coef.astype(np.float16),
             "text.bias": self.text_bias, "z.mean": self.z_mean, "z.std": self.z_std, "r.std": self.r_std}
        meta = {"dimensions": self.dims, "beta": self.beta, "info": self.info, "text_vocab": vocab}
        if self.stack:
            meta["stack"] = self.stack
        if self.projection is not None:
            pt, pvocab = self.projection.tensors()
            t.update(pt)
            t.update({"sem.mean": self.sem_mean.astype(np.float32), "sem.scale": self.sem_scale.astype(np.float32),
                      "sem.coef": self.sem_coef.astype(np.float32), "sem.bias": self.sem_bias.astype(np.float32)})
            meta["projection_vocab"] = pvocab
        if self.gate is not None:
            g = self.gate
            t.update({"gate.idf": g["vec"].idf_.astype(np.float32), "gate.mean": g["mean"], "gate.scale": g["scale"],
                      "gate.coef": g["coef"], "gate.bias": np.array([g["bias"]], np.float32)})
            meta["gate_vocab"] = sorted(g["vec"].vocabulary_, key=g["vec"].vocabulary_.get)
        if self.struct is not None:
            st = self.struct
            t.update({"struct.mean": st["mean"], "struct.scale": st["scale"], "struct.coef": st["coef"],
                      "struct.bias": st["bias"], "struct.use": st["use"]})
            meta["struct_rules"], meta["struct_flags"] = st["rules"], st.get("flags", [])
        save_file({k: np.ascontiguousarray(v) for k, v in t.items()}, str(directory / TENSORS))
        (directory / FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        if self.turn_flags is not None:
            self.turn_flags.save(directory)
        else:
            from qa.model import turnflags
            for name in (turnflags.FILE, turnflags.TENSORS):
                (directory / name).unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: str | Path) -> "RidgeChannel | None":
        from safetensors.numpy import load_file
        from sklearn.feature_extraction.text import TfidfVectorizer
        directory = Path(directory)
        if not (directory / FILE).is_file():
            return None
        meta = json.loads((directory / FILE).read_text(encoding="utf-8"))
        t = load_file(str(directory / TENSORS))
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, dtype=np.float32,
                              vocabulary={g: i for i, g in enumerate(meta["text_vocab"])})
        vec.fit(["x"])
        vec.idf_ = t["text.idf"]
        proj = Projection.from_tensors(t, meta["projection_vocab"]) if "projection_vocab" in meta else None
        gate = None
        if "gate_vocab" in meta:
            gvec = _gate_vectorizer({g: i for i, g in enumerate(meta["gate_vocab"])})
            gvec.fit(["x"])
            gvec.idf_ = t["gate.idf"]
            gate = {"vec": gvec, "mean": t["gate.mean"], "scale": t["gate.scale"], "coef": t["gate.coef"],
                    "bias": np.float32(t["gate.bias"][0])}
        struct = None
        if "struct_rules" in meta:
            struct = {"rules": meta["struct_rules"], "flags": meta.get("struct_flags", []), "mean": t["struct.mean"],
                      "scale": t["struct.scale"],
                      "coef": t["struct.coef"], "bias": t["struct.bias"], "use": t["struct.use"]}
        channel = cls(meta["dimensions"], vec, t["text.coef"].astype(np.float32), t["text.bias"], proj,
                      t.get("sem.mean"), t.get("sem.scale"), t.get("sem.coef"), t.get("sem.bias"),
                      t["z.mean"], t["z.std"], meta.get("beta"), meta.get("info"), gate, struct)
        if "r.std" in t:
            channel.r_std = t["r.std"]
        channel.stack = meta.get("stack") or {}
        from qa.model.turnflags import TurnFlags
        channel.turn_flags = TurnFlags.load(directory, proj)
        return channel


def sem_features(convs: Sequence[Conversation], projection: Projection) -> np.ndarray:
    """[n, 2·dims]: mean projected vector of the agent's text messages, then of the customer's (0 when none)."""
    texts, owner = [], []
    for i, c in enumerate(convs):
        for m in c.messages:
            if m.type == "text" and m.text and m.role in ("agent", "customer"):
                texts.append(m.norm)
                owner.append((i, m.role == "customer"))
    d = projection.dims
    out = np.zeros((len(convs), 2, d), np.float32)
    count = np.zeros((len(convs), 2), np.float32)
    if texts:
        v = projection.embed(texts)
        idx = np.array(owner, dtype=int)
        np.add.at(out, (idx[:, 0], idx[:, 1]), v)
        np.add.at(count, (idx[:, 0], idx[:, 1]), 1)
    return (out / np.maximum(count, 1)[..., None]).reshape(len(convs), 2 * d)
