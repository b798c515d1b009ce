"""MODEL_CARD.md: what the model grades, how it was trained, and how it did (from the files beside it)."""

from __future__ import annotations

import json
from pathlib import Path


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def eval_table(report: dict) -> list[str]:
    """Markdown rows: per dimension, QWK / accuracy / within-one / macro-F1 of the model and each baseline."""
    systems = list(report.get("systems", {}))
    lines = ["| dimension | " + " | ".join(f"{s} QWK" for s in systems) + " | model acc | model ±1 | model F1 |",
             "|---|" + "---:|" * (len(systems) + 3)]
    model = report["systems"].get("model", {})
    for d in report.get("dimensions", []):
        cells = [f"{report['systems'][s][d]['qwk']:.3f}" for s in systems]
        m = model.get(d, {})
        lines.append(f"| {d} | " + " | ".join(cells) +
                     f" | {m.get('accuracy', 0):.3f} | {m.get('within_one', 0):.3f} | {m.get('macro_f1', 0):.3f} |")
    return lines


def flag_lines(flags: dict | None) -> list[str]:
    """Markdown rows: rule-flag F1 against the reviews, rules alone and rules + model (``qa eval``'s flags)."""
    if not flags:
        return []
    systems = flags["systems"]
    rules = [r for r in next(iter(systems.values())) if any(systems[n][r]["gold"] for n in systems)]
    f1 = lambda m, r: "-" if m["f1"] is None else f"{m['f1']:.{3 if r == 'micro' else 2}f}"   # noqa: E731
    return ([f"Rule flags ({flags['chats']} chats, gold: {flags['gold']}), F1:", "",
             "| rule | gold | " + " | ".join(systems) + " |", "|---|---:|" + "---:|" * len(systems)]
            + [f"| {r} | {systems['rules'][r]['gold']} | " + " | ".join(f1(systems[n][r], r) for n in systems) + " |"
               for r in rules] + [""])


def _command(args: dict) -> str:
    """The ``qa train`` call that reproduces the model from its training_args.json."""
    defaults = {"epochs": 8, "batch_size": 16, "lr": 3e-4, "encoder_lr": 1e-4, "patience": 2, "seed": 13,
                "dev_fraction": 0.1, "base_model": "models/base"}
    parts = ["qa train", *args.get("data", []), "--out", args.get("out", "OUT")]
    if args.get("rubric"):
        parts += ["--rubric", args["rubric"]]
    for k, default in defaults.items():
        if args.get(k, default) not in (default, None):
            parts += [f"--{k.replace('_', '-')}", str(args[k])]
    for pattern, w in (args.get("weights") or {}).items():
        parts += ["--weight", f"'{pattern}={w:g}'"]
    if args.get("augment"):
        parts += ["--augment", f"{args['augment']:g}"]
    if args.get("excerpt"):
        parts += ["--excerpt", f"{args['excerpt']:g}"]
        if args.get("excerpt_dim", "etiquette") != "etiquette":
            parts += ["--excerpt-dim", args["excerpt_dim"]]
    for flag, key in (("--no-encoder", "use_encoder"), ("--no-ngrams", "use_ngrams"), ("--no-features", "use_features")):
        if args.get(key) is False:
            parts.append(flag)
    given = {"ngram_init": "lr", "device": "auto"}
    for key in ("dev_ids", "from_model", "teacher", "max_steps", "ngram_init", "device"):   # the rest of what the run
        if args.get(key) not in (None, given.get(key)):                                     # was given, not the default
            parts += [f"--{key.replace('_', '-')}", str(args[key])]
    for key in ("dev", "ridge_on", "turns_on"):
        for v in args.get(key) or ():
            parts += [f"--{key.replace('_', '-')}", str(v)]
    for key in ("keep_beta", "keep_decision"):
        if args.get(key):
            parts.append(f"--{key.replace('_', '-')}")
    return " ".join(parts)


