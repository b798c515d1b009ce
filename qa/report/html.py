"""The self-contained report page: inline CSS and inline SVG charts, every text escaped, nothing fetched.

The rows it shows are masked by ``build_report``; table cells are also formula-neutralised (docs/security.md).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from qa.report import charts, shop_views
from qa.rubric import KPIS
from qa.safety import neutralise_cell

if TYPE_CHECKING:
    from qa.report.build import Report

KPI_LABELS = {"first_response_rate_2min": "2分钟首响率", "reply_rate_3min": "3分钟回复率",
              "avg_reply_s": "平均回复时长", "response_rate_24h": "24小时响应率",
              "satisfaction_rate": "满意率", "dissatisfaction_rate": "不满意率", "good_review_rate": "好评率"}
TREND = (("first_response_rate_2min", "#2563eb"), ("reply_rate_3min", "#ea580c"), ("satisfaction_rate", "#16a34a"))
KIND_LABELS = {"red_line": "红线", "rating": "差评", "slow": "回复慢"}
MAX_WARNINGS = 300

CSS = """
body{font-family:-apple-system,"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC",
  "WenQuanYi Micro Hei",sans-serif;margin:0;padding:24px 32px;color:#111827;background:#f9fafb;font-size:14px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px;border-left:4px solid #2563eb;padding-left:8px}
.meta{color:#6b7280;font-size:12px}
.note{background:#fef3c7;padding:8px 12px;border-radius:6px;margin:8px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:120px}
.card .v{font-size:20px;font-weight:600}.card .l,.card .t{font-size:12px;color:#6b7280}
.card.ok{border-top:3px solid #16a34a}.card.bad{border-top:3px solid #dc2626}
.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.panel{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px;overflow-x:auto}
.panel h3{font-size:14px;margin:0 0 6px}svg.chart{max-width:100%;height:auto}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;background:#fff;font-size:13px;margin-bottom:8px}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;white-space:nowrap}th{background:#f3f4f6}
tr:nth-child(even) td{background:#fafafa}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.ok{color:#15803d}td.bad{color:#b91c1c;font-weight:600}
td.wrap{white-space:normal;min-width:200px;max-width:420px}
.tag{display:inline-block;border-radius:4px;padding:0 5px;margin-right:3px;font-size:12px;color:#fff}
.tag.red_line{background:#b91c1c}.tag.rating{background:#ea580c}.tag.slow{background:#2563eb}
"""


def e(x: Any) -> str:
    """Escape any value for HTML text or an attribute; None reads as an en dash."""
    return "–" if x is None else escape(str(x), quote=True)


def fmt(kpi: str, v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.0f}s" if kpi == "avg_reply_s" else f"{v:.1%}"


def threshold_text(rep: Report, row: dict[str, Any], kpi: str) -> str:
    """The group's threshold in the KPI's own unit (``≥ 85%``, ``≤ 60s``); empty when none."""
    prof = rep.rubric.profiles.get(row["profile"])
    th = prof.kpis.get(kpi) if prof else None
    if th is None:
        return ""
    return " ".join(f"{op} {fmt(kpi, v).replace('.0%', '%')}" for op, v in (("≥", th.min), ("≤", th.max))
                    if v is not None)


def _kpi_cell(rep: Report, row: dict[str, Any], kpi: str) -> str:
    ok = row.get(f"{kpi}_pass")
    cls = "n" + ("" if ok is None else " ok" if ok else " bad")
    mark = "" if ok is None else " ✓" if ok else " ✗"
    th = threshold_text(rep, row, kpi)
    title = f' title="阈值 {e(th)}"' if th else ""
    return f'<td class="{cls}"{title}>{e(fmt(kpi, row[kpi]))}{mark}</td>'


def _table(head: list[str], rows: list[str]) -> str:
    return ('<div class="scroll"><table><thead><tr>' + "".join(f"<th>{e(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def _td(v: Any, cls: str = "") -> str:
    """A table cell: escaped, and neutralised like a spreadsheet cell (a table is often pasted into Excel)."""
    v = neutralise_cell(v)
    return f'<td class="{cls}">{e(v)}</td>' if cls else f"<td>{e(v)}</td>"


def _shown_kpis(rows: list[dict[str, Any]]) -> list[str]:
    return [k for k in KPIS if any(r[k] is not None or r[f"{k}_threshold"] for r in rows)]


def _cards(rep: Report, total: dict[str, Any]) -> str:
    cards = [("会话", str(rep.conversations), "", None), ("平均分", f"{total['mean_score']:.1f}", "", None),
             ("红线会话", str(total["failed"]), "", None if not total["failed"] else False),
             ("待跟进", str(len(rep.warnings)), "", None)]
    for k in _shown_kpis([total]):
        th = threshold_text(rep, total, k)
        cards.append((KPI_LABELS[k], fmt(k, total[k]), f"阈值 {th}" if th else "", total[f"{k}_pass"]))
    out = []
    for label, value, sub, ok in cards:
        cls = "card" + ("" if ok is None else " ok" if ok else " bad")
        out.append(f'<div class="{cls}"><div class="l">{e(label)}</div><div class="v">{e(value)}</div>'
                   f'<div class="t">{e(sub)}</div></div>')
    return '<div class="cards">' + "".join(out) + "</div>"


def _agent_name(rep: Report, a: dict[str, Any]) -> str:
    one_shop = len({x["shop"] for x in rep.agents}) == 1
    return a["agent"] if one_shop else f"{a['shop']} / {a['agent']}"


def _charts(rep: Report, total: dict[str, Any]) -> str:
    panels = [("分数分布 (每 10 分一档)", charts.histogram(rep.histogram, label="分数分布", width=520))]
    agents = sorted(rep.agents, key=lambda a: -(a["mean_score"] or 0))
    panels.append(("客服平均分", charts.hbars(
        [(_agent_name(rep, a), a["mean_score"], f"{_agent_name(rep, a)}: 平均 {a['mean_score']:.1f} 分, "
          f"{a['conversations']} 个会话") for a in agents], label="客服平均分", width=600)))
    if rep.dimensions:
        panels.append(("各维度平均等级 (客服 × 维度)", charts.heatmap(
            [_agent_name(rep, a) for a in agents], list(rep.dimensions.values()),
            [[a.get(f"dim_{k}") for k in rep.dimensions] for a in agents],
            label="各维度平均等级", lo=rep.rubric.worst, hi=rep.rubric.best)))
    days = [r for r in rep.kpis if r["level"] == "all_day" and r["day"] != "unknown"]
    if days:
        prof = rep.rubric.profiles.get(total["profile"])
        series = []
        for k, color in TREND:
            th = prof.kpis.get(k) if prof else None
            series.append((KPI_LABELS[k], color, [r[k] for r in days], th.min if th else None))
        panels.append(("KPI 按天趋势", charts.trend([r["day"] for r in days], series, label="KPI 按天趋势")))
    return '<div class="charts">' + "".join(f'<div class="panel"><h3>{e(t)}</h3>{svg}</div>'
                                            for t, svg in panels) + "</div>"


def _kpi_table(rep: Report, rows: list[dict[str, Any]], keys: list[tuple[str, str]]) -> str:
    shown = _shown_kpis(rows)
    head = [label for _, label in keys] + ["会话", "平均分", "红线"] + [KPI_LABELS[k] for k in shown]
    body = ["<tr>" + "".join(_td(r[k]) for k, _ in keys) + _td(r["conversations"], "n")
            + _td(f"{r['mean_score']:.1f}", "n") + _td(r["failed"], "n")
            + "".join(_kpi_cell(rep, r, k) for k in shown) + "</tr>" for r in rows]
    return _table(head, body)


def _agents_table(rep: Report) -> str:
    head = ["店铺", "客服", "会话", "平均分", "中位数", "最低", "红线", "优秀", "良好", "合格", "不合格"]
    head += ["最弱维度 (平均等级)", "最常见问题 (会话数)"]  # the per-dimension levels are in the heatmap
    body = []
    for a in rep.agents:
        cells = [_td(a["shop"]), _td(a["agent"]), _td(a["conversations"], "n")]
        cells += [_td(f"{a[k]:.1f}", "n") for k in ("mean_score", "median_score", "min_score")]
        cells += [_td(a["failed"], "n")]
        cells += [_td(a[b], "n") for b in ("优秀", "良好", "合格", "不合格")]
        cells += [_td(a["weakest"] or "–", "wrap"), _td(a["top_findings"] or "–", "wrap")]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return _table(head, body)


def _warnings_table(rep: Report) -> str:
    if not rep.warnings:
        return "<p>没有需要跟进的会话。</p>"
    head = ["类型", "店铺", "客服", "日期", "会话", "分数", "原因", "证据"]
    body = []
    for w in rep.warnings[:MAX_WARNINGS]:
        tags = "".join(f'<span class="tag {e(k)}">{e(KIND_LABELS.get(k, k))}</span>'
                       for k in w["kinds"].split(";"))
        cells = [_td(w[k]) for k in ("shop", "agent", "day", "id")]
        cells += [_td(f"{w['score']:.1f}", "n"), _td(w["reasons"], "wrap"), _td(w["evidence"], "wrap")]
        body.append(f"<tr><td>{tags}</td>" + "".join(cells) + "</tr>")
    more = (f'<p class="meta">只列出前 {MAX_WARNINGS} 条，共 {len(rep.warnings)} 条，全部见 warnings.csv。</p>'
            if len(rep.warnings) > MAX_WARNINGS else "")
    return _table(head, body) + more


def render_html(rep: Report) -> str:
    """The whole page as one string."""
    total = next(r for r in rep.kpis if r["level"] == "all")
    days = sorted(r["day"] for r in rep.kpis if r["level"] == "all_day" and r["day"] != "unknown")
    span = f"{days[0]} – {days[-1]}" if days else "–"
    profile = rep.profile or "、".join(sorted({r["profile"] for r in rep.kpis if r["level"] == "shop"}, key=str))
    shops = len({a["shop"] for a in rep.agents})
    meta = (f"{rep.conversations} 个会话 · {shops} 个店铺 · {len(rep.agents)} 位客服 · 日期 {span} · "
            f"平台标准 {profile} · 评分标准 {rep.rubric.name} · 生成于 {rep.generated}")
    notes = "".join(f'<div class="note">{e(n)}</div>' for n in rep.notes)
    by = {lvl: [r for r in rep.kpis if r["level"] == lvl] for lvl in ("shop", "agent", "day")}
    parts = [
        f"<h1>客服质检报告</h1><div class=\"meta\">{e(meta)}</div>",
        f'<div class="meta">数据: {e(", ".join(str(p) for p in rep.inputs))}</div>{notes}',
        "<h2>总体 KPI</h2>", _cards(rep, total),
        "<h2>图表</h2>", _charts(rep, total),
        "<h2>按店铺</h2>", _kpi_table(rep, by["shop"], [("shop", "店铺")]),
        "<h2>按客服</h2>", _kpi_table(rep, by["agent"], [("shop", "店铺"), ("agent", "客服")]),
        "<h2>按天</h2>", _kpi_table(rep, by["day"], [("shop", "店铺"), ("day", "日期")]),
        "<h2>客服分数与最弱维度</h2>", _agents_table(rep),
        f"<h2>待跟进 ({len(rep.warnings)})</h2>", _warnings_table(rep),
        shop_views.render(rep.views),
        '<p class="meta">KPI 定义见 docs/metrics.md；✓/✗ 为对照平台阈值的达标情况。'
        "CSV: kpis.csv, agents.csv, warnings.csv。</p>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>客服质检报告</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>\n")
