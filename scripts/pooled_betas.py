"""Tilt strengths, real-side cutpoints and flag thresholds chosen on every real training chat, not on the dev split.

The tilt strength (beta) of each dimension is normally chosen on the dev split, whose ~100 real chats cannot
settle it (docs/real-chats.md, sessions 10 and 16). Here each real training chat gets honest inputs: the network
logits and ridge score of a model trained without it (one model per fold, ``--fold-model``; the dev chats take
``--model``'s, which never trained on them). Per dimension the strength with the best QWK under cutpoints fitted
for it, over all these chats pooled, is written into a copy of ``--model``'s ridge channel. Then refit the
calibration on the dev split with ``qa train … --from-model OUT --keep-beta``, and run ``calibrate`` on the result:
the real-side stack with an offset per platform that has enough chats, then cutpoints and turn-level flag
thresholds for the chats the ridge gate claims, all fitted on the same pooled chats.

    python scripts/pooled_betas.py make-folds --real REAL_TRAIN.jsonl --dir /tmp/folds   # then train, see below
    python scripts/pooled_betas.py choose --real REAL_TRAIN.jsonl --folds /tmp/folds/folds.json \
        --fold-model /tmp/fmod0 … --fold-model /tmp/fmod4 --model models/default --out /tmp/pooled

``cv`` (same options as ``calibrate``) prints what the stack and its per-platform offsets do to chats they were not
fitted on: both refitted in 5-fold CV over the pooled chats, QWK per platform.

``make-folds`` writes ``folds.json`` and, per fold K, ``foldK/real/real_train_ecom.jsonl`` (the real training
file less fold K). Each fold model is the default's recipe (``models/default/training_args.json``) with that
file in place of the real one: a network, then ``--from-model`` with the default's ridge files copied in,
``--ridge-on '*real_train*' --turns-on 'data/labelled/hand/*'``. docs/real-chats.md (session 17) gives the
commands.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

BETAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)   # the grid of qa.model.train.RIDGE_BETAS


def raw_inputs(clf, convs, findings, timings):
    """Network logits per dimension (no tilt, no temperature), gated ridge scores, gated z-scored ridge parts
    ([n, dims, parts]) and the stack's blend weight (the gate; 0 for a chat with no agent text) of ``convs``."""
    import torch
    out = {d: [] for d in clf.config.dimensions}
    for s in range(0, len(convs), 64):
        batch, _ = clf.batcher(convs[s:s + 64], findings=findings[s:s + 64], timings=timings[s:s + 64])
        with torch.inference_mode():
            res = clf.model(**batch)
        for d in out:
            out[d].append(res["logits"][d].float().numpy())
    g = clf.ridge.gate_probs(convs)
    gz = clf.ridge.zparts(convs, findings) * g[:, None, None]
    blend = g * clf.ridge.talks(convs)
    return {d: np.concatenate(v) for d, v in out.items()}, clf.ridge.gated_scores(convs, findings), (gz, blend)


def curves(logits, scores, examples, dims) -> dict:
    """Dimension → beta → (QWK under cutpoints fitted for it, Spearman of the expected level with the reviews)."""
    from scipy.stats import spearmanr

    from qa.model.decision import fit_cutpoints, weighted_qwk
    from qa.model.ridge import centred
    out = {}
    for j, (d, levels) in enumerate(dims.items()):
        k = len(levels)
        gold = np.array([levels.index(e.majority(d, levels)) for e in examples])
        mean = mean_index(examples, d, k)
        tilt = scores[:, j, None] * centred(k)[None, :]
        out[d] = {}
        for b in BETAS:
            z = logits[d] + b * tilt
            p = np.exp(z - z.max(1, keepdims=True))
            idx = (p / p.sum(1, keepdims=True)) @ np.arange(k)
            cuts = fit_cutpoints(idx, gold, k)
            qwk = weighted_qwk(gold, np.searchsorted(np.asarray(cuts), idx, side="right"), k)
            out[d][b] = (round(float(qwk), 4), round(float(spearmanr(idx, mean)[0]), 4))
    return out


