"""Rubrics: YAML files of dimensions and levels, rules and their effects, timing settings, platform profiles.

``load_rubric(path)`` validates the file and raises ``RubricError`` naming the file and the key path.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qa.errors import RubricError

from qa.resources import CHECKOUT as ROOT, default_rubric, rubric_dir  # package data, or the checkout

RUBRIC_DIR = rubric_dir()
DEFAULT_RUBRIC = default_rubric()
KPIS = ("first_response_rate_2min", "reply_rate_3min", "avg_reply_s", "response_rate_24h",
        "satisfaction_rate", "dissatisfaction_rate", "good_review_rate")
TIMING_METRICS = ("avg_reply_s", "first_response_s", "handle_s")


class _Model(BaseModel):
    # no NaN or infinite number anywhere: a NaN weight or band passes every comparison and poisons the scores
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Dimension(_Model):
    name: str
    source: Literal["model", "timing", "rules"] = "model"
    levels: dict[int, str]
    metric: str | None = None
    bands: list[tuple[float | None, int]] | None = None

    @model_validator(mode="after")
    def _timing(self) -> "Dimension":
        if self.source == "timing":
            if self.metric not in TIMING_METRICS:
                raise ValueError(f"a timing dimension needs metric: one of {', '.join(TIMING_METRICS)}")
            if not self.bands or self.bands[-1][0] is not None:
                raise ValueError("a timing dimension needs bands ending in [null, LEVEL]")
        bounds = [b for b, _ in self.bands or ()]
        finite = bounds[:-1] if bounds[-1:] == [None] else bounds
        if None in finite or any(b <= a for a, b in zip(finite, finite[1:])):   # a 17 s reply read as level 4
            raise ValueError(f"bands are read in order, each bound above the one before and null only last: {bounds}")
        return self

    def band_level(self, seconds: float | None) -> int | None:
        """The level of a timing value: the first band whose upper bound it does not exceed."""
        if seconds is None or not self.bands:
            return None
        return next(lvl for bound, lvl in self.bands if bound is None or seconds <= bound)


class Effect(_Model):
    dimension: str
    cap: int | None = None
    deduct: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> "Effect":
        if (self.cap is None) == (self.deduct is None):
            raise ValueError("an effect has exactly one of cap or deduct")
        return self


class Rule(_Model):
    name: str
    severity: Literal["red_line", "major", "minor"]
    effects: list[Effect] = []
    check: str | None = None          # the registered check; defaults to the rule id
    params: dict[str, Any] = {}


class Hours(_Model):
    start: dt.time = dt.time(8)
    end: dt.time = dt.time(23)
    tz: str = "Asia/Shanghai"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):  # YAML reads 08:00 unquoted as sexagesimal minutes
            if not 0 <= v < 24 * 60:   # 25:00 read as 01:00 before; a day ends at 00:00, not 24:00
                raise ValueError(f"{v // 60}:{v % 60:02d} is not a time of day (00:00 to 23:59)")
            return dt.time(v // 60, v % 60)
        return v

    @field_validator("tz")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(v)
        except Exception:
            raise ValueError(f"unknown time zone {v!r}") from None
        return v


class Timing(_Model):
    first_response_s: float = Field(default=120, ge=0)
    reply_s: float = Field(default=180, ge=0)
    response_window_s: float = Field(default=86400, gt=0)
    service_hours: Hours = Hours()
    shop_hours: dict[str, Hours] = {}

    @model_validator(mode="before")
    @classmethod
    def _shop_tz(cls, data: Any) -> Any:
        """A shop's hours without a ``tz`` are on the clock of ``service_hours`` (not Shanghai's): a New York
        rubric's shop read its 09:00–21:00 in Beijing time."""
        if isinstance(data, dict) and isinstance(data.get("shop_hours"), dict):
            tz = (data.get("service_hours") or {}).get("tz") if isinstance(data.get("service_hours"), dict) else None
            if tz:
                data = {**data, "shop_hours": {k: {"tz": tz, **v} if isinstance(v, dict) and "tz" not in v else v
                                               for k, v in data["shop_hours"].items()}}
        return data

    def hours_for(self, shop: str | None) -> Hours:
        return self.shop_hours.get(shop or "", self.service_hours)


