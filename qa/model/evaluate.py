"""``evaluate``: a model against held-out labelled chats, beside two baselines trained on the model's own
training split — the majority class and char n-gram TF-IDF + logistic regression."""

from __future__ import annotations

import glob
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.errors import InputError, ModelError
from qa.model.data import Example, file_weight, load_examples, split, split_by_ids
from qa.model.inputs import flat_text
from qa.model.metrics import grade_metrics


def _majority(train: list[Example], dim: str, levels: list):
    counts = {lv: 0 for lv in levels}
    for e in train:
        lv = e.majority(dim, levels)
        if lv is not None:
            counts[lv] += 1
    return max(levels, key=lambda lv: counts[lv])


def ngram_baseline(train: list[Example], test: list[Example], dims: dict[str, list], seed: int = 0) -> dict:
    """Per dimension, levels predicted by TF-IDF char 1–3-grams + logistic regression; C ∈ {3, 10, 30} picked on
    a seeded 20 % hold-out of the training split, then refitted on all of it with the examples' weights (the
    same file weights the model was trained with)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from qa.model.ngrams import vectorizer
    vec = vectorizer(max_features=None)
    x_train = vec.fit_transform([flat_text(e.conv) for e in train])
    x_test = vec.transform([flat_text(e.conv) for e in test])
    out = {}
    for d, levels in dims.items():
        rows = [i for i, e in enumerate(train) if d in e.targets]
        y = np.array([levels.index(train[i].majority(d, levels)) for i in rows])
        if len(set(y)) < 2:
            out[d] = [levels[y[0]] if len(y) else levels[0]] * len(test)
            continue
        best_c = 10.0
        if len(y) >= 20:
            a, b = train_test_split(np.arange(len(rows)), test_size=0.2, random_state=seed)
            acc = {c: LogisticRegression(C=c, max_iter=2000).fit(x_train[np.array(rows)[a]], y[a])
                   .score(x_train[np.array(rows)[b]], y[b]) for c in (3.0, 10.0, 30.0)}
            best_c = max(acc, key=acc.get)
        clf = LogisticRegression(C=best_c, max_iter=2000).fit(
            x_train[rows], y, sample_weight=np.array([train[i].weight for i in rows]))
        out[d] = [levels[int(k)] for k in clf.predict(x_test)]
    return out


def training_split(model_dir: Path, dims: dict[str, list], train_paths: Sequence[str] | None) -> list[Example]:
    """The examples the model was trained on (same files, same seeded split) unless ``train_paths`` is given."""
    args_file = model_dir / "training_args.json"
    if train_paths:
        return load_examples(train_paths, dims)
    if not args_file.is_file():
        raise ModelError(f"{model_dir} has no training_args.json: pass --train FILES for the baselines")
    try:
        args = json.loads(args_file.read_text(encoding="utf-8"))
        if not isinstance(args, dict):
            raise ValueError("not a JSON object")
        if not isinstance(args["data"], list) or not isinstance(args.get("weights") or {}, dict):
            raise ValueError("data must be a list of files and weights a mapping")
        given = args["data"]
        args["data"] = [_where(p, args.get("cwd")) for p in given]   # real chats live in ~/.cache/qa
        # the weights' patterns match the paths as training gave them: carry each file's weight to where it was found
        args["weights"] = {glob.escape(found): file_weight(p, args.get("weights"))
                           for p, found in zip(given, args["data"])}
        if args.get("dev_ids"):
            args["dev_ids"] = _where(args["dev_ids"], args.get("cwd"))
        elif not args.get("dev"):
            float(args["dev_fraction"]), int(args["seed"])
    except (ValueError, KeyError, TypeError) as e:
        from qa.model.predict import load_reason
        raise ModelError(f"cannot load model from {model_dir}: training_args.json: {load_reason(e)} (pass --train "
                         "FILES, or --no-baselines)") from None
    missing = [p for p in args["data"] + ([args["dev_ids"]] if args.get("dev_ids") else []) if not Path(p).is_file()]
    if missing:
        raise ModelError(f"training data of {model_dir} not found ({', '.join(missing)}): pass --train FILES")
    examples = load_examples(args["data"], dims, weights=args.get("weights"))
    if args.get("dev"):
        return examples
    if args.get("dev_ids"):                         # the model's own split: its dev chats are not baseline training
        return split_by_ids(examples, args["dev_ids"])[0]
    return split(examples, args["dev_fraction"], args["seed"])[0]


def _where(path: str, cwd: str | None) -> str:
    """A training file's path: relative ones are found where ``qa train`` ran (recorded since session 42), else
    here."""
    p = Path(path).expanduser()
    if not p.is_absolute() and cwd and (Path(cwd) / p).is_file():
        return str(Path(cwd) / p)
    return str(p)


def evaluate(model_dir: str | Path | None, data: Sequence[str], *, train_paths: Sequence[str] | None = None,
             baselines: bool = True, batch_size: int = 32, platform: str | None = None, flags: bool = True) -> dict:
    """Per dimension: accuracy, within-one, macro-F1, QWK and confusion for the model and the baselines
    (``platform``: the platform of chats whose records name none), over each readable labelled chat once (the rest
    in ``rejected``: unreadable lines, no grades, nothing for the model to read, an id read already); with ``flags``, the rule flags against the
    reviews' (``qa.model.flag_scores``: rules alone, and rules + model as ``qa grade`` combines them)."""
    from qa.model.predict import Classifier
    clf = Classifier(model_dir)
    dims = clf.dimensions
    rejects: list = []
    test = load_examples(data, dims, platform=platform, rejects=rejects, unique=True)
    ungraded = [d for d in dims if not any(d in e.targets for e in test)]
    if ungraded:   # no reference to score the model against
        raise InputError(f"no conversation has a usable grade for {', '.join(ungraded)} (each must be one of "
                         f"its levels: {'; '.join(f'{d} ' + '/'.join(map(str, dims[d])) for d in ungraded)})",
                         file=", ".join(map(str, data)), field="labels.reviews[].grades")
    convs = [e.conv for e in test]
    analyses = clf.analyse(convs)   # once: the model's features and the rule flags' findings
    preds = clf.predict_all(convs, findings=[a.findings for a in analyses], timings=[a.timing for a in analyses],
                            batch_size=batch_size)
    systems: dict[str, dict[str, list]] = {"model": {d: [p.grades[d].level for p in preds] for d in dims}}
    if baselines:
        train = training_split(clf.path, dims, train_paths)
        systems["majority"] = {d: [_majority(train, d, lv)] * len(test) for d, lv in dims.items()}
        systems["ngram_lr"] = ngram_baseline(train, test, dims)
    report = {"model": str(clf.path), "data": [str(p) for p in data], "n": len(test), "dimensions": list(dims),
              "levels": dims, "systems": {}, "rejected": len(rejects),   # not scored, and the first hundred: why
              "rejected_first": [r.to_record() for r in rejects[:100]]}
    if flags:
        from qa.model.flag_scores import check_rules, flag_report
        check_rules(test, clf.rubric.rules)
        report["flags"] = flag_report(clf, convs, analyses, preds)
    for name, by_dim in systems.items():
        report["systems"][name] = {}
        for d, levels in dims.items():
            rows = [i for i, e in enumerate(test) if d in e.targets]
            report["systems"][name][d] = grade_metrics(
                references=[test[i].majority(d, levels) for i in rows],
                predictions=[by_dim[d][i] for i in rows], levels=levels)
    return report
