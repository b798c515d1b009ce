"""The grading assembly: ``Grader.from_settings`` builds rubric, rule engine and classifier once, checks they
fit together, and grades batches of conversations. Every runner (``qa.batch``'s local pool, a cluster actor)
maps batches through one ``Grader``; none re-implements a step.

Per batch: ``qa.analysis.analyse`` per conversation (timing, findings, timing levels), the classifier once for
the batch (its features made from those analyses), then ``qa.score.grade`` per conversation.

Platform → profile policy (data, not code): an explicit ``--profile`` for every conversation; otherwise the
rubric's profile named like the conversation's platform, else the rubric's ``default_profile``, else — for a
rubric without profiles — equal weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa.errors import ModelError, RubricError
from qa.grade import Grade
from qa.io.build import Reject
from qa.rubric import Rubric, load_rubric
from qa.schema import Conversation

# every file the classifier reads when grading: a stamp that left one out would let a resumed run keep grades made
# under an older ridge channel or older flag thresholds
MODEL_FILES = ("config.json", "model.safetensors", "ngrams.json", "tokenizer.json", "tokenizer_config.json",
               "offsets.json", "ridge.json", "ridge.safetensors", "turnflags.json", "turnflags.safetensors",
               "projection.safetensors")


@dataclasses.dataclass(frozen=True)
class GradeSettings:
    """What a run is graded with; picklable, so worker processes (or actors) build their own ``Grader``."""

    rubric: str | None = None
    profile: str | None = None          # None: each conversation under its platform's profile (rubric policy)
    model: str | None = None            # None: the shipped default; "none": no model dimensions
    batch_size: int = 64
    threads: int = 1                    # torch threads per worker
    messages: bool = True               # False: records leave out the conversation's messages
    read: tuple[tuple[str, str], ...] = ()   # reading options given (platform, tz, columns): in the stamp, so a
                                             # resume under others is refused

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be ≥ 1")
        if self.threads < 1:
            raise ValueError("threads must be ≥ 1")


def read_stamp(settings: GradeSettings) -> dict:
    """The stamp's reading options, only when some were given (a default run's stamp stays as it was)."""
    return {"read": dict(settings.read)} if settings.read else {}


def profile_for(rubric: Rubric, platform: str | None, explicit: str | None = None) -> str | None:
    """The profile a conversation from ``platform`` is weighed under (policy in the module docstring)."""
    if explicit:
        return explicit
    if platform and platform in rubric.profiles:
        return platform
    if rubric.default_profile:
        return rubric.default_profile
    if rubric.profiles:
        raise RubricError(f"no profile for platform {platform!r} and no default_profile (profiles: "
                          f"{', '.join(rubric.profiles)})", file=str(rubric.path), key="default_profile")
    return None


def ungradable(conv, file: str) -> Reject | None:
    """A reject for a chat with nobody in it (system events only: a session opened and closed): it has nothing to
    grade, and scored it would be 100 on resolution alone. ``qa predict`` refuses it too."""
    if any(m.role in ("customer", "agent", "bot") for m in conv.messages):
        return None
    return Reject(file, conv._line, "no customer, agent or bot message: nothing to grade", field="messages", id=conv.id)


def rubric_hash(rubric: Rubric) -> str:
    """A digest of what the rubric says (its validated content and lexicon), not of its file's bytes."""
    body = rubric.model_dump(mode="json", exclude={"path"})
    body["_lexicon"] = rubric.lexicon_data()
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def model_hash(path: Path) -> str:
    """A digest of a model directory's weights, config and vocabularies (recomputed when a file changes)."""
    files = tuple((name, st.st_mtime_ns, st.st_size) for name in MODEL_FILES
                  if (st := _stat(path / name)) is not None)
    return _model_hash(path, files)


def _stat(p: Path):
    try:
        return p.stat() if p.is_file() else None
    except OSError:
        return None


