import json
import tracemalloc

import openpyxl
import pytest

from qa.errors import InputError
from qa.io import ReadStats, Reject, read_many, read_path
from qa.schema import Conversation, parse_ts
from tests.conftest import ROOT, STC3

GOOD = {"id": "g1", "platform": "douyin", "shop": "小鹿女装", "order_id": "A123",
        "messages": [{"role": "customer", "type": "text", "text": "請問這個有現貨嗎", "ts": "2026-03-02T10:00:00+08:00"},
                     {"role": "agent", "type": "text", "text": "亲亲有的呢", "ts": 1772416830, "emoji_count": 0}]}


def _jsonl(tmp_path, *lines, name="in.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _read(path, **kw):
    stats = ReadStats()
    items = list(read_many([path], stats, **kw))
    assert stats.read == stats.accepted + stats.rejected == len(items)
    return items, stats


def test_ingest_jsonl_good_record_keeps_extra_fields_and_original_text(tmp_path):
    (c,), _ = _read(_jsonl(tmp_path, json.dumps(GOOD, ensure_ascii=False)))
    assert isinstance(c, Conversation)
    assert c.messages[0].text == "請問這個有現貨嗎"           # original kept for display
    assert c.messages[0].norm == "请问这个有现货吗"           # simplified for analysis
    rec = c.to_record()
    assert rec["order_id"] == "A123" and rec["messages"][1]["emoji_count"] == 0
    assert rec["messages"][1]["ts"] == "2026-03-02T10:00:30+08:00"  # epoch seconds read in Asia/Shanghai


@pytest.mark.parametrize("line,field,reason", [
    ('{"id": "x", "messages": [', None, "bad JSON"),
    ('{"messages": [{"role": "agent", "text": "hi", "ts": 1}]}', "id", "required"),
    ('{"id": "x", "messages": []}', "messages", "no messages"),
    ('{"id": "x"}', "messages", "required"),
    ('{"id": "x", "messages": [{"role": "agent", "text": "hi", "ts": "昨天"}]}', "messages.0.ts", "unparseable time"),
    ('{"id": "x", "messages": [{"role": "buyer", "text": "hi", "ts": 1}]}', "messages.0.role", "unknown role"),
    ('{"id": "x", "messages": [{"role": "agent", "type": "gif", "ts": 1}]}', "messages.0.type", "unknown type"),
    ('["not", "an", "object"]', None, "not a JSON object"),
    ('{"id": "x", "rating": {"stars": 7}, "messages": [{"role": "agent", "text": "hi", "ts": 1}]}',
     "rating.stars", "less than or equal to 5"),
])
def test_ingest_jsonl_bad_records_are_rejected_with_line_and_field(tmp_path, line, field, reason):
    path = _jsonl(tmp_path, json.dumps(GOOD), line, json.dumps({**GOOD, "id": "g2"}))
    items, stats = _read(path)
    assert (stats.accepted, stats.rejected) == (2, 1)
    rej = items[1]
    assert isinstance(rej, Reject) and rej.line == 2 and rej.file == str(path)
    assert rej.field == field and reason in rej.reason


def test_ingest_jsonl_blank_lines_skipped_and_bom_accepted(tmp_path):
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n\n\n" + json.dumps({**GOOD, "id": "g2"}).encode())
    items, stats = _read(p)
    assert stats.accepted == 2 and [c.id for c in items] == ["g1", "g2"]


def test_ingest_message_oddities_are_flagged_not_dropped(tmp_path):
    rec = {"id": "odd", "messages": [
        {"role": "agent", "text": "在的亲", "ts": "2026-03-02T10:00:30+08:00"},
        {"role": "customer", "text": "在吗", "ts": "2026-03-02T10:00:00+08:00"},
        {"role": "customer", "text": "", "ts": "2026-03-02T10:01:00+08:00"},
        {"role": "agent", "text": "好的", "ts": None}]}
    (c,), stats = _read(_jsonl(tmp_path, json.dumps(rec)))
    assert stats.accepted == 1 and stats.repaired == 1
    assert [m.text for m in c.messages][:2] == ["在吗", "在的亲"]
    assert set(c.warnings) == {"out_of_order_ts", "empty_text:2", "missing_ts:3"}


def test_ingest_unknown_platform_becomes_other_with_warning(tmp_path):
    (c,), _ = _read(_jsonl(tmp_path, json.dumps({**GOOD, "platform": "京东"})))
    assert c.platform == "other" and "unknown_platform:京东" in c.warnings
    (c,), _ = _read(_jsonl(tmp_path, json.dumps({**GOOD, "platform": "千牛"})))
    assert c.platform == "taobao"


def test_ingest_platform_option_fills_only_records_that_name_none(tmp_path):
    bare = {k: v for k, v in GOOD.items() if k != "platform"}
    path = _jsonl(tmp_path, *(json.dumps({**r, "id": f"c{n}"}, ensure_ascii=False) for n, r in
                              enumerate([bare, GOOD, {**GOOD, "platform": "京东"}, {**GOOD, "platform": "other"}])))
    items, stats = _read(path, platform="千牛")
    assert [c.platform for c in items] == ["taobao", "douyin", "other", "taobao"]   # 京东 was named: kept
    assert stats.accepted == 4
    assert [c.platform for c in _read(path)[0]] == ["other", "douyin", "other", "other"]
    with pytest.raises(InputError, match="unknown platform 'jd'") as e:
        list(read_path(path, platform="jd"))
    assert e.value.field == "platform"


@pytest.mark.parametrize("value,iso", [
    ("2026-03-02T10:00:00+08:00", "2026-03-02T10:00:00+08:00"),
    ("2026-03-02T02:00:00Z", "2026-03-02T10:00:00+08:00"),
    ("2026-03-02 10:00:00", "2026-03-02T10:00:00+08:00"),     # naive: Asia/Shanghai
    ("2026/03/02 10:00:00", "2026-03-02T10:00:00+08:00"),
    (1772416800, "2026-03-02T10:00:00+08:00"),                # epoch seconds
    (1772416800000, "2026-03-02T10:00:00+08:00"),             # epoch ms
    ("1772416800", "2026-03-02T10:00:00+08:00"),
    ("2026/3/2 10:00", "2026-03-02T10:00:00+08:00"),           # as Excel saves a CSV: unpadded, to the minute
    ("2026-3-2 10:00:00", "2026-03-02T10:00:00+08:00"),
    ("2026.03.02 10:00:00", "2026-03-02T10:00:00+08:00"),
    ("2026年3月2日 10:00:00", "2026-03-02T10:00:00+08:00"),
    ("2026年03月02日 10时00分00秒", "2026-03-02T10:00:00+08:00"),
])
def test_ingest_parse_ts_forms(value, iso):
    assert parse_ts(value).astimezone(parse_ts(iso).tzinfo).isoformat() == iso


@pytest.mark.parametrize("value", ["2026-13-02 10:00", "2026-3-2 25:10", "2026-3-2 9:10 xx", "10:00:00", "abc"])
def test_ingest_parse_ts_refuses_other_text(value):
    with pytest.raises(ValueError, match="unparseable time"):
        parse_ts(value)


HEADER = ["会话ID", "消息时间", "发送方", "发送方昵称", "消息类型", "消息内容", "店铺名称", "接待客服", "评价星级"]
ROWS = [
    ["s1", "2026-03-02 10:00:00", "买家", "小王", "文本", "這件有M碼嗎", "小鹿女装", "", ""],
    ["s2", "2026-03-02 11:00:00", "买家", "小李", "图片", "", "小鹿女装", "", ""],
    ["s1", "2026-03-02 10:00:40", "客服", "小美", "文本", "亲亲有的呢", "小鹿女装", "小美", "5"],
    ["s2", "2026-03-02 11:00:20", "系统", "", "系统消息", "转人工", "小鹿女装", "", ""],
    ["s2", "2026-03-02 11:01:00", "客服", "小美", "文本", "亲亲想问这款的什么呢", "小鹿女装", "小美", ""],
]


def _csv(tmp_path, encoding, rows=ROWS, header=HEADER, name="douyin.csv"):
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    p = tmp_path / name
    p.write_bytes(buf.getvalue().encode(encoding))
    return p


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_ingest_csv_encodings_and_grouping(tmp_path, encoding):
    items, stats = _read(_csv(tmp_path, encoding))
    assert stats.accepted == 2 and stats.rejected == 0
    s1, s2 = items
    assert s1.id == "s1" and s1.platform == "douyin" and s1.shop == "小鹿女装"
    assert [m.role for m in s1.messages] == ["customer", "agent"] and s1.messages[0].text == "這件有M碼嗎"
    assert s1.rating.stars == 5 and s1.agent == "小美"
    assert [m.type for m in s2.messages] == ["image", "event", "text"]
    assert s2.messages[1].event == "transfer_to_human"


def test_ingest_csv_bad_row_rejects_its_conversation_naming_line_and_column(tmp_path):
    rows = ROWS + [["s3", "明天上午", "买家", "", "文本", "在吗", "", "", ""],
                   ["s4", "2026-03-02 12:00:00", "路人", "", "文本", "在吗", "", "", ""],
                   ["", "2026-03-02 12:00:00", "买家", "", "文本", "在吗", "", "", ""]]
    path = _csv(tmp_path, "utf-8", rows)
    items, stats = _read(path)
    rejects = {r.id: r for r in items if isinstance(r, Reject)}
    assert stats.accepted == 2 and stats.rejected == 3
    assert rejects["s3"].line == 7 and rejects["s3"].field == "消息时间" and "unparseable time" in rejects["s3"].reason
    assert rejects["s4"].line == 8 and rejects["s4"].field == "发送方" and "unknown role" in rejects["s4"].reason
    assert rejects[None].line == 9 and rejects[None].field == "会话ID"


def test_ingest_csv_missing_column_is_one_clear_reject(tmp_path):
    header = [h for h in HEADER if h != "发送方"]
    rows = [[c for i, c in enumerate(r) if HEADER[i] != "发送方"] for r in ROWS]
    items, stats = _read(_csv(tmp_path, "utf-8", rows, header), columns="douyin_feige")
    assert stats.rejected == 1 and stats.accepted == 0
    assert items[0].field == "发送方" and "missing column" in items[0].reason


def test_ingest_csv_unknown_header_names_shipped_profiles(tmp_path):
    items, _ = _read(_csv(tmp_path, "utf-8", [["a", "b"]], ["foo", "bar"]))
    assert "no column profile fits" in items[0].reason and "douyin_feige" in items[0].reason


def test_ingest_empty_files_give_no_records(tmp_path):
    for name in ("empty.csv", "empty.jsonl"):
        p = tmp_path / name
        p.write_text("")
        items, stats = _read(p)
        assert items == [] and stats.read == 0


def test_ingest_xlsx_with_datetime_cells(tmp_path):
    import datetime as dt
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["会话编号", "发送时间", "角色", "昵称", "内容类型", "内容", "店铺", "客服账号", "买家ID", "评价"])
    ws.append(["k1", dt.datetime(2026, 3, 2, 9, 0), "用户", "老铁", "文字", "苹果坏了两个", "果园", None, "u1", None])
    ws.append(["k1", dt.datetime(2026, 3, 2, 9, 1), "客服", "阿花", "文字", "亲发个图片给我看看", "果园", "阿花", "u1", "满意"])
    p = tmp_path / "ks.xlsx"
    wb.save(p)
    (c,), _ = _read(p)
    assert c.platform == "kuaishou" and c.rating.label == "满意" and c.customer == "u1"
    assert c.messages[0].ts.isoformat() == "2026-03-02T09:00:00+08:00"


