"""Refit some of a trained model's turn-level flag models on its training chats plus new labelled files, and choose
their thresholds again; the network, the ridge channel and its stack stay as they are.

    python scripts/refit_turnflags.py models/default --flags uncivil_language privacy_leak \\
        --add data/labelled/hand/train_hand-bk.jsonl … --select data/probe/uncivil_d.jsonl:uncivil_language \\
        --select data/probe/privacy_d.jsonl:privacy_leak [--out DIR]

The training chats are the model's own (``training_args.json``: its files less its dev split; the ridge channel's
chats and those of the ``turns_on`` files) and the ``--add`` files. The models replaced are kept as ``frozen``: the
ridge channel's structure part reads the chat probabilities it was fitted on, so grades do not move (a refitted
model's probabilities are distributed differently, and the stack was calibrated on the old ones). Each refitted
flag's threshold (the mean of the network's and the turn model's probability, beside the rules) is the one with the
best F1 over the dev split's chats and the ``--select`` probe chats of that flag (``bench/rule_probe.py``'s format).
``--keep-threshold`` keeps a flag's threshold as it was. ``--thresholds-only`` refits nothing and only chooses the
flags' thresholds again, beside the rules as they are now: a threshold chosen beside an older lexicon goes stale when
the rules come to find more by themselves. ``--vetoes`` refits nothing and chooses, on the same chats, each flag's
veto on rule findings the model did not raise (``config.json`` ``flag_vetoes``; ``qa.model.flags.best_veto``).
``--select PROBES:FLAG:odd`` reads only one half of the probe ids. Without ``--out`` the model directory is written
in place.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from qa.model.data import load_examples, matches, split_by_ids  # noqa: E402
from qa.model.flags import add_flag_votes, add_veto_votes, best_threshold, flag_targets  # noqa: E402
from qa.model.ridge import RidgeChannel  # noqa: E402
from qa.model.turnflags import TurnFlags  # noqa: E402
from qa.rubric import load_rubric  # noqa: E402
from qa.rules import RuleEngine  # noqa: E402
from qa.timing import compute_timing  # noqa: E402


def examples(model: Path, add: list[str]) -> tuple[dict, object, list, list]:
    """The model's training arguments, rubric, training examples and dev examples (its files plus ``add``)."""
    targs = json.loads((model / "training_args.json").read_text(encoding="utf-8"))
    missing = [p for p in targs["data"] + add if not Path(p).is_file()]
    if missing:
        sys.exit(f"{model}/training_args.json: training file(s) not here: {', '.join(missing)} "
                 "(the real chats: see the model's CARD_NOTES.md for how to rebuild them)")
    rubric = load_rubric(str(model / "rubric.yaml") if (model / "rubric.yaml").is_file() else None)
    dims = {d: list(rubric.scale) for d in rubric.model_dimensions}
    train_ex, dev_ex = split_by_ids(load_examples(targs["data"] + add, dims), targs["dev_ids"])
    return targs, rubric, train_ex, dev_ex


def refit(model: Path, flags: list[str], add: list[str], refocus: bool = False) -> tuple[TurnFlags, list]:
    """The model's turn flags with ``flags`` refitted (the old ones frozen), and its dev examples. ``refocus``: fit
    the focus vocabulary of the refitted flags' side again, on its turn-labelled messages (``add``'s too), when no
    other model reads it."""
    targs, rubric, train_ex, dev_ex = examples(model, add)
    own = [e.conv for e in train_ex if any(matches(e.source, p) for p in targs["ridge_on"])]
    seen = {id(c) for c in own}
    extra = [e.conv for e in train_ex if id(e.conv) not in seen
             and any(matches(e.source, p) for p in (targs.get("turns_on") or []) + add)]
    ridge = RidgeChannel.load(model)
    old = ridge.turn_flags
    unknown = [f for f in flags if f not in rubric.model_flags or not rubric.model_flags[f].turn]
    if unknown:
        sys.exit(f"--flags: {', '.join(unknown)}: not a model flag with a turn label in {model}'s rubric "
                 f"(these are: {', '.join(f for f, m in rubric.model_flags.items() if m.turn)})")
    turns = {f: rubric.model_flags[f].turn for f in flags}
    focus = dict(old.focus)   # kept: frozen and other models read it
    if refocus:
        sides = {turns[f].partition(".")[0] for f in flags}
        readers = [f for side in sorted(sides) for f in old.focus_readers(side) if f not in flags]
        if readers:
            sys.exit(f"--refocus: {', '.join(readers)} also read the {'/'.join(sorted(sides))} focus vocabulary; "
                     "refit them too (--flags) or keep the vocabulary")
        focus = {role: vec for role, vec in focus.items() if role not in sides}
    new = TurnFlags.fit(own + extra, ridge.projection, turns, focus=focus)
    frozen = {**{f: old.models[f] for f in flags if f in old.models}, **old.frozen}   # the first fit stays frozen
    before = [*old.info.get("refits_before", []), *([old.info["refit"]] if "refit" in old.info else [])]
    info = {**old.info, "turns": {**old.info.get("turns", {}), **new.info.get("turns", {})},
            "refit": {"flags": flags, "added": add, "chats": len(own) + len(extra),
                      "date": dt.date.today().isoformat(), **({"refocused": True} if refocus else {})},
            "refits_before": before}   # what earlier refits fitted and chose, oldest first
    return TurnFlags(ridge.projection, {**old.models, **new.models}, info, old.thresholds, old.thresholds_real,
                     new.focus, frozen), dev_ex