@functools.lru_cache(maxsize=8)
def _model_hash(path: Path, files: tuple) -> str:
    h = hashlib.sha256()
    for name in MODEL_FILES:
        p = path / name
        if p.is_file():
            h.update(name.encode())
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]


def check_model(classifier, rubric: Rubric) -> None:
    """The classifier must grade exactly the rubric's model dimensions on the rubric's scale."""
    _check_dimensions(classifier.path, classifier.dimensions, rubric)


def check_model_dir(model: str | Path | None, rubric: Rubric) -> Path:
    """The same check from the model's ``config.json`` alone (no torch): what the CLI does before starting
    workers. Returns the model directory."""
    from qa.resources import default_model_dir
    path = Path(model) if model else default_model_dir()
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except OSError:
        raise ModelError(f"not a model directory (no config.json): {path}") from None
    except UnicodeDecodeError as e:
        raise ModelError(f"cannot load model from {path}: config.json: not UTF-8 text (byte {e.start} cannot be "
                         "decoded)") from None
    except ValueError as e:
        raise ModelError(f"cannot load model from {path}: config.json: not valid JSON ({e})") from None
    try:
        if not isinstance(cfg, dict):
            raise ValueError(f"a JSON object, not {type(cfg).__name__}")
        pairs = cfg.get("dimension_list")
        dims = {k: v for k, v in pairs} if pairs is not None else dict(cfg.get("dimensions") or {})
        if not all(isinstance(v, list) for v in dims.values()):
            raise ValueError("each dimension's levels are a list")
    except (ValueError, TypeError) as e:
        raise ModelError(f"cannot load model from {path}: config.json: {e}") from None
    _check_dimensions(path, dims, rubric)
    return path


def _check_dimensions(path, dimensions, rubric: Rubric) -> None:
    want = {d: [str(v) for v in rubric.scale] for d in rubric.model_dimensions}
    have = {d: [str(v) for v in levels] for d, levels in dimensions.items()}
    if want == have:
        return
    parts = []
    if set(want) != set(have):
        parts.append(f"the model grades {', '.join(have) or 'nothing'}; the rubric's model dimensions are "
                     f"{', '.join(want) or 'none'}")
    else:
        bad = next(d for d in want if want[d] != have[d])
        parts.append(f"dimension {bad!r} has levels {have[bad]} in the model but {want[bad]} in the rubric")
    own = Path(path) / "rubric.yaml"
    hint = f"--rubric {own} (the rubric it was trained with), " if own.is_file() else ""
    raise ModelError(f"model {path} does not fit rubric {rubric.name!r} ({rubric.path}): "
                     + "; ".join(parts) + f" — pass {hint}the model trained for this rubric (--model) or --model none")


