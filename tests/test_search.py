"""Search: the query language, filters, sorting, normalisation and snippets, on a real index."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.records import Article, Tags
from crawler.store import CorpusStore
from index.build import rebuild_index
from index.query import parse_query
from index.search import Hit, SearchResult, make_snippet, search

FILLER = "民警提醒广大市民提高警惕，守好自己的钱袋子。" * 12

DOCS = {
    # key: (title, published, source, categories, text)
    "brush": ("兼职刷单骗局", "2024-03-01", "police-a", ("brushing_rebate",),
              "某大学生在网上找兼职，对方自称客服，要求刷单返利，先垫付后返还佣金。" + FILLER),
    "refund": ("冒充客服退款诈骗", "2024-05-02", "police-b", ("fake_customer_service",),
               "骗子冒充电商客服，以退款为由要求受害人开启屏幕共享，盗取银行卡信息。"),
    "trad": ("網絡詐騙提醒", "2023-01-02", "campus-c", ("impersonate_authority",),
             "警方提醒：網絡詐騙手段多樣，切勿向安全賬戶轉賬。"),
    "mark": ("读书笔记", None, "news-d", (), "马克说他从不读马克思的书。"),
    "marx": ("哲学课", "2022-01-01", "news-d", (), "马克思的著作影响深远，马克思主义哲学。"),
    "jobcs": ("招聘陷阱", "2024-07-07", "police-a", ("fake_job", "brushing_rebate"),
              "所谓兼职客服岗位要求先交押金，这是虚假招聘。"),
    "spaced": ("提醒", "2021-06-06", "campus-c", ("fake_customer_service",),
               "不要 屏幕 共享 给陌生人。"),
    "title": ("杀猪盘", "2020-02-02", "news-d", ("romance_scam",),
              "网恋对象诱导投资，最终血本无归。"),
    "body": ("婚恋交友提醒", "2020-03-03", "news-d", ("romance_scam",),
             "警惕杀猪盘，网上认识的对象推荐投资平台要小心，很多人因此被骗。"),
}


def save_docs(store: CorpusStore, docs: dict) -> dict[str, str]:
    """Save articles; returns key -> stored id."""
    ids = {}
    with store.transaction():
        for key, (title, published, source, categories, text) in docs.items():
            tags = Tags(categories=categories, primary=categories[0] if categories else None)
            _, ids[key] = store.save_article(
                source=source, kind="police", tags=tags,
                article=Article(f"https://example.gov.cn/{key}.html", title, published, text))
    return ids


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    with CorpusStore(data) as store:
        save_docs(store, DOCS)
        rebuild_index(store, data / "index", categories_path=None)  # built-in terms
    return data / "index"


def titles(result: SearchResult) -> list[str]:
    return [hit.title for hit in result.hits]


def test_terms_are_anded(index_dir: Path) -> None:
    assert set(titles(search(index_dir, "兼职 客服"))) == {"招聘陷阱", "兼职刷单骗局"}
    assert titles(search(index_dir, "兼职 退款")) == []


def test_or_matches_either_term(index_dir: Path) -> None:
    result = search(index_dir, "退款 OR 押金")
    assert set(titles(result)) == {"冒充客服退款诈骗", "招聘陷阱"}
    assert result.query_used == "(退款 OR 押金)"


def test_minus_excludes_a_term_given_as_a_separate_argument(index_dir: Path) -> None:
    assert set(titles(search(index_dir, ["兼职", "-客服"]))) == set()
    assert set(titles(search(index_dir, ["客服", "-兼职"]))) == {"冒充客服退款诈骗"}
    assert set(titles(search(index_dir, "客服 NOT 兼职"))) == {"冒充客服退款诈骗"}


def test_quoted_phrase_argument_matches_with_or_without_space(index_dir: Path) -> None:
    result = search(index_dir, ['"屏幕 共享"'])
    assert set(titles(result)) == {"冒充客服退款诈骗", "提醒"}
    assert result.query_used == '"屏幕 共享"'


def test_phrase_requires_adjacent_words(index_dir: Path) -> None:
    assert titles(search(index_dir, '"客服 兼职"')) == []


def test_word_cut_in_several_is_searched_as_a_phrase(index_dir: Path) -> None:
    # 兼职客服 is adjacent only in 招聘陷阱; 兼职刷单骗局 has both words apart.
    assert titles(search(index_dir, "兼职客服")) == ["招聘陷阱"]


def test_traditional_query_finds_simplified_text(index_dir: Path) -> None:
    assert "冒充客服退款诈骗" in titles(search(index_dir, "詐騙"))
    assert titles(search(index_dir, "銀行卡 退款")) == ["冒充客服退款诈骗"]


def test_simplified_query_finds_traditional_text_and_marks_original(index_dir: Path) -> None:
    result = search(index_dir, "安全账户")
    assert titles(result) == ["網絡詐騙提醒"]
    hit = result.hits[0]
    assert "[安全賬戶]" in hit.snippet
    assert [hit.snippet[s:e] for s, e in hit.snippet_spans] == ["[安全賬戶]"]


def test_highlight_marks_whole_words_only(index_dir: Path) -> None:
    result = search(index_dir, "马克")
    assert titles(result) == ["读书笔记"]          # 马克思 and 马克思主义 are other words
    hit = result.hits[0]
    assert hit.snippet == "[马克]说他从不读马克思的书。"
    assert hit.snippet_spans == ((0, 4),)


def test_compound_words_are_found_by_their_parts(index_dir: Path) -> None:
    result = search(index_dir, "诈骗")
    assert "網絡詐騙提醒" in titles(result)           # 網絡詐騙 -> 网络 / 诈骗
    assert "冒充客服退款诈骗" in titles(result)


def test_compound_query_finds_text_cut_differently_in_context(tmp_path: Path) -> None:
    terms = tmp_path / "categories.toml"   # a dictionary in which context splits 刷单返利
    terms.write_text('[[category]]\nkeywords = ["网上兼职刷单", "刷单返利", "刷单"]\n',
                     encoding="utf-8")
    docs = {"a": ("一", None, "s", (), "网上兼职刷单返利是诈骗"),     # 网上兼职刷单 | 返利
            "b": ("二", None, "s", (), "他们以网络刷单返利为名"),     # 刷单返利
            "c": ("三", None, "s", (), "刷单和返利不是一回事")}
    with CorpusStore(tmp_path / "data") as store:
        ids = save_docs(store, docs)
        rebuild_index(store, tmp_path / "index", categories_path=terms)
    result = search(tmp_path / "index", "刷单返利")
    assert {hit.id for hit in result.hits} == {ids["a"], ids["b"]}
    assert {h.snippet for h in result.hits} == {"网上兼职[刷单][返利]是诈骗",
                                                "他们以网络[刷单返利]为名"}


@pytest.mark.parametrize("query", [
    "兼职:客服 (AND", '"兼职 客服', "-", "OR OR", "OR", "AND 兼职 OR", "((", '"', "--客服",
    "NOT", "兼职 -", ["兼职", '"'], "", [], "＂屏幕", "a:b:c", "*?", "兼职~2^3",
])
def test_malformed_query_never_raises(index_dir: Path, query: str | list[str]) -> None:
    result = search(index_dir, query)
    assert isinstance(result, SearchResult)


def test_malformed_query_falls_back_to_plain_terms(index_dir: Path) -> None:
    result = search(index_dir, "兼职:客服 (AND")
    assert result.query_used == "兼职 客服"
    assert set(titles(result)) == {"招聘陷阱", "兼职刷单骗局"}


def test_category_filter_ors_categories(index_dir: Path) -> None:
    result = search(index_dir, "", categories=["fake_job", "romance_scam"], limit=20)
    assert set(titles(result)) == {"招聘陷阱", "杀猪盘", "婚恋交友提醒"}
    assert result.total == 3


def test_facets_count_matches_before_the_category_filter(index_dir: Path) -> None:
    result = search(index_dir, "客服", categories=["fake_job"])
    assert titles(result) == ["招聘陷阱"]
    assert result.facets == {"brushing_rebate": 2, "fake_customer_service": 1, "fake_job": 1}
    assert result.total == 1


def test_source_filter(index_dir: Path) -> None:
    assert set(titles(search(index_dir, "客服", source="police-a"))) == {
        "兼职刷单骗局", "招聘陷阱"}
    assert titles(search(index_dir, "客服", source="nowhere")) == []


def test_since_filter_drops_older_and_undated(index_dir: Path) -> None:
    result = search(index_dir, "", since=dt.date(2024, 3, 1), limit=20)
    assert set(titles(result)) == {"兼职刷单骗局", "冒充客服退款诈骗", "招聘陷阱"}


def test_date_sort_is_newest_first_with_undated_last(index_dir: Path) -> None:
    result = search(index_dir, "", sort="date", limit=20)
    dates = [hit.published for hit in result.hits]
    assert dates[:3] == ["2024-07-07", "2024-05-02", "2024-03-01"]
    assert dates[-1] is None
    assert dates[:-1] == sorted(dates[:-1], reverse=True)


def test_date_sorted_hits_keep_relevance_scores(index_dir: Path) -> None:
    by_date = search(index_dir, "客服", sort="date")
    by_score = {h.id: h.score for h in search(index_dir, "客服").hits}
    assert [h.published for h in by_date.hits] == ["2024-07-07", "2024-05-02", "2024-03-01"]
    assert {h.id: h.score for h in by_date.hits} == by_score


def test_title_hits_rank_above_body_hits(index_dir: Path) -> None:
    assert titles(search(index_dir, "杀猪盘"))[0] == "杀猪盘"


def test_limit_caps_hits_but_not_total(index_dir: Path) -> None:
    result = search(index_dir, "", limit=2)
    assert len(result.hits) == 2
    assert result.total == len(DOCS)


def test_snippet_shows_the_passage_around_the_hits(index_dir: Path) -> None:
    result = search(index_dir, "钱袋子 兼职")
    hit = result.hits[0]
    assert hit.snippet.startswith("…") and "在网上找[兼职]，对方自称客服" in hit.snippet
    assert hit.snippet.endswith("…")
    assert len(hit.snippet) - 2 * len(hit.snippet_spans) <= 120 + 2   # window + ellipses
    marked = [hit.snippet[s:e] for s, e in hit.snippet_spans]
    assert marked[0] == "[兼职]" and set(marked) == {"[兼职]", "[钱袋子]"}


def test_hit_is_a_frozen_record_of_plain_values(index_dir: Path) -> None:
    hit = search(index_dir, "退款").hits[0]
    assert isinstance(hit, Hit)
    assert hit.published == "2024-05-02" and hit.source == "police-b"
    assert hit.categories == ("fake_customer_service",) and hit.kind == "police"
    assert hit.url == "https://example.gov.cn/refund.html" and hit.score > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        hit.title = "x"  # type: ignore[misc]


def test_query_of_known_words_does_not_build_the_segmenter(index_dir: Path) -> None:
    script = textwrap.dedent(f"""
        from index.analysis import segmenter
        from index.search import search
        assert search({str(index_dir)!r}, ["兼职", "-退款"]).hits
        print(segmenter.cache_info().currsize == 1)
        search({str(index_dir)!r}, "兼职客服")
        print(segmenter.cache_info().currsize == 1)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["False", "True"]


