"""Load a model directory and grade conversations in batches: level distribution, expected grade, evidence."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.errors import ModelError, QAError
from qa.model.decision import chat_cuts, decide
from qa.model.inputs import clipped, joined
from qa.resources import default_model_dir
from qa.rubric import load_rubric
from qa.schema import Conversation

DEFAULT_MODEL = default_model_dir()      # package data in a wheel, models/default in a checkout


@dataclasses.dataclass(frozen=True)
class DimensionPrediction:
    probs: dict            # level → probability (calibrated), best level first
    level: object          # decided level (argmax or rounded expectation, as the model card says)
    expected: float        # Σ p · level, moved by the real-side stack / a shop calibration (probs are not)
    confidence: float      # probability of ``level``
    evidence: list[int]    # message indexes of the agent turns that weighed most

    def to_record(self) -> dict:
        return {"probs": {str(k): round(v, 4) for k, v in self.probs.items()}, "level": self.level,
                "expected": round(self.expected, 3), "confidence": round(self.confidence, 4),
                "evidence": self.evidence}


PARTIAL_WHY = "同一轮里一起问的另一个问题答了，这个问题没有回应"


@dataclasses.dataclass(frozen=True)
class FlagPrediction:
    """A rule flag the model raises: its probability, the threshold it passed, the evidence message, and why when the
    threshold is not the chat's (``why``: a partial answer, ``TurnFlags.partial_hit``)."""

    rule: str
    prob: float
    threshold: float
    message: int | None
    why: str | None = None

    def to_record(self) -> dict:
        out = {"rule": self.rule, "prob": round(self.prob, 4), "threshold": self.threshold, "message": self.message}
        return {**out, "why": self.why} if self.why else out


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Everything the model says about one conversation."""

    grades: dict[str, DimensionPrediction]
    nuggets: list[dict[str, float] | None]        # per message (None where not read / no nugget head)
    flags: dict[str, float]                       # flag → probability (every flag the model predicts)
    raised: list[FlagPrediction]                  # the flags at or above their threshold
    turns: list[dict[str, float] | None]          # per message, its turn-label probabilities


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _json_object(path: Path) -> None:
    """A model folder's JSON file, when there, holds one object (a tokenizer file that does not fails its loader
    with a bare KeyError or JSONDecodeError)."""
    if path.is_file() and not isinstance(json.loads(path.read_text(encoding="utf-8")), dict):
        raise ValueError("not a JSON object")


def _check_numbers(config) -> None:
    """The calibration numbers of ``config.json`` are finite: a NaN cutpoint or temperature grades every chat the
    same, silently."""
    for name in ("temperatures", "nugget_temperatures", "flag_thresholds", "flag_vetoes", "cutpoints",
                 "cutpoints_ungated"):
        for key, value in (getattr(config, name, None) or {}).items():
            for x in value if isinstance(value, list) else [value]:
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not np.isfinite(x):
                    raise ValueError(f"{name}.{key}: {x!r} is not a finite number")
    for name in ("cutpoints", "cutpoints_ungated"):   # k levels take k − 1 thresholds, in increasing order
        for key, value in (getattr(config, name, None) or {}).items():
            levels = config.dimensions.get(key)
            if levels is None:
                raise ValueError(f"{name}.{key}: not a dimension of the model")
            if not isinstance(value, list) or len(value) != len(levels) - 1:
                raise ValueError(f"{name}.{key}: {len(value) if isinstance(value, list) else 1} values where "
                                 f"{len(levels)} levels take {len(levels) - 1}")
            if any(b < a for a, b in zip(value, value[1:])):
                raise ValueError(f"{name}.{key}: {value} is not in increasing order")


def _check_parts(path: Path, config, ridge) -> None:
    """The files the model's parts need are all there: a half-copied folder grades differently without a word
    (a tokenizer of special tokens only reads every character as [UNK]; a ridge channel without its JSON is
    dropped)."""
    for a, b in (("ridge.json", "ridge.safetensors"), ("turnflags.json", "turnflags.safetensors")):
        if (path / a).is_file() != (path / b).is_file():
            missing, there = (a, b) if (path / b).is_file() else (b, a)
            raise ModelError(f"cannot load model from {path}: {missing}: missing ({there} is there)")
    if ridge is not None and (ridge.struct or {}).get("flags") and ridge.turn_flags is None:
        raise ModelError(f"cannot load model from {path}: turnflags.json: missing (the ridge channel reads the "
                         "turn models' flags)")
    if config.use_encoder and not (path / "tokenizer.json").is_file():
        raise ModelError(f"cannot load model from {path}: tokenizer.json: missing")
    if config.n_ngrams and not (path / "ngrams.json").is_file():
        raise ModelError(f"cannot load model from {path}: ngrams.json: missing (the network reads "
                         f"{config.n_ngrams:,} n-grams)")


def load_reason(e: BaseException, folder: Path | None = None) -> str:
    """Why a model file did not load, in a few words."""
    if isinstance(e, json.JSONDecodeError):
        return f"not valid JSON ({e})"
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text (byte {e.start} cannot be decoded)"
    if isinstance(e, KeyError):
        return f"missing key {e.args[0]!r}" if e.args else "a key is missing"
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename + ': ' if e.filename else ''}{e.strerror}"
    text = str(e)
    if folder is not None and isinstance(e, QAError):  # a RubricError names the file: keep the folder out of it
        text = text.replace(f"{folder}/", "").replace(f"{folder.resolve()}/", "")
    return text or type(e).__name__


class Classifier:
    """A trained rubric classifier on the CPU (or ``device``)."""

    def __init__(self, model_dir: str | Path | None = None, *, rubric=None, device: str = "cpu"):
        """``rubric``: the rubric the caller grades with (its rules and timing bands make the features); by
        default the ``rubric.yaml`` saved beside the model."""
        import torch  # noqa: F401  (fail here, clearly, when the model extra is not installed)
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

        from qa.model.batching import Batcher
        from qa.model.modeling import RubricModel
        from qa.model.ngrams import Ngrams
        from qa.model.offsets import Offsets
        from qa.model.ridge import RidgeChannel

        self.path = Path(model_dir) if model_dir else DEFAULT_MODEL
        if not (self.path / "config.json").is_file():
            raise ModelError(f"not a model directory (no config.json): {self.path}")
        # any file of the folder that cannot be loaded is the model's fault, said plainly with the file's name
        self.model = self._load("config.json, model.safetensors",
                                lambda: RubricModel.from_pretrained(self.path).to(device).eval())
        self.config = self.model.config
        self._load("config.json", functools.partial(_check_numbers, self.config))
        self.ridge = self._load("ridge.json, ridge.safetensors, turnflags.json",   # None: no ridge channel
                                lambda: RidgeChannel.load(self.path))
        _check_parts(self.path, self.config, self.ridge)
        self.offsets = self._load("offsets.json", lambda: Offsets.load(self.path))   # a shop's calibration or None
        tok = None
        if self.config.use_encoder:
            for name in TOKENIZER_FILES:
                self._load(name, functools.partial(_json_object, self.path / name))
            tok = self._load("tokenizer.json, tokenizer_config.json", lambda: AutoTokenizer.from_pretrained(self.path))
        if rubric is None:
            rubric_file = self.path / "rubric.yaml"
            rubric = self._load("rubric.yaml", lambda: load_rubric(rubric_file if rubric_file.is_file() else None))
        self.rubric = rubric
        if self.ridge is not None and self.ridge.turn_flags is not None:
            self.ridge.turn_flags.read_answers(rubric)   # a question answered later in other words (多大 → 长48)
        self.batcher = Batcher(self.config, tok, self._load("ngrams.json", lambda: Ngrams.load(self.path)), self.rubric)
        self.batcher.analyser = self.analyse
        self.device = device
        self._engine = None

    def _load(self, files: str, load):
        """``load()``, any failure a ModelError naming the model folder and the file(s) it read."""
        try:
            return load()
        except ModelError:
            raise
        except Exception as e:  # noqa: BLE001 — a corrupt file makes its loader raise anything
            reason = load_reason(e, self.path).removeprefix(f"{files}: ")
            raise ModelError(f"cannot load model from {self.path}: {files}: {reason}") from e

    def analyse(self, convs: Sequence[Conversation]) -> list:
        """Rule/timing analyses for the features when the caller passed none (``qa predict``): the shared
        ``qa.analysis`` step, with the rubric's rule engine built once."""
        from qa.analysis import analyse, default_engine
        if self._engine is None:
            self._engine = default_engine(self.rubric) or False
        return [analyse(c, self.rubric, self._engine or None) for c in convs]

    @property
    def dimensions(self) -> dict[str, list]:
        return self.config.dimensions

    @property
    def nuggets(self) -> dict[str, list[str]]:
        """Per-turn labels by role when the model has a nugget head (else empty)."""
        return self.config.nuggets if self.config.use_encoder else {}

    def predict(self, convs: Sequence[Conversation], *, findings=None, timings=None,
                batch_size: int = 32) -> list[dict[str, DimensionPrediction]]:
        return [grades for grades, _ in self.predict_full(convs, findings=findings, timings=timings,
                                                          batch_size=batch_size)]

    def predict_full(self, convs: Sequence[Conversation], *, findings=None, timings=None, batch_size: int = 32
                     ) -> list[tuple[dict[str, DimensionPrediction], list[dict[str, float] | None]]]:
        """Grades per dimension and, per message, its nugget distribution (None for messages the model did not
        read, and for every message when the model has no nugget head)."""
        return [(p.grades, p.nuggets) for p in self.predict_all(convs, findings=findings, timings=timings,
                                                                batch_size=batch_size)]

    def predict_all(self, convs: Sequence[Conversation], *, findings=None, timings=None, batch_size: int = 32
                    ) -> list[Prediction]:
        """Grades, nuggets, rule flags (with evidence turns) and turn labels, batch by batch."""
        out = []
        for s in range(0, len(convs), batch_size):
            sl = slice(s, s + batch_size)
            out += self._predict(convs[sl], findings[sl] if findings is not None else None,
                                 timings[sl] if timings is not None else None)
        return out

    def _predict(self, convs, findings, timings):
        """The model reads each chat with the agent's runs of messages joined (``qa.model.inputs.joined``); the
        rules' findings and the timings come from the messages as sent, and every message index the model gives
        back is one of those."""
        if timings is None and (self.config.feature_names or (self.ridge and self.ridge.needs_findings)):
            analyses = self.analyse(convs)   # the caller passed none (``qa predict``): the shared step, once
            findings, timings = [a.findings for a in analyses], [a.timing for a in analyses]
        cut = [clipped(c) for c in convs]
        views = [joined(c) for c in cut]
        preds = self._predict_read([v for v, _ in views], findings, timings)
        split = [b for b, (v, _) in enumerate(views) if v is not cut[b]]   # runs joined: read per message below
        labels = {f: t.partition(".")[2] for f, t in self.config.flag_turns.items() if t}
        for b, fine in zip(split, self._message_labels([cut[b] for b in split])):
            preds[b] = _unjoin(preds[b], views[b][1], convs[b], fine, labels)
        return preds

    def _message_labels(self, convs) -> list[dict[int, dict[str, float]]]:
        """Per chat, message index → turn label → the probability of the flag's turn-level model (which tells
        messages apart; the network's own turn head barely varies)."""
        out = [{} for _ in convs]
        if self.ridge is None or not convs:
            return out
        for f, per in self.ridge.turn_message_probs(convs).items():
            label = (self.config.flag_turns.get(f) or "").partition(".")[2]
            for b, probs in enumerate(per) if label else ():
                for i, q in probs.items():
                    out[b].setdefault(i, {})[label] = q
        return out

    def _predict_read(self, convs, findings, timings):
        import torch

        batch, all_turns = self.batcher(convs, findings=findings, timings=timings)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.inference_mode():
            res = self.model(**batch)
        out = [{} for _ in convs]
        found = findings if findings is not None else [()] * len(convs)
        tilts = (self.ridge.tilts(convs, {d: len(v) for d, v in self.config.dimensions.items()}, found)
                 if self.ridge else {})
        cuts = self._cuts(convs)
        for i, (dim, levels) in enumerate(self.config.dimensions.items()):
            t = float(self.config.temperatures.get(dim, 1.0))
            logits = res["logits"][dim].float().cpu()
            if dim in tilts:
                logits = logits + torch.from_numpy(tilts[dim])
            probs = (logits / t).softmax(-1).numpy()
            attn = res["attention"][:, i].cpu().numpy() if res["attention"] is not None else None
            shift = (self.ridge.stack_shift(convs, dim, probs @ np.arange(probs.shape[1]), found)
                     if self.ridge is not None and dim in cuts else None)
            if self.offsets is not None and dim in cuts and _step(levels):   # grade units → level-index units
                own = -self.offsets.grade_shift([c.platform for c in convs], dim) / _step(levels)
                shift = own if shift is None else shift + own
            for b, p in enumerate(probs):
                out[b][dim] = self._decide(levels, p, all_turns[b], attn[b] if attn is not None else None,
                                           cuts[dim][b] if dim in cuts else None,
                                           float(shift[b]) if shift is not None else 0.0)
        flags, raised, turn_probs = self._flags(res, convs, all_turns)
        nuggets = [[None] * len(c.messages) for c in convs]
        if res.get("nuggets"):
            temps = self.config.nugget_temperatures
            probs = {role: (v.float() / float(temps.get(role, 1.0))).softmax(-1).cpu().numpy()
                     for role, v in res["nuggets"].items()}
            for b, ts in enumerate(all_turns):
                for j, turn in enumerate(ts):
                    role = "customer" if turn.role == "customer" else "agent"
                    if role in probs:
                        nuggets[b][turn.index] = {n: float(q) for n, q in zip(self.nuggets[role], probs[role][b, j])}
        return [Prediction(*row) for row in zip(out, nuggets, flags, raised, turn_probs)]

    def _flags(self, res, convs, all_turns):
        """Per conversation: flag probabilities, the raised flags with their evidence, per-message turn labels."""
        cfg = self.config
        flags = [{} for _ in convs]
        raised = [[] for _ in convs]
        turn_probs = [[None] * len(c.messages) for c in convs]
        if res.get("turns") is not None:
            probs = {role: v.sigmoid().cpu().numpy() for role, v in res["turns"].items()}
            for b, ts in enumerate(all_turns):
                for j, turn in enumerate(ts):
                    role = "customer" if turn.role == "customer" else "agent"
                    if role in probs:
                        turn_probs[b][turn.index] = {n: float(q) for n, q in zip(cfg.turn_labels[role], probs[role][b, j])}
        for b, fine in enumerate(self._message_labels(convs)):
            for i, row in fine.items():
                turn_probs[b][i] = {**(turn_probs[b][i] or {}), **row}
        if res.get("flags") is None:
            return flags, raised, turn_probs
        p = res["flags"].sigmoid().cpu().numpy()
        attn = res["flag_attention"].cpu().numpy() if res.get("flag_attention") is not None else None
        turn_model = self.ridge.turn_flag_probs(convs) if self.ridge else {}
        turn_t = self.ridge.turn_flags.thresholds if turn_model else {}
        mean = bool(turn_model) and self.ridge.turn_flags.combine == "mean"
        chat_t = self.ridge.turn_flags.chat_thresholds(self.ridge.gate_probs(convs)) if mean else {}
        each = self.ridge.turn_message_probs(convs) if mean and self.ridge.turn_flags.partial else {}
        for b, ts in enumerate(all_turns):
            for j, f in enumerate(cfg.flags):
                flags[b][f] = float(p[b, j])
                own = self.offsets.flag_threshold(convs[b].platform, f) if self.offsets is not None else None
                t = own if own is not None else cfg.flag_thresholds.get(f)   # a shop's threshold wins
                if mean and f in turn_model:    # network and turn model vote together (qa train --turns-on)
                    q = flags[b][f] = float((p[b, j] + turn_model[f][0][b]) / 2)
                    cut = own if own is not None else chat_t[f][b] if f in chat_t else None
                    if ts and cut is not None and q >= cut:
                        raised[b].append(FlagPrediction(f, q, float(cut), turn_model[f][1][b]))
                    elif ts and cut is not None and own is None and f in each:
                        # a question left beside one answered (TurnFlags.partial_misses), on its own threshold
                        hit = self.ridge.turn_flags.partial_hit(f, convs[b], each[f][b])
                        if hit is not None:
                            raised[b].append(FlagPrediction(f, hit[1], self.ridge.turn_flags.partial[f], hit[0],
                                                            PARTIAL_WHY))
                elif ts and t is not None and p[b, j] >= t:
                    raised[b].append(FlagPrediction(f, float(p[b, j]), float(t),
                                                    self._evidence(f, b, j, ts, turn_probs[b], attn, convs[b])))
                elif ts and f in turn_model and turn_model[f][0][b] >= turn_t.get(f, 1.01):
                    q, where = turn_model[f][0][b], turn_model[f][1][b]   # the turn-level model found it
                    raised[b].append(FlagPrediction(f, float(q), float(turn_t[f]), where))
        return flags, raised, turn_probs

    def _evidence(self, flag, b, j, ts, turn_probs, attn, conv=None) -> int | None:
        """The message most likely to carry ``flag``: by its turn label when the model has one, else the text
        message its attention weighs most (an image or a card a reviewer cannot read a flag in)."""
        role, _, label = (self.config.flag_turns.get(flag) or "").partition(".")
        cands = [t for t in ts if (t.role == "customer") == (role == "customer")] if role else list(ts)
        scored = [(turn_probs[t.index][label], t.index) for t in cands
                  if turn_probs[t.index] is not None and label in turn_probs[t.index]]
        if scored:
            return max(scored)[1]
        if attn is not None:
            weights = attn[b, j, :len(ts)]
            texts = [k for k, t in enumerate(ts) if conv is None or _typed(conv.messages[t.index])]
            k = max(texts, key=lambda k: weights[k]) if texts else int(weights.argmax())
            return ts[k].index
        return None

    def _cuts(self, convs) -> dict[str, np.ndarray]:
        """Dimension → [n, k-1] each chat's cutpoints (``qa.model.decision.chat_cuts``: blended by the ridge
        gate where the model has ``cutpoints_ungated``)."""
        cfg = self.config
        if cfg.decision != "cutpoints" or not cfg.cutpoints:
            return {}
        ungated = getattr(cfg, "cutpoints_ungated", None) or {}
        gate = self.ridge.gate_probs(convs) if ungated and self.ridge is not None else np.ones(len(convs))
        return {d: chat_cuts(c, ungated.get(d), gate) for d, c in cfg.cutpoints.items()}

    def _decide(self, levels, p, turns, attn, cuts=None, shift: float = 0.0) -> DimensionPrediction:
        """The level, its expected grade and evidence turns. ``shift``: the real-side stack's move of the expected
        level index (``RidgeChannel.stack_shift``), applied to the expected grade and, as cutpoints moved the
        other way, to the level."""
        numeric = all(isinstance(v, (int, float)) for v in levels)
        expected = float(sum(float(v) * float(q) for v, q in zip(levels, p))) if numeric else float("nan")
        rule = self.config.decision if numeric else "argmax"
        if shift and numeric and cuts is not None and len(levels) > 1:
            cuts = np.asarray(cuts, dtype=float) - shift
            expected -= shift * (float(levels[0]) - float(levels[1]))   # one index step = one level's distance
        k = decide(p, rule, cuts)
        evidence = []
        if attn is not None:
            ranked = sorted(range(len(turns)), key=lambda j: -attn[j])
            # the agent's own messages: a bot's (the transfer notice) is not what the agent is graded on
            agents = [j for j in ranked if attn[j] > 0 and turns[j].role == "agent"] or \
                [j for j in ranked if attn[j] > 0 and turns[j].role != "customer"]
            evidence = sorted(turns[j].index for j in agents[:2])
        return DimensionPrediction({lv: float(q) for lv, q in zip(levels, p)}, levels[k], expected,
                                   float(p[k]), evidence)


