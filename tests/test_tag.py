"""The tagger: normalised matching, explainable scoring, offsets, and the dev-set quality gate."""

from __future__ import annotations

import dataclasses
import json
import pickle
from dataclasses import fields
from pathlib import Path

import opencc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.errors import ConfigError
from crawler.evaluate import evaluate, format_report, load_eval_records
from crawler.records import Evidence, Tags
from crawler.tag import Tagger, _make_evidence, build_matcher, render_evidence, tag_text
from crawler.tagcombo import _first_in_window, _first_near
from crawler.taxonomy import Taxonomy, load_taxonomy, parse_taxonomy
from crawler.textnorm import normalize_text, normalize_with_offsets

ROOT = Path(__file__).resolve().parents[1]
DEV_SET = ROOT / "tests" / "data" / "tag_dev.jsonl"
HOLDOUT_SET = ROOT / "tests" / "data" / "tag_holdout.jsonl"
BLIND_SET = ROOT / "tests" / "data" / "tag_blind2.jsonl"
BLIND3_SET = ROOT / "tests" / "data" / "tag_blind3.jsonl"
BLIND4_SET = ROOT / "tests" / "data" / "tag_blind4.jsonl"
BLIND5_SET = ROOT / "tests" / "data" / "tag_blind5.jsonl"

# Reached on tests/data/tag_dev.jsonl (398 records) when this gate was written: macro-F1
# 0.978, micro-F1 0.977, primary accuracy 0.965; taxonomy v4 reaches 0.989 / 0.989 / 0.990,
# v5 0.990 / 0.990 / 0.990, v6 the same.
# The floors sit a little below, so a taxonomy edit that breaks more than a handful of
# records fails here. The set was used for tuning, so these are not generalisation numbers:
# fresh texts scored before being folded in reached macro-F1 0.64-0.81 (precision ~0.9,
# recall the weak side).
MACRO_F1_FLOOR = 0.97
MICRO_F1_FLOOR = 0.97
PRIMARY_ACCURACY_FLOOR = 0.96

# tests/data/tag_holdout.jsonl (168 texts in other registers: victims' posts, SMS lures,
# 警情通报, 判决书, bank and campus notices, Q&A; 18 % traditional, 14 % negatives). Scored
# blind before the second tuning round: macro-F1 0.749, micro-F1 0.765, primary 0.637. The
# second round (wider per-type vocabulary and co-occurrence rules) reached macro-F1 0.957,
# micro-F1 0.959, primary 0.940 on it, and dev rose to 0.982 / 0.982 / 0.977. The set was
# then tuned on, and tag_blind2.jsonl, scored once afterwards, gave macro-F1 0.808,
# micro-F1 0.826, primary 0.792 (the tagger before the round scored 0.703 / 0.727 / 0.681
# there). Taxonomy v4 then used blind2's errors (with holdout's and dev's) to find which
# kinds of script phrasing were missing, so blind2 is NO LONGER BLIND: v4 reaches 0.992 /
# 0.992 / 0.986 on it, and 0.971 / 0.971 / 0.958 on holdout. tag_blind3.jsonl (150 texts,
# written by someone who never saw the taxonomy) was then scored once: v3 macro-F1 0.849,
# micro-F1 0.840, primary 0.840, v4 0.868 / 0.860 / 0.867 (recall 0.95, precision 0.79: 9 of
# its 30 negatives got a label). Taxonomy v5, a precision round, used blind3's errors to find
# which kinds of shared words gave labels, so blind3 is NO LONGER BLIND either: v5 reaches
# 0.961 / 0.961 / 0.927 on it (precision 0.97, recall 0.95, no negative labelled), 0.992 /
# 0.992 / 0.986 on blind2 and 0.982 / 0.983 / 0.958 on holdout. The honest estimate is
# tag_blind4.jsonl (150 texts weighted toward police and campus notices, written by someone
# who never saw the taxonomy or the other sets, never looked at while tuning): v3 scored
# macro-F1 0.845, micro-F1 0.831, primary 0.867 there, v4 0.868 / 0.859 / 0.893, v5 0.919 /
# 0.915 / 0.907 (recall 0.99, precision the weak side at 0.85). Taxonomy v6, a second
# precision round, used blind4's errors to find which kinds of wording gave false labels and
# wrong primaries, so blind4 is NO LONGER BLIND: v6 reaches 0.968 / 0.966 / 0.960 on it
# (precision 0.95, recall 0.99, 1 of 31 negatives labelled), unchanged 0.990 / 0.990 / 0.990 on
# dev, 0.982 / 0.983 / 0.958 on holdout and 0.961 / 0.961 / 0.927 on blind3, and 0.992 / 0.992
# / 1.000 on blind2. The honest estimate is now tests/data/tag_blind5.jsonl (150 texts,
# written by someone who never saw the taxonomy or the other sets, never looked at while
# tuning, scored once after v6): v3 macro-F1 0.860, micro-F1 0.848, primary 0.880; v4 0.870
# / 0.860 / 0.900; v5 0.932 / 0.931 / 0.920; v6 0.947 / 0.945 / 0.947 (precision 0.92,
# recall 0.98, 3 of 30 negatives labelled). No floor is pinned on
# blind2, blind3 or blind4 (tuned on, they would only pin the tuning), nor on blind5: it must
# stay a measurement, not a target.
HOLDOUT_MACRO_F1_FLOOR = 0.95
HOLDOUT_MICRO_F1_FLOOR = 0.95
HOLDOUT_PRIMARY_ACCURACY_FLOOR = 0.94