def pooled_inputs(a):
    """The real training chats with honest inputs: (the --model classifier, [(classifier, its chats, their
    analyses)], the chats pooled, logits per dimension, gated ridge scores, (gated ridge parts, blend weights))."""
    from qa.model.data import load_examples
    from qa.model.predict import Classifier
    folds = json.loads(Path(a.folds).read_text(encoding="utf-8"))
    dev = set(Path(a.dev_ids).read_text(encoding="utf-8").split())
    base = Classifier(a.model)
    examples = load_examples([a.real], base.config.dimensions)
    groups = [(base, [e for e in examples if e.conv.id in dev])]
    groups += [(Classifier(m), [e for e in examples if folds.get(e.conv.id) == k]) for k, m in enumerate(a.fold_model)]
    groups = [(clf, ex, clf.analyse([e.conv for e in ex])) for clf, ex in groups if ex]   # rules and timing, once
    logits, scores, parts, pooled = {d: [] for d in base.config.dimensions}, [], [], []
    for clf, ex, an in groups:
        if ex:
            lg, r, stack_in = raw_inputs(clf, [e.conv for e in ex], [x.findings for x in an], [x.timing for x in an])
            for d in logits:
                logits[d].append(lg[d])
            scores.append(r)
            parts.append(stack_in)   # (gated ridge parts, blend weight)
            pooled += ex
    dev_n = sum(e.conv.id in dev for e in pooled)
    print(f"{len(pooled)} real chats ({dev_n} dev, {len(pooled) - dev_n} out of fold)")
    return (base, groups, pooled, {d: np.concatenate(v) for d, v in logits.items()}, np.concatenate(scores),
            (np.concatenate([p for p, _ in parts]), np.concatenate([b for _, b in parts])))


STACK_ALPHA = 10.0   # ridge strength on the standardised stack inputs (1–100 scored alike in 5-fold CV)


def model_index(cfg, beta, d, j, logits, scores) -> np.ndarray:
    """[n] the expected level index (0 = best) the model computes for dimension ``d``: tilt, then temperature."""
    from qa.model.ridge import centred
    k = logits[d].shape[1]
    z = (logits[d] + beta.get(d, 0.0) * scores[:, j, None] * centred(k)[None, :]) / cfg["temperatures"][d]
    p = np.exp(z - z.max(1, keepdims=True))
    return (p / p.sum(1, keepdims=True)) @ np.arange(k)


def mean_index(pooled, d: str, k: int) -> np.ndarray:
    """[n] the reviews' mean level index (0 = best) of each pooled chat on dimension ``d`` with ``k`` levels."""
    return np.array([np.asarray(e.targets[d]) @ np.arange(k) for e in pooled])


def fit_stack(idx: np.ndarray, gz: np.ndarray, y: np.ndarray) -> dict:
    """One dimension's stack: a ridge regression of the reviews' mean level index ``y`` on the expected index and
    the gated ridge parts ``gz`` [n, parts], standardised, returned in raw units."""
    from sklearn.linear_model import Ridge
    x = np.c_[idx, gz]
    mu, sd = x.mean(0), x.std(0) + 1e-6
    fit = Ridge(alpha=STACK_ALPHA).fit((x - mu) / sd, y)
    coef = fit.coef_ / sd
    return {"level": round(float(coef[0]), 5), "parts": [round(float(c), 5) for c in coef[1:]],
            "bias": round(float(fit.intercept_ - coef @ mu), 5)}


def real_stack(model_dir, pooled, logits, scores, parts) -> None:
    """Write into ``model_dir``'s ridge channel the real-side stack (``RidgeChannel.stack_shift``): per dimension a
    ridge regression of the reviews' mean level index on the model's expected index and the gated ridge parts,
    fitted on the pooled real chats."""
    cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    path = Path(model_dir) / "ridge.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    levels, stack = dict(cfg["dimension_list"]), {}
    for j, (d, lv) in enumerate(levels.items()):
        if d not in cfg.get("cutpoints", {}) or d not in meta["dimensions"]:
            continue
        stack[d] = fit_stack(model_index(cfg, meta["beta"], d, j, logits, scores),
                             parts[0][:, meta["dimensions"].index(d), :], mean_index(pooled, d, len(lv)))
        print(f"  {d:16s} stack {stack[d]}")
    meta["stack"] = stack
    meta["info"]["stack_source"] = {"chats": len(pooled), "alpha": STACK_ALPHA}
    path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


