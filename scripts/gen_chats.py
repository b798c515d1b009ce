#!/usr/bin/env python3
"""Generate labelled synthetic customer-service chats (a seeded, documented generator).

    python scripts/gen_chats.py --n 4500 --seed 7 --out data/labelled/gen/gen.jsonl
    python scripts/gen_chats.py --check data/labelled/gen/gen.jsonl      # quality report

Each chat is planned from four drawn target levels (attitude, etiquette, professionalism, clarity), a
scenario from ``data/generator/scenarios/*.yaml`` and the style banks in ``data/generator/style/*.yaml``,
then realised message by message; the rule flags in the labels are read back from what was generated.
Knobs (level mix, correlations, noise, timing) live in ``data/generator/config.yaml``.
See docs/generator.md for the design, the label noise and the known limits.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime as dt
import glob
import json
import math
import random
import re
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
GEN_DIR = ROOT / "data" / "generator"
DIMS = ("attitude", "etiquette", "professionalism", "clarity")
LEVELS = (5, 4, 3, 2)
RULE_ORDER = ("uncivil_language", "off_platform_diversion", "privacy_leak", "no_proactive_confirmation",
              "vague_reply", "mechanical_repetition", "unanswered_question", "missing_greeting",
              "missing_closing", "slow_first_response", "negative_emotion_unsoothed", "overpromise")
OPEN_KINDS = ("text", "product_card", "order_card", "image")
SCENARIO_KEYS = {"name", "upset", "categories", "slots", "open", "exchanges"}
EXCHANGE_KEYS = {"customer", "answer", "upset_customer"}
# slots every text may use without declaring them (values drawn once per chat)
BUILTIN_SLOTS = ("product", "price", "order_no", "express", "agent", "shop", "addr")
SLOT_RE = re.compile(r"\{(\w+)\}")
EMOJI_RE = re.compile(r"\[[\u4e00-\u9fffA-Za-z]{1,4}\]")
ADDR_AS_OBJECT = re.compile(r"(谢谢|感谢|感恩|辛苦|祝|心疼)\{addr\}")
MEDIA_PIECES = {"[图片]": "image", "[视频]": "video"}
ETIQUETTE_ELEMENTS = ("greeting", "honorific", "thanks", "apology", "closing")
TZ = dt.timezone(dt.timedelta(hours=8))


class GenError(Exception):
    """A bank or config problem; the message names the file and the key."""


# --------------------------------------------------------------------------------------------------
# Loading and validating the banks
# --------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Exchange:
    """One customer question and the agent's answer content at each professionalism level."""

    customer: list[str]
    answer: dict[int, list[str]]
    upset_customer: list[str]


@dataclasses.dataclass
class Scenario:
    name: str
    upset: float
    categories: dict[str, list[str]]
    slots: dict[str, list[str]]
    open: list[str]
    exchanges: list[Exchange]
    source: str


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(s, str) and s.strip() for s in value)


def validate_scenario(data: Any, where: str) -> list[str]:
    """Every problem in one scenario file, each as ``file: key: what is wrong``."""
    if not isinstance(data, dict):
        return [f"{where}: the file must be a mapping with keys {sorted(SCENARIO_KEYS)}"]
    errs = [f"{where}: {k}: unknown key (allowed: {', '.join(sorted(SCENARIO_KEYS))})"
            for k in data if k not in SCENARIO_KEYS]
    for k in ("name", "upset", "categories", "open", "exchanges"):
        if k not in data:
            errs.append(f"{where}: {k}: missing")
    if "name" in data and not (isinstance(data["name"], str) and data["name"].strip()):
        errs.append(f"{where}: name: must be a non-empty string")
    up = data.get("upset", 0)
    if not isinstance(up, (int, float)) or isinstance(up, bool) or not 0 <= up <= 1:
        errs.append(f"{where}: upset: must be a probability between 0 and 1, got {up!r}")
    cats = data.get("categories", {})
    if not isinstance(cats, dict) or not cats:
        errs.append(f"{where}: categories: must map category names to lists of product names")
        cats = {}
    for c, products in cats.items():
        if not _str_list(products):
            errs.append(f"{where}: categories.{c}: must be a non-empty list of product names")
    slots = data.get("slots") or {}
    if not isinstance(slots, dict):
        errs.append(f"{where}: slots: must map slot names to lists of values")
        slots = {}
    for s, values in slots.items():
        if s in BUILTIN_SLOTS:
            errs.append(f"{where}: slots.{s}: {{{s}}} is built in; pick another name")
        if not (isinstance(values, list) and values and all(isinstance(v, (str, int, float)) for v in values)):
            errs.append(f"{where}: slots.{s}: must be a non-empty list of strings")
    opens = data.get("open", [])
    if not isinstance(opens, list) or not opens or any(o not in OPEN_KINDS for o in opens):
        errs.append(f"{where}: open: must be a non-empty list drawn from {list(OPEN_KINDS)}, got {opens!r}")
    known = set(BUILTIN_SLOTS) | set(slots)
    exchanges = data.get("exchanges", [])
    if not isinstance(exchanges, list) or not 2 <= len(exchanges) <= 5:
        errs.append(f"{where}: exchanges: must be a list of 2 to 5 exchanges")
        exchanges = exchanges if isinstance(exchanges, list) else []
    for i, ex in enumerate(exchanges):
        key = f"exchanges[{i}]"
        if not isinstance(ex, dict):
            errs.append(f"{where}: {key}: must be a mapping with customer, answer (and upset_customer)")
            continue
        errs += [f"{where}: {key}.{k}: unknown key (allowed: customer, answer, upset_customer)"
                 for k in ex if k not in EXCHANGE_KEYS]
        texts: list[tuple[str, str]] = []
        if not _str_list(ex.get("customer")):
            errs.append(f"{where}: {key}.customer: must be a non-empty list of strings")
        else:
            texts += [(f"{key}.customer", t) for t in ex["customer"]]
        if "upset_customer" in ex:
            if not _str_list(ex["upset_customer"]):
                errs.append(f"{where}: {key}.upset_customer: must be a non-empty list of strings")
            else:
                texts += [(f"{key}.upset_customer", t) for t in ex["upset_customer"]]
        ans = ex.get("answer")
        if not isinstance(ans, dict):
            errs.append(f"{where}: {key}.answer: must map the levels 5, 4, 3, 2 to lists of replies")
            continue
        got = {_as_level(k) for k in ans}
        if got != set(LEVELS):
            errs.append(f"{where}: {key}.answer: needs exactly the levels 5, 4, 3, 2 (got {sorted(ans, key=str)})")
        for lv, replies in ans.items():
            if not _str_list(replies):
                errs.append(f"{where}: {key}.answer.{lv}: must be a non-empty list of strings")
            else:
                texts += [(f"{key}.answer.{lv}", t) for t in replies]
        for k, t in texts:
            for name in SLOT_RE.findall(t):
                if name not in known:
                    errs.append(f"{where}: {k}: unknown slot {{{name}}} in {t[:30]!r} (declare it under slots)")
    return errs


def _as_level(key: Any) -> int | None:
    try:
        return int(key)
    except (TypeError, ValueError):
        return None


def load_scenarios(folder: Path, *, skip_invalid: bool = False) -> tuple[list[Scenario], list[str]]:
    """Every ``*.yaml`` in ``folder``, validated. Invalid files raise ``GenError`` (or are skipped)."""
    scenarios, skipped, all_errs = [], [], []
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if not files:
        raise GenError(f"{folder}: no scenario files (*.yaml)")
    for path in files:
        where = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            errs = [f"{where}: not valid YAML: {e}".replace("\n", " ")]
        else:
            errs = validate_scenario(data, where)
        if errs:
            all_errs += errs
            skipped.append(where)
            continue
        scenarios.append(Scenario(
            name=data["name"].strip(), upset=float(data["upset"]),
            categories={str(c): list(p) for c, p in data["categories"].items()},
            slots={s: [str(v) for v in vals] for s, vals in (data.get("slots") or {}).items()},
            open=list(data["open"]),
            exchanges=[Exchange(customer=list(ex["customer"]),
                                answer={_as_level(k): list(v) for k, v in ex["answer"].items()},
                                upset_customer=list(ex.get("upset_customer") or []))
                       for ex in data["exchanges"]],
            source=path.name))
    if all_errs and not skip_invalid:
        raise GenError("invalid scenario files:\n  " + "\n  ".join(all_errs))
    if not scenarios:
        raise GenError("no valid scenario files:\n  " + "\n  ".join(all_errs))
    return scenarios, all_errs