SMALL = """\
version = 1

[[category]]
id = "brushing_rebate"
name = "刷单返利类"
description = "test"

[category.keywords]
"刷单" = 3.0
"兼职刷单" = 4.0
"垫付" = 1.0

[[category.combo]]
all = [["做任务", "派单"], ["垫付", "充值"]]
weight = 3.0
window = 20

[[category]]
id = "fake_investment"
name = "虚假投资理财类"
description = "test"
exclude = ["招商投资"]

[category.keywords]
"投资" = 1.0
"高收益" = 2.0
"导师带单" = 3.0

[category.negative]
"同比增长" = 1.5
"""


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return build_matcher(load_taxonomy(ROOT / "seeds" / "categories.toml"))


@pytest.fixture(scope="module")
def small() -> Tagger:
    return build_matcher(parse_taxonomy(SMALL))


def _spans(text: str, tags: Tags, category: str) -> list[str]:
    return [text[e.start:e.end] for e in tags.evidence[category]]


# -- normalisation ---------------------------------------------------------------------------

def test_traditional_and_full_width_forms_are_tagged_like_simplified(tagger: Tagger):
    simplified = tagger.tag("兼职刷单要先垫付本金，导师带单炒USDT稳赚不赔。")
    traditional = tagger.tag("兼職刷單要先墊付本金，導師帶單炒ＵＳＤＴ穩賺不賠。")
    assert simplified.categories == traditional.categories == ("brushing_rebate",
                                                               "fake_investment")
    assert simplified.scores == traditional.scores


def test_evidence_offsets_point_at_the_original_characters(tagger: Tagger):
    text = "通報……①號案件：ＧＯＩＰ設備被查獲，嫌疑人涉嫌幫信罪。"
    tags = tagger.tag(text)
    assert tags.primary == "money_mule"
    assert _spans(text, tags, "money_mule") == ["ＧＯＩＰ", "幫信罪"]
    for evidence in tags.evidence["money_mule"]:
        assert normalize_text(text[evidence.start:evidence.end]) == normalize_text(evidence.term)