PLATFORM_MIN = 30      # pooled real chats a platform needs for an offset of its own
PLATFORM_PRIOR = 10.0  # shrinks each offset toward 0 as if this many more chats had no residual


def platforms_of(pooled) -> list[str]:
    return [getattr(e.conv, "platform", "other") for e in pooled]


def fit_offsets(resid: np.ndarray, blend: np.ndarray, plat: np.ndarray) -> dict[str, float]:
    """Per platform with at least ``PLATFORM_MIN`` chats, the shift o that best brings its chats' residuals to 0
    when applied as blend · o (least squares, shrunk by ``PLATFORM_PRIOR``)."""
    from qa.model.offsets import platform_shifts
    return platform_shifts(resid, plat, blend, prior=PLATFORM_PRIOR, min_chats=PLATFORM_MIN)


def real_platform_offsets(model_dir, pooled, logits, scores, parts) -> None:
    """Write into each dimension's real-side stack an offset per platform with at least ``PLATFORM_MIN`` pooled real
    chats: the least-squares shift, in the stack's gated units and shrunk toward 0, that brings its chats' stacked
    index to their reviews' mean (``stacked_index``). A stack fitted mostly on one platform's chats (JD) grades
    another's (Taobao) more than half a level harsher than its reviewers (docs/real-chats.md, session 22)."""
    from qa.model.ridge import stacked_index
    cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    path = Path(model_dir) / "ridge.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    plat = np.array(platforms_of(pooled))
    gz, blend = parts
    for j, (d, lv) in enumerate(dict(cfg["dimension_list"]).items()):
        st = (meta.get("stack") or {}).get(d)
        if not st:
            continue
        st.pop("platform", None)
        idx = stacked_index(st, model_index(cfg, meta["beta"], d, j, logits, scores),
                            gz[:, meta["dimensions"].index(d), :], blend)
        st["platform"] = fit_offsets(mean_index(pooled, d, len(lv)) - idx, blend, plat)
        print(f"  {d:16s} platform offsets {st['platform']}  (chats: "
              + ", ".join(f"{p} {(plat == p).sum()}" for p in st["platform"]) + ")")
    meta["info"]["stack_source"] = {**meta["info"].get("stack_source", {}), "platform_min": PLATFORM_MIN,
                                    "platform_prior": PLATFORM_PRIOR}
    path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def real_cutpoints(model_dir, pooled, logits, scores, parts) -> None:
    """Write into ``model_dir`` cutpoints for the chats its ridge gate claims, fitted on the pooled real chats under
    the model's own tilts, temperatures and stack; the written side keeps the dev split's (``cutpoints_ungated``)."""
    from qa.model.decision import fit_cutpoints
    from qa.model.ridge import stacked_index
    path = Path(model_dir) / "config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    meta = json.loads((Path(model_dir) / "ridge.json").read_text(encoding="utf-8"))
    beta, stack = meta["beta"], meta.get("stack") or {}
    levels = dict(cfg["dimension_list"])
    ungated = dict(cfg.get("cutpoints_ungated") or {})
    for j, (d, lv) in enumerate(levels.items()):
        if d not in cfg["cutpoints"]:
            continue
        k = len(lv)
        idx = model_index(cfg, beta, d, j, logits, scores)
        if d in stack:   # as grading does (RidgeChannel.stack_shift)
            idx = stacked_index(stack[d], idx, parts[0][:, meta["dimensions"].index(d), :], parts[1],
                                platforms_of(pooled))
        gold = np.array([lv.index(e.majority(d, lv)) for e in pooled])
        ungated.setdefault(d, cfg["cutpoints"][d])    # written chats keep the set they had
        cfg["cutpoints"][d] = [round(float(c), 4) for c in fit_cutpoints(idx, gold, k)]
        print(f"  {d:16s} real side {cfg['cutpoints'][d]}  written side {ungated[d]}")
    cfg["cutpoints_ungated"] = ungated
    cfg["cutpoints_real_chats"] = len(pooled)
    path.write_text(json.dumps(cfg, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def cross_validate(model_dir, pooled, logits, scores, parts, seeds=(0, 1, 2), k: int = 5) -> None:
    """Print what ``calibrate``'s stack, with and without per-platform offsets, does to chats it did not see: both
    refitted with the real-side cutpoints in k-fold CV over the pooled chats (stratified by platform, mean over
    ``seeds``); QWK with the reviews' majority, overall and per platform, and the mean level minus the reviews'."""
    from sklearn.model_selection import StratifiedKFold

    from qa.model.decision import fit_cutpoints, weighted_qwk
    from qa.model.ridge import stacked_index
    cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    meta = json.loads((Path(model_dir) / "ridge.json").read_text(encoding="utf-8"))
    plat, (gz, blend) = np.array(platforms_of(pooled)), parts
    groups = {"all": np.ones(len(plat), bool), **{str(p): plat == p for p in sorted(set(plat))}}
    print(f"{len(pooled)} chats: " + ", ".join(f"{g} {m.sum()}" for g, m in groups.items() if g != "all"))
    variants = ("stack", "stack + platform offsets")
    qwk = {v: {g: [] for g in groups} for v in variants}
    bias = {v: {g: [] for g in groups} for v in variants}
    for j, (d, lv) in enumerate(dict(cfg["dimension_list"]).items()):
        if d not in meta["dimensions"]:
            continue
        n_lv, r = len(lv), meta["dimensions"].index(d)
        idx = model_index(cfg, meta["beta"], d, j, logits, scores)
        y = mean_index(pooled, d, n_lv)
        gold = np.array([lv.index(e.majority(d, lv)) for e in pooled])
        pred = {(v, seed): np.zeros(len(pooled), int) for v in variants for seed in seeds}
        for seed in seeds:
            for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(idx, plat):
                st = fit_stack(idx[tr], gz[tr, r, :], y[tr])
                plain = stacked_index(st, idx, gz[:, r, :], blend)
                shifted = stacked_index({**st, "platform": fit_offsets(y[tr] - plain[tr], blend[tr], plat[tr])},
                                        idx, gz[:, r, :], blend, plat)
                for v, full in zip(variants, (plain, shifted)):
                    cuts = np.asarray(fit_cutpoints(full[tr], gold[tr], n_lv))
                    pred[v, seed][te] = np.searchsorted(cuts, full[te], side="right")
        for v in variants:
            for g, m in groups.items():
                qwk[v][g].append(np.mean([weighted_qwk(gold[m], pred[v, s][m], n_lv) for s in seeds]))
                bias[v][g].append(np.mean([np.mean(pred[v, s][m] - y[m]) for s in seeds]))
    for v in variants:
        print(v)
        for g in groups:
            print(f"  {g:8s} QWK " + " / ".join(f"{x:.3f}" for x in qwk[v][g]) + f"  (mean {np.mean(qwk[v][g]):.3f})"
                  "   level − reviews " + " / ".join(f"{x:+.2f}" for x in bias[v][g]))


MIN_POSITIVE = 20   # a real-side flag threshold needs at least this many flagged real chats


def real_flag_thresholds(model_dir, groups) -> None:
    """Write into ``model_dir``'s turn-level flag models a threshold for the chats the ridge gate claims: per flag,
    the one with the best F1 (rules or model) on the pooled real chats, each scored by a model that never saw it.
    The grading chats blend it with the dev split's by the gate (``TurnFlags.chat_thresholds``)."""
    from qa.model.flags import add_flag_votes, best_threshold, flag_targets
    from qa.model.turnflags import FILE
    votes: dict = {}
    for clf, ex, an in groups:
        findings = [x.findings for x in an]
        preds = clf.predict_all([e.conv for e in ex], findings=findings, timings=[x.timing for x in an])
        add_flag_votes(votes, preds, findings, [flag_targets(e.conv, list(p.flags)) for e, p in zip(ex, preds)])
    probs, gold, fired = ({f: v[k] for f, v in votes.items()} for k in range(3))
    path = Path(model_dir) / FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    real = {}
    for f in meta.get("thresholds", {}):
        if f not in probs or sum(gold[f]) < MIN_POSITIVE:
            continue
        t, f1 = best_threshold(np.array(probs[f]), np.array(gold[f]), np.array(fired[f]))
        real[f] = round(float(t), 3)
        print(f"  {f:20s} real side {real[f]} (F1 {f1:.2f} on {sum(gold[f])} flagged)  written side "
              f"{meta['thresholds'][f]}")
    meta["thresholds_real"] = real
    path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def make_folds(real: str, directory: str, dev_ids: str, k: int = 5, seed: int = 7) -> None:
    """Assign the real training chats outside the dev split to ``k`` folds; write each fold's training file."""
    import random
    dev = set(Path(dev_ids).read_text(encoding="utf-8").split())
    lines = Path(real).read_text(encoding="utf-8").splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    own = [i for i in ids if i not in dev]
    random.Random(seed).shuffle(own)
    folds = {cid: n % k for n, cid in enumerate(own)}
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "folds.json").write_text(json.dumps(folds), encoding="utf-8")
    for f in range(k):
        path = out / f"fold{f}" / "real" / Path(real).name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for cid, line in zip(ids, lines) if folds.get(cid) != f),
                        encoding="utf-8")
    print(f"{len(own)} chats in {k} folds, {len(ids) - len(own)} dev chats; wrote {out}")