def test_ingest_user_profile_yaml(tmp_path):
    prof = tmp_path / "mine.yaml"
    prof.write_text("name: mine\nplatform: taobao\ncolumns: {conversation_id: sid, ts: t, role: who, text: msg}\n"
                    "roles: {B: customer, S: agent}\n", encoding="utf-8")
    p = _csv(tmp_path, "utf-8", [["1", "2026-03-02 10:00:00", "B", "hi"], ["1", "2026-03-02 10:00:09", "S", "您好"]],
             ["sid", "t", "who", "msg"])
    (c,), _ = _read(p, columns=str(prof))
    assert c.platform == "taobao" and [m.role for m in c.messages] == ["customer", "agent"]


def test_ingest_unknown_format_and_missing_file(tmp_path):
    from qa.errors import InputError
    with pytest.raises(InputError, match="no such file"):
        list(read_path(tmp_path / "nope.jsonl"))
    (tmp_path / "x.docx").write_text("x")
    with pytest.raises(InputError, match="unknown input format"):
        list(read_path(tmp_path / "x.docx"))


def test_ingest_large_jsonl_is_streamed(tmp_path):
    p = tmp_path / "big.jsonl"
    with open(p, "w", encoding="utf-8") as f:
        for i in range(20000):
            f.write(json.dumps({**GOOD, "id": f"c{i}"}, ensure_ascii=False) + "\n")
    size = p.stat().st_size
    tracemalloc.start()
    n = sum(1 for _ in read_path(p))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 20000
    assert peak < size / 10, (peak, size)  # holds one record at a time, not the file