def test_title_offsets_index_title_newline_text(tagger: Tagger):
    title, body = "警惕刷单返利", "对方要求先垫付，再连单返佣金。"
    tags = tagger.tag(body, title=title)
    combined = f"{title}\n{body}"
    spans = _spans(combined, tags, "brushing_rebate")
    assert spans[0] == "刷单返利"
    assert tags.evidence["brushing_rebate"][0].end <= len(title)
    assert "垫付" in spans


def test_title_hit_counts_more_than_the_same_hit_in_the_body(small: Tagger):
    in_body = small.tag("一则通知：刷单")
    in_title = small.tag("一则通知", title="刷单")
    assert in_title.scores["brushing_rebate"] > in_body.scores["brushing_rebate"]


# -- scoring rules ---------------------------------------------------------------------------

def test_combo_terms_only_count_together(small: Tagger):
    assert small.tag("今天派单").scores == {}
    assert small.tag("需要先充值").scores == {}
    together = small.tag("派单后要求充值")              # neither term is a keyword
    assert together.categories == ("brushing_rebate",)
    assert together.scores["brushing_rebate"] == pytest.approx(3.0)
    assert _spans("派单后要求充值", together, "brushing_rebate") == ["派单", "充值"]
    # a combo term that is also a keyword counts both ways: 垫付 (1.0) + combo (3.0)
    assert small.tag("派单后要求垫付").scores["brushing_rebate"] == pytest.approx(4.0)


def test_combo_groups_must_fall_within_the_window(small: Tagger):
    far = "派单" + "。" * 40 + "垫付"
    assert small.tag(far).categories == ()


def test_combo_partner_is_the_hit_nearest_the_anchor_ties_to_the_earlier(small: Tagger):
    nearer_after = "充值。。派单。充值"               # 充值 4 before 派单, the other 3 after
    tags = small.tag(nearer_after)
    assert [(e.term, e.start) for e in tags.evidence["brushing_rebate"]] == [("派单", 4),
                                                                               ("充值", 7)]
    tie = "充值。派单。充值"                          # both 充值 are 3 away: the first wins
    tags = small.tag(tie)
    assert [(e.term, e.start) for e in tags.evidence["brushing_rebate"]] == [("充值", 0),
                                                                               ("派单", 3)]


def test_exclude_context_voids_the_hits_inside_it(tagger: Tagger, small: Tagger):
    assert small.tag("高收益招商投资").scores["fake_investment"] == pytest.approx(2.0)
    assert small.tag("高收益的投资").scores["fake_investment"] == pytest.approx(3.0)
    assert tagger.tag("区招商投资项目签约仪式举行，总投资额56亿元。").categories == ()


def test_negative_terms_lower_the_score(small: Tagger):
    plain = small.tag("导师带单高收益")
    damped = small.tag("导师带单高收益，同比增长")
    assert damped.scores["fake_investment"] == pytest.approx(
        plain.scores["fake_investment"] - 1.5)


def test_a_longer_term_swallows_the_shorter_one_inside_it(small: Tagger):
    tags = small.tag("兼职刷单")
    assert [e.term for e in tags.evidence["brushing_rebate"]] == ["兼职刷单"]
    assert tags.scores["brushing_rebate"] == pytest.approx(4.0)


def test_repeated_hits_of_one_term_saturate(small: Tagger):
    once = small.tag("刷单").scores["brushing_rebate"]
    ten_times = small.tag("刷单，" * 10).scores["brushing_rebate"]
    assert once < ten_times < 3 * once


def test_long_text_scores_are_damped_by_length(small: Tagger):
    short = small.tag("刷单").scores["brushing_rebate"]
    long = small.tag("刷单" + "今天天气很好。" * 700).scores["brushing_rebate"]
    assert long < short / 1.5


def test_below_threshold_scores_are_reported_but_not_tagged(small: Tagger):
    tags = small.tag("需要垫付")
    assert tags.categories == () and tags.primary is None
    assert tags.scores == {"brushing_rebate": 1.0}
    assert tags.evidence == {}


