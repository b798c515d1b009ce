"""Shop calibration (``qa calibrate``): per-platform shifts of a model's grades toward a shop's own reviews.

The shipped default is calibrated on the real chats it learnt from (JD and Taobao shops). Reviewers elsewhere
grade apart from those: a stricter QA lead, another platform's norms, another kind of chat. Measured
(``docs/real-chats.md``, "Session 23"), the default's real-side calibration helps a second e-commerce source but
makes Weibo helpdesk chats harsher still: no calibration fits every source, so a shop fits its own.

``fit_offsets`` takes a shop's reviewed chats and, for each platform with at least ``MIN_CHATS`` of them and each
model dimension, fits o = Σ (review − model) / (n + prior): the mean gap between the reviewers' mean grade and
the model's expected grade, shrunk toward 0 by ``prior`` chats. Grading adds o to the expected grade of every
chat of that platform and moves the level's cutpoints by as much (``Classifier._decide``). Unlike the stack's
platform offsets it is not weighed by the ridge gate: the reviewed chats are the shop's, and so are the chats it
grades. Saved beside the model as ``offsets.json``.

The same reviews set the shop's **flag thresholds**: for each platform and model flag with at least
``MIN_FLAGGED`` chats its reviewers flagged, the threshold on the model's flag probability with the best F1 of
"a rule found it or the model's probability reaches the threshold" (``qa.model.flags.best_threshold``; above 1:
the model adds nothing to the rules). Grading uses it for that platform's chats instead of the model's own; a
flag whose thresholds did worse out of fold than the model's own keeps the model's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FILE = "offsets.json"
MIN_CHATS = 20      # a platform with fewer reviewed chats gets no offset
PRIOR = 10.0        # chats' worth of shrinkage toward no offset
MIN_FLAGGED = 10    # a flag needs this many flagged reviewed chats of a platform for a shop threshold


class Offsets:
    """Platform → dimension → offset in grade units (added to the expected grade); platform → flag → threshold
    (``flags``); ``info``: how they were fitted."""

    def __init__(self, by_platform: dict[str, dict[str, float]], info: dict | None = None,
                 flags: dict[str, dict[str, float]] | None = None):
        self.by_platform, self.info, self.flags = by_platform, dict(info or {}), dict(flags or {})

    def flag_threshold(self, platform: str, flag: str) -> float | None:
        """The shop's threshold for ``flag`` on ``platform``'s chats, or None (the model's own applies)."""
        return self.flags.get(platform, {}).get(flag)

    def grade_shift(self, platforms: Sequence[str], dim: str) -> np.ndarray:
        """[n] each chat's offset on ``dim`` in grade units (0 for a platform without one)."""
        return np.array([self.by_platform.get(p, {}).get(dim, 0.0) for p in platforms], dtype=np.float64)

    def plus(self, other: dict[str, dict[str, float]]) -> "Offsets":
        """These offsets with ``other`` added (a second calibration fits what the first left)."""
        out = {p: dict(d) for p, d in self.by_platform.items()}
        for p, d in other.items():
            for k, v in d.items():
                out.setdefault(p, {})[k] = round(out.get(p, {}).get(k, 0.0) + v, 4)
        return Offsets(out, self.info, self.flags)

    def with_flags(self, other: dict[str, dict[str, float]]) -> "Offsets":
        """These offsets with ``other``'s flag thresholds in place of their own (per platform and flag)."""
        flags = {p: dict(d) for p, d in self.flags.items()}
        for p, d in other.items():
            flags.setdefault(p, {}).update(d)
        return Offsets(self.by_platform, self.info, flags)

    def save(self, directory: str | Path) -> None:
        data = {"offsets": self.by_platform, "flags": self.flags, "info": self.info}
        (Path(directory) / FILE).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "Offsets | None":
        path = Path(directory) / FILE
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        if data is None:       # no shop calibration: the model's own grades and thresholds
            return None
        flags = {p: {f: _finite(t, f"flags.{p}.{f}") for f, t in fl.items()}
                 for p, fl in (data.get("flags") or {}).items()}
        return cls({p: {d: _finite(v, f"offsets.{p}.{d}") for d, v in dims.items()}
                    for p, dims in data["offsets"].items()}, data.get("info"), flags)


def _finite(value, key: str) -> float:
    """A number of offsets.json; NaN or infinity (an offset fitted with a NaN prior) would make every grade NaN."""
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{key}: {value!r} is not a finite number")
    return x


def platform_shifts(resid, platforms: Sequence[str], weight=None, *, prior: float,
                    min_chats: int) -> dict[str, float]:
    """Platform → the shift o that, applied as weight · o, best brings its chats' residuals to 0 (least squares,
    shrunk toward 0 as if ``prior`` more chats had none): o = Σ w·r / (Σ w² + prior), for platforms with at
    least ``min_chats`` chats whose residual is not NaN. Also the stack's per-platform offsets
    (``scripts/pooled_betas.py``, weighed by the gate)."""
    r, plat = np.asarray(resid, dtype=float), np.asarray(platforms)
    w = np.ones(len(r)) if weight is None else np.asarray(weight, dtype=float)
    out = {}
    for p in sorted(set(plat.tolist())):
        m = (plat == p) & ~np.isnan(r)
        if m.sum() >= min_chats:
            out[str(p)] = round(float(r[m] @ w[m] / (w[m] @ w[m] + prior)), 4)
    return out


def fit_offsets(gaps: dict[str, np.ndarray], platforms: Sequence[str], *, prior: float = PRIOR,
                min_chats: int = MIN_CHATS) -> dict[str, dict[str, float]]:
    """Platform → dimension → o = Σ gap / (n + prior) over that platform's chats, for platforms with at least
    ``min_chats``. ``gaps``: dimension → [n] reviewers' mean grade − model's expected grade (NaN: not reviewed)."""
    out: dict[str, dict[str, float]] = {}
    for d, g in gaps.items():
        for p, o in platform_shifts(g, platforms, prior=prior, min_chats=min_chats).items():
            out.setdefault(p, {})[d] = o
    return out


def fit_flag_thresholds(probs: dict[str, np.ndarray], gold: dict[str, np.ndarray], fired: dict[str, np.ndarray],
                        platforms: Sequence[str], *, min_flagged: int = MIN_FLAGGED) -> dict[str, dict[str, float]]:
    """Platform → flag → the threshold on the flag's probability with the best F1 of ``fired | probs ≥ t`` against
    ``gold`` on that platform's chats, for flags with at least ``min_flagged`` gold chats there. ``gold``: NaN
    where the chat's reviews list no rules."""
    from qa.model.flags import best_threshold
    plat = np.asarray(platforms)
    out: dict[str, dict[str, float]] = {}
    for p in sorted(set(plat.tolist())):
        for f, g in gold.items():
            m = (plat == p) & ~np.isnan(g)
            if (g[m] >= 0.5).sum() >= min_flagged:
                out.setdefault(p, {})[f] = round(best_threshold(probs[f][m], g[m] >= 0.5, fired[f][m])[0], 4)
    return out


def _f1(pred: np.ndarray, gold: np.ndarray) -> float:
    return float(2 * (pred & gold).sum() / max(1, pred.sum() + gold.sum()))


def calibrate(model_dir: str | Path, data: Sequence[str], out: str | Path, *, platform: str | None = None,
              prior: float = PRIOR, min_chats: int = MIN_CHATS, min_flagged: int = MIN_FLAGGED, folds: int = 5,
              seed: int = 0) -> dict:
    """Fit a shop's grade offsets and flag thresholds on its reviewed chats (``data``) and save the model with
    them in ``out`` (a copy of ``model_dir``; offsets it already has are added to, thresholds replaced). Returns
    the report: chats per platform, what was fitted, per dimension QWK (model level vs the reviews' majority)
    and mean gap (model − reviews, grade units), and per flag F1 (rules + model vs the reviews' majority), each
    before and after; "after" is out of fold: each fold's chats judged by what was fitted on the other folds."""
    import shutil
    import stat

    from sklearn.model_selection import KFold

    if not math.isfinite(prior) or prior < 0:
        raise ValueError(f"prior must be a finite number ≥ 0, not {prior}")

    from qa.errors import InputError, ModelError
    from qa.io import ReadStats
    from qa.model.data import load_examples
    from qa.model.predict import Classifier, _step

    clf = Classifier(model_dir)
    if clf.config.decision != "cutpoints" or not clf.config.cutpoints:
        raise ModelError(f"{clf.path} decides levels by argmax: a shop calibration moves cutpoints; retrain it")
    dims = {d: lv for d, lv in clf.dimensions.items() if d in clf.config.cutpoints and _step(lv)}
    stats, skipped = ReadStats(), []
    examples = load_examples(data, clf.dimensions, platform=platform, stats=stats, rejects=skipped, unique=True)
    if len(examples) < max(min_chats, 2):   # its report is cross-validated: two chats at the least
        raise InputError(f"{len(examples)} reviewed chats: a shop calibration needs at least {max(min_chats, 2)}",
                         file=str(data[0]))
    analyses = clf.analyse([e.conv for e in examples])
    ctx = _Shop(clf, examples, [a.findings for a in analyses], [a.timing for a in analyses],
                list(KFold(min(folds, len(examples)), shuffle=True, random_state=seed).split(examples)))
    base = clf.offsets
    try:
        now = ctx.predict(base, range(len(examples)))   # the model as it is: "before" for grades and flags
        grades, offsets = ctx.grades(dims, base, now, prior, min_chats)
        flags, thresholds = ctx.flags(now, min_flagged)
    finally:
        clf.offsets = base
    report = {"model": str(clf.path), "data": [str(p) for p in data], "read": stats.read, "chats": len(examples),
              "skipped": len(skipped),   # and the first hundred, with where and why
              "skipped_first": [{"file": r.file, "line": r.line, "id": r.id, "reason": r.reason}
                                for r in skipped[:100]],
              "platforms": {p: ctx.plats.count(p) for p in sorted(set(ctx.plats))}, "prior": prior,
              "min_chats": min_chats, "min_flagged": min_flagged, "fitted": offsets, "flag_thresholds": thresholds,
              "dimensions": grades, "flags": flags}
    out = Path(out)
    shutil.copytree(clf.path, out, dirs_exist_ok=True, copy_function=shutil.copyfile)
    for d in [out, *(p for p in out.rglob("*") if p.is_dir())]:   # a read-only model (installed by root) makes
        d.chmod(d.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR)   # a copy its user can write the calibration into
    (out / "eval.json").unlink(missing_ok=True)   # the uncalibrated model's held-out figures: not this model's
    total = (base or Offsets({})).plus(offsets).with_flags(thresholds)
    total.info = {"calibrations": [*(base.info.get("calibrations", []) if base else []),
                                   {k: v for k, v in report.items() if k != "model"}]}
    total.save(out)
    from qa.model.card import write_card
    if (out / "MODEL_CARD.md").is_file():
        write_card(out)
    return report


class _Shop:
    """The reviewed chats of one calibration, their rule analyses and folds; ``grades`` and ``flags`` fit and
    measure each part."""

    def __init__(self, clf, examples, findings, timings, folds):
        self.clf, self.examples, self.findings, self.timings, self.folds = clf, examples, findings, timings, folds
        self.convs = [e.conv for e in examples]
        self.plats = [c.platform for c in self.convs]

    def predict(self, offsets: Offsets | None, idx) -> list:
        self.clf.offsets = offsets
        idx = list(idx)
        return self.clf.predict_all([self.convs[i] for i in idx], findings=[self.findings[i] for i in idx],
                                    timings=[self.timings[i] for i in idx])

    def grades(self, dims: dict, base: Offsets | None, now: list, prior: float, min_chats: int
               ) -> tuple[dict, dict]:
        from qa.model.metrics import grade_metrics
        n = len(self.convs)
        reviewed = {d: np.array([np.asarray(e.targets[d]) @ np.asarray(lv, float) if d in e.targets else np.nan
                                 for e in self.examples]) for d, lv in dims.items()}

        def levels(preds) -> dict:
            return {d: ([p.grades[d].level for p in preds], np.array([p.grades[d].expected for p in preds]))
                    for d in dims}
        before = levels(now)
        gaps = {d: reviewed[d] - before[d][1] for d in dims}
        after = {d: ([None] * n, np.zeros(n)) for d in dims}
        for tr, te in self.folds:
            fold = fit_offsets({d: g[tr] for d, g in gaps.items()}, [self.plats[i] for i in tr], prior=prior,
                               min_chats=max(1, round(min_chats * len(tr) / n)))
            got = levels(self.predict((base or Offsets({})).plus(fold), te))
            for d in dims:
                for k, i in enumerate(te):
                    after[d][0][i] = got[d][0][k]
                after[d][1][te] = got[d][1]
        rep = {}
        for d, lv in dims.items():
            rows = [i for i, e in enumerate(self.examples) if d in e.targets]
            if not rows:     # nobody graded it (or every grade was off the scale): nothing to compare
                continue
            ref = [self.examples[i].majority(d, lv) for i in rows]
            rep[d] = {when: {"qwk": round(grade_metrics(references=ref, predictions=[g[0][i] for i in rows],
                                                        levels=lv)["qwk"], 4),
                             "gap": round(float(np.mean(g[1][rows] - reviewed[d][rows])), 4)}
                      for when, g in (("before", before[d]), ("after", after[d]))}
        return rep, fit_offsets(gaps, self.plats, prior=prior, min_chats=min_chats)

    def flags(self, preds: list, min_flagged: int) -> tuple[dict, dict]:
        from qa.model.flags import flag_targets
        names = [f for f in (preds[0].flags if preds else {}) if f in self.clf.rubric.model_flags]
        probs = {f: np.array([p.flags.get(f, 0.0) for p in preds]) for f in names}
        from qa.rules.combine import vetoed
        vetoes, rubric = self.clf.config.flag_vetoes, self.clf.rubric
        fired = {f: np.array([any(x.rule == f for x in fs) and not vetoed(f, rubric, p.flags, vetoes,
                                                                           {r.rule for r in p.raised})
                              for fs, p in zip(self.findings, preds)]) for f in names}
        shares = [flag_targets(c, names) for c in self.convs]
        gold = {f: np.array([s.get(f, np.nan) for s in shares], dtype=float) for f in names}
        before = {f: fired[f] | np.array([any(r.rule == f for r in p.raised) for p in preds]) for f in names}
        after = {f: before[f].copy() for f in names}
        n = len(self.convs)
        for tr, te in self.folds:
            th = fit_flag_thresholds({f: v[tr] for f, v in probs.items()}, {f: v[tr] for f, v in gold.items()},
                                     {f: v[tr] for f, v in fired.items()}, [self.plats[i] for i in tr],
                                     min_flagged=max(1, round(min_flagged * len(tr) / n)))
            for f in names:
                for i in te:
                    t = th.get(self.plats[i], {}).get(f)
                    if t is not None:
                        after[f][i] = fired[f][i] or probs[f][i] >= t
        rep = {}
        for f in names:
            m = ~np.isnan(gold[f])
            g = gold[f][m] >= 0.5
            if g.any():
                rep[f] = {"flagged": int(g.sum()), "before": round(_f1(before[f][m], g), 4),
                          "after": round(_f1(after[f][m], g), 4)}
        fitted = fit_flag_thresholds(probs, gold, fired, self.plats, min_flagged=min_flagged)
        for f, r in rep.items():   # a threshold that did worse out of fold than the model's own is not kept
            r["kept"] = any(f in th for th in fitted.values()) and r["after"] >= r["before"]
        kept = {p: {f: t for f, t in th.items() if rep.get(f, {}).get("kept")} for p, th in fitted.items()}
        return rep, {p: th for p, th in kept.items() if th}