def _split(args: dict) -> str:
    """How the dev split was drawn, in words."""
    if args.get("dev"):
        return f"the dev files {', '.join(args['dev'])}"
    if args.get("dev_ids"):
        return f"the dev chats listed in {args['dev_ids']}"
    return f"a seeded {args.get('dev_fraction')} dev split"


def write_card(model_dir: str | Path) -> Path:
    d = Path(model_dir)
    cfg, metrics, args = _read(d / "config.json"), _read(d / "metrics.json"), _read(d / "training_args.json")
    enc = cfg.get("encoder") or {}
    lines = [f"# Model card: {d.name}", "",
             f"Rubric classifier for the `{cfg.get('rubric')}` rubric: grades "
             + ", ".join(f"`{k}` ({'/'.join(map(str, v))})" for k, v in cfg.get("dimension_list", []))
             + " from the whole chat.", "",
             "## Architecture",
             f"- Encoder: {enc.get('model_type', 'none')} — hidden {enc.get('hidden_size', '-')}, "
             f"{enc.get('num_hidden_layers', '-')} layers, vocab {enc.get('vocab_size', '-')}; "
             f"each message read on its own (≤ {cfg.get('max_tokens')} tokens, ≤ {cfg.get('max_messages')} "
             "messages: first and last halves of longer chats), then one message-level transformer layer, then "
             "per-dimension attention over agent turns (the attention gives each grade's evidence turns)."
             if cfg.get("use_encoder") else "- Encoder: not used.",
             f"- Char n-gram channel: {cfg.get('n_ngrams', 0)} TF-IDF 1–3-grams, linear into every head"
             + (" (fitted first as a soft-label logistic regression and kept fixed; the rest of the network "
                "learned from its 5-fold out-of-fold logits)." if args.get("ngram_init", "lr") == "lr"
                else " (learned jointly).")
             if cfg.get("n_ngrams") else "- Char n-gram channel: not used.",
             _ridge_line(metrics.get("ridge")),
             _stack_line(_read(d / "ridge.json").get("stack")),
             _offsets_line(_read(d / "offsets.json")),
             _turn_line(_turn_info(metrics, _read(d / "turnflags.json")), metrics.get("dev_turn_flags"),
                        _read(d / "turnflags.json").get("thresholds"), _read(d / "turnflags.json").get("partial")),
             ("- Vetoes on rule findings (chosen after training on the dev split: `qa train`, or "
              "`scripts/refit_turnflags.py --vetoes` with probe chats too): a rule finding the model did not raise is "
              "dropped when the model's probability is below " + ", ".join(f"{v} for `{f}`" for f, v in
                                                                           sorted(cfg["flag_vetoes"].items()))
              + "; red lines never are.") if cfg.get("flag_vetoes") else None,
             f"- Nugget head (per turn): {cfg.get('nuggets')}." if cfg.get("nuggets") else None,
             f"- Non-text features: {', '.join(cfg.get('feature_names', [])) or 'none'}.",
             f"- Output: calibrated level probabilities (temperature per dimension on the dev split: "
             f"{cfg.get('temperatures')}), the expected grade, and the level by `{cfg.get('decision')}` "
             "(chosen on the dev split).", "",
             "## Training",
             f"- Data: {', '.join(args.get('data', []))}"
             + (f"; file weights in the loss: {args['weights']}" if args.get("weights") else ""),
             f"- Command: `{_command(args)}`",
             f"- Base model: `{args.get('base_model')}`; epochs ≤ {args.get('epochs')}, batch {args.get('batch_size')}, "
             f"lr {args.get('lr')} (encoder {args.get('encoder_lr')}), seed {args.get('seed')}, early stopping "
             f"(patience {args.get('patience')}) on {_split(args)}.",
             f"- {metrics.get('train_conversations', metrics.get('train_examples'))} training / "
             f"{metrics.get('dev_examples')} dev conversations"
             + (f" (+ {metrics['train_copies']} real-looking or excerpt copies of training chats)"
                if metrics.get("train_copies") else "") + f"; {metrics.get('seconds')} s.", ""]
    if metrics.get("dev"):
        lines += ["Dev split (used for early stopping and calibration, so optimistic):", "",
                  "| dimension | QWK | accuracy | within one | macro-F1 |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {k} | {v['qwk']:.3f} | {v['accuracy']:.3f} | {v['within_one']:.3f} | {v['macro_f1']:.3f} |"
                  for k, v in metrics["dev"].items()]
        lines.append("")
    report = _read(d / "eval.json")
    if report:
        lines += ["## Held-out evaluation", "", f"Data: {', '.join(report.get('data', []))} "
                  f"({report.get('n')} conversations). Command: `{report.get('command', '')}`", ""]
        lines += eval_table(report) + [""] + flag_lines(report.get("flags"))
    extra = d / "CARD_NOTES.md"
    if extra.is_file():
        lines += [extra.read_text(encoding="utf-8").strip(), ""]
    path = d / "MODEL_CARD.md"
    path.write_text("\n".join(x for x in lines if x is not None), encoding="utf-8")
    return path