# -- behaviour on real kinds of text ------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "防范电信网络诈骗，人人有责。请广大市民提高警惕，不轻信、不透露、不转账。",
    "電信網絡詐騙手法不斷翻新，請大家提高警惕，守好錢袋子，遇到可疑情況撥打96110。",
    "市反诈中心开展反诈宣传进校园活动，民警讲解了常见诈骗手法和防范要点。",
    "",
])
def test_text_about_fraud_in_general_gets_no_category(tagger: Tagger, text: str):
    tags = tagger.tag(text)
    assert tags.categories == () and tags.primary is None and tags.evidence == {}


@pytest.mark.parametrize("text", [
    "您好，我是本店客服，您购买的商品已发货，如有质量问题可在七天内申请退货。",
    "据统计局数据，全国固定资产投资同比增长3.2%，制造业投资增长较快。",
    "人民银行宣布下调贷款市场报价利率，有助于降低居民融资成本。",
    "某公司招聘Java工程师，本科学历，五险一金，周末双休，欢迎投递简历。",
])
def test_unrelated_news_mentioning_customer_service_or_investment_gets_none(
        tagger: Tagger, text: str):
    assert tagger.tag(text).categories == ()


def test_round_up_notice_gets_every_type_it_lists(tagger: Tagger):
    text = ("近期高发的五类诈骗：一是兼职刷单，要求垫付后连单返利；二是导师带单的虚假投资理财；"
            "三是冒充快递客服，以快递丢失理赔为由诱导屏幕共享；四是以注销校园贷、影响征信为由的"
            "虚假征信诈骗；五是出租出售银行卡、电话卡的帮信犯罪。")
    tags = tagger.tag(text)
    assert set(tags.categories) == {"brushing_rebate", "fake_investment",
                                    "fake_customer_service", "fake_credit", "money_mule"}
    assert tags.primary == "brushing_rebate"            # near-tie: the type named first
    assert tags.categories[0] == tags.primary
    assert set(tags.evidence) == set(tags.categories)


def test_long_round_up_still_gets_its_types_but_not_stray_ones(tagger: Tagger):
    filler = "民警提醒广大市民，接到陌生来电要提高警惕，遇到问题及时报警。" * 40
    text = (filler + "刷单返利类诈骗：骗子以兼职刷单为名诱导垫付。" + filler
            + "冒充公检法诈骗：骗子称你涉嫌洗钱，要求把钱转入安全账户。" + filler
            + "有人提到客服和投资，也提到了转账和充值。")
    assert set(tagger.tag(text).categories) == {"brushing_rebate", "impersonate_authority"}


ONE_SCAM_NOTICE = (
    "“招聘网店兼职客服，日结两百元”？近期我市多名学生遇到这类刷单骗局。对方先派发点赞、"
    "关注的小任务，返还几元佣金取得信任，再拉入任务群，要求下载陌生APP做任务、垫付资金"
    "刷单，称完成连单即可连本带利返还。受害人垫付后，对方又以卡单、操作失误为由要求继续"
    "垫付，最后拉黑失联。民警提示：刷单本身违法，凡是要求先垫付的兼职都是诈骗。" * 2
    + "受害人称，对方还说垫付的钱可作为保证金，商品下单后会有客服联系，让其不要报警。")


def test_common_words_of_other_scams_do_not_add_labels_to_a_long_notice(tagger: Tagger):
    tags = tagger.tag(ONE_SCAM_NOTICE)
    assert tags.primary == "brushing_rebate"
    weak = [c for c in tags.scores if c != tags.primary
            and tags.scores[c] >= 3.0 and c not in tags.categories]
    assert weak, "the notice is meant to brush other categories past their threshold"
    assert tags.categories == ("brushing_rebate",)


def test_secondary_ratio_zero_keeps_every_category_over_its_threshold(tagger: Tagger):
    scoring = dataclasses.replace(tagger.taxonomy.scoring, secondary_ratio=0.0)
    lenient = build_matcher(dataclasses.replace(tagger.taxonomy, scoring=scoring))
    tags = lenient.tag(ONE_SCAM_NOTICE)
    assert len(tags.categories) > 1
    assert all(tags.scores[c] >= 3.0 for c in tags.categories)


