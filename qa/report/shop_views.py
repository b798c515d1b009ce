"""The shop-level report sections (issue 18): 预警 (alerts), 问题聚类 (question types), 服务体验分 (shop score)
and 排班 (staffing): computed from the results' messages, written as CSV, rendered as HTML with SVG charts.

``build_report`` calls ``collect`` then ``write_csvs``; ``render_html`` calls ``render``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from qa.report.shop_charts import bars, hour_heatmap, rate_color
from qa.safety import NO_MASK, mask_value, neutralise_cell, write_csv

log = logging.getLogger(__name__)
MAX_ALERTS = 300
MAX_TOPICS = 30
# identifiers, times and numbers, never masked (docs/security.md); shop and agent names and files are masked
KEEP = NO_MASK | {"time", "newest", "hour", "topic"}


@dataclasses.dataclass
class ShopViews:
    alerts: list[dict[str, Any]]
    alert_summary: list[dict[str, Any]]
    staffing: list[dict[str, Any]]
    topics: Any = None                        # qa.topics.Topics, when asked for
    shop_score: list[dict[str, Any]] | None = None
    shop_stats: Path | None = None


def collect(inputs: Sequence[Path], rubric: Any, *, profile: str | None = None, topics: bool = False,
            topics_backend: str = "auto", shop_stats: Path | None = None, records_profile: str | None = None,
            chats: Sequence[Any] | None = None) -> ShopViews:
    """Read the results' messages once (unless ``chats``, from ``qa.chatrecords.load_chats``, are given) and
    compute the four views (topics and shop score only when asked)."""
    from qa import alerts as al
    from qa.chatrecords import load_chats
    from qa.staffing import staffing

    if chats is None:
        chats, _ = load_chats(inputs, rubric=rubric)
    rows = al.alerts(chats, rubric=rubric)
    # everything a person reads is masked once, here: the HTML tables and charts and the CSVs (docs/security.md)
    views = ShopViews(alerts=_masked(rows), alert_summary=_masked(al.summary(rows)),
                      staffing=_masked(staffing(chats, rubric=rubric, profile=profile or records_profile)))
    if topics:
        from qa.topics import build_topics

        t = build_topics(chats, backend=topics_backend)
        views.topics = dataclasses.replace(t, rows=_masked(t.rows), shops=_masked(t.shops),
                                           assignments=_masked(t.assignments))
    if shop_stats is not None:
        from qa.shopscore import read_stats, shop_scores

        views.shop_score = _masked(shop_scores(read_stats(shop_stats)))
        views.shop_stats = Path(shop_stats)
    return views


def _masked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [mask_value(r, KEEP) for r in rows]


def write_rows(path: Path, rows: Iterable[dict[str, Any]], columns: Sequence[str] = ()) -> None:
    """CSV for people through ``qa.safety.write_csv``: masked (except ``KEEP``), formulas neutralised, clipped."""
    write_csv(path, rows, keep=KEEP, columns=columns)


def write_csvs(views: ShopViews, out: Path) -> dict[str, Path]:
    from qa.alerts import COLUMNS as ALERT_COLUMNS

    files = {"alerts": out / "alerts.csv", "staffing": out / "staffing.csv"}
    write_rows(files["alerts"], views.alerts, ALERT_COLUMNS)
    write_rows(files["staffing"], views.staffing)
    if views.topics is not None:
        from qa.topics import TOPIC_COLUMNS

        files["topics"] = out / "topics.csv"
        files["topic_shops"] = out / "topic_shops.csv"
        write_rows(files["topics"], views.topics.rows, TOPIC_COLUMNS)
        write_rows(files["topic_shops"], views.topics.shops)
    if views.shop_score is not None:
        files["shop_score"] = out / "shop_score.csv"
        write_rows(files["shop_score"], views.shop_score)
    return files


# ---------------------------------------------------------------- HTML

def _e(x: Any) -> str:
    return "–" if x is None else escape(str(x), quote=True)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"


def _num(v: float | None, d: int = 1) -> str:
    return "–" if v is None else f"{v:.{d}f}"


def _td(v: Any, cls: str = "") -> str:
    """A table cell: escaped, and neutralised like a spreadsheet cell (a table is often pasted into Excel)."""
    v = neutralise_cell(v)
    return f'<td class="{cls}">{_e(v)}</td>' if cls else f"<td>{_e(v)}</td>"


def _table(head: list[str], rows: list[list[tuple[Any, str]]], cls: str = "") -> str:
    body = "".join("<tr>" + "".join(_td(v, c) for v, c in r) + "</tr>" for r in rows)
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{body}</tbody></table></div>")


def _panel(title: str, svg: str) -> str:
    return f'<div class="panel"><h3>{_e(title)}</h3>{svg}</div>'


def _alerts(v: ShopViews) -> str:
    kinds = {"rating": "失望/差评", "slow": "回复慢"}
    out = [f'<h2 id="alerts">预警 · 失望与慢回复 ({len(v.alerts)})</h2>']
    if not v.alerts:
        return out[0] + "<p>没有失望 / 1–2★ 或慢回复的会话。</p>"
    items = [(f"{a['shop']} / {a['agent']}", a["total"], None,
              f"{a['shop']} / {a['agent']}: 失望 {a['rating']} · 慢回复 {a['slow']}") for a in v.alert_summary[:20]]
    out.append('<div class="charts">' + _panel("各客服预警数", bars(items, label="各客服预警数")) + "</div>")
    out.append(_table(["店铺", "客服", "失望/差评", "回复慢", "合计", "最新"],
                      [[(a["shop"], ""), (a["agent"], ""), (a["rating"], "n"), (a["slow"], "n"), (a["total"], "n"),
                        ((a["newest"] or "")[:16].replace("T", " "), "")] for a in v.alert_summary]))
    rows = []
    for r in v.alerts[:MAX_ALERTS]:
        rows.append([((r["time"] or "")[:16].replace("T", " "), ""), (r["shop"], ""), (r["agent"], ""),
                     (r["id"], ""), ("、".join(kinds.get(k, k) for k in r["kinds"].split(";")), ""),
                     (r["reason"], "wrap"), (r["evidence"], "wrap")])
    out.append('<p class="meta">按店铺、客服排列，每位客服最新的在前。</p>')
    out.append(_table(["时间", "店铺", "客服", "会话", "类型", "原因", "证据"], rows, "alerts"))
    if len(v.alerts) > MAX_ALERTS:
        out.append(f'<p class="meta">只列出前 {MAX_ALERTS} 条，共 {len(v.alerts)} 条，全部见 alerts.csv。</p>')
    return "".join(out)


def _topics(v: ShopViews) -> str:
    t = v.topics
    if t is None:
        return ""
    out = [f'<h2 id="topics">问题聚类 ({t.k} 类)</h2>',
           f'<p class="meta">{t.questions} 个会话有客户问题，去重后 {t.distinct} 条，向量化 {t.embedded} 条'
           f'（{_e(t.backend)}）；好评率颜色：红 ≤ 50%，绿 = 100%。定义见 docs/topics.md。</p>']
    rows = t.rows[:MAX_TOPICS]
    items = [(f"{r['topic']}. {r['label']}", r["conversations"], rate_color(r["good_review_rate"]),
              f"{r['label']}: {r['conversations']} 个会话 ({_pct(r['share'])}), 好评率 {_pct(r['good_review_rate'])}")
             for r in rows]
    out.append('<div class="charts">' + _panel("问题类型 · 会话数（颜色 = 好评率）", bars(items, label="问题类型")) + "</div>")
    out.append(_table(
        ["类型", "关键词", "例句", "会话", "占比", "好评率", "满意率", "均分", "未回复率", "FAQ 候选答案"],
        [[(r["topic"], "n"), (r["key_terms"], "wrap"), (r["examples"], "wrap"), (r["conversations"], "n"),
          (_pct(r["share"]), "n"), (_pct(r["good_review_rate"]), "n"), (_pct(r["satisfaction_rate"]), "n"),
          (_num(r["mean_score"]), "n"), (_pct(r["unanswered_rate"]), "n"),
          (f"{r['faq_answer']} [{r['faq_rating'] or '未评价'}]" if r["faq_answer"] else None, "wrap")]
         for r in rows], "topics"))
    return "".join(out)


def _shop_score(v: ShopViews) -> str:
    if v.shop_score is None:
        return ""
    shops = [r for r in v.shop_score if r["level"] == "shop"]
    out = [f'<h2 id="shop-score">服务体验分</h2><p class="meta">数据: {_e(v.shop_stats)} · 评价 50% + 投诉 30% + '
           "退款 20%，各 0–100 分，定义见 docs/metrics.md。</p>"]
    items = [(r["shop"], r["total"] or 0, rate_color(None if r["total"] is None else r["total"] / 100),
              f"{r['shop']}: {_num(r['total'], 2)} (评价 {_num(r['review_score'])}, 投诉 {_num(r['complaint_score'])}, "
              f"退款 {_num(r['refund_score'])})") for r in shops]
    out.append('<div class="charts">' + _panel("服务体验分 (全部日期)", bars(items, label="服务体验分")) + "</div>")
    out.append(_table(["店铺", "日期", "订单", "评价数", "平均星级", "投诉率", "退款率", "评价分", "投诉分", "退款分", "体验分"],
                      [[(r["shop"], ""), ("全部" if r["day"] == "all" else r["day"], ""), (r["orders"], "n"),
                        (r["reviews"], "n"), (_num(r["mean_stars"], 2), "n"), (_pct(r["complaint_rate"]), "n"),
                        (_pct(r["refund_rate"]), "n"), (_num(r["review_score"]), "n"),
                        (_num(r["complaint_score"]), "n"), (_num(r["refund_score"]), "n"),
                        (_num(r["total"], 2), "n")] for r in v.shop_score], "shop-score"))
    return "".join(out)


def _staffing(v: ShopViews) -> str:
    if not v.staffing:
        return ""
    shops = list(dict.fromkeys(r["shop"] for r in v.staffing))
    by = {s: [r for r in v.staffing if r["shop"] == s] for s in shops}
    first = v.staffing[0]
    out = ['<h2 id="staffing">排班建议 · 按小时</h2>',
           f'<p class="meta">Erlang C：每小时到达量 × 平均处理时长，{first["target_level"]:.0%} 的会话在 '
           f'{first["target_s"]:g} 秒内得到回复所需的客服数；每位客服可同时接待数取该店实际平均并发。'
           "红框：实际在线客服少于建议（左图）或失败集中的时段（右图）。定义见 docs/metrics.md。</p>"]
    rec_rows, rec_vals, rec_tips, rec_mark = [], [], [], []
    for s in shops:
        rs = by[s]
        rec_rows += [f"{s} · 建议", f"{s} · 实际"]
        rec_vals += [[r["recommended_agents"] for r in rs], [r["agents_active_mean"] for r in rs]]
        tip = [f"{s} {r['hour']}:00 到达 {r['arrivals_per_day']}/天, 实际在线 {r['agents_active_mean']}, 建议 "
               f"{r['recommended_agents']}, 首条等待均值 {_num(r['first_wait_mean_s'], 0)}s" for r in rs]
        rec_tips += [tip, tip]
        rec_mark += [[r["understaffed"] for r in rs], [False] * 24]
    fail_vals = [[None if r["first_fail_rate"] is None else round(r["first_fail_rate"] * 100) for r in by[s]]
                 for s in shops]
    fail_tips = [[f"{s} {r['hour']}:00 首响失败 {r['first_fail']}/{r['arrivals']}, 3分钟失败 {r['reply_fail']}/"
                  f"{r['reply_runs']}" for r in by[s]] for s in shops]
    out.append('<div class="charts">'
               + _panel("建议客服数 vs 实际在线 (每天平均)", hour_heatmap(rec_rows, rec_vals, rec_tips, label="建议客服数",
                                                              marked=rec_mark, fmt="{:.3g}"))
               + _panel("首响失败率 % (红框 = 失败集中)", hour_heatmap(
                   shops, fail_vals, fail_tips, label="首响失败率", hi=100,
                   marked=[[r["fail_cluster"] for r in by[s]] for s in shops]))
               + "</div>")
    rows = []
    for r in v.staffing:
        if not (r["arrivals"] or r["agents_active_max"] or r["recommended_agents"]):
            continue
        rows.append([(r["shop"], ""), (f"{r['hour']:02d}:00", ""), (r["arrivals_per_day"], "n"),
                     (r["agents_active_mean"], "n"), (r["concurrency_peak"], "n"), (_num(r["concurrency_mean"], 2), "n"),
                     (_num(r["first_wait_mean_s"], 0), "n"), (_num(r["first_wait_p90_s"], 0), "n"),
                     (_pct(r["first_fail_rate"]), "n"), (_pct(r["reply_fail_rate"]), "n"),
                     ("集中" if r["fail_cluster"] else "", "bad" if r["fail_cluster"] else ""),
                     (r["recommended_agents"], "bad n" if r["understaffed"] else "n")])
    out.append(_table(["店铺", "时段", "到达/天", "在线客服", "并发峰值", "平均并发", "首条等待(s)", "P90(s)",
                       "首响失败率", "3分钟失败率", "失败", "建议客服"], rows, "staffing"))
    return "".join(out)


def render(views: ShopViews | None) -> str:
    """The four sections (those with data), in the order a manager works: alerts, questions, score, staffing."""
    if views is None:
        return ""
    return _alerts(views) + _topics(views) + _shop_score(views) + _staffing(views)
