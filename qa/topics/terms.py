"""Key terms of each question type: jieba words, weighted by class-based TF-IDF (c-TF-IDF, as in BERTopic).

All questions of a type form one document; term t of type c weighs ``tf(t, c) / |c| × log(1 + A / f(t))``,
where ``|c|`` is the number of words in c, ``A`` the mean number of words per type and ``f(t)`` the count of t
over all types. Stop words (particles, pronouns, greetings) and one-character words other than a few
meaningful ones are dropped. Without jieba, words fall back to character bigrams. Personal data never becomes
a key term: each question is masked first (``qa.safety.mask_text``) and every token the mask touched — the whole
phone number, ID, e-mail address (user name and domain), WeChat id or address detail — is dropped.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
import re
from collections.abc import Sequence

from qa.safety import mask_text

log = logging.getLogger(__name__)

STOP = set("""的 了 吗 呢 啊 吧 呀 么 嘛 哦 哈 啦 喔 噢 嗯 额 呃 吖 哇 我 你 您 他 她 它 我们 你们 他们 这 那 这个 那个 这款 那款
这边 那边 是 有 在 都 也 就 还 又 和 跟 与 给 让 把 被 对 很 太 好 能 会 要 想 可以 可 吗 不 没 没有 什么 怎么 怎么样 多少 几
为啥 为什么 啥 哪 哪个 哪里 一下 一个 个 下 上 里 亲 亲亲 宝 宝宝 客服 在吗 你好 您好 请问 谢谢 麻烦 帮 帮我 请 就是 还是 或者
现在 已经 一直 然后 但是 如果 因为 所以 说 看 问 问下 知道 觉得 应该 是不是 能不能 可不可以 有没有 行 行吗 嘛 哟 咋 咋办 怎么办
多 少 大 小 好的 ok 呐 哎 唉 时候 不会 一样 一下子 东西 真的 这样 那样 之前 之后 还有 可能 需要""".split())
KEEP_SINGLE = set("码 色 票 价 券 退 换 货 钱 修 送 寄 税 单 邮 码 鞋 衣 裤 裙 杯 锅 表")
_WORD = re.compile(r"[\w]+")
# a run of ASCII token characters (and the masks' ``*``) that holds a ``*``: what is left of a masked span
_MASKED = re.compile(r"[A-Za-z0-9_.@%+\-*＠．]*\*[A-Za-z0-9_.@%+\-*＠．]*")
_COUNT = re.compile(r"^[0-9一二三四五六七八九十百两几半多]+[个件天次瓶批台双号斤块元周月年份点套箱只]?$")


@functools.lru_cache(maxsize=1)
def _jieba():
    try:
        import jieba
    except ImportError:
        log.warning("jieba is not installed: key terms fall back to character bigrams")
        return None
    jieba.setLogLevel(logging.WARNING)
    return jieba


def words(text: str) -> list[str]:
    """Content words of a question (jieba when installed, else character bigrams)."""
    jb = _jieba()
    text = text.lower()
    if jb is None:
        out = []
        for chunk in _WORD.findall(text):
            out += [chunk[i:i + 2] for i in range(max(1, len(chunk) - 1))]
    else:
        out = jb.lcut(text)
    return [w for w in (x.strip() for x in out)
            if w and w not in STOP and _WORD.fullmatch(w) and (len(w) > 1 or w in KEEP_SINGLE) and not _COUNT.match(w)]


def unmasked(text: str) -> str:
    """``text`` masked, with every token a mask touched replaced by a space (see the module doc)."""
    return _MASKED.sub(" ", mask_text(text) or "")


def ctfidf(docs: Sequence[Sequence[tuple[str, int]]], top: int = 8) -> list[list[tuple[str, float]]]:
    """``docs[c]`` = (question, count) of type c → its ``top`` terms with their c-TF-IDF weight."""
    tf = []
    for doc in docs:
        c: collections.Counter[str] = collections.Counter()
        for text, n in doc:
            for w in words(unmasked(text)):
                c[w] += n
        tf.append(c)
    total: collections.Counter[str] = collections.Counter()
    for c in tf:
        total.update(c)
    sizes = [sum(c.values()) for c in tf]
    avg = sum(sizes) / max(1, len(sizes))
    out = []
    for c, size in zip(tf, sizes):
        scored = [(w, n / size * math.log(1 + avg / total[w])) for w, n in c.items()] if size else []
        out.append(sorted(scored, key=lambda x: (-x[1], x[0]))[:top])
    return out
