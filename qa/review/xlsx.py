"""The reviewer's workbook: 复核 (one row per conversation), 消息 (one row per message), 说明, hidden _qa."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from qa.review.export import META_SHEET, REVIEW_SHEET, Column, record_chunks, row_values
from qa.review.mask import clip_cell, safe_cell
from qa.review.render import MARK_CLOSE, MARK_OPEN, POINTER, Segment, chat_segments, message_lines
from qa.rubric import Rubric
from qa.safety import printable

FONTS = {"span": InlineFont(b=True, color="C00000"), "line": InlineFont(b=True, color="1F4E79")}
FILLS = {"review": PatternFill("solid", fgColor="FFF2CC"), "model": PatternFill("solid", fgColor="DDEBF7"),
         "header": PatternFill("solid", fgColor="D9D9D9")}
WRAP = Alignment(wrap_text=True, vertical="top")
CENTER = Alignment(wrap_text=True, vertical="top", horizontal="center")
LINE_PT, HEADER_PT, MAX_ROW_PT = 17, 34, 409   # CJK fonts need ~17 pt a line; Excel's tallest row is 409 pt
MAX_CELL = 32_000


def rich(segments: list[Segment]) -> CellRichText | str:
    """Segments as Excel rich text: finding spans bold red, pointed-at message heads bold blue."""
    text = "".join(t for t, _ in segments)
    if len(text) > MAX_CELL:
        return safe_cell(text[:MAX_CELL] + "…（对话过长，全文见「消息」表）")
    if not any(style for _, style in segments):
        return safe_cell(text)
    return CellRichText([TextBlock(FONTS[style], printable(t)) if style else printable(t) for t, style in segments])


def _lines(text: str, width: float) -> int:
    """Lines a wrapped cell needs: a CJK character is about two width units."""
    per = max(int(width * 0.95), 1)
    return sum(max(1, -(-sum(2 if ord(ch) > 0x2E80 else 1 for ch in line) // per)) for line in text.split("\n"))


def write_xlsx(out: Path, masked: list[dict[str, Any]], cols: list[Column], meta: dict[str, Any],
               rubric: Rubric) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = REVIEW_SHEET
    ws.append([c.header for c in cols])
    for j, c in enumerate(cols, 1):
        cell = ws.cell(1, j)
        cell.font, cell.alignment = Font(bold=True), WRAP
        cell.fill = FILLS["review" if c.kind == "review" else "header"]
        ws.column_dimensions[get_column_letter(j)].width = c.width
    ws.row_dimensions[1].height = HEADER_PT
    for i, rec in enumerate(masked, 1):
        row = row_values(rec, i, rubric)
        r = i + 1
        height = 1
        for j, c in enumerate(cols, 1):
            value = row.get(c.header)
            cell = ws.cell(r, j)
            cell.value = rich(chat_segments(rec)) if c.kind == "chat" else clip_cell(safe_cell(value))
            cell.alignment = CENTER if c.width < 10 and c.kind != "info" else WRAP
            if c.kind in FILLS:
                cell.fill = FILLS[c.kind]
            if isinstance(value, str):
                height = max(height, _lines(value, c.width))
        ws.row_dimensions[r].height = min(height * LINE_PT + 4, MAX_ROW_PT)
    ws.freeze_panes = "C2"
    ws.print_title_rows = "1:1"
    _one_page_wide(ws)
    ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{max(len(masked) + 1, 2)}"
    _validation(ws, cols, meta, len(masked))
    _messages(wb.create_sheet("消息"), masked)
    _guide(wb.create_sheet("说明"), rubric, meta)
    hidden = wb.create_sheet(META_SHEET)
    hidden.sheet_state = "hidden"
    hidden.append([json.dumps(meta, ensure_ascii=False)])
    for rec in masked:   # column A is for people looking; import reads the JSON cells (they never start a formula)
        hidden.append([safe_cell(rec["id"]), *record_chunks(rec)])
    wb.calculation.fullCalcOnLoad = False   # nothing in the workbook is a formula; nothing to recalculate on open
    wb.save(out)


def _one_page_wide(ws) -> None:
    ws.page_setup.orientation, ws.page_setup.paperSize = "landscape", ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0


def _validation(ws, cols: list[Column], meta: dict[str, Any], n: int) -> None:
    levels = ",".join(str(x) for x in meta["scale"])
    dv = DataValidation(type="list", formula1=f'"{levels}"', allow_blank=True, showErrorMessage=True,
                        errorTitle="等级无效", error=f"请选择 {levels.replace(',', '/')} 之一",
                        promptTitle="复核等级", prompt=f"{levels.replace(',', '/')}（5 最好）", showInputMessage=True)
    ws.add_data_validation(dv)
    for j, c in enumerate(cols, 1):
        if c.header in meta["grades"]:
            letter = get_column_letter(j)
            dv.add(f"{letter}2:{letter}{max(n + 1, 2)}")


def _messages(ws, masked: list[dict[str, Any]]) -> None:
    ws.append(["会话ID", "消息"])
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 16, 100
    for c in ws[1]:
        c.font, c.fill = Font(bold=True), FILLS["header"]
    row = 1   # counted here: ws.max_row scans every cell, so asking it per message made the export quadratic
    for rec in masked:
        for head, body in message_lines(rec):
            ws.append([clip_cell(safe_cell(rec["id"])), rich([head, *body])])
            row += 1
            ws.cell(row, 2).alignment = WRAP
    ws.freeze_panes = "A2"
    _one_page_wide(ws)


_SEVERITY = {"red_line": "红线（整单不合格）", "major": "重要", "minor": "一般"}


def _guide(ws, rubric: Rubric, meta: dict[str, Any]) -> None:
    levels = "/".join(str(x) for x in meta["scale"])
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 22, 90
    rows = [("怎么填", f"在黄色列填写：每个「复核·」维度选 {levels}（下拉），「评审人」填姓名，「备注」写理由；"
                       f"「{meta['rules']}」可填规则名或 id，多个用逗号分隔。不要改列名、不要删行。"),
            ("标记", f"{MARK_OPEN}…{MARK_CLOSE} 红色：规则命中的原文片段；{POINTER} 蓝色：规则或模型依据所在的消息。"),
            ("隐私", "手机号、身份证号、银行卡号、详细地址已打码。"), ("", "")]
    for k in rubric.model_dimensions:
        d = rubric.dimensions[k]
        # the Chinese half of "中文 — English": the sheet is for Chinese reviewers
        rows.append((d.name, "\n".join(f"{lvl}: {str(desc).split(' — ')[0]}" for lvl, desc in d.levels.items())))
    rows.append(("", ""))
    rows += [(f"{r.name}", f"{rid} · {_SEVERITY.get(r.severity, r.severity)}") for rid, r in rubric.rules.items()]
    for a, b in rows:
        ws.append([clip_cell(safe_cell(a)), clip_cell(safe_cell(b))])
        ws.cell(ws.max_row, 1).font = Font(bold=True)
        ws.cell(ws.max_row, 1).alignment = ws.cell(ws.max_row, 2).alignment = WRAP
        ws.row_dimensions[ws.max_row].height = _lines(b, 90) * LINE_PT + 4
    _one_page_wide(ws)