def _ridge_line(info: dict | None) -> str | None:
    """The ridge channel (``qa.model.ridge``), when the model has one."""
    if not info:
        return None
    proj = (f" and on a {info['projection_dims']}-dimensional projection of `{info['teacher']}` sentence vectors "
            f"({info['projection_ngrams']} n-grams, fitted on {info['teacher_texts']} teacher texts, no dev chat)"
            if info.get("teacher") else "")
    return (f"- Ridge channel: ridge regressions on the agent text's char TF-IDF{proj}, fitted on the "
            f"{info.get('chats')} training chats of files matching {info.get('files')}; their z-scored score tilts "
            f"each dimension's logits by beta {info.get('beta')} (chosen on the dev split; 0 = off)"
            + (", times a gate: the probability that a chat looks like those chats rather than the other training "
               "chats." if info.get("gate") else "."))


def _offsets_line(data: dict | None) -> str | None:
    """A shop's calibration (``qa calibrate``: ``offsets.json``), when the model has one."""
    if not data or not (data.get("offsets") or data.get("flags")):
        return None
    runs = (data.get("info") or {}).get("calibrations") or []
    flags = "; ".join(f"{p} " + ", ".join(f"{f} {t:.2f}" for f, t in fl.items()) for p, fl in data["flags"].items()
                      ) if data.get("flags") else ""
    return ("- Shop calibration (`qa calibrate`, not weighed by the gate): grade offsets per platform "
            + ("; ".join(f"{p} " + ", ".join(f"{d} {v:+.2f}" for d, v in dims.items())
                         for p, dims in data["offsets"].items()) or "none")
            + (f"; flag thresholds {flags}" if flags else "")
            + (f"; fitted on {', '.join(f for r in runs for f in r.get('data', []))} "
               f"({sum(r.get('chats', 0) for r in runs)} reviewed chats)." if runs else "."))


def _stack_line(stack: dict | None) -> str | None:
    """The real-side stack (``RidgeChannel.stack_shift``) and its per-platform offsets, when fitted."""
    if not stack:
        return None
    offsets = {d: st["platform"] for d, st in stack.items() if st.get("platform")}
    text = ("- Real-side stack: per dimension a linear model of the reviews' mean level on the tilted index and the "
            "ridge parts, fitted on the pooled real training chats (each scored by a fold model that never saw it) "
            "and applied in proportion to the gate")
    if not offsets:
        return text + "."
    plats = sorted({p for o in offsets.values() for p in o})
    return (text + "; offsets per platform in level-index units (negative = graded up): "
            + "; ".join(f"{p} " + " / ".join(f"{offsets[d].get(p, 0):+.2f}" for d in offsets) for p in plats)
            + f" ({' / '.join(offsets)}).")