def test_ingest_dialeval_shape(tmp_path):
    d = [{"id": "1", "turns": [{"sender": "customer", "utterances": ["手机坏了", "怎么办"]},
                               {"sender": "helpdesk", "utterances": ["您好，请私信"]}],
          "annotations": [{"quality": {"A": 1, "S": 0, "E": 1}, "nugget": ["CNUG0", "HNUG"]}] * 2},
         {"id": "2", "turns": "broken"}]
    p = tmp_path / "d.json"
    p.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    items, stats = _read(p)
    assert stats.accepted == 1 and stats.rejected == 1 and items[1].line == 2
    c = items[0]
    assert [m.role for m in c.messages] == ["customer", "agent"] and c.messages[0].text == "手机坏了\n怎么办"
    assert len(c.labels["reviews"]) == 2 and c.labels["reviews"][0]["grades"] == {"A": 1, "S": 0, "E": 1}


@pytest.mark.skipif(not STC3.exists(), reason="../shared/data/stc3 is not present")
def test_ingest_stc3_file_reads_whole():
    stats = ReadStats()
    convs = [c for c in read_many([STC3], stats) if isinstance(c, Conversation)]
    assert stats.accepted == 3000 and stats.rejected == 0
    assert all(len(c.labels["reviews"]) == 19 for c in convs[:50])


