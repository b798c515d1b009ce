"""How `qa grade`'s score and grades rank 3,000 real helpdesk dialogues by what 19 annotators each said of them.

    python bench/stc3_ase.py [--model DIR|none] [--rubric FILE] [--data FILE] [--seed 0]

The STC-3 / DialEval DCH-1 dialogues in ../shared carry, per dialogue, 19 annotators' task accomplishment (A),
customer satisfaction (S) and effectiveness (E) on 2 … −2. Our rubric grades something else (how the agent
served), but a better grader should rank dialogues more like the annotators do: Spearman between each graded
figure and the annotators' mean, with a 95 % bootstrap interval over dialogues. The dialogues go through the
grading core (`qa.grader.Grader`) exactly as `qa grade` reads a DialEval file. Evaluation only: nothing here
is fitted, and the data never leaves ../shared (without it the script says so and exits 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "stc3" / "dch1_train_cn_3000.json"
QUALITY = ("A", "S", "E")


def annotator_means(path: Path) -> dict[str, dict[str, float]]:
    """Dialogue id → {A, S, E: the annotators' mean}."""
    out = {}
    for d in json.loads(path.read_text(encoding="utf-8")):
        anns = [a["quality"] for a in d.get("annotations") or []]
        if anns:
            out[str(d["id"])] = {k: float(np.mean([float(a[k]) for a in anns])) for k in QUALITY}
    return out


def graded_figures(path: Path, model: str | None, rubric: str | None) -> dict[str, dict[str, float]]:
    """Dialogue id → {score, each dimension's expected grade (or level), -findings}, as `qa grade` grades it."""
    from qa.grader import Grader, GradeSettings
    from qa.io.read import read_path
    grader = Grader.from_settings(GradeSettings(model=model, rubric=rubric, messages=False))
    convs = [c for c in read_path(path) if hasattr(c, "messages")]
    out = {}
    for i in range(0, len(convs), 256):
        for g in grader.grade_batch(convs[i:i + 256]):
            row = {"score": g.score, "findings (fewer)": -len(g.findings)}
            for name, dim in g.dimensions.items():
                value = dim.expected if dim.expected is not None else dim.level
                if value is not None:
                    row[name] = value
            out[g.id] = {k: float(v) for k, v in row.items() if v is not None}
    return out


def spearman_ci(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, draws: int = 1000) -> tuple[float, float, float]:
    rho = spearmanr(x, y)[0]
    boot = [spearmanr(x[s], y[s])[0] for s in (rng.integers(0, len(x), len(x)) for _ in range(draws))]
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    return float(rho), float(lo), float(hi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--model", default=None, help="a model folder, or none (rules and timing only); default: the shipped one")
    ap.add_argument("--rubric", default=None)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if not a.data.is_file():
        print(f"skipped: STC-3 data not found at {a.data} (it lives in ../shared, never in the repo)")
        return
    t = time.time()
    truth, graded = annotator_means(a.data), graded_figures(a.data, a.model, a.rubric)
    ids = sorted(set(truth) & set(graded))
    print(f"{len(ids)} dialogues graded in {time.time() - t:.0f} s; Spearman with the annotators' mean "
          f"[95 % bootstrap interval]")
    names = [k for k in graded[ids[0]] if all(k in graded[i] for i in ids)]
    rng = np.random.default_rng(a.seed)
    print(f"{'figure':20s}" + "".join(f"{k:>22s}" for k in QUALITY))
    for name in names:
        x = np.array([graded[i][name] for i in ids])
        cells = [spearman_ci(x, np.array([truth[i][k] for i in ids]), rng) for k in QUALITY]
        print(f"{name:20s}" + "".join(f"{r:>9.3f} [{lo:.3f}, {hi:.3f}]" for r, lo, hi in cells))


if __name__ == "__main__":
    main()
