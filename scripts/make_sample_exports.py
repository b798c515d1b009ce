"""Write data/samples/samples.jsonl out again as platform-style exports, one message per row.

    python scripts/make_sample_exports.py

douyin → douyin_feige.csv (GBK, as Chinese Excel saves), kuaishou → kuaishou.xlsx,
taobao → qianniu.csv (UTF-8 with BOM), tiktok → tiktok_shop.csv (UTF-8). Rows are sorted by time across
conversations, as back ends export them, so a conversation's rows are not contiguous.
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl

from qa.io import read_path
from qa.io.profiles import shipped_profiles

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
TARGETS = {"douyin": ("douyin_feige", "douyin_feige.csv", "gbk"), "kuaishou": ("kuaishou", "kuaishou.xlsx", None),
           "taobao": ("qianniu", "qianniu.csv", "utf-8-sig"), "tiktok": ("tiktok_shop", "tiktok_shop.csv", "utf-8")}


def rows_for(convs, profile):
    inv = {k: {v: c for c, v in reversed(list(getattr(profile, k).items()))} for k in ("roles", "types", "events")}
    cols = profile.columns
    header = list(cols.values())
    rows = []
    for c in convs:
        for m in c.messages:
            r = {f: None for f in cols}
            r.update(conversation_id=c.id, ts=m.ts.strftime("%Y-%m-%d %H:%M:%S"), role=inv["roles"][m.role],
                     sender=m.sender, type=inv["types"].get(m.type, m.type), shop=c.shop, agent=c.agent,
                     customer=c.customer)
            r["text"] = inv["events"].get(m.event, m.event) if m.type == "event" else m.text
            if c.rating and "stars" in cols:
                r["stars"] = c.rating.stars
            if c.rating and "rating_label" in cols:
                r["rating_label"] = c.rating.review_label
            rows.append((m.ts, [r[f] for f in cols]))
    rows.sort(key=lambda x: x[0])
    return header, [r for _, r in rows]


def main() -> None:
    import argparse
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()   # --help only: it takes no arguments
    convs = [c for c in read_path(SAMPLES / "samples.jsonl") if hasattr(c, "messages")]
    for platform, (pname, fname, enc) in TARGETS.items():
        header, rows = rows_for([c for c in convs if c.platform == platform], shipped_profiles()[pname])
        path = SAMPLES / fname
        if enc is None:
            wb = openpyxl.Workbook()
            ws = wb.active
            ws.title = "聊天记录"
            ws.append(header)
            for r in rows:
                ws.append(r)
            wb.save(path)
        else:
            # ¥ (U+00A5) is not in GBK: a GBK export writes the full-width ￥, as 飞鸽's does (it was written "?")
            fix = str.maketrans({"¥": "￥"}) if enc.lower() in ("gbk", "gb18030") else {}
            with open(path, "w", encoding=enc, newline="") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(["" if v is None else v.translate(fix) if isinstance(v, str) else v for v in r]
                            for r in rows)
        print(f"wrote {path}: {len(rows)} rows")


if __name__ == "__main__":
    main()
