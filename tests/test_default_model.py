"""The shipped default on short real-shop chats: brevity that gives the fact asked is not poor service."""

from __future__ import annotations

from qa.io import read_path
from tests.conftest import ROOT


def test_default_model_does_not_read_short_factual_replies_as_poor_professionalism():
    from qa.model.predict import Classifier
    convs = list(read_path(ROOT / "tests" / "data" / "short_replies.jsonl"))
    assert len(convs) == 4
    preds = Classifier(ROOT / "models" / "default").predict(convs)
    for conv, p in zip(convs, preds):
        assert p["professionalism"].level >= 4, (conv.id, p["professionalism"].level)
        assert min(p[d].level for d in ("attitude", "etiquette", "professionalism", "clarity")) >= 3, conv.id


def test_eval_platform_option_reads_unnamed_chats_as_that_platform(tmp_path):
    """``qa eval --platform taobao`` on written Taobao chats whose records lost their platform reports what it
    reports when the records name it."""
    import json

    from qa.model.evaluate import evaluate
    rows = [json.loads(line) for line in (ROOT / "data/labelled/eval/eval_eval-f.jsonl").read_text(encoding="utf-8")
            .splitlines() if '"taobao"' in line][:12]
    assert len(rows) == 12 and all(r["platform"] == "taobao" for r in rows)
    named, bare = tmp_path / "named.jsonl", tmp_path / "bare.jsonl"
    named.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    bare.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "platform"}, ensure_ascii=False) + "\n"
                            for r in rows), encoding="utf-8")
    model = ROOT / "models" / "default"
    want = evaluate(model, [str(named)], baselines=False)["systems"]
    assert evaluate(model, [str(bare)], baselines=False, platform="千牛")["systems"] == want
    assert evaluate(model, [str(bare)], baselines=False)["systems"] != want     # read as `other`: graded apart


def test_default_model_raises_upset_customers_the_phrase_list_misses_with_a_text_message_as_evidence():
    """The shipped network's negative_emotion_unsoothed head (a model flag with no turn label): on written chats
    whose reviewers flagged an unsoothed upset customer that the rule's phrase list does not see, it raises the
    flag; its evidence is a message typed as text, never an image or a card."""
    import json

    from qa.model.flags import flag_targets
    from qa.model.predict import Classifier
    from qa.rubric import load_rubric
    from qa.rules import RuleEngine
    from qa.timing import compute_timing
    dev = set((ROOT / "data/labelled/dev_ids.txt").read_text(encoding="utf-8").split())
    rubric = load_rubric(None)
    engine = RuleEngine(rubric)
    convs = [c for f in ("c", "d", "e") for c in read_path(str(ROOT / f"data/labelled/hand/train_hand-{f}.jsonl"))
             if c.id in dev]
    convs += [c for c in list(read_path(str(ROOT / "data/labelled/gen/gen.jsonl")))[:3000] if c.id in dev]
    clf = Classifier(ROOT / "models/default")
    timings = [compute_timing(c, rubric) for c in convs]
    findings = [engine.check(c, t) for c, t in zip(convs, timings)]
    preds = clf.predict_all(convs, findings=findings, timings=timings)
    found = missed = 0
    for c, fs, p in zip(convs, findings, preds):
        gold = flag_targets(c, ["negative_emotion_unsoothed"]).get("negative_emotion_unsoothed", 0) >= 0.5
        rule = any(f.rule == "negative_emotion_unsoothed" for f in fs)
        raised = [r for r in p.raised if r.rule == "negative_emotion_unsoothed"]
        for r in raised:
            assert r.message is not None and c.messages[r.message].type == "text", json.dumps(c.id)
        if gold and not rule:
            found += bool(raised)
            missed += not raised
    assert found >= 10 and found > 2 * missed   # 14 of 19 when written