def test_a_type_named_in_passing_is_kept_however_small_its_share(tagger: Tagger):
    tags = tagger.tag(ONE_SCAM_NOTICE + "此外，还要警惕冒充公检法诈骗和杀猪盘。")
    share = {c: tags.scores[c] / tags.scores[tags.primary] for c in tags.categories}
    assert {"impersonate_authority", "romance_scam"} <= set(tags.categories)
    assert min(share.values()) < tagger.taxonomy.scoring.secondary_ratio


def test_tags_are_deterministic_and_sorted_best_first(tagger: Tagger):
    text = "杀猪盘骗子在婚恋网站培养感情，再诱导在虚假平台投资理财，稳赚不赔。"
    first, second = tagger.tag(text), tagger.tag(text)
    assert first == second
    assert first.categories[0] == first.primary == "romance_scam"
    assert "fake_investment" in first.categories


def test_tag_text_is_the_one_shot_form_of_the_tagger(tagger: Tagger):
    taxonomy: Taxonomy = tagger.taxonomy
    text = "裸聊后对方以不雅视频相威胁，要把视频发给通讯录里的亲友。"
    assert tag_text(text, taxonomy) == tagger.tag(text)
    assert tag_text(text, taxonomy).primary == "sextortion"


def test_tagger_survives_pickling_for_worker_processes(tagger: Tagger):
    clone = pickle.loads(pickle.dumps(tagger))
    text = "出租出售银行卡涉嫌帮信罪"
    assert clone.tag(text) == tagger.tag(text)


def test_render_evidence_marks_every_span_once(tagger: Tagger):
    text = "兼職刷單，要求墊付"
    tags = tagger.tag(text)
    assert render_evidence(text, tags) == "[兼職刷單]，要求[墊付]"
    assert render_evidence(text, tags, mark=lambda s: f"<b>{s}</b>").startswith("<b>兼職刷單</b>")
    assert render_evidence("无关", Tags()) == "无关"


PIECES = ["刷單", "刷单", "墊付", "ＧＯＩＰ", "goip", "幫信罪", "安全帳戶", "杀猪盘", "…", "①",
          "，", "。", " ", "\n", "abc", "ＡＢＣ", "今天", "天气", "我们", "𝐀"]


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_every_evidence_span_is_its_term_in_the_original_text(pieces: list[str]):
    text = "".join(pieces)
    tags = build_matcher(load_taxonomy(ROOT / "seeds" / "categories.toml")).tag(text)
    for evidences in tags.evidence.values():
        for evidence in evidences:
            assert 0 <= evidence.start < evidence.end <= len(text)
            fragment = normalize_text(text[evidence.start:evidence.end])
            assert normalize_text(evidence.term) in fragment


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_normalize_with_offsets_maps_every_character_back(pieces: list[str]):
    text = "".join(pieces)
    normalised, origin = normalize_with_offsets(text)
    assert isinstance(origin, list) and len(origin) == len(normalised)
    assert origin == sorted(origin)
    assert normalised == normalize_text(text)


# Characters NFKC folds one-for-one (full-width, compatibility ideographs, also into capitals
# and into astral characters), folds into several (…, ㈱, ﬁ), astral ones, and plain text
# (simplified: the test below follows each character alone, which t2s phrases need not).
FOLDS = ["，", "：", "Ａ", "ｑ", "ｶ", "\uf900", "\ufa6c", "…", "㈱", "ﬁ", "①", "\U0001d400",
         "\U0001f130", "\U0002f800", "GOIP", "abc", "刷单", "账户", "今天", " ", "\n", "。"]


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from(FOLDS), max_size=40))
def test_normalize_with_offsets_folds_each_character_where_it_stood(pieces: list[str]):
    text = "".join(pieces)
    normalised, origin = normalize_with_offsets(text)
    assert normalised == normalize_text(text)
    assert len(origin) == len(normalised) and origin == sorted(origin)
    for index, source in enumerate(origin):     # a character comes from the one it folds
        assert normalised[index] in normalize_text(text[source])


