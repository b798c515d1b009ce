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
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FILE = "offsets.json"
MIN_CHATS = 20      # a platform with fewer reviewed chats gets no offset
PRIOR = 10.0        # chats' worth of shrinkage toward no offset


class Offsets:
    """Platform → dimension → offset in grade units (added to the expected grade); ``info``: how it was fitted."""

    def __init__(self, by_platform: dict[str, dict[str, float]], info: dict | None = None):
        self.by_platform, self.info = by_platform, dict(info or {})

    def grade_shift(self, platforms: Sequence[str], dim: str) -> np.ndarray:
        """[n] each chat's offset on ``dim`` in grade units (0 for a platform without one)."""
        return np.array([self.by_platform.get(p, {}).get(dim, 0.0) for p in platforms], dtype=np.float64)

    def plus(self, other: dict[str, dict[str, float]]) -> "Offsets":
        """These offsets with ``other`` added (a second calibration fits what the first left)."""
        out = {p: dict(d) for p, d in self.by_platform.items()}
        for p, d in other.items():
            for k, v in d.items():
                out.setdefault(p, {})[k] = round(out.get(p, {}).get(k, 0.0) + v, 4)
        return Offsets(out, self.info)

    def save(self, directory: str | Path) -> None:
        data = {"offsets": self.by_platform, "info": self.info}
        (Path(directory) / FILE).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "Offsets | None":
        path = Path(directory) / FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls({p: {d: float(v) for d, v in dims.items()} for p, dims in data["offsets"].items()},
                   data.get("info"))


def fit_offsets(gaps: dict[str, np.ndarray], platforms: Sequence[str], *, prior: float = PRIOR,
                min_chats: int = MIN_CHATS) -> dict[str, dict[str, float]]:
    """Platform → dimension → o = Σ gap / (n + prior) over that platform's chats, for platforms with at least
    ``min_chats``. ``gaps``: dimension → [n] reviewers' mean grade − model's expected grade (NaN: not reviewed)."""
    plat = np.asarray(platforms)
    out: dict[str, dict[str, float]] = {}
    for p in sorted(set(plat.tolist())):
        for d, g in gaps.items():
            x = np.asarray(g, dtype=float)[plat == p]
            x = x[~np.isnan(x)]
            if len(x) >= min_chats:
                out.setdefault(p, {})[d] = round(float(x.sum() / (len(x) + prior)), 4)
    return out


def calibrate(model_dir: str | Path, data: Sequence[str], out: str | Path, *, platform: str | None = None,
              prior: float = PRIOR, min_chats: int = MIN_CHATS, folds: int = 5, seed: int = 0) -> dict:
    """Fit a shop's offsets on its reviewed chats (``data``) and save the model with them in ``out`` (a copy of
    ``model_dir``; offsets it already has are kept and added to). Returns the report: chats per platform, the
    offsets, and per dimension QWK (model level vs the reviews' majority) and mean gap (model − reviews, grade
    units) on the reviewed chats before and after, the "after" ones out of fold: each fold's chats graded
    with offsets fitted on the other folds."""
    import shutil

    from sklearn.model_selection import KFold

    from qa.errors import InputError, ModelError
    from qa.model.data import load_examples
    from qa.model.metrics import grade_metrics
    from qa.model.predict import Classifier, _step

    clf = Classifier(model_dir)
    if clf.config.decision != "cutpoints" or not clf.config.cutpoints:
        raise ModelError(f"{clf.path} decides levels by argmax: a shop calibration moves cutpoints; retrain it")
    dims = {d: lv for d, lv in clf.dimensions.items() if d in clf.config.cutpoints and _step(lv)}
    examples = load_examples(data, clf.dimensions, platform=platform)
    convs, plats = [e.conv for e in examples], [e.conv.platform for e in examples]
    if len(examples) < min_chats:
        raise InputError(f"{len(examples)} reviewed chats: a shop calibration needs at least {min_chats}",
                         file=str(data[0]))
    reviewed = {d: np.array([np.asarray(e.targets[d]) @ np.asarray(lv, float) if d in e.targets else np.nan
                             for e in examples]) for d, lv in dims.items()}

    def graded(offsets: Offsets | None, idx) -> dict:
        clf.offsets = offsets
        preds = clf.predict([convs[i] for i in idx])
        return {d: ([p[d].level for p in preds], np.array([p[d].expected for p in preds])) for d in dims}

    base = clf.offsets
    before = graded(base, range(len(convs)))
    gaps = {d: reviewed[d] - before[d][1] for d in dims}
    after = {d: ([None] * len(convs), np.zeros(len(convs))) for d in dims}
    n_folds = min(folds, len(convs))
    for tr, te in KFold(n_folds, shuffle=True, random_state=seed).split(convs):
        fold = fit_offsets({d: g[tr] for d, g in gaps.items()}, [plats[i] for i in tr], prior=prior,
                           min_chats=max(1, round(min_chats * (n_folds - 1) / n_folds)))
        got = graded((base or Offsets({})).plus(fold), te)
        for d in dims:
            for k, i in enumerate(te):
                after[d][0][i] = got[d][0][k]
            after[d][1][te] = got[d][1]
    fitted = fit_offsets(gaps, plats, prior=prior, min_chats=min_chats)
    report = {"model": str(clf.path), "data": [str(p) for p in data], "chats": len(convs),
              "platforms": {p: plats.count(p) for p in sorted(set(plats))}, "prior": prior, "min_chats": min_chats,
              "fitted": fitted, "dimensions": {}}
    for d, lv in dims.items():
        rows = [i for i, e in enumerate(examples) if d in e.targets]
        ref = [examples[i].majority(d, lv) for i in rows]
        report["dimensions"][d] = {
            when: {"qwk": round(grade_metrics(references=ref, predictions=[g[0][i] for i in rows],
                                              levels=lv)["qwk"], 4),
                   "gap": round(float(np.mean(g[1][rows] - reviewed[d][rows])), 4)}
            for when, g in (("before", before[d]), ("after", after[d]))}
    out = Path(out)
    shutil.copytree(clf.path, out, dirs_exist_ok=True)
    total = (base or Offsets({})).plus(fitted)
    total.info = {"calibrations": [*(base.info.get("calibrations", []) if base else []),
                                   {k: report[k] for k in ("data", "chats", "platforms", "prior", "min_chats",
                                                           "fitted", "dimensions")}]}
    total.save(out)
    clf.offsets = base
    from qa.model.card import write_card
    if (out / "MODEL_CARD.md").is_file():
        write_card(out)
    return report