def test_eval_scores_rule_flags_like_the_bench_and_grade_combine_them(tmp_path):
    """``qa eval`` reports rule flags against the first review, rules alone and rules + model: the same counts as
    ``bench/rules_vs_labels.py`` (both from ``qa.model.flag_scores``), and rules + model are the findings ``qa grade``
    writes (the model's flags added, the vetoes applied)."""
    import json

    from qa.grader import Grader, GradeSettings
    from qa.model.evaluate import evaluate
    from qa.model.flag_scores import gold_flags
    path = ROOT / "data/labelled/eval/eval_eval-g.jsonl"
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()][:40]
    rows[0]["labels"]["reviews"] = [{k: v for k, v in r.items() if k != "rules"} for r in rows[0]["labels"]["reviews"]]
    rows[0]["labels"]["reviews"][0]["grades"] = rows[1]["labels"]["reviews"][0]["grades"]   # grades, no flags
    data = tmp_path / "e.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    flags = evaluate(ROOT / "models" / "default", [str(data)], baselines=False)["flags"]
    convs = list(read_path(data))
    scored = [c for c in convs if gold_flags(c) is not None]
    assert flags["chats"] == len(scored) == 39                    # the chat whose review lists no rules is left out
    graded = Grader.from_settings(GradeSettings(messages=False)).grade_batch(scored)
    for rule, m in flags["systems"]["rules+model"].items():
        if rule == "micro" or rule == "slow_first_response":
            continue
        fired = [any(f["rule"] == rule for f in g.findings) for g in graded]
        gold = [rule in gold_flags(c) for c in scored]
        assert m["predicted"] == sum(fired) and m["gold"] == sum(gold), rule
        tp = sum(a and b for a, b in zip(fired, gold))
        assert m["f1"] == (2 * tp / (sum(fired) + sum(gold)) if sum(fired) + sum(gold) else None), rule
    micro = flags["systems"]["rules+model"]["micro"]
    assert micro["f1"] >= flags["systems"]["rules"]["micro"]["f1"] - 0.05 and micro["gold"] > 0


def _graded_cases(name: str):
    """The chats of ``tests/data/NAME`` with the rules' findings alone and, as ``qa grade`` combines them, the rules'
    findings plus the default model's raised flags: (conversation, rules' findings, combined findings, prediction)."""
    from qa.analysis import analyse
    from qa.grader import Grader
    from qa.model.predict import Classifier
    from qa.rubric import load_rubric
    from qa.rules import RuleEngine
    rubric = load_rubric()
    engine = RuleEngine(rubric)
    convs = list(read_path(ROOT / "tests" / "data" / name))
    grader = Grader(rubric, engine=engine, classifier=Classifier(ROOT / "models" / "default"))
    analyses = [analyse(c, rubric, engine) for c in convs]
    combined, preds = grader.with_model(convs, analyses)
    return [(c, a.findings, b.findings, p) for c, a, b, p in zip(convs, analyses, combined, preds)]


def test_default_model_raises_questions_answered_with_a_pitch_and_not_short_complete_answers():
    """Written for this check (session 35, `tests/data/unanswered_cases.jsonl`): a question met with a sales pitch or
    a selling point in place of the fact (ua-*) is an unanswered question, found by the model where the rules see a
    reply with facts in it; short complete answers, two facts in one reply and a hold line followed by the answer
    (ok-*) are not. As `qa grade` combines them: the rules' findings plus the model's raised flags."""
    cases = _graded_cases("unanswered_cases.jsonl")
    assert len(cases) == 6
    for conv, _, findings, p in cases:
        found = [f for f in findings if f.rule == "unanswered_question"]
        assert bool(found) == conv.id.startswith("ua-"), (conv.id, found, p.flags["unanswered_question"])
        if found:   # the evidence is the customer's question
            assert conv.messages[found[0].message].role == "customer", (conv.id, found[0].message)


def test_default_model_finds_mockery_and_data_asks_and_spares_civil_replies_and_needed_data():
    """Written for this check (session 36, `tests/data/civility_privacy_cases.jsonl`): an agent who mocks the customer's
    small order (unc-3: found by the model alone) or blames them with a rude emoji (unc-2), and one who reveals a prize
    winner's phone and address or asks for a login password or a spouse's ID (priv-*) raise the flag; an apology to an
    angry customer, a husky's coat size, a train ticket's legal real-name and a customer told to withdraw the ID they
    sent (ok-*) raise neither. As `qa grade` combines them: the rules' findings plus the model's raised flags."""
    cases = _graded_cases("civility_privacy_cases.jsonl")
    assert len(cases) == 9
    for conv, rules_alone, findings, _ in cases:
        found = {f.rule: f for f in findings if f.rule in ("uncivil_language", "privacy_leak")}
        want = {"unc": {"uncivil_language"}, "priv": {"privacy_leak"}, "ok": set()}[conv.id.split("-")[0]]
        assert set(found) == want, (conv.id, found)
        for f in found.values():   # the evidence is the agent's message
            assert conv.messages[f.message].role == "agent", (conv.id, f.message)
        if conv.id == "unc-3":   # the rules alone miss it
            assert not any(f.rule == "uncivil_language" for f in rules_alone)