def main() -> None:
    top = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-folds")
    mk.add_argument("--real", required=True)
    mk.add_argument("--dir", required=True)
    mk.add_argument("--dev-ids", default="data/labelled/dev_ids.txt")
    for name in ("choose", "calibrate", "cv"):
        ap = sub.add_parser(name)
        ap.add_argument("--real", required=True, help="the real training chats (.jsonl with reviews)")
        ap.add_argument("--folds", required=True, help="JSON: chat id → fold (chats without one are dev chats)")
        ap.add_argument("--fold-model", action="append", required=True, help="model trained without fold K, in order")
        ap.add_argument("--model", default="models/default", help="choose: the model whose dev chats and channel "
                        "are used; calibrate: the refitted model to write real-side cutpoints into; cv: the "
                        "model whose tilts and temperatures are read")
        ap.add_argument("--dev-ids", default="data/labelled/dev_ids.txt")
        if name == "choose":
            ap.add_argument("--out", help="write a copy of --model with the chosen strengths here")
        elif name == "calibrate":
            ap.add_argument("--no-stack", action="store_true", help="fit no real-side stack (cutpoints on the "
                            "tilted index alone; a stack already in the model is still applied)")
            ap.add_argument("--no-platform", action="store_true", help="fit no per-platform offsets in the stack")
    a = top.parse_args()
    if a.cmd == "make-folds":
        make_folds(a.real, a.dir, a.dev_ids)
        return
    base, groups, pooled, logits, scores, parts = pooled_inputs(a)
    if a.cmd == "cv":
        cross_validate(a.model, pooled, logits, scores, parts)
        return
    if a.cmd == "calibrate":
        if not a.no_stack:
            real_stack(a.model, pooled, logits, scores, parts)
            if not a.no_platform:
                real_platform_offsets(a.model, pooled, logits, scores, parts)
        real_cutpoints(a.model, pooled, logits, scores, parts)
        real_flag_thresholds(a.model, groups)
        return
    table = curves(logits, scores, pooled, base.config.dimensions)
    chosen = {d: max(row, key=lambda b: (row[b][0], -b)) for d, row in table.items()}   # ties → the smaller
    for d, row in table.items():
        print(f"  {d:16s} " + "  ".join(f"{b}: {q:.3f}/{s:.3f}" for b, (q, s) in row.items())
              + f"   → {chosen[d]}")
    if a.out:
        out = Path(a.out)
        shutil.copytree(a.model, out, dirs_exist_ok=True)
        meta = json.loads((out / "ridge.json").read_text(encoding="utf-8"))
        meta["beta"] = chosen
        meta["info"]["beta_source"] = {"chats": len(pooled), "folds": len(a.fold_model),
                                       "qwk_spearman_by_beta": {d: {str(b): v for b, v in row.items()}
                                                                for d, row in table.items()}}
        (out / "ridge.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
