"""The numpy ranker gives Whoosh's own BM25F scores and matches, and ranks exactly.

The reference is Whoosh's exhaustive search (`limit=None`): every match scored one posting
at a time. The index has several segments and deleted documents, as an index updated
after crawls has, and words common enough to fill many posting blocks.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import numpy as np
import pytest
from whoosh import query as wq

from crawler.records import Article, Tags
from crawler.store import CorpusStore
from index.build import rebuild_index, update_index
from index.query import compile_query, parse_query
from index.rank import Ranker
from index.search import SearchSession

WORDS = ("兼职", "客服", "刷单", "返利", "垫付", "警方", "提醒", "市民", "银行卡", "转账",
         "投资", "平台", "网友", "学生", "冒充", "退款", "屏幕共享", "安全账户", "杀猪盘")
CATEGORIES = ("brushing_rebate", "fake_job", "romance_scam")
QUERIES = ("兼职", "客服 刷单", "兼职 OR 投资", "警方 -学生", "杀猪盘", "屏幕共享 转账",
           '"兼职 客服"', "提醒 市民 银行卡", "退款 OR 冒充 学生", "不存在的词", "-兼职",
           "客服 -刷单 -返利")


def _article(rng: random.Random, i: int, revision: int) -> tuple[Article, Tags, str]:
    # Lengths vary tenfold so that BM25's length normalisation matters.
    body = "，".join(rng.choice(WORDS) + rng.choice(WORDS) for _ in range(rng.randint(5, 60)))
    title = rng.choice(WORDS) + "提醒" if i % 3 else "通报"
    categories = tuple(sorted(rng.sample(CATEGORIES, rng.randint(0, 2))))
    tags = Tags(categories=categories, primary=categories[0] if categories else None)
    published = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" if i % 7 else None
    article = Article(f"https://example.gov.cn/{i}.html", f"{title}{revision}", published, body)
    return article, tags, ("police-a", "police-b")[i % 2]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("rank")
    rng = random.Random(7)
    with CorpusStore(data) as store:
        for revision, count in ((0, 400), (1, 60)):     # the update replaces 60 documents
            with store.transaction():
                for i in range(count):
                    article, tags, source = _article(rng, i * 5 if revision else i, revision)
                    store.save_article(source=source, kind="police", tags=tags, article=article)
            if revision == 0:
                rebuild_index(store, data / "index", categories_path=None)
            else:
                update_index(store, data / "index")
    return data / "index"


@pytest.fixture()
def session(index_dir: Path):
    with SearchSession(index_dir) as opened:
        yield opened


def _compiled(session: SearchSession, text: str):
    searcher = session._searcher
    return compile_query(parse_query(text), searcher.reader(), session._user_terms).query


def test_index_has_deletions_and_segments(session: SearchSession) -> None:
    reader = session._searcher.reader()
    assert reader.has_deletions()
    assert len(session._searcher.leaf_searchers()) >= 2


def _reference(session: SearchSession, query: wq.Query) -> dict[int, float]:
    """Docnum -> score from Whoosh's exhaustive search. Exclusions are applied term by term:
    Whoosh's own AndNot over a union of exclusions lets through a document holding every
    excluded word when it opens a later segment (seen with this very index)."""
    if isinstance(query, wq.AndNot):
        excluded = set().union(*(session._searcher.docs_for_query(term)
                                 for term in query.b.leaves() if isinstance(term, wq.Term)))
        return {d: s for d, s in _reference(session, query.a).items() if d not in excluded}
    return {hit.docnum: hit.score for hit in session._searcher.search(query, limit=None)}


@pytest.mark.parametrize("text", QUERIES)
def test_scores_equal_whoosh_exhaustive_scores(session: SearchSession, text: str) -> None:
    query = _compiled(session, text)
    expected = _reference(session, query)
    matches = Ranker(session._searcher).evaluate(query)
    assert sorted(expected) == matches.docs.tolist()
    assert np.allclose([expected[d] for d in matches.docs.tolist()], matches.scores,
                       rtol=1e-12, atol=0)


@pytest.mark.parametrize("text", QUERIES)
def test_top_hits_are_the_exact_ranking(session: SearchSession, text: str) -> None:
    exhaustive = sorted((-score, docnum) for docnum, score in
                        _reference(session, _compiled(session, text)).items())
    result = session.search(text, limit=10, snippets=False)
    stored = session._searcher.stored_fields
    assert [hit.id for hit in result.hits] == [stored(d)["id"] for _, d in exhaustive[:10]]
    assert result.total == len(exhaustive)


def test_filters_and_facets_agree_with_whoosh(session: SearchSession) -> None:
    query = _compiled(session, "兼职 OR 客服")
    since = dt.date(2024, 6, 1)
    reference = wq.And([query, wq.Term("source", "police-b"),
                        wq.DateRange("published", dt.datetime(2024, 6, 1), None)])
    expected = set(session._searcher.docs_for_query(reference))
    result = session.search("兼职 OR 客服", source="police-b", since=since, limit=1000,
                            snippets=False)
    assert result.total == len(expected) > 0
    stored = session._searcher.stored_fields
    assert {hit.id for hit in result.hits} == {stored(d)["id"] for d in expected}
    for category in CATEGORIES:
        members = set(session._searcher.docs_for_query(
            wq.And([reference, wq.Term("categories", category)])))
        assert result.facets.get(category, 0) == len(members)


def test_date_sort_orders_the_whole_match_set(session: SearchSession) -> None:
    result = session.search("兼职", sort="date", limit=2000, snippets=False)
    dates = [hit.published for hit in result.hits]
    dated = [d for d in dates if d is not None]
    assert dated == sorted(dated, reverse=True)
    assert dates[len(dated):] == [None] * (len(dates) - len(dated))    # undated last
    assert len(result.hits) == result.total