def test_rule_probe_bench_counts_the_findings_grade_writes(tmp_path):
    """``bench/rule_probe.py --model`` scores the findings ``qa grade`` writes: the model's raised flags added and its
    vetoes applied (before session 37 it left the vetoes out and counted rule findings the grade drops)."""
    import json

    from bench.rule_probe import findings, probes
    from qa.grader import Grader, GradeSettings
    chats = [[["customer", "背包能放下15寸电脑吗"], ["agent", "容量挺大的呢 背着很舒服的"]],
             [["customer", "这款拖鞋防滑吗"], ["agent", "穿着很舒服的"]],
             [["customer", "这个锅能上电磁炉吗"], ["agent", "亲 做饭很方便的哦"]],
             [["customer", "耳机续航几个小时"], ["agent", "单次6小时 加充电仓一共24小时"]],
             [["customer", "这床垫多厚"], ["agent", "以页面为准哦"]]]
    path = tmp_path / "probe.jsonl"
    path.write_text("".join(json.dumps({"id": f"t-{k:03d}", "label": k != 3, "messages": m}, ensure_ascii=False) + "\n"
                            for k, m in enumerate(chats)), encoding="utf-8")
    convs = [c for c, _, _ in probes(str(path))]
    graded = Grader.from_settings(GradeSettings(messages=False)).grade_batch(convs)
    got = findings(convs, str(ROOT / "models" / "default"))
    assert [sorted(f.rule for f in fs) for fs in got] == [sorted(f["rule"] for f in g.findings) for g in graded]
    rules_alone = findings(convs)
    vague = [[any(f.rule == "vague_reply" for f in fs) for fs in x] for x in (rules_alone, got)]
    assert vague[0] != vague[1], "no vetoed rule finding left in these chats: the test no longer tells the two apart"


def test_default_model_counts_a_question_answered_when_pressed_or_after_a_bot_as_answered():
    """Written for this check (session 38, `tests/data/answered_later_cases.jsonl`): a question the agent first met
    with 以详情页为准 and answered when the customer pressed (late-1), or that a bot stalled on and the human answered
    after the transfer (late-2), is answered, and so is the customer's re-ask; so is one whose answer shares no word
    with it but is of the kind it asks for (session 39: a size, late-3; a time, late-4); the same chats where the
    agent never gives the fact (never-*) keep the flag. As `qa grade` combines them: the rules' findings plus the
    model's."""
    cases = _graded_cases("answered_later_cases.jsonl")
    assert len(cases) == 8
    for conv, _, findings, p in cases:
        found = [f for f in findings if f.rule == "unanswered_question"]
        assert bool(found) == conv.id.startswith("never-"), (conv.id, found, p.flags["unanswered_question"])


def test_default_model_raises_a_question_left_beside_one_answered_on_its_own_threshold():
    """Written for this check (session 38, `tests/data/partial_answer_cases.jsonl`): the question the agent left while
    answering the one asked with it (part-*) is raised when its own turn probability reaches the flag's ``partial``
    threshold (``TurnFlags.partial_hit``), with that message as evidence; chats where both were answered (whole-*)
    are not. The shipped threshold (0.35, dev split + probes) is lowered here so the path itself is pinned."""
    from qa.grader import Grader
    from qa.model.predict import Classifier
    from qa.rubric import load_rubric
    clf = Classifier(ROOT / "models" / "default")
    assert clf.ridge.turn_flags.partial == {"unanswered_question": 0.35}
    convs = list(read_path(ROOT / "tests" / "data" / "partial_answer_cases.jsonl"))
    grader = Grader(load_rubric(), classifier=clf)
    from qa.analysis import analyse
    analyses = [analyse(c, grader.rubric, grader.engine) for c in convs]
    shipped = {c.id: [f for f in a.findings if f.rule == "unanswered_question"]
               for c, a in zip(convs, grader.with_model(convs, analyses)[0])}
    assert not shipped["whole-1"] and not shipped["whole-2"]
    clf.ridge.turn_flags.partial["unanswered_question"] = 0.05
    lowered = {c.id: [f for f in a.findings if f.rule == "unanswered_question"]
               for c, a in zip(convs, grader.with_model(convs, analyses)[0])}
    assert [f.message for f in lowered["part-3"]] == [1] and [f.message for f in lowered["part-4"]] == [0]
    assert all(f.source == "model" for f in lowered["part-3"] + lowered["part-4"])
    assert all("这个问题没有回应" in f.explanation for f in lowered["part-3"] + lowered["part-4"])   # says why
    assert not lowered["whole-1"] and not lowered["whole-2"]
