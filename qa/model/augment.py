"""Make written chats look like real ones, keeping their grades: the training-time counterweight to chats
whose authors wrote every good reply long and polished.

Real transcripts (``docs/real-chats.md``) differ from written ones in ways a reviewer does not grade: agents
answer in a short clause (「一组2包的」), split a reply over several messages, drop punctuation, slip on the
pinyin keyboard; customers paste an item link or number instead of a card. ``realistic(conv, rng)`` applies
some of these to one chat and returns a copy with the same labels (turn labels follow their messages).

``excerpt(conv, rng)`` is the counterweight to a second habit of written chats: agents who skip the greeting or
the closing are also the cold ones, so a model learns to mark attitude down for a missing 您好. Real chats often
lack both and are warm (an excerpt of a longer session, a busy Taobao agent). The copy loses its greeting or its
closing; etiquette drops a level per element lost, as the grading guide says (never below 3 for that alone),
and attitude, professionalism and clarity keep their grades.
"""

from __future__ import annotations

import functools
import random
import re

from qa.schema import Conversation
from qa.text import normalize

# Clauses that carry neither a fact nor courtesy: fillers and lead-ins a short real reply leaves out.
_FLUFF = re.compile(r"^(?:嗯嗯?|哈+|呢|哦+|呀|这边给您说明一下哈?|关于您说的这个问题呢?|是这样的哈?|"
                    r"我这边跟您说明一下|这个的话呢?|针对您刚刚问的这个问题|然后的话|就是说呢?|这边给您解释一下|"
                    r"那个|就是|然后)$")
# Courtesy and warmth (graded under attitude and etiquette): a clause with one of these is never cut.
_WARM = re.compile(r"亲|您|谢|抱歉|不好意思|理解|放心|辛苦|耐心|请|欢迎|祝|麻烦|别急|久等")
_CLAUSE = re.compile(r"[^，,。!！?？~～；;\n]+[，,。!！?？~～；;\n]*")
_PUNCT = re.compile(r"[，,。!！~～；;、]+")
_EMOJI = re.compile(r"\[[^\]\s]{1,6}\]")
TYPOS = [("现在", "现再"), ("在的", "再的"), ("已经", "以经"), ("时候", "时后"), ("稍等", "梢等"), ("应该", "因该"),
         ("的话", "得话"), ("这边", "这变"), ("收到", "手到"), ("适合", "试合"), ("可以", "可已"), ("发货", "发或"),
         ("什么", "神马"), ("没有", "木有"), ("快递", "快地"), ("尺码", "尺马")]


def _terse(text: str, rng: random.Random) -> str:
    """The clauses of ``text`` that carry content, in order; at times only the first of them and the first
    that states a number (real replies often stop after the fact)."""
    clauses = [c for c in _CLAUSE.findall(text) if c.strip()]
    content = [c for c in clauses if not _FLUFF.match(_PUNCT.sub("", c).strip("~～ "))]
    if len(clauses) < 2 or not content:
        return text
    if len(content) > 2 and rng.random() < 0.5:
        facts = [c for c in content[1:] if re.search(r"\d|[A-Za-z]", c)][:1]
        content = [c for k, c in enumerate(content) if k == 0 or c in facts or _WARM.search(c)]
    out = "".join(content).strip()
    return re.sub(r"[，,；;]$", "", out) or text


def _split(text: str, rng: random.Random) -> list[str]:
    clauses = [c for c in _CLAUSE.findall(text) if c.strip()]
    if len(clauses) < 2 or len(text) < 16:
        return [text]
    cut = rng.randint(1, len(clauses) - 1)
    return ["".join(clauses[:cut]).strip(), "".join(clauses[cut:]).strip()]


def _typo(text: str, rng: random.Random) -> str:
    pairs = [p for p in TYPOS if p[0] in text]
    if not pairs:
        return text
    right, wrong = rng.choice(pairs)
    return text.replace(right, wrong, 1)