class Threshold(_Model):
    min: float | None = None
    max: float | None = None

    def passes(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def __str__(self) -> str:
        return " ".join(p for p in (f"≥ {self.min:g}" if self.min is not None else "",
                                    f"≤ {self.max:g}" if self.max is not None else "") if p)


class Profile(_Model):
    name: str
    kpis: dict[str, Threshold] = {}
    weights: dict[str, float] = {}

    @field_validator("kpis")
    @classmethod
    def _kpis(cls, v: dict[str, Threshold]) -> dict[str, Threshold]:
        unknown = set(v) - set(KPIS)
        if unknown:
            raise ValueError(f"unknown KPI(s) {sorted(unknown)} (known: {', '.join(KPIS)})")
        for k, t in v.items():
            for x in (t.min, t.max):
                if x is not None and k != "avg_reply_s" and not 0 <= x <= 1:   # 85 for 85 %: nobody would pass
                    raise ValueError(f"{k}: a rate's threshold is a share from 0 to 1 (0.85 for 85 %), not {x:g}")
                if x is not None and x < 0:
                    raise ValueError(f"{k}: a threshold of {x:g} seconds")
            if t.min is not None and t.max is not None and t.min > t.max:
                raise ValueError(f"{k}: min {t.min:g} is above max {t.max:g}: no value passes")
        return v

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        """Weights are points out of 100: each ≥ 0 and together 100, so a score stays within 0–100."""
        negative = [k for k, w in v.items() if w < 0]
        if negative:
            raise ValueError(f"weight of {negative[0]} is negative ({v[negative[0]]:g})")
        total = sum(v.values())
        if v and abs(total - 100) > 0.01:
            raise ValueError(f"weights must sum to 100 (points out of 100), not {total:g}")
        return v


class ModelFlag(_Model):
    """A rule flag the classifier may also raise; ``turn`` (``role.label``) names the turn label whose most
    likely turn is the evidence message; ``veto`` names lexicon categories that drop a flag only the model raised
    when its evidence message holds one of them (a need for the data, a warning against giving it)."""

    turn: str | None = None
    veto: list[str] = []


class Rubric(_Model):
    name: str
    version: int = 1
    scale: list[int] = Field(min_length=2)
    lexicon: str | None = None
    dimensions: dict[str, Dimension] = Field(min_length=1)
    timing: Timing = Timing()
    rules: dict[str, Rule] = {}
    profiles: dict[str, Profile] = {}
    # the profile of a conversation whose platform has no profile of the same name (qa.grader.profile_for)
    default_profile: str | None = None
    nuggets: dict[str, list[str]] = {}   # optional per-turn labels by role (customer, agent), e.g. STC-3's
    turn_labels: dict[str, list[str]] = {}   # optional binary per-turn labels by role that a turn head learns
    model_flags: dict[str, ModelFlag] = {}   # rule flags the classifier may add to the rules' findings
    path: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Rubric":
        scale = set(self.scale)
        for name, d in self.dimensions.items():
            if set(d.levels) != scale:
                raise _KeyError(f"dimensions.{name}.levels", f"levels {sorted(d.levels)} must be the scale {self.scale}")
            for _, lvl in d.bands or ():
                if lvl not in scale:
                    raise _KeyError(f"dimensions.{name}.bands", f"level {lvl} is not on the scale {self.scale}")
        for rid, r in self.rules.items():
            for i, e in enumerate(r.effects):
                if e.dimension not in self.dimensions:
                    raise _KeyError(f"rules.{rid}.effects.{i}.dimension", f"unknown dimension {e.dimension!r}")
                if e.cap is not None and e.cap not in scale:
                    raise _KeyError(f"rules.{rid}.effects.{i}.cap", f"cap {e.cap} is not on the scale {self.scale}")
        for role, types in self.nuggets.items():
            if role not in ("customer", "agent"):
                raise _KeyError(f"nuggets.{role}", "nugget labels are given per role: customer or agent")
            if len(types) < 2 or len(set(types)) != len(types):
                raise _KeyError(f"nuggets.{role}", "needs two or more distinct labels")
        for role, labels in self.turn_labels.items():
            if role not in ("customer", "agent") or len(set(labels)) != len(labels) or not labels:
                raise _KeyError(f"turn_labels.{role}", "distinct labels, given per role: customer or agent")
        for fid, f in self.model_flags.items():
            if fid not in self.rules:
                raise _KeyError(f"model_flags.{fid}", "not a rule of this rubric")
            if f.turn is not None:
                role, _, label = f.turn.partition(".")
                if label not in self.turn_labels.get(role, []):
                    raise _KeyError(f"model_flags.{fid}.turn", f"{f.turn!r} is not a turn label (role.label)")
        for pid, p in self.profiles.items():
            for d in p.weights:
                if d not in self.dimensions:
                    raise _KeyError(f"profiles.{pid}.weights.{d}", "unknown dimension")
        if self.default_profile is not None and self.default_profile not in self.profiles:
            raise _KeyError("default_profile", f"{self.default_profile!r} is not one of the profiles "
                            f"({', '.join(self.profiles) or 'none'})")
        return self

    @property
    def model_dimensions(self) -> list[str]:
        """Dimensions the classifier grades, in file order."""
        return [n for n, d in self.dimensions.items() if d.source == "model"]

    @property
    def best(self) -> int:
        return self.scale[0]

    @property
    def worst(self) -> int:
        return self.scale[-1]

    def lower(self, level: int, by: int) -> int:
        """``level`` moved ``by`` steps down the scale (never past the worst)."""
        i = self.scale.index(level)
        return self.scale[min(i + by, len(self.scale) - 1)]

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise RubricError(f"unknown profile {name!r} (this rubric has: {', '.join(self.profiles) or 'none'})",
                              file=str(self.path), key="profiles") from None

    @property
    def lexicon_file(self) -> Path | None:
        """The lexicon's path (``lexicon`` is relative to the rubric's folder), or None."""
        if not self.lexicon:
            return None
        return ((self.path.parent if self.path else RUBRIC_DIR) / self.lexicon).resolve()

    def lexicon_data(self) -> dict[str, Any]:
        path = self.lexicon_file
        if path is None:
            return {}
        data = _load_yaml(path)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise RubricError(f"a lexicon is a YAML mapping of category → phrases, not a {_kind(data)}",
                              file=str(path))
        return data


class _KeyError(ValueError):
    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(message)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping with the same key twice (YAML keeps the last one silently, so a
    rubric author's second ``regex:`` under one category would erase the first)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "empty document"}.get(type(value), type(value).__name__)


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except OSError as e:
        raise RubricError(f"cannot read: {e.strerror}", file=str(path)) from None
    except UnicodeDecodeError as e:  # GB18030, UTF-16, a binary file
        raise RubricError(f"not UTF-8 text (byte {e.start} cannot be decoded): save the file as UTF-8",
                          file=str(path)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise RubricError(f"not valid YAML{where}: {getattr(e, 'problem', e)}", file=str(path)) from None
    except RecursionError:   # lists or mappings nested thousands deep: no rubric is
        raise RubricError("its YAML is nested too deep to read", file=str(path)) from None


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Load and validate a rubric; the default one when ``path`` is None."""
    p = Path(path) if path is not None else DEFAULT_RUBRIC
    return _load_cached(p.resolve())


@functools.lru_cache(maxsize=16)
def _load_cached(path: Path) -> Rubric:
    data = _load_yaml(path)
    if not isinstance(data, dict):
        raise RubricError(f"a rubric is a YAML mapping, not a {_kind(data)}", file=str(path))
    try:
        rubric = Rubric.model_validate({**data, "path": path})
    except ValidationError as e:
        err = e.errors()[0]
        ctx = (err.get("ctx") or {}).get("error")
        if isinstance(ctx, _KeyError):
            raise RubricError(ctx.message, file=str(path), key=ctx.key.replace(".", " -> ")) from None
        key = " -> ".join(str(p) for p in err["loc"])
        raise RubricError(err["msg"].removeprefix("Value error, "), file=str(path), key=key or None) from None
    if rubric.lexicon:
        rubric.lexicon_data()  # fail now, not in the middle of a run
    return rubric