def _threshold(flag: str, dev: dict | None, used: dict | None) -> str:
    """The threshold a flag's turn model uses, and the dev split's choice where it was set by hand instead."""
    chosen = (dev or {}).get(flag, {}).get("threshold", "-")
    if used and flag in used and chosen == "-":     # chosen after training (scripts/refit_turnflags.py)
        return f"threshold {used[flag]}"
    if not used or flag not in used or used[flag] == chosen:
        return f"threshold {chosen}"
    return f"threshold {used[flag]}; the dev split chose {chosen}"


def _turn_info(metrics: dict, meta: dict) -> dict | None:
    """The turn models' fitting info: ``turnflags.json``'s when they were refitted after training, else the
    training run's."""
    info = meta.get("info") or {}
    return info if info.get("refit") else (metrics.get("ridge") or {}).get("turn_flags")


def _turn_line(info: dict | None, dev: dict | None, used: dict | None = None, partial: dict | None = None
               ) -> str | None:
    """The turn-level flag models (``qa.model.turnflags``), when the model has them; ``used``: the thresholds in
    ``turnflags.json`` (they win over the dev split's choice)."""
    if not info or not info.get("turns"):
        return None
    refits = [r for r in (*info.get("refits_before", []), info.get("refit")) if r]   # scripts/refit_turnflags.py
    rechosen = {f for r in refits for f in (r.get("thresholds") or {})} - {"chosen_on"}
    dev = {f: v for f, v in (dev or {}).items() if f not in rechosen}   # the training run's choice is gone
    each = "; ".join(f"`{f}` ({v['rows']} labelled messages, {v['positive']} positive; {_threshold(f, dev, used)})"
                     for f, v in info["turns"].items())
    if info.get("gated", True):
        src, rule = ("the same chats' turn labels", "A flag is raised when the network's probability or the gated "
                     "turn model's reaches its threshold.")
    else:
        src, rule = (f"the turn labels of the same chats and of {info.get('extra_chats')} other training chats "
                     "(`--turns-on`)", "A flag is raised when the rules find it or when the mean of the network's "
                     "and the turn model's probabilities reaches the threshold (1.01: the rules alone).")
    for refit in refits:   # oldest first
        ths = refit.get("thresholds") or {}   # each refit records what chose its flags' thresholds
        per_flag = [c for v in ths.values() if isinstance(v, dict) for c in v.get("chosen_on", [])]
        chosen = list(dict.fromkeys([*(ths.get("chosen_on") or []), *per_flag]))
        rule += (f" {', '.join(f'`{f}`' for f in refit['flags'])} {'was' if len(refit['flags']) == 1 else 'were'} "
                 f"refitted on {refit['date']} "
                 f"(`scripts/refit_turnflags.py`, {refit['chats']} chats with {len(refit['added'])} added files"
                 + (f"; thresholds chosen on {', '.join(chosen)}" if chosen else "")
                 + ").")
    if refits:
        rule += " The ridge channel's structure part still reads the models it was fitted on."
    head = info.get("head_refit")
    if head:   # scripts/refit_flag_head.py
        rule += (f" The network's own head and n-gram column for {', '.join(f'`{f}`' for f in head['flags'])} were "
                 f"refitted on {head['date']} (`scripts/refit_flag_head.py`, {head['chats']} chats, the rest of the "
                 "network frozen: no grade moves).")
    if "unanswered_question" in info["turns"]:
        rule += (" A question's `unanswered_question` probability is its lowest over the reply right after it and each "
                 "later reply run about the same matter (`later_replies`: a word shared, or an answer of the kind the "
                 "rubric's `answer_types` say it asks for, such as a size or a time): answered when pressed, or by the "
                 "human after a bot, is answered.")
    for f, t in (partial or {}).items():
        rule += (f" `{f}` is also raised when a question the agent left while taking up another asked with it "
                 f"(`partial_misses`) has a turn probability of {t} or more (chosen on the dev split and the probes).")
    return (f"- Turn-level flag models: a logistic regression per flag over one message in its context (the other "
            f"side's messages before and after it, its side's next message), on {src}: {each}. {rule}")