def gather(model: Path, flags: list[str], dev_ex, select: list[tuple[str, ...]]):
    """The model, and per flag over the dev chats and the flag's probe chats (``PATH:FLAG[:odd|even]``: one half of
    the probe ids only): ``add_flag_votes``' and ``add_veto_votes``' gatherings."""
    from qa.model.predict import Classifier
    from rule_probe import probes
    clf = Classifier(model)
    engine = RuleEngine(clf.rubric)
    sets = [("dev", [e.conv for e in dev_ex], None, None)]
    for path, flag, *half in select:
        items = [it for it in probes(path)
                 if not half or int(it[0].id.rsplit("-", 1)[1]) % 2 == (half[0] == "odd")]
        sets.append((Path(path).name, [c for c, _, _ in items], flag, [label for _, label, _ in items]))
    votes: dict = {}
    vetoes: dict = {}
    for _, convs, only, labels in sets:
        timings = [compute_timing(c, clf.rubric) for c in convs]
        findings = [engine.check(c, t) for c, t in zip(convs, timings)]
        preds = clf.predict_all(convs, findings=findings, timings=timings)
        golds = [flag_targets(c, flags) if only is None else {only: float(label)} for c, label in
                 zip(convs, labels or [None] * len(convs))]
        golds = [{f: g[f] for f in flags if f in g} for g in golds]
        add_flag_votes(votes, preds, findings, golds)
        add_veto_votes(vetoes, preds, findings, golds)
    return clf, votes, vetoes


