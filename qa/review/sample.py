"""Pick conversations for human review: a random control, targeted picks, then a stratified fill.

Order of picking (each conversation at most once; ``pick_reason`` is the step that picked it):

1. ``control`` — a uniform random sample of everything (so accuracy on it is unbiased);
2. ``red_line`` — a red-line finding or ``failed``;
3. ``disagreement`` — a rule took a model dimension down two levels or more, or the model graded a
   dimension in the lower half of the scale with no rule finding that touches it;
4. ``low_confidence`` — the lowest model confidences below a threshold, lowest first;
5. ``stratified`` — the rest of the budget, spread over (shop, agent, score band): the agent with the
   fewest picks first, then its band with the fewest, then the shop with the fewest.

Randomness is a hash of (seed, id), so the same call gives the same sample whatever the input order, and
adding conversations does not reshuffle the others. ``per_agent`` caps the picks of any (shop, agent).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from collections.abc import Iterable
from typing import Any

from qa.review.records import agent_key, model_dimensions
from qa.rubric import Rubric

TARGETED = ("red_line", "disagreement", "low_confidence")
REASON_ZH = {"control": "随机对照", "red_line": "红线", "disagreement": "模型与规则不一致",
             "low_confidence": "模型置信度低", "stratified": "分层抽样"}


@dataclasses.dataclass(frozen=True)
class SampleSpec:
    """How many to pick and how the budget is shared; what is left after the shares goes to the fill."""

    n: int = 200
    seed: int = 0
    per_agent: int | None = None
    control: float = 0.2
    red_line: float = 0.15
    disagreement: float = 0.15
    low_confidence: float = 0.15
    confidence_below: float = 0.5

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be at least 1")
        if self.per_agent is not None and self.per_agent < 1:
            raise ValueError("per_agent must be at least 1")
        shares = (self.control, self.red_line, self.disagreement, self.low_confidence)
        if any(s < 0 for s in shares) or sum(shares) > 1:
            raise ValueError("shares must be ≥ 0 and sum to at most 1")

    def quota(self, reason: str) -> int:
        return round(self.n * getattr(self, reason))


@dataclasses.dataclass
class Sample:
    records: list[dict[str, Any]]
    population: int
    duplicates: int
    candidates: dict[str, int]

    @property
    def by_reason(self) -> collections.Counter:
        return collections.Counter(r["pick_reason"] for r in self.records)


def flags(rec: dict[str, Any], rubric: Rubric, confidence_below: float = 0.5) -> dict[str, str]:
    """The targeted categories a record falls into, each with a short why (in Chinese, for reviewers)."""
    out: dict[str, str] = {}
    findings = [f for f in rec.get("findings") or [] if isinstance(f, dict)]
    name = lambda k: rubric.dimensions[k].name if k in rubric.dimensions else k   # noqa: E731 — in Chinese
    red = [rubric.rules[f["rule"]].name if f.get("rule") in rubric.rules else f.get("name") or f.get("rule", "?")
           for f in findings if f.get("severity") == "red_line"]
    if red or rec.get("failed"):
        out["red_line"] = ", ".join(dict.fromkeys(red)) or "failed"
    touched = {e.dimension for f in findings if f.get("rule") in rubric.rules for e in rubric.rules[f["rule"]].effects}
    touched |= {d.get("dimension") for d in rec.get("deductions") or [] if d.get("source") == "rule"}
    scale, half = rubric.scale, len(rubric.scale) // 2
    why, confs = [], []
    for k, d in model_dimensions(rec).items():
        base, level = d.get("base_level"), d.get("level")
        if base in scale and level in scale:
            if scale.index(level) - scale.index(base) >= 2:
                why.append(f"{name(k)} 模型{base}→规则{level}")
            elif scale.index(base) >= half and k not in touched:
                why.append(f"{name(k)} 模型评{base}级，没有规则涉及该维度")
        if isinstance(d.get("confidence"), (int, float)):
            confs.append((d["confidence"], k))
    if why:
        out["disagreement"] = "; ".join(why)
    if confs and min(confs)[0] < confidence_below:
        c, k = min(confs)
        out["low_confidence"] = f"{name(k)} 置信度 {c:.2f}"
    return out


def _key(seed: int, cid: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\0{cid}".encode()).digest()[:8], "big")


def _min_confidence(rec: dict[str, Any]) -> float:
    return min((d["confidence"] for d in model_dimensions(rec).values()
                if isinstance(d.get("confidence"), (int, float))), default=1.0)


def summary(rec: dict[str, Any], rubric: Rubric, confidence_below: float = 0.5) -> dict[str, Any]:
    """What choosing needs of a record (a few hundred bytes, whatever the chat's length): ``choose`` reads these,
    so a results file of any size is sampled in memory that grows with its ids only."""
    return {"id": rec["id"], "shop": rec.get("shop"), "agent": rec.get("agent"), "band": rec.get("band"),
            "why": flags(rec, rubric, confidence_below), "confidence": _min_confidence(rec)}


class _Picker:
    """The picks so far, in order, with the per-agent counts the cap and the fill need."""

    def __init__(self, pop: dict[str, dict[str, Any]], spec: SampleSpec):
        self.pop, self.spec = pop, spec
        self.picked: dict[str, tuple[str, str]] = {}
        self.n_agent: collections.Counter = collections.Counter()

    @property
    def left(self) -> int:
        return self.spec.n - len(self.picked)

    def room(self, cid: str) -> bool:
        cap = self.spec.per_agent
        return cid not in self.picked and (cap is None or self.n_agent[agent_key(self.pop[cid])] < cap)

    def take(self, cid: str, reason: str, detail: str) -> None:
        self.picked[cid] = (reason, detail)
        self.n_agent[agent_key(self.pop[cid])] += 1

    def targeted(self, reason: str, candidates: list[str]) -> None:
        quota = min(self.spec.quota(reason), self.left)
        for cid in candidates:
            if quota <= 0:
                return
            if self.room(cid):
                self.take(cid, reason, self.pop[cid]["why"].get(reason, REASON_ZH[reason]))
                quota -= 1

    def fill(self, order: list[str]) -> None:
        """Stratified fill: fewest picks for the agent, then for its (agent, band), then for the shop."""
        strata: dict[tuple[str, str, str], collections.deque] = collections.defaultdict(collections.deque)
        n_stratum: collections.Counter = collections.Counter()
        n_shop: collections.Counter = collections.Counter()
        rank = {cid: i for i, cid in enumerate(order)}
        for cid in order:
            stratum = (*agent_key(self.pop[cid]), self.pop[cid].get("band") or "")
            if cid in self.picked:  # targeted picks count towards the balance
                n_stratum[stratum] += 1
                n_shop[stratum[0]] += 1
            else:
                strata[stratum].append(cid)
        while self.left > 0:
            for s in list(strata):
                while strata[s] and not self.room(strata[s][0]):
                    strata[s].popleft()
                if not strata[s]:
                    del strata[s]
            if not strata:
                return
            s = min(strata, key=lambda s: (self.n_agent[s[:2]], n_stratum[s], n_shop[s[0]], rank[strata[s][0]]))
            cid = strata[s].popleft()
            self.take(cid, "stratified", f"{s[0] or '-'} / {s[1] or '-'} / {s[2] or '-'}")
            n_stratum[s] += 1
            n_shop[s[0]] += 1


def choose(summaries: Iterable[dict[str, Any]], spec: SampleSpec = SampleSpec()) -> Sample:
    """Pick ``spec.n`` of the records ``summaries`` describe (one per id; fewer if the population or the per-agent
    cap runs out). The sample's records are the picks' pick fields and id, in pick order."""
    pop = {r["id"]: r for r in summaries}
    key = {cid: _key(spec.seed, cid) for cid in pop}
    order = sorted(pop, key=key.__getitem__)
    p = _Picker(pop, spec)
    p.targeted("control", order)
    for reason in ("red_line", "disagreement"):
        p.targeted(reason, [c for c in order if reason in pop[c]["why"]])
    p.targeted("low_confidence", sorted((c for c in order if "low_confidence" in pop[c]["why"]),
                                        key=lambda c: (pop[c]["confidence"], key[c])))
    p.fill(order)
    out = [{"id": cid, "pick_reason": reason, "pick_detail": detail, "pick_flags": sorted(pop[cid]["why"]),
            "pick_rank": rank, "pick_seed": spec.seed}
           for rank, (cid, (reason, detail)) in enumerate(p.picked.items(), 1)]
    candidates = {c: sum(c in r["why"] for r in pop.values()) for c in TARGETED}
    return Sample(out, len(pop), 0, candidates)


def sample(records: Iterable[dict[str, Any]], rubric: Rubric, spec: SampleSpec = SampleSpec()) -> Sample:
    """``choose`` over records in memory (the first of each id), the picks given back as full records with their
    pick fields."""
    full: dict[str, dict[str, Any]] = {}
    duplicates = 0
    for r in records:
        if r["id"] in full:
            duplicates += 1
        else:
            full[r["id"]] = r
    s = choose((summary(r, rubric, spec.confidence_below) for r in full.values()), spec)
    return Sample([{**full[p["id"]], **p} for p in s.records], s.population, duplicates, s.candidates)