@dataclasses.dataclass
class Grader:
    """Everything a batch of grading needs, built once: rubric, profile policy, rule engine, classifier."""

    rubric: Rubric
    profile: str | None = None          # explicit profile for every conversation; None: the rubric's policy
    engine: Any = None                  # qa.rules.RuleEngine, or None (no rules)
    classifier: Any = None              # qa.model.predict.Classifier, or None (model dimensions left out)
    batch_size: int = 64
    messages: bool = True
    stamp: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: GradeSettings) -> Grader:
        """Load and check everything; raises ``RubricError`` / ``ModelError`` (the CLI: exit 2)."""
        from qa.analysis import default_engine

        rubric = load_rubric(settings.rubric)
        if settings.profile:
            rubric.profile(settings.profile)
        clf = None
        if settings.model != "none" and rubric.model_dimensions:
            clf = load_classifier(settings.model, rubric, threads=settings.threads)
        if clf is None:   # a profile that weighs only model dimensions has nothing to score without the model
            from qa.score import weights_for
            for name in [settings.profile] if settings.profile else list(rubric.profiles) or [None]:
                w = weights_for(rubric, name)
                if w and all(rubric.dimensions[d].source == "model" for d, x in w.items() if x > 0):
                    raise RubricError(f"profile {name!r} weighs only model dimensions ({', '.join(w)}): graded "
                                      "without a model (--model none) nothing is left to score", file=str(rubric.path),
                                      key=f"profiles -> {name} -> weights")
        stamp = {"rubric": rubric_hash(rubric), "model": model_hash(clf.path.resolve()) if clf else None,
                 "profile": settings.profile, **read_stamp(settings)}
        return cls(rubric, settings.profile, default_engine(rubric), clf, settings.batch_size, settings.messages,
                   stamp)

    @property
    def model_name(self) -> str | None:
        return self.classifier.path.name if self.classifier is not None else None

    def profile_for(self, conv: Conversation) -> str | None:
        return profile_for(self.rubric, conv.platform, self.profile)

    def grade_batch(self, convs: Sequence[Conversation], *, stages: dict[str, float] | None = None) -> list[Grade]:
        """Analyse each conversation, run the model once for the batch, then score each one. ``stages`` (if
        given) accumulates the seconds spent in each step."""
        from qa.analysis import analyse
        from qa.score import grade

        clock = _Clock(stages)
        with clock("analyse"):
            analyses = [analyse(c, self.rubric, self.engine) for c in convs]
        with clock("model"):
            analyses, preds = self.with_model(convs, analyses)
        name = self.model_name
        with clock("score"):
            return [grade(c, self.rubric, a, profile=self.profile_for(c), prediction=p.grades if p else None,
                          model=name, stamp=self.stamp, messages=self.messages)
                    for c, a, p in zip(convs, analyses, preds)]

    def with_model(self, convs: Sequence[Conversation], analyses) -> tuple[list, list]:
        """The rule ``analyses`` of ``convs`` with the model's flags added and its vetoes applied (``with_model_flags``),
        and the model's predictions (None for a chat with no reply): the findings ``qa grade`` writes, one model run."""
        preds = self.predict(convs, analyses)
        return [self.with_model_flags(c, a, p) for c, a, p in zip(convs, analyses, preds)], preds

    def with_model_flags(self, conv: Conversation, analysis, prediction):
        """``analysis`` with the rule flags the model raised added to its findings (``qa.rules.combine``):
        they then cap and deduct like any finding, marked ``source: model`` (or ``both``); rule findings below the
        model's veto for their flag are dropped."""
        if prediction is None:
            return analysis
        from qa.rules.combine import combine
        vetoes = self.classifier.config.flag_vetoes if self.classifier is not None else None
        return dataclasses.replace(analysis, findings=tuple(combine(analysis.findings, prediction.raised,
                                                                    self.rubric, conv, self.engine,
                                                                    prediction.flags, vetoes)))

    def predict(self, convs: Sequence[Conversation], analyses) -> list:
        """The classifier's ``Prediction`` per conversation (None for those with no agent or bot turn)."""
        if self.classifier is None:
            return [None] * len(convs)
        idx = [i for i, a in enumerate(analyses) if a.has_reply]
        out: list = [None] * len(convs)
        if idx:
            got = self.classifier.predict_all([convs[i] for i in idx], findings=[analyses[i].findings for i in idx],
                                              timings=[analyses[i].timing for i in idx], batch_size=self.batch_size)
            for i, p in zip(idx, got):
                out[i] = p
        return out


def load_classifier(model: str | Path | None, rubric: Rubric, *, threads: int | None = None):
    """The classifier for ``rubric`` (the shipped default when ``model`` is None), checked against it —
    from its config first, so a wrong or broken folder fails before torch loads."""
    check_model_dir(model, rubric)
    try:
        import torch
    except ImportError as e:
        raise ModelError(f"the model dimensions need the 'model' extra (pip install 'qa[model]'): {e}") from None
    from qa.model.predict import Classifier
    if threads:
        torch.set_num_threads(threads)
    clf = Classifier(model, rubric=rubric)
    check_model(clf, rubric)
    return clf


class _Clock:
    def __init__(self, stages: dict[str, float] | None):
        self.stages = stages

    @contextlib.contextmanager
    def __call__(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            if self.stages is not None:
                self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t