def choose_vetoes(model: Path, flags: list[str], dev_ex, select: list[tuple[str, ...]]) -> dict:
    """Per flag: the veto with the best F1 (``qa.model.flags.choose_vetoes``) over the dev chats and the flag's probe
    chats; sets it in the model's config.json (``flag_vetoes``; a red line gets none)."""
    from qa.model.flags import choose_vetoes as choose_on
    clf, _, votes = gather(model, flags, dev_ex, select)
    red = [f for f in flags if f not in clf.rubric.rules or clf.rubric.rules[f].severity == "red_line"]
    if red:
        sys.exit(f"--flags {', '.join(red)}: not a rule, or a red line (never vetoed by the model)")
    cfg_path = model / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    vetoes = cfg.setdefault("flag_vetoes", {})
    report = choose_on(votes, clf.rubric, flags)
    for f, r in report.items():
        r["was"], r["chosen_on"] = vetoes.get(f), ["dev"] + [":".join([Path(x[0]).name, *x[2:]])
                                                             for x in select if x[1] == f]
        vetoes[f] = r["veto"]
    cfg_path.write_text(json.dumps(cfg, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return report


def choose(model: Path, flags: list[str], dev_ex, select: list[tuple[str, ...]]) -> dict:
    """Per flag: the threshold with the best F1 (rules, or the mean probability past it) over the dev chats and
    the flag's probe chats; sets it in the model's turnflags.json."""
    clf, votes, _ = gather(model, flags, dev_ex, select)
    path = model / "turnflags.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    cfg_path = model / "config.json"   # a flag without a turn model is raised on the network's probability alone
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    turn_models = clf.ridge.turn_flags.models if clf.ridge is not None and clf.ridge.turn_flags else {}
    report = {}
    for f in flags:
        q, gold, fired = (np.array(x) for x in votes.get(f, ([], [], [])))
        t, f1 = best_threshold(q, gold, fired)
        where = meta["thresholds"] if f in turn_models else cfg["flag_thresholds"]
        report[f] = {"threshold": round(t, 3), "was": where.get(f), "f1": round(float(f1), 4),
                     "chats": len(q), "positive": int(gold.sum())}
        if where is cfg["flag_thresholds"]:
            report[f]["network_alone"] = True
        where[f] = round(t, 3)
    cfg_path.write_text(json.dumps(cfg, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    chosen_on = ["dev"] + [":".join([Path(x[0]).name, *x[2:]]) for x in select]
    earlier = {f: v for f, v in (meta["info"]["refit"].get("thresholds") or {}).items() if f != "chosen_on"}
    meta["info"]["refit"]["thresholds"] = {**earlier, **{f: {**r, "chosen_on": chosen_on} for f, r in report.items()},
                                           "chosen_on": chosen_on}
    path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return report


def select_spec(spec: str) -> tuple[str, ...]:
    """``PROBES:FLAG[:odd|even]`` as a tuple; a malformed spec or a missing file is a usage error, not a traceback."""
    path, _, rest = spec.partition(":")
    flag, _, half = rest.partition(":")
    if not path or not flag or ":" in half or half not in ("", "odd", "even"):
        raise argparse.ArgumentTypeError(f"{spec!r}: expected PROBES:FLAG, PROBES:FLAG:odd or PROBES:FLAG:even")
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"{spec!r}: no such file {path}")
    return (path, flag, half) if half else (path, flag)


def arguments(add_help: str) -> argparse.ArgumentParser:
    """The command line this script and ``refit_flag_head.py`` share."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--flags", nargs="+", action="extend", required=True)
    ap.add_argument("--add", nargs="*", action="extend", default=[], help=add_help)
    ap.add_argument("--select", nargs="*", action="extend", default=[], metavar="PROBES:FLAG[:odd|even]", type=select_spec,
                    help="probe chats (or one half of their ids) that join the dev split in choosing FLAG's threshold")
    ap.add_argument("--keep-threshold", nargs="*", action="extend", default=[], metavar="FLAG",
                    help="refit FLAG but keep its threshold (choose none)")
    ap.add_argument("--out", type=Path, help="write a copy of the model here (default: in place)")
    return ap


def rechoose(out: Path, a: argparse.Namespace, dev_ex) -> None:
    """Choose the refitted flags' thresholds again (all but ``--keep-threshold``'s) and say what moved."""
    chosen = [f for f in a.flags if f not in a.keep_threshold]
    select = list(a.select)
    for f, r in (choose(out, chosen, dev_ex, select) if chosen else {}).items():
        print(f"{f:20s} threshold {r['was']} -> {r['threshold']} (F1 {r['f1']} on {r['chats']} chats, "
              f"{r['positive']} positive)")
    print(f"wrote {out}")


def main() -> None:
    ap = arguments("labelled files whose turn labels the models also learn")
    ap.add_argument("--thresholds-only", action="store_true",
                    help="refit nothing: choose FLAG's threshold again beside the rules as they are now (after a "
                         "lexicon or rule change)")
    ap.add_argument("--vetoes", action="store_true",
                    help="refit nothing: choose FLAG's veto on rule findings the model did not raise (config.json "
                         "flag_vetoes) instead of its threshold")
    ap.add_argument("--refocus", action="store_true",
                    help="fit the refitted flags' side's focus vocabulary (the message's own n-grams) again, on the "
                         "turn-labelled messages with --add's: new words get columns (refused while a model not "
                         "refitted reads that vocabulary)")
    a = ap.parse_args()
    out = a.out or a.model
    if a.vetoes:
        if out != a.model:
            shutil.copytree(a.model, out, dirs_exist_ok=True)
        rep = choose_vetoes(out, a.flags, examples(a.model, [])[3], list(a.select))
        for f, r in rep.items():
            print(f"{f:28s} veto {r['was']} -> {r['veto']} (F1 {r['f1_without']} -> {r['f1']} on {r['chats']} "
                  f"chats, {r['positive']} positive; {', '.join(r['chosen_on'])})")
        print(f"wrote {out}")
        return
    if a.thresholds_only:
        dev_ex = examples(a.model, [])[3]
    else:
        flags, dev_ex = refit(a.model, a.flags, a.add, a.refocus)
    if out != a.model:
        shutil.copytree(a.model, out, dirs_exist_ok=True)
    if not a.thresholds_only:
        flags.save(out)
    rechoose(out, a, dev_ex)


if __name__ == "__main__":
    main()