def _card_as_text(m: dict, rng: random.Random) -> dict:
    """A product/order card as a pasted link or number (the reader's ``card_type`` makes it a card again)."""
    if m.get("type") == "product_card":
        n = "".join(str(rng.randint(0, 9)) for _ in range(11))
        text = rng.choice([f"https://item.taobao.com/item.htm?id=6{n}", f"https://item.jd.com/1{n[:10]}.html",
                           f"商品ID:6{n}", f"6{n}"])
    else:
        text = "".join(str(rng.randint(0, 9)) for _ in range(18))
        text = rng.choice([text, f"订单号：{text}"])
    return {**m, "text": text}


def realistic(conv: Conversation, rng: random.Random, *, p_terse: float = 0.6, p_punct: float = 0.5,
              p_split: float = 0.25, p_typo: float = 0.08, p_card: float = 0.7) -> Conversation | None:
    """A real-looking copy of ``conv`` with the same labels (turn labels follow their messages), or None when
    nothing changed. The first and last agent messages keep their wording (greeting and closing live there)."""
    labels = conv.labels or {}
    reviews = [r for r in labels.get("reviews") or [] if isinstance(r, dict)]
    # shortening is safe only where the content was good and nothing hinges on the wording's length
    safe = bool(reviews) and all(isinstance(r.get("grades"), dict) and r["grades"].get("professionalism", 0) in (4, 5)
                                 and not set(r.get("rules") or ()) & {"vague_reply", "mechanical_repetition",
                                                                      "unanswered_question"} for r in reviews)
    rec = conv.to_record()
    msgs = rec["messages"]
    agent = [i for i, m in enumerate(msgs) if m["role"] == "agent" and m.get("type", "text") == "text" and m.get("text")]
    inner = set(agent[1:-1])
    strip = rng.random() < p_punct
    out, changed, where = [], False, {}
    for i, m in enumerate(msgs):
        where[i] = len(out)
        if m["role"] == "customer" and m.get("type") in ("product_card", "order_card") and rng.random() < p_card:
            m = _card_as_text(m, rng)
            m["type"] = "text"
            changed = True
        text = m.get("text")
        if m.get("type", "text") != "text" or not text or m["role"] == "system":
            out.append(m)
            continue
        new = text
        if safe and i in inner and rng.random() < p_terse:
            new = _terse(new, rng)
        if strip:
            new = _PUNCT.sub(" ", _EMOJI.sub("", new) if m["role"] == "agent" else new).strip() or new
        if rng.random() < p_typo:
            new = _typo(new, rng)
        pieces = _split(new, rng) if i in inner and rng.random() < p_split else [new]
        changed |= pieces != [text]
        out += [{**m, "text": p} for p in pieces if p]
    if not changed:
        return None
    rec["messages"] = out
    rec["id"] = f"{conv.id}~real"
    if labels:
        rec["labels"] = _move_turns(labels, where, len(out))
    return Conversation.model_validate(rec)


_SHORT = 24   # a greeting or closing clause longer than this carries content too: kept
_PIECE = re.compile(r"[^，,。!！?？~～；;\n ]+[，,。!！?？~～；;\n ]*")   # clauses, and the space-split pieces of 千牛 style
_ADDRESS = re.compile(r"^(?:亲+|亲爱的|宝+|宝子|嗯+|哈+)$")


def _strip(text: str, lexicon, category: str, from_end: bool) -> str | None:
    """``text`` less its leading (or trailing) clauses where ``lexicon`` finds ``category`` (with the bare 亲
    beside them); None when none had it."""
    clauses = [c for c in _PIECE.findall(text) if c.strip()]
    seq = clauses[::-1] if from_end else clauses
    k, found = 0, False
    while k < len(seq) and len(seq[k]) <= _SHORT:
        bare = _PUNCT.sub("", seq[k]).strip("~～ ")
        if lexicon.scan([normalize(bare)]).get(category):
            found = True
        elif not _ADDRESS.match(bare):
            break
        k += 1
    if not found:
        return None
    rest = seq[k:][::-1] if from_end else seq[k:]
    return "".join(rest).strip()


