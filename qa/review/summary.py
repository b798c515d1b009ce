"""The agreement report of an import: model vs reviewers, reviewer vs reviewer, and what to calibrate on."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from qa.review.agreement import fleiss_kappa, krippendorff_alpha, ordinal_pair_stats
from qa.review.importer import Imported
from qa.review.records import model_dimensions

MODEL_FIELDS = {"level": "final level after rules (what `qa grade` reports)", "base_level": "the classifier alone"}


def _grades(imp: Imported) -> dict[str, dict[str, dict[str, int]]]:
    """dim → conversation (review key) → reviewer → grade."""
    out: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for r in imp.reviews:
        for dim, g in r.grades.items():
            out[dim][r.key][r.reviewer] = g
    return out


def _model(imp: Imported, key: str, dim: str, field: str = "level") -> int | None:
    v = (model_dimensions(imp.records.get(key, {})).get(dim) or {}).get(field)
    return v if v in imp.meta["scale"] else None


def dimension_report(imp: Imported, dim: str, by_conv: dict[str, dict[str, int]]) -> dict[str, Any]:
    scale = imp.meta["scale"]
    model: dict[str, Any] = {}
    for field in MODEL_FIELDS:
        pairs = [(m, g) for cid, rs in by_conv.items() for g in rs.values()
                 if (m := _model(imp, cid, dim, field)) is not None]
        model[field] = ordinal_pair_stats([m for m, _ in pairs], [g for _, g in pairs], scale)
    per_reviewer = {}
    for name in sorted({n for rs in by_conv.values() for n in rs}):
        pairs = [(m, rs[name]) for cid, rs in by_conv.items()
                 if name in rs and (m := _model(imp, cid, dim)) is not None]
        per_reviewer[name] = ordinal_pair_stats([m for m, _ in pairs], [g for _, g in pairs], scale)
    pairs_out = []
    for a, b in itertools.combinations(sorted(per_reviewer), 2):
        shared = [rs for rs in by_conv.values() if a in rs and b in rs]
        if shared:
            pairs_out.append({"a": a, "b": b, **ordinal_pair_stats([rs[a] for rs in shared],
                                                                   [rs[b] for rs in shared], scale)})
    units = [list(rs.values()) for rs in by_conv.values()]
    return {
        "model_vs_reviewers": model,
        "model_vs_each_reviewer": per_reviewer,
        "reviewers": {
            "items_with_2plus": sum(len(u) >= 2 for u in units),
            "pairs": pairs_out,
            "fleiss_kappa": fleiss_kappa(units, scale),
            "krippendorff_alpha_ordinal": krippendorff_alpha(units, "ordinal"),
            "krippendorff_alpha_interval": krippendorff_alpha(units, "interval"),
        },
    }


def calibration(imp: Imported, grades: dict[str, dict[str, dict[str, int]]], top: int = 20) -> list[dict[str, Any]]:
    """Conversations with the widest disagreement: reviewer spread (max − min) summed over dimensions, then
    the model's distance from the reviewers' mean."""
    rows = []
    for key in dict.fromkeys(r.key for r in imp.reviews):
        dims, spread, gap = {}, 0, 0.0
        for dim, by_conv in grades.items():
            rs = by_conv.get(key)
            if not rs:
                continue
            m = _model(imp, key, dim)
            spread += max(rs.values()) - min(rs.values())
            if m is not None:
                gap += abs(m - sum(rs.values()) / len(rs))
            dims[dim] = {"model": m, "reviewers": rs}
        if spread or gap:
            rec = imp.records.get(key, {})
            reasons = {r.reviewer: r.reason for r in imp.reviews if r.key == key and r.reason}
            rows.append({"id": rec.get("id"), "review_key": key, "shop": rec.get("shop"), "agent": rec.get("agent"), "reviewer_spread": spread,
                         "model_gap": round(gap, 3), "dimensions": dims, "comments": reasons})
    rows.sort(key=lambda x: (-x["reviewer_spread"], -x["model_gap"], x["id"]))
    return rows[:top]


def agreement_report(imp: Imported, *, top: int = 20) -> dict[str, Any]:
    grades = _grades(imp)
    dims = list(imp.meta["grades"].values())
    return {
        "rows": {"read": imp.read, "accepted": imp.accepted, "rejected": imp.rejected},
        "reviewers": sorted({r.reviewer for r in imp.reviews}),
        "conversations": len({r.key for r in imp.reviews}),
        "scale": imp.meta["scale"],
        "model_fields": MODEL_FIELDS,
        "dimensions": {d: dimension_report(imp, d, grades.get(d, {})) for d in dims},
        "calibration": calibration(imp, grades, top),
        "problems": [p.to_record() for p in imp.problems],
        "warnings": imp.warnings,
    }