def test_ingest_jsonl_event_named_only_in_text_takes_it_as_its_event(tmp_path):
    """{"type": "event", "text": "transfer_to_human"} is the transfer, as in the CSV/XLSX readers: timing counts
    the first response from it."""
    rec = {"id": "e1", "platform": "douyin", "messages": [
        {"role": "customer", "type": "text", "text": "转人工", "ts": "2026-03-02T10:00:00+08:00"},
        {"role": "system", "type": "event", "text": "transfer_to_human", "ts": "2026-03-02T10:05:00+08:00"},
        {"role": "agent", "type": "text", "text": "您好", "ts": "2026-03-02T10:05:30+08:00"}]}
    p = tmp_path / "e.jsonl"
    p.write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    (conv,) = list(read_path(p))
    assert conv.messages[1].event == "transfer_to_human" and conv.messages[1].text == "transfer_to_human"
    from qa.rubric import load_rubric
    from qa.timing import compute_timing
    assert compute_timing(conv, load_rubric()).first_response_s == 30


def test_export_role_auto_reply_reads_as_the_bot(tmp_path):
    """千牛's 自动回复 sender role (and 阿里店小蜜, 智能客服) is the shop's robot, like 店小蜜."""
    from qa.io import Reject, read_many
    head = "会话ID,时间,发送方角色,发送人,消息类别,聊天内容,店铺,客服,买家昵称,服务评价\n"
    rows = ["t1,2026-03-02 09:10:27,买家,,文本,这个有货吗,店,小柚,t_1,5",
            "t1,2026-03-02 09:10:28,自动回复,,文本,亲，欢迎光临,店,小柚,t_1,5",
            "t1,2026-03-02 09:10:29,阿里店小蜜,,文本,正在为您转接,店,小柚,t_1,5",
            "t1,2026-03-02 09:13:40,客服,小柚,文本,您好 有货的,店,小柚,t_1,5"]
    path = tmp_path / "qianniu.csv"
    path.write_text(head + "\n".join(rows) + "\n", encoding="utf-8-sig")
    (conv,) = [c for c in read_many([str(path)]) if not isinstance(c, Reject)]
    assert [m.role for m in conv.messages] == ["customer", "bot", "bot", "agent"]