def excerpt(conv: Conversation, rng: random.Random, *, lexicon=None, p_greeting: float = 0.6,
            p_closing: float = 0.6) -> tuple[Conversation, list[str]] | None:
    """A copy of ``conv`` without its greeting and/or its closing (the first agent message's leading greeting
    clauses, the last agent message's trailing closing clauses; a message left empty is dropped), and the
    elements it lost; None when it lost none. Only elements every reviewer saw (no ``missing_greeting`` /
    ``missing_closing`` flag) are taken away. Greeting and closing are the rubric lexicon's categories
    (``lexicon``: a ``qa.rules.lexicon.Lexicon``; default: the default rubric's)."""
    lexicon = lexicon or _default_lexicon()
    labels = conv.labels or {}
    reviews = [r for r in labels.get("reviews") or [] if isinstance(r, dict)]
    flagged = {f for r in reviews for f in r.get("rules") or ()}
    rec = conv.to_record()
    msgs = rec["messages"]
    agent = [i for i, m in enumerate(msgs) if m["role"] == "agent" and m.get("type", "text") == "text" and m.get("text")]
    if len(agent) < 2:
        return None
    new, lost = {}, []
    if "missing_greeting" not in flagged and rng.random() < p_greeting:
        t = _strip(msgs[agent[0]]["text"], lexicon, "greeting", from_end=False)
        if t is not None:
            new[agent[0]], lost = t, lost + ["greeting"]
    if "missing_closing" not in flagged and rng.random() < p_closing:
        t = _strip(msgs[agent[-1]]["text"], lexicon, "closing", from_end=True)
        if t is not None:
            new[agent[-1]], lost = t, lost + ["closing"]
    if not lost:
        return None
    out, where = [], {}
    for i, m in enumerate(msgs):
        if i in new and not new[i]:
            continue
        where[i] = len(out)
        out.append({**m, "text": new[i]} if i in new else m)
    rec["messages"], rec["id"] = out, f"{conv.id}~excerpt"
    if labels:
        rec["labels"] = _move_turns(labels, where, len(out))
    return Conversation.model_validate(rec), lost


@functools.lru_cache(maxsize=1)
def _default_lexicon():
    from qa.rubric import load_rubric
    from qa.rules.lexicon import Lexicon
    rubric = load_rubric()
    return Lexicon(rubric.lexicon_data(), source=str(rubric.lexicon_file))


def lower_etiquette(dist: list[float], lost: int) -> list[float]:
    """An etiquette distribution (best level first: 5, 4, 3, 2) with ``lost`` courtesy elements gone: each moves
    the mass above level 3 one level down (missing elements alone make at most "several missing", 3)."""
    out, floor = list(dist), min(2, len(dist) - 1)
    for _ in range(lost):
        out = ([0.0] + out[:floor - 1] + [out[floor - 1] + out[floor]] + out[floor + 1:]) if floor else out
    return out


def _move_turns(labels: dict, where: dict[int, int], n: int) -> dict:
    """``labels`` with every turn label's message index moved to its new place; a split agent message's
    later pieces carry the same labels as its first."""
    def move(turns: dict) -> dict:
        starts = sorted(where.values())
        ends = {s: (starts[k + 1] if k + 1 < len(starts) else n) for k, s in enumerate(starts)}
        cust = [{**t, "i": where[t["i"]], "answered_by": where.get(t.get("answered_by"))}
                for t in turns.get("customer") or [] if t.get("i") in where]
        agent = [{**t, "i": j} for t in turns.get("agent") or [] if t.get("i") in where
                 for j in range(where[t["i"]], ends[where[t["i"]]])]
        return {**turns, "customer": cust, "agent": agent}
    out = dict(labels)
    if isinstance(labels.get("turns"), dict):
        out["turns"] = move(labels["turns"])
    if labels.get("reviews"):
        out["reviews"] = [{**r, "turns": move(r["turns"])} if isinstance(r, dict) and isinstance(r.get("turns"), dict)
                          else r for r in labels["reviews"]]
    return out
