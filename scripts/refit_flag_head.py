"""Refit the network's chat-level head of some rule flags on the labels as they are now, with everything else frozen,
and choose their thresholds again.

    python scripts/refit_flag_head.py models/default --flags uncivil_language \\
        --add data/labelled/hand/train_hand-bk.jsonl … --select data/probe/uncivil_d.jsonl:uncivil_language [--out DIR]

A flag's probability in the network is its head over the turns (a query attending over the context layer's turn
vectors, their mean and the rule/timing features, through a small MLP) plus its column of the n-gram channel. Only
those read the flag: the encoder, the context layer and every grade head are left as they are, so no grade moves.
The n-gram column is fitted again as a logistic regression on the chats' flag shares (as ``qa train`` does), and the
head is trained on its 5-fold out-of-fold logits, warm-started from the old head, with the epoch of lowest
weighted log-loss on the dev split kept; when even that is no better there than the old head and column, they
are kept. The chats are the model's training chats (``training_args.json``, less its
dev split) and the ``--add`` files. The flag's threshold (the mean of the network's and the turn model's
probability, beside the rules) is then chosen as ``scripts/refit_turnflags.py`` does, over the dev split and the
``--select`` probe chats. Without ``--out`` the model directory is written in place.

A flag the model's rubric lists under ``model_flags`` but the network has no head for yet (a rule given a model
flag after training) is **added**: a fresh query, head and n-gram column (``grow``), then fitted as above. A flag
without a turn-level model is raised on the network's probability alone, so its threshold goes to ``config.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "scripts"))
from qa.model.data import load_examples, split_by_ids  # noqa: E402
from qa.model.flags import flag_targets  # noqa: E402
from qa.model.inputs import flat_text  # noqa: E402
from qa.model.ngrams import fit_soft_lr  # noqa: E402
from qa.model.predict import Classifier  # noqa: E402
from qa.rules import RuleEngine  # noqa: E402
from qa.timing import compute_timing  # noqa: E402

EPOCHS, LR, BATCH = 40, 1e-3, 64


def turn_inputs(clf: Classifier, convs, batch_size: int = 64) -> tuple[list, np.ndarray]:
    """Per chat its context-layer turn vectors [turns, hidden] (frozen), and [n, features] rule/timing features."""
    import torch
    engine = RuleEngine(clf.rubric)
    vecs, feats = [], []
    captured = {}
    hook = clf.model.context.register_forward_hook(lambda m, i, o: captured.__setitem__("x", o))
    try:
        for s in range(0, len(convs), batch_size):
            part = convs[s:s + batch_size]
            timings = [compute_timing(c, clf.rubric) for c in part]
            findings = [engine.check(c, t) for c, t in zip(part, timings)]
            batch, _ = clf.batcher(part, findings=findings, timings=timings)
            with torch.no_grad():
                clf.model(**batch)
            x, pad = captured["x"], batch["turn_map"] < 0
            vecs += [x[b][~pad[b]].clone() for b in range(len(part))]
            feats.append(batch["features"] if "features" in batch else torch.zeros(len(part), 0))
    finally:
        hook.remove()
    return vecs, torch.cat(feats).numpy()


class Head:
    """One flag's trainable part: its query, its MLP (copies of the model's), its n-gram logit given."""

    def __init__(self, model, flag: str):
        import copy

        import torch
        j = model.config.flags.index(flag)
        self.query = torch.nn.Parameter(model.flag_queries.detach()[j].clone())
        self.mlp = copy.deepcopy(model.flag_heads[flag]).eval()
        self.params = [self.query, *self.mlp.parameters()]

    def logits(self, vecs, feats, ngram_logit):
        import torch
        from torch.nn.utils.rnn import pad_sequence
        x = pad_sequence(vecs, batch_first=True)
        pad = pad_sequence([torch.zeros(len(v), dtype=torch.bool) for v in vecs], batch_first=True,
                           padding_value=True)
        attn = (x @ self.query / x.shape[-1] ** 0.5).masked_fill(pad, float("-inf")).softmax(-1)
        pooled = torch.einsum("bm,bmh->bh", attn, x)
        mean = (x * (~pad)[..., None]).sum(1) / (~pad).sum(1, keepdim=True).clamp(min=1)
        return self.mlp(torch.cat([pooled, mean, feats], -1))[:, 0] + ngram_logit


def grow(model_dir: Path, flags: list[str], seed: int = 0) -> list[str]:
    """Give the network in ``model_dir`` a fresh head for each of ``flags`` it lacks that its rubric lists under
    ``model_flags``: a query row, an MLP initialised as ``RubricModel`` does, a zero n-gram column (appended, as
    the flags' order is the config's), no threshold yet. Returns the flags added."""
    import torch
    from safetensors.torch import load_file, save_file

    from qa.model.modeling import RubricConfig, RubricModel
    from qa.rubric import load_rubric
    cfg_path = model_dir / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    rubric = load_rubric(str(model_dir / "rubric.yaml"))
    new = [f for f in flags if f not in cfg["flags"] and f in rubric.model_flags]
    if not new:
        return []
    torch.manual_seed(seed)
    config = RubricConfig.from_pretrained(str(model_dir))
    config.flags = cfg["flags"] + new
    fresh = RubricModel(config)   # its new heads are the initialisation (the rest is replaced below)
    state = load_file(str(model_dir / "model.safetensors"))
    state["flag_queries"] = torch.cat([state["flag_queries"], fresh.flag_queries.detach()[len(cfg["flags"]):]])
    for f in new:
        for k, v in fresh.flag_heads[f].state_dict().items():
            state[f"flag_heads.{f}.{k}"] = v.detach().clone()
    state["ngram.weight"] = torch.cat([state["ngram.weight"], torch.zeros(len(new), state["ngram.weight"].shape[1])])
    state["ngram.bias"] = torch.cat([state["ngram.bias"], torch.zeros(len(new))])
    save_file({k: v.contiguous() for k, v in state.items()}, str(model_dir / "model.safetensors"),
              metadata={"format": "pt"})
    cfg["flags"] = cfg["flags"] + new
    cfg["flag_turns"] = {**cfg.get("flag_turns", {}), **{f: rubric.model_flags[f].turn for f in new}}
    cfg_path.write_text(json.dumps(cfg, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return new


def weighted_bce(logit, target, weight):
    import torch.nn.functional as F
    return float((F.binary_cross_entropy_with_logits(logit, target, reduction="none") * weight).sum() / weight.sum())


def refit(model_dir: Path, flags: list[str], add: list[str], log=print) -> tuple[dict, list]:
    """Refit the flags' heads and n-gram columns in ``model_dir``'s model.safetensors; returns (report, dev
    examples)."""
    import torch
    from safetensors.torch import load_file, save_file
    torch.manual_seed(0)
    targs = json.loads((model_dir / "training_args.json").read_text(encoding="utf-8"))
    missing = [p for p in targs["data"] + add if not Path(p).is_file()]
    if missing:
        sys.exit(f"{model_dir}/training_args.json: training file(s) not here: {', '.join(missing)} "
                 "(the real chats: see the model's CARD_NOTES.md for how to rebuild them)")
    added = grow(model_dir, flags)
    if added:
        log(f"added a head for {', '.join(added)}")
    clf = Classifier(model_dir)
    unknown = [f for f in flags if f not in clf.config.flags]
    if unknown:
        sys.exit(f"--flags: {', '.join(unknown)}: not a flag of {model_dir} nor a model flag of its rubric "
                 f"(these are: {', '.join(clf.config.flags)})")
    dims = {d: list(v) for d, v in clf.config.dimensions.items()}
    train_ex, dev_ex = split_by_ids(load_examples(targs["data"] + add, dims, weights=targs.get("weights")),
                                    targs["dev_ids"])
    log(f"{len(train_ex)} training chats, {len(dev_ex)} dev chats; reading their turns")
    sets = {}
    for name, exs in (("train", train_ex), ("dev", dev_ex)):
        vecs, feats = turn_inputs(clf, [e.conv for e in exs])
        sets[name] = ([flag_targets(e.conv, flags) for e in exs], vecs, torch.from_numpy(feats).float(),
                      clf.batcher.ngrams.transform([flat_text(e.conv) for e in exs]), [e.weight for e in exs])
    state = load_file(str(model_dir / "model.safetensors"))
    start = sum(len(v) for v in dims.values())
    report = {}
    for f in flags:
        j = clf.config.flags.index(f)
        rows = {n: [i for i, share in enumerate(s[0]) if f in share] for n, s in sets.items()}
        tgt = {n: torch.tensor([sets[n][0][i][f] for i in r]) for n, r in rows.items()}
        wt = {n: torch.tensor([sets[n][4][i] for i in r], dtype=torch.float) for n, r in rows.items()}
        _, vecs, feats, x, _ = sets["train"]
        r = rows["train"]
        soft = np.c_[1 - tgt["train"].numpy(), tgt["train"].numpy()]
        coef, inter, c, oof = fit_soft_lr(x[r], soft, folds=5, weights=wt["train"].numpy())
        ng_w, ng_b = coef[1] - coef[0], float(inter[1] - inter[0])
        ng = {"train": torch.from_numpy((oof[:, 1] - oof[:, 0]).astype(np.float32)),
              "dev": torch.from_numpy(np.asarray(sets["dev"][3][rows["dev"]] @ ng_w + ng_b, np.float32).ravel())}
        head = Head(clf.model, f)

        def dev_loss():
            with torch.no_grad():
                dv, df = sets["dev"][1], sets["dev"][2]
                return weighted_bce(head.logits([dv[i] for i in rows["dev"]], df[rows["dev"]], ng["dev"]),
                                    tgt["dev"], wt["dev"])
        # the old head and n-gram column on the dev chats, for the record
        old_ng = np.asarray(sets["dev"][3][rows["dev"]] @ state["ngram.weight"][start + j].numpy()
                            + float(state["ngram.bias"][start + j]), np.float32).ravel()
        with torch.no_grad():
            dv, df = sets["dev"][1], sets["dev"][2]
            before = weighted_bce(head.logits([dv[i] for i in rows["dev"]], df[rows["dev"]],
                                              torch.from_numpy(old_ng)), tgt["dev"], wt["dev"])
        opt = torch.optim.Adam(head.params, lr=LR, weight_decay=1e-4)
        best = (dev_loss(), 0, [p.detach().clone() for p in head.params])
        order = np.arange(len(r))
        rng = np.random.default_rng(0)
        for epoch in range(1, EPOCHS + 1):
            rng.shuffle(order)
            for s in range(0, len(order), BATCH):
                idx = order[s:s + BATCH]
                logit = head.logits([vecs[r[i]] for i in idx], feats[[r[i] for i in idx]], ng["train"][idx])
                loss = (torch.nn.functional.binary_cross_entropy_with_logits(logit, tgt["train"][idx],
                                                                             reduction="none")
                        * wt["train"][idx]).sum() / wt["train"][idx].sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
            d = dev_loss()
            if d < best[0]:
                best = (d, epoch, [p.detach().clone() for p in head.params])
        report[f] = {"chats": len(r), "positive": int((tgt["train"] >= 0.5).sum()), "ngram_C": c,
                     "epoch": best[1], "dev_logloss": {"before": round(before, 4), "after": round(best[0], 4)}}
        if f in added:
            report[f]["added"] = True
        elif best[0] >= before:   # no better on the dev chats than the head it would replace: keep that one
            report[f]["kept"] = True
            log(f"{f}: dev log-loss {before:.4f}, refitted {best[0]:.4f}: the old head is kept")
            continue
        with torch.no_grad():
            for p, v in zip(head.params, best[2]):
                p.copy_(v)
        state["flag_queries"][j] = head.query.detach()
        for k, v in head.mlp.state_dict().items():
            state[f"flag_heads.{f}.{k}"] = v.detach().clone()
        state["ngram.weight"][start + j] = torch.from_numpy(ng_w.astype(np.float32))
        state["ngram.bias"][start + j] = ng_b
        log(f"{f}: epoch {best[1]} of {EPOCHS}, dev log-loss {before:.4f} -> {best[0]:.4f}")
    save_file({k: v.contiguous() for k, v in state.items()}, str(model_dir / "model.safetensors"),
              metadata={"format": "pt"})
    path = model_dir / "turnflags.json"
    if path.is_file():   # the record beside the turn models' refits (the model card reads it)
        meta = json.loads(path.read_text(encoding="utf-8"))
        old = meta["info"].get("head_refit") or {}   # earlier refits of other flags stay on record
        kept = {f: old[f] for f in old.get("flags", []) if f not in flags and f in old}
        meta["info"]["head_refit"] = {"flags": [*kept, *flags], "added": add, "chats": len(train_ex),
                                      "date": dt.date.today().isoformat(), **kept, **report}
        path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return report, dev_ex


def main() -> None:
    from refit_turnflags import arguments, rechoose
    ap = arguments("labelled files the heads also learn from")
    ap.description = __doc__.splitlines()[0]
    a = ap.parse_args()
    out = a.out or a.model
    if out != a.model:
        shutil.copytree(a.model, out, dirs_exist_ok=True)
    _, dev_ex = refit(out, a.flags, a.add)
    rechoose(out, a, dev_ex)


if __name__ == "__main__":
    main()