def _first_in_window_by_definition(positions: list[int], merged: list[list[int]],
                                   window: int) -> int:
    for index, position in enumerate(positions):
        if all(any(abs(start - position) <= window for start in starts) for starts in merged):
            return index
    return -1


_SORTED_STARTS = st.lists(st.integers(0, 300), min_size=1, max_size=15).map(sorted)


@settings(max_examples=500, deadline=None, database=None)
@given(_SORTED_STARTS.map(lambda s: sorted(set(s))), st.lists(_SORTED_STARTS, min_size=1,
       max_size=3), st.sampled_from([0, 1, 5, 40, 200]))
def test_combo_anchor_search_is_the_first_anchor_near_every_group(
        positions: list[int], merged: list[list[int]], window: int):
    expected = _first_in_window_by_definition(positions, merged, window)
    assert _first_in_window(positions, merged, window) == expected
    if len(merged) == 1:
        assert _first_near(positions, merged[0], window) == expected


def test_fast_evidence_is_the_record_evidence_makes():
    # _make_evidence fills Evidence's slots itself; a new field must be added there too.
    assert [field.name for field in fields(Evidence)] == ["term", "start", "end"]
    made = _make_evidence("刷单", 3, 5)
    assert made == Evidence("刷单", 3, 5) and hash(made) == hash(Evidence("刷单", 3, 5))
    assert type(made) is Evidence and repr(made) == repr(Evidence("刷单", 3, 5))


# -- evaluation ----------------------------------------------------------------------------------

class _Fixed:
    """A stand-in tagger that returns preset categories per text."""

    def __init__(self, answers: dict[str, tuple[str, ...]]) -> None:
        self.answers = answers

    def tag(self, text: str, title: str = "") -> Tags:
        categories = self.answers[text]
        return Tags(categories=categories, primary=categories[0] if categories else None)


def test_evaluate_computes_per_category_micro_macro_and_primary():
    records = [("a", ("x", "y")), ("b", ("y",)), ("c", ()), ("d", ())]
    stub = _Fixed({"a": ("y", "x"), "b": ("y", "z"), "c": (), "d": ("x",)})
    report = evaluate(records, stub)
    by_id = {s.category: s for s in report.per_category}
    assert (by_id["x"].precision, by_id["x"].recall, by_id["x"].support) == (0.5, 1.0, 1)
    assert (by_id["y"].precision, by_id["y"].recall, by_id["y"].f1) == (1.0, 1.0, 1.0)
    assert (by_id["z"].precision, by_id["z"].support) == (0.0, 0)
    assert report.micro_f1 == pytest.approx(2 * 0.6 * 1.0 / 1.6)     # tp 3, fp 2, fn 0
    assert report.macro_f1 == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    # a: primary y != gold x; b: y == y; c: nothing == nothing; d: x predicted for no gold
    assert report.primary_accuracy == 0.5
    assert report.records == 4


def test_format_report_is_an_aligned_table_with_the_summary():
    report = evaluate([("a", ("x",))], _Fixed({"a": ("x",)}))
    text = format_report(report)
    assert text.splitlines()[0].split() == ["category", "precision", "recall", "f1", "support"]
    assert "x" in text.splitlines()[1] and "1.000" in text.splitlines()[1]
    assert "macro F1          1.000" in text and "primary accuracy  1.000" in text


