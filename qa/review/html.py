"""A self-contained, read-only HTML view of (masked) records: one card per conversation, no scripts.
Ids, shops and agents are formula-neutralised as in the spreadsheets (docs/security.md)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from qa.review.mask import safe_cell
from qa.review.render import deductions_text, findings_text, message_lines, model_text, pick_text
from qa.rubric import Rubric

CSS = """
body{font-family:"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222;background:#fafafa}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1em 1.2em;margin:0 0 1.5em}
h2{font-size:1.05em;margin:0 0 .4em} .meta{color:#666;font-size:.9em;margin-bottom:.6em}
.msg{margin:.25em 0;padding:.35em .6em;border-radius:6px;max-width:75%;white-space:pre-wrap}
.customer{background:#f1f1f1} .agent,.bot{background:#e3f0ff;margin-left:auto} .system{color:#888;font-size:.85em}
.head{color:#888;font-size:.8em} .pointed .head{color:#1f4e79;font-weight:bold}
mark{background:#ffd6d6;color:#c00000;font-weight:bold} pre{white-space:pre-wrap;font-family:inherit;margin:.3em 0}
.cols{display:flex;gap:2em} .cols>div{flex:1} .red{color:#c00000;font-weight:bold}
"""


def _card(rec: dict[str, Any], index: int, blind: bool) -> str:
    who = " · ".join(escape(str(safe_cell(x))) for x in (rec.get("platform"), rec.get("shop"), rec.get("agent"),
                                                          rec.get("day")) if x)
    head = f"<h2 id=\"c{index}\">{index}. {escape(safe_cell(rec['id']))}</h2><div class=meta>{who}"
    if not blind:
        red = " <span class=red>红线</span>" if rec.get("failed") else ""
        head += f" · {rec.get('score', '')} 分 {escape(str(rec.get('band') or ''))}{red}"
        if pick_text(rec):
            head += f" · 抽样: {escape(pick_text(rec))}"
    parts = [head + "</div>"]
    for m, (line, body) in zip(rec.get("messages") or [], message_lines(rec)):
        text = "".join(f"<mark>{escape(t)}</mark>" if style == "span" else escape(t) for t, style in body)
        cls = f"msg {escape(str(m.get('role')))}" + (" pointed" if line[1] else "")
        parts.append(f"<div class=\"{cls}\"><span class=head>{escape(line[0])}</span>{text}</div>")
    if not blind:
        parts.append(f"<div class=cols><div><b>模型</b><pre>{escape(model_text(rec))}</pre></div>"
                     f"<div><b>规则发现</b><pre>{escape(findings_text(rec)) or '无'}</pre></div>"
                     f"<div><b>扣分明细</b><pre>{escape(deductions_text(rec)) or '无'}</pre></div></div>")
    return "<section>" + "\n".join(parts) + "</section>"


def write_html(out: Path, masked: list[dict[str, Any]], rubric: Rubric, *, blind: bool = False) -> None:
    cards = "\n".join(_card(r, i, blind) for i, r in enumerate(masked, 1))
    doc = (f"<!doctype html><html lang=zh-CN><head><meta charset=utf-8><title>复核 · {escape(rubric.name)}</title>"
           f"<style>{CSS}</style></head><body><h1>复核 · {len(masked)} 个会话</h1>"
           "<p class=meta>【红色】规则命中的原文片段；▶ 蓝色：规则或模型依据所在的消息。个人信息已打码。</p>"
           f"{cards}</body></html>\n")
    out.write_text(doc, encoding="utf-8")