def _unjoin(p: Prediction, where: list[list[int]], conv: Conversation, fine: dict[int, dict[str, float]],
            labels: dict[str, str]) -> Prediction:
    """``p``, made on the joined view of ``conv``, with ``conv``'s message indexes. A joined message's nuggets go
    to every message of its run, and its turn labels too, except those a turn-level model gives per message
    (``fine``, read on ``conv`` itself). A flag's evidence is the run's message that model likes most, a
    grade's the run's longest message."""
    def one(v: int, label: str = "") -> int:
        return max(where[v], key=lambda i: ((fine.get(i) or {}).get(label, 0.0), len(conv.messages[i].text or ""), -i))

    def spread(per: list, own: dict | None = None) -> list:
        out = [None] * len(conv.messages)
        for v, row in enumerate(per):
            for i in where[v]:
                out[i] = {**(row or {}), **own[i]} if own and i in own else row
        return out

    grades = {d: dataclasses.replace(g, evidence=sorted({one(v) for v in g.evidence})) for d, g in p.grades.items()}
    raised = [f if f.message is None else dataclasses.replace(f, message=one(f.message, labels.get(f.rule, "")))
              for f in p.raised]
    return Prediction(grades, spread(p.nuggets), p.flags, raised, spread(p.turns, fine))


def _step(levels) -> float:
    """The grade distance of one level-index step (5, 4, 3, 2 → 1), or 0 for levels that are not numbers."""
    if len(levels) < 2 or not all(isinstance(v, (int, float)) for v in levels[:2]):
        return 0.0
    return float(levels[0]) - float(levels[1])


def predict_distributions(model_dir, conversations) -> list[dict[str, dict[str, float]]]:
    """Per conversation, per dimension, the level distribution (string level → probability)."""
    clf = Classifier(model_dir)
    return [{d: {str(k): v for k, v in p.probs.items()} for d, p in row.items()}
            for row in clf.predict(list(conversations))]


def read_labels(model_dir: str | Path) -> dict:
    return json.loads((Path(model_dir) / "labels.json").read_text(encoding="utf-8"))


def _typed(message) -> bool:
    """A message typed as text (not an image, a card or an emoji, whatever placeholder text it carries)."""
    return message.type == "text" and message.has_text