@pytest.mark.parametrize(("line", "problem"), [
    ("{not json", "not valid JSON"),
    ('["text", []]', "JSON object"),
    ('{"text": 3, "categories": []}', "`text` must be a string"),
    ('{"text": "x", "categories": "fake_job"}', "`categories` must be a list"),
])
def test_bad_eval_line_is_reported_with_file_and_line(tmp_path: Path, line: str, problem: str):
    path = tmp_path / "gold.jsonl"
    good = json.dumps({"text": "兼职刷单", "categories": ["brushing_rebate"]})
    path.write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_eval_records(path)
    assert caught.value.line == 3 and problem in caught.value.problem
    assert str(caught.value).startswith(f"{path}:3: ")


def test_dev_set_is_large_varied_and_covers_every_category(tagger: Tagger):
    records = load_eval_records(DEV_SET)
    assert len(records) >= 150
    assert len({text for text, _ in records}) == len(records)
    counts = {c.id: 0 for c in tagger.taxonomy.categories}
    for _, gold in records:
        for category in gold:
            counts[category] += 1
    assert min(counts.values()) >= 8
    negatives = sum(1 for _, gold in records if not gold)
    to_simplified = opencc.OpenCC("t2s")
    traditional = sum(1 for text, _ in records if to_simplified.convert(text) != text)
    assert negatives >= 0.12 * len(records)
    assert traditional >= 0.12 * len(records)


def test_dev_set_quality_stays_above_the_pinned_floors(tagger: Tagger):
    report = evaluate(load_eval_records(DEV_SET), tagger)
    assert report.macro_f1 >= MACRO_F1_FLOOR, format_report(report)
    assert report.micro_f1 >= MICRO_F1_FLOOR, format_report(report)
    assert report.primary_accuracy >= PRIMARY_ACCURACY_FLOOR, format_report(report)


@pytest.mark.parametrize("path", [HOLDOUT_SET, BLIND_SET, BLIND3_SET, BLIND4_SET, BLIND5_SET],
                         ids=["holdout", "blind2", "blind3", "blind4", "blind5"])
def test_fresh_eval_sets_are_varied_and_cover_every_category(tagger: Tagger, path: Path):
    records = load_eval_records(path)
    assert len(records) >= (60 if path == BLIND_SET else 140)
    assert len({text for text, _ in records}) == len(records)
    counts = {c.id: 0 for c in tagger.taxonomy.categories}
    for _, gold in records:
        for category in gold:
            counts[category] += 1
    assert min(counts.values()) >= (4 if path == BLIND_SET else 8)
    assert sum(1 for _, gold in records if not gold) >= 0.12 * len(records)
    assert sum(1 for _, gold in records if len(gold) > 1) >= 0.05 * len(records)
    to_simplified = opencc.OpenCC("t2s")
    traditional = sum(1 for text, _ in records if to_simplified.convert(text) != text)
    assert traditional >= 0.12 * len(records)


def test_fresh_eval_sets_share_no_text_with_the_dev_set():
    dev = {text for text, _ in load_eval_records(DEV_SET)}
    holdout = {text for text, _ in load_eval_records(HOLDOUT_SET)}
    blind = {text for text, _ in load_eval_records(BLIND_SET)}
    blind3 = {text for text, _ in load_eval_records(BLIND3_SET)}
    blind4 = {text for text, _ in load_eval_records(BLIND4_SET)}
    blind5 = {text for text, _ in load_eval_records(BLIND5_SET)}
    assert not (dev & holdout) and not (dev & blind) and not (holdout & blind)
    assert not ((dev | holdout | blind) & blind3)
    assert not ((dev | holdout | blind | blind3) & blind4)
    assert not ((dev | holdout | blind | blind3 | blind4) & blind5)


def test_holdout_set_quality_stays_above_the_pinned_floors(tagger: Tagger):
    report = evaluate(load_eval_records(HOLDOUT_SET), tagger)
    assert report.macro_f1 >= HOLDOUT_MACRO_F1_FLOOR, format_report(report)
    assert report.micro_f1 >= HOLDOUT_MICRO_F1_FLOOR, format_report(report)
    assert report.primary_accuracy >= HOLDOUT_PRIMARY_ACCURACY_FLOOR, format_report(report)