def test_export_role_synonyms_read_as_their_side(tmp_path):
    """飞鸽 exports that call the sides 顾客 / 客户 and 商家 / 商家客服 read without rejects."""
    from qa.io import Reject, read_many
    path = tmp_path / "feige.csv"
    path.write_text("会话ID,消息时间,发送方,发送方昵称,消息类型,消息内容,店铺名称,接待客服,评价星级\n"
                    "s1,2026-03-02 10:00:00,顾客,小王,文本,有M码吗,小鹿女装,,\n"
                    "s1,2026-03-02 10:00:40,商家,小美,文本,亲亲有的呢,小鹿女装,小美,5\n"
                    "s1,2026-03-02 10:01:00,客户,小王,文本,好的,小鹿女装,,\n"
                    "s1,2026-03-02 10:01:20,商家客服,小美,文本,感谢支持,小鹿女装,小美,5\n", encoding="utf-8")
    (conv,) = list(read_many([str(path)]))
    assert not isinstance(conv, Reject)
    assert [m.role for m in conv.messages] == ["customer", "agent", "customer", "agent"]


def test_export_voice_file_and_link_messages_are_kept_as_text(tmp_path):
    """A voice, file, location or link message (消息类型 语音 / 文件 / 位置 / 链接) is kept as a text message with its
    placeholder, not a reject of the whole conversation; a 商品链接 is a product card."""
    from qa.io import Reject, read_many
    path = tmp_path / "feige.csv"
    path.write_text("会话ID,消息时间,发送方,发送方昵称,消息类型,消息内容,店铺名称,接待客服,评价星级\n"
                    "s1,2026-03-02 10:00:00,买家,小王,语音,[语音],小鹿女装,,\n"
                    "s1,2026-03-02 10:00:30,买家,小王,商品链接,夏季冰丝阔腿裤,小鹿女装,,\n"
                    "s1,2026-03-02 10:00:40,客服,小美,文本,亲亲 语音听不了 打字哦,小鹿女装,小美,5\n"
                    "s1,2026-03-02 10:00:50,客服,小美,链接,https://haohuo.jinritemai.com/x,小鹿女装,小美,5\n",
                    encoding="utf-8")
    (conv,) = list(read_many([str(path)]))
    assert not isinstance(conv, Reject)
    assert [m.type for m in conv.messages] == ["text", "product_card", "text", "text"]
    assert conv.messages[0].text == "[语音]"


def test_a_repeated_id_is_rejected_with_its_line_and_the_first_ones(tmp_path):
    lines = (ROOT / "data" / "samples" / "samples.jsonl").read_text("utf-8").splitlines()
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("\n".join([lines[0], lines[1], lines[0]]) + "\n", encoding="utf-8")
    b.write_text("\n".join([lines[2], lines[1]]) + "\n", encoding="utf-8")
    got = [r for r in read_many([a, b], ReadStats(), unique_ids=True) if isinstance(r, Reject)]
    assert [(r.file, r.line, r.field) for r in got] == [(str(a), 3, "id"), (str(b), 2, "id")]
    assert "earlier in this file at line 1" in got[0].reason and f"first read in {a} at line 2" in got[1].reason


@pytest.mark.parametrize("indent", [None, 2])
def test_a_json_list_of_our_own_records_is_read_as_records(tmp_path, indent):
    """It fell through to the JSONL reader: one 'bad JSON' reject per line, or one for the whole list."""
    recs = [json.loads(ln) for ln in (ROOT / "data" / "samples" / "samples.jsonl").read_text("utf-8").splitlines()[:3]]
    p = tmp_path / "chats.json"
    p.write_text(json.dumps([*recs, {"id": "bad", "messages": "x"}], ensure_ascii=False, indent=indent), "utf-8")
    got = list(read_path(p))
    assert [c.id for c in got[:3]] == [r["id"] for r in recs] and [c._line for c in got[:3]] == [1, 2, 3]
    assert isinstance(got[3], Reject) and (got[3].line, got[3].field) == (4, "messages")


@pytest.mark.parametrize("word,label", [("好评", "满意"), ("非常满意", "满意"), ("中评", "一般"), ("差评", "失望"),
                                        ("不满意", "失望"), (" 满意 ", "满意"), ("", None)])
def test_an_exports_word_for_a_rating_label_is_read_as_the_label(word, label):
    c = Conversation.model_validate({"id": "x", "messages": [{"role": "customer", "text": "在吗"}],
                                     "rating": {"label": word}})
    assert c.rating.label == label