class Style:
    """The style banks (``style/<file>.yaml``), addressed as ``file.key.subkey``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.data: dict[str, Any] = {}
        for path in sorted(folder.glob("*.yaml")):
            try:
                self.data[path.stem] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as e:
                raise GenError(f"{path}: not valid YAML: {e}") from None

    def get(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, dict) and part.lstrip("-").isdigit() and int(part) in node:
                node = node[int(part)]
            else:
                file = key.split(".")[0]
                raise GenError(f"{self.folder / (file + '.yaml')}: key {key!r} missing")
        return node

    def items(self, key: str) -> list[str]:
        value = self.get(key)
        if not _str_list(value):
            raise GenError(f"{self.folder / (key.split('.')[0] + '.yaml')}: {key} must be a non-empty list of strings")
        return value

    def check(self, required: list[str]) -> None:
        """Fail early (file + key) if a bank the generator uses is missing or empty, or if a phrase
        uses a placeholder other than the built-in ones."""
        for key in required:
            self.items(key)

        def walk(node: Any, key: str) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, f"{key}.{k}")
            elif isinstance(node, list):
                for v in node:
                    walk(v, key)
            elif isinstance(node, str):
                for name in SLOT_RE.findall(node):
                    if name not in BUILTIN_SLOTS:
                        raise GenError(f"{self.folder / (key.split('.')[0] + '.yaml')}: {key}: unknown "
                                       f"placeholder {{{name}}} in {node[:30]!r} (built in: {', '.join(BUILTIN_SLOTS)})")
        for file, data in self.data.items():
            if file != "meta":  # meta holds id templates ({d4}, {nick}) of its own
                walk(data, file)


REQUIRED_STYLE = [
    "greetings.warm", "greetings.flat", "greetings.plain", "greetings.late_apology", "greetings.night",
    "greetings.confirm.product_card", "greetings.confirm.order_card", "greetings.confirm.image",
    "greetings.no_confirm.bare",
    "closings.warm_thanks", "closings.warm_plain", "closings.flat_thanks", "closings.flat_plain",
    "closings.thanks_mid", "closings.reply_to_thanks",
    "attitude.5.opener", "attitude.5.tail", "attitude.5.ownership", "attitude.5.soothe_apology",
    "attitude.5.soothe_only", "attitude.5.after_push", "attitude.4.opener", "attitude.4.apology",
    "attitude.4.soothe_only", "attitude.4.impatient", "attitude.3.prefix", "attitude.3.suffix", "attitude.3.polite_suffix",
    "attitude.3.after_push", "attitude.3.to_angry", "attitude.3.formal_apology", "attitude.2.uncivil",
    "attitude.2.blame", "attitude.2.uncivil_to_angry", "attitude.2.blame_to_angry",
    "etiquette.confirm_reply.polite", "etiquette.confirm_reply.curt", "etiquette.confirm_reply.command",
    "etiquette.commands", "etiquette.curt_final", "etiquette.rude_final",
    "clarity.restate_lead", "clarity.redundant_tail", "clarity.jargon", "clarity.wordy", "clarity.fillers", "clarity.contradiction",
    "clarity.canned", "clarity.garble",
    "answers.stall", "answers.insist", "answers.doubt_reply",
    "customer.hello", "customer.ack", "customer.ack_confirm", "customer.push", "customer.doubt",
    "customer.after_diversion", "customer.angry_at_agent", "customer.upset_prefix", "customer.upset_suffix",
    "customer.end.good", "customer.end.mid", "customer.end.bad", "customer.emoji_end",
    "bot.greet", "bot.menu", "bot.ask_human", "bot.transferring",
    "reasons.dims.attitude.5", "reasons.dims.professionalism.2",
]


# --------------------------------------------------------------------------------------------------
# Cue lists: tag answer texts and read rule flags back from the generated text
# --------------------------------------------------------------------------------------------------

class Cues:
    """Phrase lists (``style/cues.yaml``) with exclusions and a short negation window."""

    def __init__(self, data: dict[str, Any]):
        self.data = data
        self.negators = tuple(data.get("negators", []))

    def hits(self, category: str, text: str) -> list[str]:
        spec = self.data.get(category)
        if spec is None:
            raise GenError(f"style/cues.yaml: category {category!r} missing")
        t = text.lower()
        excluded = [(m.start(), m.start() + len(str(x))) for x in spec.get("exclude", []) for m in re.finditer(re.escape(str(x).lower()), t)]
        found = []
        for p in spec.get("phrases", []):
            for m in re.finditer(re.escape(str(p).lower()), t):
                a, b = m.start(), m.end()
                if any(ea <= a and b <= eb for ea, eb in excluded):
                    continue
                if spec.get("negatable") and any(t[max(0, a - 4):a].endswith(n) for n in self.negators):
                    continue
                found.append(p)
        return found

    def has(self, category: str, text: str) -> bool:
        return bool(self.hits(category, text))

    def is_vague(self, text: str) -> bool:
        """A non-answer: a vague cue and (almost) no fact beside it."""
        hits = self.hits("vague", text)
        if not hits:
            return False
        rest = text
        for h in hits:
            rest = rest.replace(h, "")
        rest = re.sub(r"[\s，,。.!！?？~～…、\[\]哦哈呢呀吧的了啊嗯亲您你我们这个那个]", "", rest)
        return not re.search(r"\d", rest) and len(rest) <= int(self.data["vague"].get("max_fact_chars", 10))

    def answer_tags(self, text: str) -> set[str]:
        tags = {c for c in ("overpromise", "diversion", "privacy") if self.has(c, text)}
        if self.is_vague(text):
            tags.add("vague")
        return tags


# --------------------------------------------------------------------------------------------------
# Target levels
# --------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Targets:
    attitude: int
    etiquette: int
    professionalism: int
    clarity: int

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _level_from_z(z: float, marginal: dict[int, float]) -> int:
    """Map a standard-normal score to a level so the levels follow ``marginal`` (2 lowest … 5 highest)."""
    cum = 0.0
    total = sum(marginal.values())
    for lv in (2, 3, 4):
        cum += marginal[lv] / total
        if z < statistics.NormalDist().inv_cdf(min(max(cum, 1e-9), 1 - 1e-9)):
            return lv
    return 5


def draw_targets(rng: random.Random, cfg: dict[str, Any]) -> Targets:
    """A Gaussian factor model: a shared quality factor, a manner factor (attitude+etiquette) and a
    competence factor (professionalism+clarity), plus each dimension's own noise; then the couplings
    the grading guide implies (uncivil → both 2, warm agents are not disrespectful...)."""
    factors = {f: rng.gauss(0, 1) for f in cfg["factors"]}
    lv = {}
    for dim in DIMS:
        loads = cfg["loadings"][dim]
        z = sum(w * factors[f] for f, w in loads.items())
        z += math.sqrt(max(0.0, 1 - sum(w * w for w in loads.values()))) * rng.gauss(0, 1)
        lv[dim] = _level_from_z(z, {int(k): v for k, v in cfg["marginals"][dim].items()})
    a, e = lv["attitude"], lv["etiquette"]
    if a == 2 and e > 3:
        e = 3
    if e == 2 and a > 3:
        a = 3
    if abs(a - e) > 2 or (abs(a - e) == 2 and rng.random() >= cfg["keep_gap2"]):
        e = e - 1 if e > a else e + 1
    lv["attitude"], lv["etiquette"] = a, e
    return Targets(**lv)


# --------------------------------------------------------------------------------------------------
# The chat being built
# --------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Chat:
    """Messages with a running clock; every add moves the clock forward by ``gap`` seconds."""

    t: dt.datetime
    sender: str
    bot_name: str
    msgs: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def add(self, role: str, text: str | None, gap: float, *, type: str = "text", event: str | None = None) -> None:
        self.t += dt.timedelta(seconds=max(1, round(gap)))
        m: dict[str, Any] = {"role": role, "type": type}
        if event:
            m["event"] = event
        if text is not None:
            m["text"] = text
        m["ts"] = self.t.isoformat(timespec="seconds")
        if role == "agent":
            m["sender"] = self.sender
        elif role == "bot":
            m["sender"] = self.bot_name
        self.msgs.append(m)


@dataclasses.dataclass
class Facts:
    """What the realiser did that the labels need (the rest is read back from the text)."""

    confirmed_card: bool | None = None    # None: the customer did not open with a bare card/image
    card_reply: list[int] = dataclasses.field(default_factory=list)   # the agent's reply to that card
    vague: int = 0
    unanswered: int = 0
    overpromise: bool = False
    diversion: bool = False
    privacy: bool = False
    uncivil: bool = False
    repeated: bool = False
    customer_upset_at: int | None = None  # message index of the first upset customer message
    soothed: bool = False
    answer_levels: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Plan:
    """Everything drawn before a chat is realised."""

    targets: Targets
    scenario: Scenario
    category: str
    values: dict[str, str]
    platform: str
    upset: bool
    open_kind: str
    card_alone: bool
    confirm_card: bool
    hello_first: bool
    steps: list[tuple[Exchange, int]]
    bot: bool
    night: bool
    slow_first: bool
    drop: set[str]
    clarity_tricks: list[str]
    uncivil: bool


def weighted(rng: random.Random, table: dict[Any, float]) -> Any:
    keys = list(table)
    return rng.choices(keys, weights=[table[k] for k in keys])[0]


def fill(text: str, values: dict[str, str]) -> str:
    out = SLOT_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)
    return re.sub(r"[ \u3000]{2,}", " ", out).strip()


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))


class Generator:
    """Plans and realises chats; one instance per run (the banks are loaded once)."""

    def __init__(self, gen_dir: Path = GEN_DIR, *, skip_invalid: bool = False):
        self.dir = gen_dir
        cfg_path = gen_dir / "config.yaml"
        try:
            self.cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise GenError(f"{cfg_path}: {e}") from None
        self.scenarios, self.scenario_errors = load_scenarios(gen_dir / "scenarios", skip_invalid=skip_invalid)
        self.style = Style(gen_dir / "style")
        self.style.check(REQUIRED_STYLE)
        self.cues = Cues(self.style.get("cues"))
        self.meta = self.style.get("meta")
        self._check_config()
        self._check_style_cues()

    def _check_config(self) -> None:
        """Names in config.yaml that the code dispatches on must exist."""
        where = self.dir / "config.yaml"
        for lv, table in self.cfg["clarity"]["tricks"].items():
            for trick in table:
                if not hasattr(Realiser, f"trick_{trick}"):
                    raise GenError(f"{where}: clarity.tricks.{lv}.{trick}: unknown trick "
                                   f"(known: {', '.join(sorted(n[6:] for n in dir(Realiser) if n.startswith('trick_')))})")
        ec = self.cfg["etiquette"]
        for key, table in [("drop_one", ec["drop_one"])] + [(f"drop_many.{k}", v) for k, v in ec["drop_many"].items()]:
            for element in table:
                if element not in ETIQUETTE_ELEMENTS:
                    raise GenError(f"{where}: etiquette.{key}.{element}: unknown element (known: {', '.join(ETIQUETTE_ELEMENTS)})")
        for dim in DIMS:
            if set(self.cfg["targets"]["marginals"][dim]) != set(LEVELS):
                raise GenError(f"{where}: targets.marginals.{dim}: needs the levels 5, 4, 3, 2")

    def _check_style_cues(self) -> None:
        """Politeness/warmth phrases must not carry rule cues (an overpromise in a warm opener would
        silently change the professionalism label)."""
        clean = ["attitude.5.opener", "attitude.5.ownership", "attitude.5.soothe_apology", "attitude.5.soothe_only",
                 "attitude.4.opener", "greetings.warm", "greetings.flat", "closings.warm_thanks",
                 "closings.flat_thanks", "closings.warm_plain", "closings.flat_plain", "clarity.canned",
                 "attitude.2.blame", "attitude.2.blame_to_angry", "etiquette.commands"]
        for key in clean:
            for text in self.style.items(key):
                for cat in ("overpromise", "diversion", "privacy", "insult"):
                    if self.cues.has(cat, text):
                        raise GenError(f"style/{key.split('.')[0]}.yaml: {key}: {text!r} carries a {cat} cue")

    # ---------------------------------------------------------------- planning
    def plan(self, rng: random.Random) -> Plan:
        cfg = self.cfg
        targets = draw_targets(rng, cfg["targets"])
        sc = rng.choice(self.scenarios)
        category = rng.choice(list(sc.categories))
        platform = weighted(rng, {p: v["weight"] for p, v in self.meta["platforms"].items()})
        pmeta = self.meta["platforms"][platform]
        values = self._slot_values(rng, sc, category, platform)
        upset = rng.random() < sc.upset
        open_kind = rng.choice(sc.open)
        card_alone = open_kind != "text" and rng.random() < cfg["open"]["card_alone"]
        extra = [ex for ex in sc.exchanges[1:] if rng.random() < cfg["exchanges"]["keep_rest"]]
        extra = extra[: cfg["exchanges"]["max"] - 1]
        exchanges = [sc.exchanges[0]] + extra
        levels, confirm = self._answer_levels(rng, targets.professionalism, len(exchanges), card_alone)
        night = rng.random() < cfg["timing"]["night_rate"]
        slow = rng.random() < (cfg["timing"]["slow_first_night"] if night else cfg["timing"]["slow_first"])
        drop = self._etiquette_drop(rng, targets.etiquette, apology_due=upset or slow)
        uncivil = targets.attitude == 2 and targets.etiquette == 2 and rng.random() < cfg["attitude"]["uncivil_rate"]
        return Plan(targets=targets, scenario=sc, category=category, values=values, platform=platform,
                    upset=upset, open_kind=open_kind, card_alone=card_alone, confirm_card=confirm,
                    hello_first=open_kind == "text" and rng.random() < cfg["open"]["hello_first"],
                    steps=list(zip(exchanges, levels)), bot=rng.random() < pmeta["bot_rate"], night=night,
                    slow_first=slow, drop=drop, clarity_tricks=self._clarity_tricks(rng, targets.clarity),
                    uncivil=uncivil)

    def _slot_values(self, rng: random.Random, sc: Scenario, category: str, platform: str) -> dict[str, str]:
        meta = self.meta
        price_lo, price_hi = meta["prices"].get(category, meta["prices"]["default"])
        price = rng.randint(price_lo, price_hi) + rng.choice([0, 0.9, 0.9, 0.5])
        pmeta = meta["platforms"][platform]
        values = {
            "product": rng.choice(sc.categories[category]),
            "price": f"{price:g}",
            "order_no": _digits(rng, rng.choice([16, 18, 19])),
            "express": rng.choice(meta["express"]),
            "agent": rng.choice(meta["agents"]),
            "addr": weighted(rng, pmeta["addr"]),
        }
        values["shop"] = self._shop_name(rng, category)
        for s, vals in sc.slots.items():
            values[s] = rng.choice(vals)
        return values

    def _shop_name(self, rng: random.Random, category: str) -> str:
        shops = self.meta["shops"]
        word = rng.choice(shops["category_words"].get(category, [category]))
        return rng.choice(shops["brands"]) + word + rng.choice(shops["suffixes"])

    def _answer_levels(self, rng: random.Random, prof: int, n: int, card_alone: bool) -> tuple[list[int], bool]:
        """Answer level per exchange, and whether the agent confirms a bare card/image."""
        pc = self.cfg["professionalism"]
        confirm = rng.random() < pc["confirm_card"][prof]
        if prof == 4 and card_alone and rng.random() < pc["gap_is_confirmation"]:
            return [5] * n, False          # the one gap: the bare card was never confirmed
        if prof == 5:
            confirm = True
        mix = {int(k): v for k, v in pc["mix"][prof].items()}
        levels = [weighted(rng, mix) for _ in range(n)]
        if prof < 5 and prof not in levels:
            levels[rng.randrange(n)] = prof
        return levels, confirm

    def _etiquette_drop(self, rng: random.Random, eti: int, *, apology_due: bool) -> set[str]:
        ec = self.cfg["etiquette"]
        candidates = {k: v for k, v in ec["drop_one"].items() if k != "apology" or apology_due}
        if eti == 5:
            return set()
        if eti == 4:
            return {weighted(rng, candidates)}
        drop = {k for k, p in ec["drop_many"][eti].items() if rng.random() < p}
        while len(drop) < 2:
            drop.add(weighted(rng, candidates))
        return drop

    def _clarity_tricks(self, rng: random.Random, clarity: int) -> list[str]:
        table = self.cfg["clarity"]["tricks"].get(clarity) or {}
        if not table:
            return []
        k = 1 if rng.random() < self.cfg["clarity"]["one_trick"][clarity] else 2
        tricks: list[str] = []
        while len(tricks) < min(k, len(table)):
            t = weighted(rng, table)
            if t not in tricks:
                tricks.append(t)
        return tricks

    # ---------------------------------------------------------------- one chat
    def generate(self, idx: int, seed: int) -> dict[str, Any]:
        """A chat whose realised text is consistent with its targets (re-drawn until it is)."""
        last_problems: list[str] = []
        for attempt in range(self.cfg["max_attempts"]):
            rng = random.Random(f"{seed}:{idx}:{attempt}")   # str seeds are stable across runs
            plan = self.plan(rng)
            realiser = Realiser(self, plan, rng)
            chat, facts = realiser.run()
            flags = read_flags(self, plan, chat, facts)
            problems = consistency_problems(self.cfg, plan.targets, flags, chat.msgs)
            if not problems:
                rec = self.record(idx, plan, chat, flags, rng)
                rec["labels"]["turns"] = realiser.turn_labels()
                return rec
            last_problems = problems
        raise GenError(f"chat {idx}: could not realise a consistent chat in {self.cfg['max_attempts']} "
                       f"attempts (last: {last_problems})")

    def record(self, idx: int, plan: Plan, chat: Chat, flags: set[str], rng: random.Random) -> dict[str, Any]:
        pmeta = self.meta["platforms"][plan.platform]
        rec: dict[str, Any] = {
            "id": f"gen-{idx:05d}", "platform": plan.platform, "shop": plan.values["shop"],
            "agent": f"客服-{plan.values['agent']}", "customer": fill(rng.choice(pmeta["customer_id"]), {
                "d2": _digits(rng, 2), "d4": _digits(rng, 4), "d5": _digits(rng, 5), "d6": _digits(rng, 6),
                "d7": _digits(rng, 7), "d8": _digits(rng, 8), "nick": rng.choice(self.meta["nicks"])}),
            "messages": chat.msgs,
        }
        rating = make_rating(rng, plan.targets, pmeta["rating"])
        if rating:
            rec["rating"] = rating
        rec["meta"] = {"batch": "gen", "category": plan.category, "scenario": plan.scenario.name,
                       "target": plan.targets.as_dict(), "upset": plan.upset, "source": plan.scenario.source}
        rec["labels"] = {"reviews": make_reviews(self, rng, plan.targets, flags)}
        return rec


# --------------------------------------------------------------------------------------------------
# Realising a plan as messages
# --------------------------------------------------------------------------------------------------

class Realiser:
    """Turns a plan into messages: customer turns from the scenario, agent turns from the answer
    content plus the attitude, etiquette and clarity layers."""

    def __init__(self, gen: Generator, plan: Plan, rng: random.Random):
        self.g, self.p, self.rng, self.style = gen, plan, rng, gen.style
        self.t = plan.targets
        self.values = dict(plan.values)
        if "honorific" in plan.drop or self.t.etiquette <= 3:
            self.values["addr"] = ""
        self.facts = Facts()
        self.chat = Chat(self._start_time(), plan.values["agent"], gen.meta["platforms"][plan.platform]["bot_name"])
        self.agent_turns = 0
        self.thanked = "thanks" in plan.drop
        self.owned = False
        self.rude_lines = 0
        self.impatient_used = False
        self.cold_lines = 0
        self.trick_turns = 0
        self.canned: str | None = None
        self.canned_uses = 0
        self.customer_upset = False
        self.commands = 0
        self.pending_first = True   # the next agent turn opens human service
        self.upset_turn = False     # the customer's last turn was upset
        self.used: set[tuple[str, str]] = set()
        # turn labels (no random draws here: the chats stay byte-identical): customer requests and the agent
        # message that answers each, and which agent messages are vague, uncivil or about personal data
        self.asking = False          # customer messages added now are requests
        self.vague_turn = False      # agent messages added now are a non-answer
        self.pending: list[int] = []
        self.answered_by: dict[int, int | None] = {}
        self.vague_msgs: set[int] = set()
        self.uncivil_lines: list[str] = []

    # ------------------------------------------------------------ helpers
    def pick(self, key: str) -> str:
        """A phrase from a style bank, avoiding one this chat already used (up to a few tries)."""
        options = self.style.items(key)
        for _ in range(6):
            text = self.rng.choice(options)
            if (key, text) not in self.used:
                break
        self.used.add((key, text))
        if not self.values["addr"]:  # 谢谢{addr}的配合 → 谢谢您的配合 when the agent uses no address form
            text = ADDR_AS_OBJECT.sub(r"\1您", text)
        return fill(text, self.values)

    def gap(self, kind: str) -> float:
        lo, mid, hi = self.g.cfg["timing"]["gaps"][kind]
        return min(hi, max(lo, self.rng.lognormvariate(math.log(mid), 0.6)))

    def _start_time(self) -> dt.datetime:
        tc = self.g.cfg["timing"]
        day = dt.date.fromisoformat(tc["start_date"]) + dt.timedelta(days=self.rng.randrange(tc["days"]))
        if self.p.night:
            hour = self.rng.choice(tc["night_hours"])
        else:
            hour = weighted(self.rng, {int(h): w for h, w in tc["hour_weights"].items()})
        return dt.datetime(day.year, day.month, day.day, hour, self.rng.randrange(60), self.rng.randrange(60), tzinfo=TZ)

    def customer(self, text: str, gap: str = "customer", *, upset: bool = False) -> None:
        """One customer turn; ``||`` splits it into messages, ``[图片]`` pieces become images."""
        for i, piece in enumerate(p.strip() for p in text.split("||") if p.strip()):
            kind = MEDIA_PIECES.get(piece, "text")
            self.chat.add("customer", piece, self.gap(gap if i == 0 else "same_sender"), type=kind)
            if self.asking and kind == "text":
                self.answered_by[len(self.chat.msgs) - 1] = None
                self.pending.append(len(self.chat.msgs) - 1)
        upset = upset or self.g.cues.has("upset", text)
        if upset and self.facts.customer_upset_at is None:
            self.facts.customer_upset_at = len(self.chat.msgs) - 1
        self.customer_upset = self.customer_upset or upset
        self.upset_turn = upset

    def say(self, pieces: list[str], *, first_gap: str = "agent") -> None:
        """Emit agent messages (already styled) with realistic gaps."""
        gaps = "fragment" if "fragment" in self.p.clarity_tricks or self.t.clarity == 2 else "same_sender"
        start = len(self.chat.msgs)
        for i, text in enumerate(p for p in pieces if p and p.strip()):
            if i == 0 and first_gap == "first":
                self.chat.add("agent", text, self._first_reply_gap())
            else:
                self.chat.add("agent", text, self.gap(first_gap if i == 0 else gaps))
        self.agent_turns += 1
        new = list(range(start, len(self.chat.msgs)))
        if self.vague_turn:
            hit = [i for i in new if self.g.cues.hits("vague", self.chat.msgs[i].get("text", ""))]
            self.vague_msgs.update(hit or new[-1:])
        elif self.pending and new:
            for q in self.pending:
                self.answered_by[q] = new[0]
            self.pending = []

    def turn_labels(self) -> dict[str, list[dict[str, Any]]]:
        """Per-turn labels in the real-chat label format (data/labelled/real/FORMAT.md)."""
        cues, msgs = self.g.cues, self.chat.msgs
        out: dict[str, list[dict[str, Any]]] = {"customer": [], "agent": []}
        for i, m in enumerate(msgs):
            if m["role"] == "customer":
                out["customer"].append({"i": i, "request": i in self.answered_by, "answered_by": self.answered_by.get(i)})
            elif m["role"] in ("agent", "bot") and m.get("type") != "event":
                text = m.get("text", "")
                uncivil = cues.has("insult", text) or any(line[:6] in text for line in self.uncivil_lines)
                out["agent"].append({"i": i, "vague": i in self.vague_msgs, "uncivil": bool(uncivil),
                                     "pii": cues.has("privacy", text)})
        return out

    def _first_reply_gap(self) -> float:
        tc = self.g.cfg["timing"]
        if self.p.slow_first:
            return self.rng.uniform(*tc["slow_first_s"])
        return self.gap("first")

    # ------------------------------------------------------------ the chat
    def run(self) -> tuple[Chat, Facts]:
        asked = self.open()
        for i, (ex, level) in enumerate(self.p.steps):
            if i > 0 or not asked:
                self.ask(ex, upset=self.p.upset and (i == 0 or self.rng.random() < 0.4))
            self.answer(ex, level)
        self.end()
        return self.chat, self.facts

    def ask(self, ex: Exchange, *, upset: bool) -> None:
        self.pending, self.asking = [], True    # an earlier question still pending was never answered
        try:
            self._ask(ex, upset=upset)
        finally:
            self.asking = False

    def _ask(self, ex: Exchange, *, upset: bool) -> None:
        if upset and ex.upset_customer:
            self.customer(self.pick_text(ex.upset_customer), upset=True)
        elif upset:
            text = self.pick_text(ex.customer)
            if self.rng.random() < 0.5:
                text = self.pick("customer.upset_prefix") + " " + text
            text += ("||" if self.rng.random() < 0.5 else "") + self.pick("customer.upset_suffix")
            self.customer(text, upset=True)
        else:
            self.customer(self.pick_text(ex.customer))

    def pick_text(self, options: list[str]) -> str:
        return fill(self.rng.choice(options), self.values)

    def open(self) -> bool:
        """The customer's opening (+ bot and transfer). True when the first question was already asked."""
        p = self.p
        first_ex = p.steps[0][0]
        if p.hello_first:
            self.customer(self.pick("customer.hello"), "customer")
        asked = False
        if p.open_kind == "text":
            self.ask(first_ex, upset=p.upset)
            asked = True
        else:
            self.chat.add("customer", self._card_text(p.open_kind), self.gap("customer"), type=p.open_kind)
            if not p.card_alone:
                self.ask(first_ex, upset=p.upset)
                asked = True
        if p.bot:
            self.bot_section()
        if p.card_alone:
            self.agent_first()
            self.ask(first_ex, upset=p.upset)
            asked = True
        return asked

    def _card_text(self, kind: str) -> str:
        v = self.values
        if kind == "product_card":
            return f"{v['product']} ¥{v['price']}"
        if kind == "order_card":
            return f"订单号 {v['order_no']} {v['product']} 实付¥{v['price']}"
        return "[图片]"

    def bot_section(self) -> None:
        self.chat.add("bot", self.pick("bot.greet"), self.rng.uniform(1, 3))
        if self.rng.random() < 0.5:
            self.chat.add("bot", self.pick("bot.menu"), self.rng.uniform(1, 2))
        if self.rng.random() < 0.75:
            self.customer(self.pick("bot.ask_human"))
            if self.rng.random() < 0.6:
                self.chat.add("bot", self.pick("bot.transferring"), self.rng.uniform(1, 3))
        self.chat.add("system", None, self.rng.uniform(2, 8), type="event", event="transfer_to_human")

    # ------------------------------------------------------------ agent turns
    def greeting_parts(self, *, may_ask: bool = True) -> list[str]:
        """What opens human service: greeting, late apology, night note. ``may_ask=False``: a greeting
        that does not ask what the customer needs (请问有什么可以帮您 would be a proactive confirmation)."""
        parts = []
        if "greeting" not in self.p.drop:
            key = "greetings.warm" if self.t.attitude == 5 else "greetings.flat"
            text = self.pick(key)
            for _ in range(12):
                if may_ask or not self.g.cues.has("ask_need", text):
                    break
                text = self.pick(key)
            else:
                text = self.pick("greetings.plain")
            parts.append(text)
        late = self.p.slow_first and self.t.attitude >= 4 and "apology" not in self.p.drop
        if late:
            parts.append(self.pick("greetings.night" if self.p.night and self.rng.random() < 0.5 else "greetings.late_apology"))
            self.facts.soothed = self.facts.soothed or self.customer_upset
        return parts

    def agent_first(self) -> None:
        """Reply to a bare card/image: greet and (maybe) confirm what the customer wants."""
        parts = self.greeting_parts(may_ask=self.p.confirm_card)
        kind = self.p.open_kind
        if self.p.confirm_card:
            parts.append(self.pick(f"greetings.confirm.{kind}"))
            self.facts.confirmed_card = True
        else:
            self.facts.confirmed_card = False
            if not parts:
                parts.append(self.pick("greetings.no_confirm.bare"))
        before = len(self.chat.msgs)
        self.say(self.merge([self.polish(x) for x in parts]), first_gap="first")
        self.facts.card_reply = list(range(before, len(self.chat.msgs)))
        self.pending_first = False

    def answer(self, ex: Exchange, level: int) -> None:
        content = self.choose_answer(ex, level)
        tags = self.g.cues.answer_tags(content)
        self.note_tags(tags)
        self.facts.answer_levels.append(level)
        pre = self.pre_parts()
        body = [fill(x, self.values) for x in content.split("||") if x.strip()]
        post = self.post_parts(level, tags)
        self.vague_turn = "vague" in tags
        self.agent_turn(pre, body, post)
        self.vague_turn = False
        self.after_answer(ex, level, content, tags)

    def choose_answer(self, ex: Exchange, level: int) -> str:
        options = ex.answer[level]
        if level >= 4:  # level 4/5 content must not carry a cue that caps professionalism
            clean = [o for o in options if not self.g.cues.answer_tags(fill(o, self.values))]
            options = clean or options
        elif level == 3:  # red lines set professionalism to 2: keep them out of level-3 picks
            clean = [o for o in options if not {"diversion", "privacy"} & self.g.cues.answer_tags(fill(o, self.values))]
            options = clean or options
        return fill(self.rng.choice(options), self.values)

    def note_tags(self, tags: set[str]) -> None:
        f = self.facts
        f.overpromise |= "overpromise" in tags
        f.diversion |= "diversion" in tags
        f.privacy |= "privacy" in tags

    def pre_parts(self) -> list[str]:
        """Greeting (first turn), soothing for an upset customer, attitude openers."""
        parts: list[str] = []
        first = self.pending_first
        if first:
            parts += self.greeting_parts()
        a = self.t.attitude
        again = self.upset_turn and a >= 4 and self.rng.random() < (0.8 if a == 5 else 0.5)
        if self.customer_upset and (not self.facts.soothed or again):
            parts += self.soothe()
        elif a == 5 and self.rng.random() < 0.35 and not first:
            parts.append(self.pick("attitude.5.opener"))
        elif a == 4 and self.rng.random() < 0.25 and not first:
            parts.append(self.pick("attitude.4.opener"))
        elif a == 3 and self.rng.random() < 0.3:
            parts.append(self.pick("attitude.3.prefix"))
        return parts

    def soothe(self) -> list[str]:
        """Apology / soothing by attitude; nothing (or worse) from cold and rude agents."""
        a, no_apology = self.t.attitude, "apology" in self.p.drop
        if a == 5:
            line = self.pick("attitude.5.soothe_only" if no_apology else "attitude.5.soothe_apology")
        elif a == 4:
            line = self.pick("attitude.4.soothe_only" if no_apology else "attitude.4.apology")
        elif a == 3 and not no_apology and self.t.etiquette >= 4:
            line = self.pick("attitude.3.formal_apology")
        else:
            return []
        self.facts.soothed = True
        return [line]

    def post_parts(self, level: int, tags: set[str]) -> list[str]:
        """Ownership, thanks, cold or rude add-ons after the content."""
        parts: list[str] = []
        a = self.t.attitude
        if a == 5 and not self.owned and level >= 4 and self.rng.random() < 0.6:
            parts.append(self.pick("attitude.5.ownership"))
            self.owned = True
        if not self.thanked and self.agent_turns >= 1 and self.rng.random() < 0.5:
            parts.append(self.pick("closings.thanks_mid"))
            self.thanked = True
        if a == 3 and (self.cold_lines == 0 and self.rng.random() < 0.75 or self.rng.random() < 0.25):
            parts.append(self.pick("attitude.3.polite_suffix" if self.t.etiquette >= 4 else "attitude.3.suffix"))
            self.cold_lines += 1
        if a == 2 and (self.rude_lines == 0 or self.rude_lines < 3 and self.rng.random() < 0.3):
            parts.append(self.rude())
        if self.t.etiquette == 2 and (self.commands == 0 or self.commands < 2 and self.rng.random() < 0.3):
            parts.append(self.pick("etiquette.commands"))
            self.commands += 1
        return parts

    def rude(self, *, to_angry: bool = False) -> str:
        self.rude_lines += 1
        if self.p.uncivil:
            self.facts.uncivil = True
            line = self.pick("attitude.2.uncivil_to_angry" if to_angry else "attitude.2.uncivil")
            self.uncivil_lines.append(line.replace("您", "你"))
            return line
        return self.pick("attitude.2.blame_to_angry" if to_angry else "attitude.2.blame")

    def agent_turn(self, pre: list[str], body: list[str], post: list[str], *, apply_clarity: bool = True) -> None:
        first = self.pending_first
        body = [self.polish(b) for b in body]
        if apply_clarity:
            body = self.clarify(body)
        pre = [self.polish(x) for x in pre]
        post = [self.polish(x) for x in post]
        msgs = self.merge(pre + body[:1]) + body[1:] if pre and body else pre + body
        if post:
            if msgs and self.rng.random() < 0.5 and len(msgs[-1]) < 40:
                msgs[-1] = self.join(msgs[-1], post[0])
                post = post[1:]
            msgs += post
        if not self.values["addr"]:   # no address forms: 你 throughout, also in text the tricks added
            msgs = [m.replace("您", "你") for m in msgs]
        msgs = [self.typo(m) for m in msgs]
        self.say(msgs, first_gap="first" if first else "agent")
        self.pending_first = False

    def join(self, a: str, b: str) -> str:
        if not a:
            return b
        sep = self.rng.choice([" ", "，", " ", "~ "]) if not re.search(r"[。！？!?~]$", a) else ""
        if a.endswith("]"):
            sep = " "
        return a + sep + b

    def merge(self, parts: list[str]) -> list[str]:
        """Short opening parts are often sent in one message, sometimes in several."""
        parts = [p for p in parts if p]
        if len(parts) <= 1:
            return parts
        if self.rng.random() < 0.55:
            out = parts[0]
            for p in parts[1:]:
                out = self.join(out, p)
            return [out]
        return parts

    # ------------------------------------------------------------ the style layers
    def polish(self, text: str) -> str:
        """Etiquette (address forms, 您/你) and attitude (particles, emoji) on one message."""
        text = fill(text, self.values)
        addr, a = self.values["addr"], self.t.attitude
        if not addr:
            text = text.replace("您", "你")
            text = re.sub(r"^[，,~ ]+|[，,]\s*$", "", text).strip()
        if a <= 3 or self.t.etiquette <= 3:
            if self.rng.random() < 0.7:
                text = EMOJI_RE.sub("", text)
                text = re.sub(r"[~～]+", "", text).strip()
            if a <= 3 and self.rng.random() < 0.6:  # cold agents drop the softening particles
                text = re.sub(r"(的呢|哦|呢|呀|哈)(?=$|[，。！ ])", "", text).strip() or text
            return text
        ends_soft = bool(re.search(r"[的哦呢哈啦了吧呀吗么嘛噢]$", text.rstrip("。")))
        r = self.rng.random()
        if addr and addr not in text and r < 0.2:
            text = addr + self.rng.choice([" ", "，", "，"]) + text
        elif addr and addr not in text and r < 0.32 and ends_soft and len(text) < 40:
            text = text.rstrip("。") + addr
        elif a == 5 and r < self.g.cfg["attitude"]["warm_tail"] and not ends_soft and not EMOJI_RE.search(text) and \
                re.search(r"[\u4e00-\u9fff。]$", text):
            text = text.rstrip("。！!") + self.pick("attitude.5.tail")
        return text.strip()

    def clarify(self, body: list[str]) -> list[str]:
        """Clarity tricks on one answer turn (see config clarity.tricks)."""
        c, tricks = self.t.clarity, self.p.clarity_tricks
        if c == 5 or not body:
            return [p for b in body for p in self._split_long(b)]
        if c == 4 and "run_on" not in tricks:
            body = [p for b in body for p in self._split_long(b)]
        apply = self.trick_turns == 0 or self.rng.random() < self.g.cfg["clarity"]["turn_rate"][c]
        out = list(body)
        if self.canned is None and "canned_repeat" in tricks:
            self.canned = self.pick("clarity.canned")
        if "canned_repeat" in tricks and self.canned_uses < 2:
            out = [self.canned] + out
            self.canned_uses += 1
            self.facts.repeated |= self.canned_uses == 2
        if not apply:
            return out
        self.trick_turns += 1
        for trick in sorted(tricks, key=lambda t: t.startswith("spaced")):   # spacing goes last
            out = getattr(self, f"trick_{trick}")(out)
        return out

    def _split_long(self, text: str) -> list[str]:
        if len(text) > 70 and self.rng.random() < 0.6:
            cut = [m.end() for m in re.finditer(r"[。！？!?]", text) if 20 < m.end() < len(text) - 10]
            if cut:
                k = self.rng.choice(cut)
                return [text[:k].strip(), text[k:].strip()]
        return [text]

    def trick_redundant(self, body: list[str]) -> list[str]:
        """Restate the last short clause (就是说…), or add a needless tail."""
        clauses = [c for c in re.split(r"[，,。；;！!？?]\s*|\s+", body[-1]) if 4 <= len(c) <= 14]
        if clauses and clauses[-1] != body[-1].strip("。 ") and self.rng.random() < 0.6:
            body[-1] = self.join(body[-1], self.pick("clarity.restate_lead") + clauses[-1])
        else:
            body[-1] = self.join(body[-1], self.pick("clarity.redundant_tail"))
        return body

    def trick_run_on(self, body: list[str]) -> list[str]:
        """One long message: the parts run together, with a filler now and then."""
        out = body[0]
        for b in body[1:]:
            out = out.rstrip("。") + self.rng.choice(["，", "，然后", "，另外", " ", "，还有就是"]) + b
        if self.rng.random() < 0.5:
            out = out.rstrip("。") + "，" + self.pick("clarity.redundant_tail")
        return [out]

    def trick_spaced(self, body: list[str], lo: int = 2, hi: int = 4, fillers: float = 0.0) -> list[str]:
        """Words typed apart with spaces and no punctuation (hard to read)."""
        out = []
        for b in body:
            text, run = "", 0
            for ch in re.sub(r"[，,。；;！!？?、：:]", " ", b):
                text += ch
                run = 0 if ch == " " else run + 1
                if run >= self.rng.randint(lo, hi):
                    text += " " + (self.pick("clarity.fillers") + " " if self.rng.random() < fillers else "")
                    run = 0
            out.append(re.sub(r" {2,}", " ", text).strip())
        return out

    def trick_spaced_heavy(self, body: list[str]) -> list[str]:
        """Level 2: one or two characters at a time, with fillers (发 了 昨天 还是 那个 前天)."""
        return self.trick_spaced(body, 1, 2, fillers=0.15)

    def trick_jargon(self, body: list[str]) -> list[str]:
        return body + [self.pick("clarity.jargon")] if self.rng.random() < 0.5 else \
            [self.join(body[0], self.pick("clarity.jargon"))] + body[1:]

    def trick_wordy(self, body: list[str]) -> list[str]:
        return [self.join(self.pick("clarity.wordy"), body[0])] + body[1:]

    def trick_canned_repeat(self, body: list[str]) -> list[str]:
        return body

    def trick_fragment(self, body: list[str]) -> list[str]:
        out: list[str] = []
        for b in body:
            pieces = [x.strip() for x in re.split(r"[，,。；;！!？?]+", b) if x.strip()]
            if len(pieces) == 1:
                pieces = [x for x in re.split(r"\s+", b) if x]
            merged: list[str] = []
            for x in pieces:
                if merged and len(merged[-1]) < 5 and self.rng.random() < 0.5:
                    merged[-1] += " " + x
                else:
                    merged.append(x)
            for x in merged:
                if self.rng.random() < 0.3:
                    x = self.pick("clarity.fillers") + " " + x
                out.append(x)
        return out[:5]

    def trick_contradict(self, body: list[str]) -> list[str]:
        k = self.rng.randint(1, len(body))   # after some content, never before it
        return body[:k] + [self.pick("clarity.contradiction")] + body[k:]

    def trick_ramble(self, body: list[str]) -> list[str]:
        return body + [self.join(self.pick("clarity.restate_lead"), body[-1])]

    def trick_scramble(self, body: list[str]) -> list[str]:
        """Level 2: clauses out of order, one dropped, some cut short, fillers between."""
        pieces = [x for b in body for x in re.split(r"[，,。；;！!？?\s]+", b) if x]
        if len(pieces) > 3:
            del pieces[self.rng.randrange(1, len(pieces))]
        if len(pieces) > 1:
            k = self.rng.randrange(len(pieces) - 1)
            pieces[k], pieces[k + 1] = pieces[k + 1], pieces[k]
        out, cur = [], ""
        for x in pieces:
            if self.rng.random() < 0.2 and len(x) > 4:
                x = x[: len(x) - self.rng.randint(1, 2)]
            if self.rng.random() < 0.3:
                x = self.pick("clarity.garble") + " " + x
            cur = (cur + " " + x).strip()
            if self.rng.random() < 0.45:
                out.append(cur)
                cur = ""
        if cur:
            out.append(cur)
        return out[:5]

    def trick_garble(self, body: list[str]) -> list[str]:
        out = []
        for b in body:
            chars = list(b)
            for _ in range(max(1, len(chars) // 12)):
                if len(chars) > 4:
                    del chars[self.rng.randrange(len(chars))]
            out.append(self.pick("clarity.garble") + " " + "".join(chars))
        return out

    def typo(self, text: str) -> str:
        rate = self.g.cfg["clarity"]["typo_rate"][self.t.clarity]
        if self.rng.random() >= rate:
            return text
        pairs = [p for p in self.style.get("clarity.typos") if p[0] in text]
        if not pairs:
            return text
        a, b = self.rng.choice(pairs)
        return text.replace(a, b, 1)

    # ------------------------------------------------------------ after an answer
    def after_answer(self, ex: Exchange, level: int, content: str, tags: set[str]) -> None:
        r, a = self.rng.random, self.t.attitude
        if "vague" in tags:
            self.facts.vague += 1
            self.handle_vague(ex, level, content)
        elif "diversion" in tags and r() < 0.6:
            self.customer(self.pick("customer.after_diversion"))
            self.agent_turn([], [self.pick("answers.insist")], self.maybe_rude())
        elif level <= 3 and r() < 0.35:
            self.asking = True
            self.customer(self.pick("customer.doubt"))
            self.asking = False
            self.agent_turn([], [self.pick("answers.doubt_reply")] if level == 3 else [self.pick("answers.insist")],
                            self.maybe_rude())
        elif level >= 4 and r() < 0.3:
            self.asking = True
            self.customer(self.pick("customer.ack_confirm"))
            self.asking = False
            self.confirm_reply()
        if a <= 3 and not self.customer_upset and r() < self.g.cfg["attitude"]["angry_reaction"][a]:
            self.customer(self.pick("customer.angry_at_agent"), upset=True)
            self.reply_to_angry()

    def maybe_rude(self) -> list[str]:
        if self.t.attitude == 2 and self.rude_lines < 3 and self.rng.random() < 0.5:
            return [self.rude()]
        if self.t.attitude == 3 and self.rng.random() < 0.4:
            self.cold_lines += 1
            return [self.pick("attitude.3.polite_suffix" if self.t.etiquette >= 4 else "attitude.3.suffix")]
        return []

    def confirm_reply(self) -> None:
        e = self.t.etiquette
        key = "polite" if e >= 4 else "curt" if e == 3 else "command"
        self.agent_turn([], [self.pick(f"etiquette.confirm_reply.{key}")], [], apply_clarity=False)

    def reply_to_angry(self) -> None:
        a = self.t.attitude
        if a == 2:
            self.agent_turn([], [self.rude(to_angry=True)], [], apply_clarity=False)
        elif self.rng.random() < 0.8:
            soothe = self.soothe() if self.t.etiquette >= 4 and self.rng.random() < 0.5 else []
            self.agent_turn([], soothe or [self.pick("attitude.3.to_angry")], [], apply_clarity=False)

    def handle_vague(self, ex: Exchange, level: int, content: str) -> None:
        """A non-answer: the customer may push; the agent resolves, repeats, or stalls again."""
        cfg = self.g.cfg["professionalism"]["after_vague"]
        if self.rng.random() >= cfg["push"]:
            self.facts.unanswered += 1
            self.pending = []
            return
        self.asking = True
        self.customer(self.pick("customer.push"))
        self.asking = False
        options = {"resolve": cfg["resolve"][level], "stall": cfg["stall"]}
        if self.t.clarity <= 3:
            options["repeat"] = cfg["repeat"]
        choice = weighted(self.rng, options)
        pre = []
        if self.t.attitude == 5:
            pre.append(self.pick("attitude.5.after_push"))
        elif self.t.attitude == 4 and not self.impatient_used and self.rng.random() < 0.4:
            pre.append(self.pick("attitude.4.impatient"))
            self.impatient_used = True
        elif self.t.attitude == 3:
            pre.append(self.pick("attitude.3.after_push"))
            self.cold_lines += 1
        elif self.t.attitude == 2:
            pre.append(self.rude())
        if choice == "resolve":
            better = [o for o in ex.answer[4] + ex.answer[3] if not self.g.cues.answer_tags(fill(o, self.values))]
            if not better:
                choice = "stall"
            else:
                body = [fill(x, self.values) for x in self.rng.choice(better).split("||") if x.strip()]
                self.agent_turn(pre, body, [])
                return
        self.facts.unanswered += 1
        self.vague_turn = True
        if choice == "repeat":
            self.facts.repeated = True
            self.agent_turn([], [content], [], apply_clarity=False)
        else:
            self.agent_turn(pre, [self.pick("answers.stall")], [], apply_clarity=False)
        self.vague_turn = False
        self.pending = []

    # ------------------------------------------------------------ ending
    def end(self) -> None:
        self.pending = []
        t, r = self.t, self.rng.random
        mood = self.mood()
        customer_last = r() < 0.85
        if customer_last:
            key = f"customer.end.{mood}"
            self.customer(self.pick(key))  # upset or not is read from its wording
            if r() < 0.12:
                self.chat.add("customer", self.pick("customer.emoji_end"), self.gap("same_sender"), type="emoji")
        if "closing" not in self.p.drop:
            warm = t.attitude == 5
            thanks = not self.thanked or r() < 0.4
            key = f"closings.{'warm' if warm else 'flat'}_{'thanks' if thanks and 'thanks' not in self.p.drop else 'plain'}"
            parts = []
            if self.customer_upset and not self.facts.soothed:
                parts += self.soothe()
            if customer_last and mood == "good" and r() < 0.4:
                parts.append(self.pick("closings.reply_to_thanks"))
            parts.append(self.pick(key))
            self.agent_turn([], self.merge(parts), [], apply_clarity=False)
        elif customer_last and r() < 0.5:
            if t.attitude == 2:
                self.agent_turn([], [self.rude(to_angry=True) if self.customer_upset else self.pick("etiquette.rude_final")],
                                [], apply_clarity=False)
            else:
                self.agent_turn([], [self.pick("etiquette.curt_final")], [], apply_clarity=False)

    def mood(self) -> str:
        lv = self.facts.answer_levels
        score = min(lv) if lv else 4
        if self.t.attitude <= 2 or self.customer_upset and not self.facts.soothed or score <= 2 or self.facts.unanswered:
            return "bad" if self.rng.random() < 0.7 else "mid"
        if score == 3 or self.t.attitude == 3:
            return "mid"
        return "good"


# --------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------

def _first_human(msgs: list[dict[str, Any]]) -> tuple[int | None, int | None]:
    """(index where human service starts, index of the first human agent message)."""
    start = next((i for i, m in enumerate(msgs) if m.get("event") == "transfer_to_human"), None)
    if start is None:
        start = next((i for i, m in enumerate(msgs) if m["role"] == "customer"), None)
    first = next((i for i, m in enumerate(msgs) if m["role"] == "agent" and (start is None or i > start)), None)
    return start, first


def read_flags(gen: Generator, plan: Plan, chat: Chat, facts: Facts) -> set[str]:
    """The rule flags that truly apply, read from the generated text plus what the realiser did."""
    cues, msgs = gen.cues, chat.msgs
    agent = [i for i, m in enumerate(msgs) if m["role"] == "agent" and m.get("type") == "text"]
    text = {i: msgs[i].get("text", "") for i in agent}
    flags: set[str] = set()
    if facts.uncivil or any(cues.has("insult", text[i]) for i in agent):
        flags.add("uncivil_language")
    if facts.diversion or any(cues.has("diversion", text[i]) for i in agent):
        flags.add("off_platform_diversion")
    if facts.privacy or any(cues.has("privacy", text[i]) for i in agent):
        flags.add("privacy_leak")
    if facts.overpromise or any(cues.has("overpromise", text[i]) for i in agent):
        flags.add("overpromise")
    if facts.confirmed_card is False and not any(cues.has("ask_need", text.get(i, "")) for i in facts.card_reply):
        flags.add("no_proactive_confirmation")
    if facts.vague:
        flags.add("vague_reply")
    if facts.unanswered:
        flags.add("unanswered_question")
    turn = {i: sum(m["role"] == "customer" for m in msgs[:i]) for i in agent}   # which customer turn it answers
    if facts.repeated or _near_duplicates([(text[i], turn[i]) for i in agent]):
        flags.add("mechanical_repetition")
    if agent:
        if not any(cues.has("greeting", text[i]) for i in agent[:2]):
            flags.add("missing_greeting")
        last_customer = max((i for i, m in enumerate(msgs) if m["role"] == "customer"), default=-1)
        tail = [i for i in agent if i > last_customer] or agent[-1:]
        if not any(cues.has("closing", text[i]) for i in tail):
            flags.add("missing_closing")
    start, first = _first_human(msgs)
    if start is not None and first is not None:
        t0, t1 = dt.datetime.fromisoformat(msgs[start]["ts"]), dt.datetime.fromisoformat(msgs[first]["ts"])
        if (t1 - t0).total_seconds() > gen.cfg["timing"]["first_response_limit_s"]:
            flags.add("slow_first_response")
    if facts.customer_upset_at is not None:
        after = [i for i in agent if i > facts.customer_upset_at]
        if not any(cues.has("soothe", text[i]) for i in after):
            flags.add("negative_emotion_unsoothed")
    return flags


def _near_duplicates(texts: list[tuple[str, int]], min_chars: int = 6, similarity: float = 0.8) -> bool:
    """The same or nearly the same agent message (bigram Jaccard, or one inside the other) sent in
    reply to two different customer turns; repeating oneself inside one reply is a clarity matter only."""
    seen: list[tuple[str, set[str], int]] = []
    for t, turn in texts:
        t = re.sub(r"[\s，,。~～!！?？、]", "", EMOJI_RE.sub("", t))
        if len(t) < min_chars:
            continue
        grams = {t[j:j + 2] for j in range(len(t) - 1)}
        for other, og, other_turn in seen:
            if other_turn != turn and (t == other or (len(t) >= 8 and len(other) >= 8 and (t in other or other in t))
                                       or len(grams & og) / max(1, len(grams | og)) >= similarity):
                return True
        seen.append((t, grams, turn))
    return False


def grade_bounds(flags: set[str]) -> dict[str, tuple[int, int]]:
    """The (lowest, highest) grade each dimension may take given the flags (the guide's caps)."""
    hi = {d: 5 for d in DIMS}
    if "uncivil_language" in flags:
        hi["attitude"] = hi["etiquette"] = 2
    if flags & {"off_platform_diversion", "privacy_leak"}:
        hi["professionalism"] = 2
    if flags & {"overpromise", "vague_reply"}:
        hi["professionalism"] = min(hi["professionalism"], 3)
    if "negative_emotion_unsoothed" in flags:
        hi["attitude"] = min(hi["attitude"], 3)
    if "mechanical_repetition" in flags:
        hi["clarity"] = min(hi["clarity"], 3)
    if {"missing_greeting", "missing_closing"} & flags:
        hi["etiquette"] = min(hi["etiquette"], 4)
    if {"missing_greeting", "missing_closing"} <= flags:
        hi["etiquette"] = min(hi["etiquette"], 3)
    if flags & {"no_proactive_confirmation", "unanswered_question"}:
        hi["professionalism"] = min(hi["professionalism"], 4)
    return {d: (2, hi[d]) for d in DIMS}


def consistency_problems(cfg: dict[str, Any], targets: Targets, flags: set[str], msgs: list[dict]) -> list[str]:
    """Why a realised chat does not fit its targets (empty when it does)."""
    probs = []
    lo, hi = cfg["messages"]["min"], cfg["messages"]["max"]
    if not lo <= len(msgs) <= hi:
        probs.append(f"{len(msgs)} messages")
    bounds = grade_bounds(flags)
    for d, v in targets.as_dict().items():
        if v > bounds[d][1]:
            probs.append(f"{d} {v} > cap {bounds[d][1]} ({sorted(flags)})")
    if targets.attitude == 2 and targets.etiquette == 2 and "uncivil_language" not in flags and \
            not any(m["role"] == "agent" for m in msgs):
        probs.append("no agent message")
    if targets.etiquette == 3 and not {"missing_greeting", "missing_closing"} & flags:
        probs.append("etiquette 3 with greeting and closing")
    return probs


def _noisy(rng: random.Random, grade: int, lo: int, hi: int) -> int:
    """Move a grade one level to a neighbour the flags allow (a reviewer at a border)."""
    moves = [g for g in (grade - 1, grade + 1) if max(lo, 2) <= g <= min(hi, 5)]
    return rng.choice(moves) if moves else grade


def make_reviews(gen: Generator, rng: random.Random, targets: Targets, flags: set[str]) -> list[dict[str, Any]]:
    """One reviewer (gen-r1) on most chats, 2–3 on some; each grade moves one level with a small rate."""
    lc = gen.cfg["labels"]
    n = 1
    if rng.random() < lc["multi_rate"]:
        n = 2 if rng.random() < lc["two_of_multi"] else 3
    bounds = grade_bounds(flags)
    reviews = []
    for r in range(n):
        rate = lc["noise_first"] if r == 0 else lc["noise_other"]
        grades = {}
        for d, v in targets.as_dict().items():
            grades[d] = _noisy(rng, v, *bounds[d]) if rng.random() < rate else v
        rules = [x for x in RULE_ORDER if x in flags]
        if r > 0:  # another reviewer sometimes misses a minor flag
            rules = [x for x in rules if not (x in lc["missable"] and rng.random() < lc["miss_rate"])]
        reviews.append({"reviewer": f"gen-r{r + 1}", "grades": grades, "rules": rules,
                        "reason": make_reason(gen, rng, grades, rules)})
    return reviews


def make_reason(gen: Generator, rng: random.Random, grades: dict[str, int], rules: list[str]) -> str:
    """One Chinese line: the most telling dimensions (best and worst) and the red-line/major flags."""
    rb = gen.style.get("reasons")
    order = sorted(DIMS, key=lambda d: (grades[d], rng.random()))
    worst, best = order[0], order[-1]
    good = [fill(rng.choice(rb["dims"][best][grades[best]]), {})] if grades[best] >= 4 else []
    bad = [fill(rng.choice(rb["dims"][d][grades[d]]), {}) for d in order[:2] if grades[d] <= 3]
    if not bad and grades[worst] == 4:
        bad = [rng.choice(rb["dims"][worst][4])]
    said = "".join(good + bad)
    notes = [n for n in (rng.choice(rb["rules"][x]) for x in rules if x in rb["rules"])
             if not any(w in n and w in said for w in ("问候", "结束语", "敷衍", "重复", "隐私"))][:2]
    neg = list(dict.fromkeys(bad + notes))[:3]
    if good and neg:
        return good[0] + "，" + rng.choice(rb["but"]) + "，".join(neg)
    return "，".join(good + neg) or rng.choice(rb["dims"][best][grades[best]])


def make_rating(rng: random.Random, targets: Targets, spec: dict[str, Any]) -> dict[str, Any] | None:
    """Sometimes a rating, correlated with how the chat went."""
    if rng.random() >= spec["p"]:
        return None
    mean = (targets.attitude * 2 + targets.professionalism * 2 + targets.etiquette + targets.clarity) / 6
    stars = int(min(5, max(1, round(1 + (mean - 2) * 4 / 3 + rng.gauss(0, 0.7)))))
    label = "满意" if stars >= 4 else "一般" if stars == 3 else "失望"
    mode = spec["mode"]
    if mode == "stars":
        return {"stars": stars}
    if mode == "label":
        return {"label": label}
    return {"stars": stars, "label": label}


# --------------------------------------------------------------------------------------------------
# Quality check
# --------------------------------------------------------------------------------------------------

def _load_jsonl(paths: list[Path]) -> list[dict[str, Any]]:
    out = []
    for p in paths:
        with p.open(encoding="utf-8") as fh:
            out += [json.loads(line) for line in fh if line.strip()]
    return out


def agent_text(rec: dict[str, Any]) -> str:
    """The agent's messages, ' | '-joined (so fragmentation shows in the n-grams)."""
    return " | ".join(m.get("text", "") for m in rec["messages"] if m["role"] == "agent" and m.get("text"))


def show_chat(rec: dict[str, Any]) -> str:
    r = rec["labels"]["reviews"][0]
    lines = [f"--- {rec['id']} {rec['platform']} {rec['meta']['scenario']}/{rec['meta']['category']} "
             f"target={rec['meta']['target']} rules={r['rules']} | {r['reason']}"]
    for m in rec["messages"]:
        body = m.get("text") or m.get("event", "")
        lines.append(f"  {m['ts'][11:19]} {m['role'][:4]:4} {m['type'][:5]:5} {body}")
    return "\n".join(lines)


def quality_check(gen_path: Path, hand_glob: str, n_samples: int, samples_out: Path | None) -> None:
    """Level distributions, sample chats, and a TF-IDF + logistic regression transfer check."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import cohen_kappa_score
    from sklearn.model_selection import cross_val_predict

    gen = _load_jsonl([gen_path])
    print(f"{gen_path}: {len(gen)} chats")
    for d in DIMS:
        c = collections.Counter(r["labels"]["reviews"][0]["grades"][d] for r in gen)
        t = collections.Counter(r["meta"]["target"][d] for r in gen)
        print(f"  {d:16s} labels " + "  ".join(f"{lv}:{c[lv]:4d} ({c[lv] / len(gen):4.0%})" for lv in LEVELS)
              + " | targets " + " ".join(f"{lv}:{t[lv] / len(gen):.0%}" for lv in LEVELS))
    rules = collections.Counter(x for r in gen for x in r["labels"]["reviews"][0]["rules"])
    print("  rules: " + ", ".join(f"{k} {v}" for k, v in rules.most_common()))
    lens = [len(r["messages"]) for r in gen]
    print(f"  messages/chat: min {min(lens)} mean {statistics.mean(lens):.1f} max {max(lens)}; "
          f"platforms {dict(collections.Counter(r['platform'] for r in gen))}; "
          f"reviewers {dict(collections.Counter(len(r['labels']['reviews']) for r in gen))}; "
          f"rated {sum('rating' in r for r in gen)}")
    types = collections.Counter((m["role"], m["type"]) for r in gen for m in r["messages"])
    print("  message types: " + ", ".join(f"{a}/{b} {n}" for (a, b), n in types.most_common()))
    scen = collections.Counter(r["meta"]["scenario"] for r in gen)
    print("  scenarios: " + ", ".join(f"{k} {v}" for k, v in scen.most_common()))
    noise = sum(rv["grades"][d] != r["meta"]["target"][d] for r in gen for rv in r["labels"]["reviews"][:1] for d in DIMS)
    print(f"  first-reviewer grades differing from the target: {noise / (4 * len(gen)):.1%}")

    if n_samples:
        rng = random.Random(0)
        blocks = []
        for d in DIMS:
            for lv in LEVELS:
                pool = [r for r in gen if r["meta"]["target"][d] == lv]
                blocks.append(f"\n===== {d} = {lv} =====")
                blocks += [show_chat(r) for r in rng.sample(pool, min(n_samples, len(pool)))]
        text = "\n".join(blocks)
        if samples_out:
            samples_out.write_text(text + "\n", encoding="utf-8")
            print(f"  samples: {samples_out}")
        else:
            print(text)

    pattern = hand_glob if Path(hand_glob).is_absolute() else str(ROOT / hand_glob)
    hand = _load_jsonl(sorted(Path(p) for p in glob.glob(pattern)))
    if not hand:
        print(f"no hand-labelled chats at {hand_glob}: skipping the transfer check")
        return
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, max_features=200_000)
    x_gen = vec.fit_transform([agent_text(r) for r in gen])
    x_hand = vec.transform([agent_text(r) for r in hand])
    print(f"\ntransfer check: char 1-3-gram TF-IDF + LogisticRegression, agent text only; "
          f"train {len(gen)} generated, test {len(hand)} hand-written")
    print(f"  {'dimension':16s} QWK gen→hand  acc   | QWK hand 5-fold CV (reference)")
    for d in DIMS:
        y_gen = [r["labels"]["reviews"][0]["grades"][d] for r in gen]
        y_hand = [r["labels"]["reviews"][0]["grades"][d] for r in hand]
        clf = LogisticRegression(C=2.0, max_iter=3000)
        clf.fit(x_gen, y_gen)
        pred = clf.predict(x_hand)
        qwk = cohen_kappa_score(y_hand, pred, weights="quadratic")
        acc = sum(a == b for a, b in zip(pred, y_hand)) / len(y_hand)
        vh = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
        xh = vh.fit_transform([agent_text(r) for r in hand])
        cv = cross_val_predict(LogisticRegression(C=2.0, max_iter=3000), xh, y_hand, cv=5)
        print(f"  {d:16s} {qwk:6.3f}       {acc:5.1%} | {cohen_kappa_score(y_hand, cv, weights='quadratic'):6.3f}")


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4500, help="number of chats (default 4500)")
    ap.add_argument("--seed", type=int, default=7, help="random seed (same seed + banks → same file)")
    ap.add_argument("--out", type=Path, default=ROOT / "data/labelled/gen/gen.jsonl")
    ap.add_argument("--bank", type=Path, default=GEN_DIR, help="generator folder (config.yaml, scenarios/, style/)")
    ap.add_argument("--skip-invalid", action="store_true",
                    help="skip invalid scenario files (with a warning) instead of stopping")
    ap.add_argument("--validate", action="store_true", help="only load and validate the banks")
    ap.add_argument("--check", type=Path, metavar="FILE.jsonl", help="quality report on a generated file")
    ap.add_argument("--hand", default="data/labelled/hand/*.jsonl", help="hand-labelled chats for --check")
    ap.add_argument("--samples", type=int, default=5, help="sample chats per level and dimension in --check")
    ap.add_argument("--samples-out", type=Path, help="write the --check samples to this file instead of stdout")
    args = ap.parse_args(argv)

    if args.check:
        quality_check(args.check, args.hand, args.samples, args.samples_out)
        return 0
    try:
        gen = Generator(args.bank, skip_invalid=args.skip_invalid)
    except GenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for err in gen.scenario_errors:
        print(f"warning: skipped: {err}", file=sys.stderr)
    print(f"{len(gen.scenarios)} scenarios: " + ", ".join(f"{s.name} ({s.source})" for s in gen.scenarios),
          file=sys.stderr)
    if args.validate:
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for i in range(1, args.n + 1):
            try:
                rec = gen.generate(i, args.seed)
            except GenError as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"wrote {args.n} chats to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