def test_parse_query_groups_or_tighter_than_and() -> None:
    assert parse_query("兼职 客服 OR 刷单 -押金").describe() == "兼职 (客服 OR 刷单) -押金"
    assert parse_query(["兼职", '"屏幕 共享"', "NOT", "押金"]).describe() == (
        '兼职 "屏幕 共享" -押金')


def test_make_snippet_marks_spans_and_merges_overlaps() -> None:
    text = "开头" + "。" * 200 + "网络诈骗要警惕" + "。" * 200
    start = text.index("网络诈骗")
    snippet, spans = make_snippet(text, [(start, start + 4), (start + 2, start + 4)])
    assert snippet.startswith("…") and snippet.endswith("…")
    assert [snippet[s:e] for s, e in spans] == ["[网络诈骗]"]


def test_make_snippet_without_hits_shows_the_start() -> None:
    assert make_snippet("第一段\n第二段", []) == ("第一段 第二段", ())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["诈骗", "客服", "兼职", "。", "\n", "民警提醒广大市民"]),
                max_size=200), st.data())
def test_snippet_marks_the_window_with_most_distinct_hits(pieces: list[str], data) -> None:
    text = "".join(pieces)
    hits, at = [], 0
    for piece in pieces:
        if piece in ("诈骗", "客服", "兼职") and data.draw(st.booleans()):
            hits.append((at, at + len(piece)))
        at += len(piece)
    snippet, marks = make_snippet(text, hits, width=30)
    assert all(snippet[s] == "[" and snippet[e - 1] == "]" for s, e in marks)
    marked = {snippet[s + 1:e - 1] for s, e in marks}
    best = max((len({text[s:e] for s, e in hits if s >= a and e <= a + 30})
                for a in range(len(text) + 1)), default=0)
    assert len(marked) == best


def test_totals_and_facets_skip_documents_replaced_by_an_update(tmp_path: Path) -> None:
    from index.build import update_index

    docs = {"a": ("一", None, "s", ("brushing_rebate",), "网上兼职刷单要垫付"),
            "b": ("二", None, "s", ("fake_job",), "兼职招聘先交入职费"),
            "c": ("三", None, "t", ("fake_job",), "兼职客服收押金")}
    with CorpusStore(tmp_path / "data") as store:
        save_docs(store, docs)
        rebuild_index(store, tmp_path / "index", categories_path=None)
        # the update marks the old version of "a" deleted inside its segment
        save_docs(store, {"a": ("一", None, "s", ("brushing_rebate",), "刷单返利都是诈骗")})
        update_index(store, tmp_path / "index")
    result = search(tmp_path / "index", "兼职")
    assert result.total == 2
    assert dict(result.facets) == {"fake_job": 2}
    assert search(tmp_path / "index", ["兼职", "-押金"]).total == 1
    assert search(tmp_path / "index", "兼职", source="t").total == 1
    assert search(tmp_path / "index", ["兼职", "OR", "刷单"]).total == 3
