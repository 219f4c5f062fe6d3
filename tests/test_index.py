"""Analysis, index build/update/rebuild, locking, and stale or missing indexes."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh import index as whoosh_index

from crawler.records import Article, Tags
from crawler.store import CorpusStore
from index.analysis import (
    CATEGORIES_FILE,
    FALLBACK_TERMS,
    JiebaTokenizer,
    iter_words,
    load_user_terms,
)
from index.build import IndexUpdate, rebuild_index, update_index, writer_lock
from index.errors import IndexBusyError, IndexMissingError, IndexStaleError
from index.schema import META_FILE, current_generation
from index.search import SearchSession, search

TERMS = tuple(sorted(FALLBACK_TERMS))


def words(text: str) -> list[str]:
    return [w for w, *_ in iter_words(text, TERMS, subwords=False)]


def save(store: CorpusStore, key: str, text: str, title: str = "反诈提醒",
         published: str | None = "2024-01-01") -> str:
    with store.transaction():
        _, doc_id = store.save_article(
            source="police-a", kind="police", tags=Tags(categories=("fake_job",)),
            article=Article(f"https://example.gov.cn/{key}.html", title, published, text))
    return doc_id


@pytest.fixture
def store(tmp_path: Path):
    with CorpusStore(tmp_path / "data") as corpus:
        yield corpus


@pytest.fixture
def filled(store: CorpusStore) -> CorpusStore:
    for i, text in enumerate(["兼职刷单是诈骗", "冒充客服要求屏幕共享", "网恋对象推荐投资"]):
        save(store, f"doc{i}", text)
    return store


# -- analysis ------------------------------------------------------------------------------
def test_words_get_sequential_positions_and_offsets_into_the_original() -> None:
    text = "網絡詐騙，ＧＯＩＰ設備 2024年"
    got = [(w, pos, text[s:e]) for w, pos, s, e in iter_words(text, TERMS, subwords=False)]
    assert got == [("网络", 0, "網絡"), ("诈骗", 1, "詐騙"), ("goip", 2, "ＧＯＩＰ"),
                   ("设备", 3, "設備"), ("2024", 4, "2024"), ("年", 5, "年")]


TRICKY_CHARS = list("哈网络诈骗屏幕共享马克思主义 ，。½⑪ＡBc1詐騙\n")


@settings(deadline=None, max_examples=200)
@given(st.text(st.sampled_from(TRICKY_CHARS) | st.characters(), max_size=60))
def test_each_words_offsets_move_forward_without_overlap(text: str) -> None:
    last_end: dict[str, int] = {}
    last_position = 0
    for word, position, start, end in iter_words(text, TERMS):
        assert 0 <= start < end <= len(text) and position >= last_position
        assert start >= last_end.get(word, 0)
        last_end[word], last_position = end, position


def test_index_accepts_text_with_repeats_and_expanding_characters(store: CorpusStore,
                                                                  tmp_path: Path) -> None:
    save(store, "odd", "哈哈哈哈哈哈，½⑪⑪ ﷺ 网络诈骗")
    assert rebuild_index(store, tmp_path / "index").added == 1
    assert search(tmp_path / "index", "诈骗").total == 1


def test_user_dictionary_keeps_domain_terms_whole() -> None:
    assert words("遇到杀猪盘") == ["遇到", "杀猪盘"]
    assert words("刷单返利") == ["刷单返利"]
    assert words("对方要求屏幕共享") == ["对方", "要求", "屏幕共享"]
    assert words("转入安全账户") == ["转入", "安全账户"]


def test_user_terms_do_not_steal_characters_from_common_words() -> None:
    assert words("印刷单位") == ["印刷", "单位"]


def test_compounds_index_their_subwords_at_the_same_position() -> None:
    got = [(w, pos) for w, pos, *_ in iter_words("要求屏幕共享后", TERMS)]
    assert got == [("要求", 0), ("屏幕共享", 1), ("屏幕", 1), ("共享", 1), ("后", 2)]


def test_short_words_are_atomic_and_compounds_keep_longest_parts() -> None:
    got = [w for w, *_ in iter_words("马克思主义", TERMS)]
    assert "马克" not in got and "马克思" in got and "主义" in got


def test_query_mode_gives_no_subwords() -> None:
    tokenizer = JiebaTokenizer(TERMS)
    assert [t.text for t in tokenizer("屏幕共享", mode="query")] == ["屏幕共享"]
    assert [t.text for t in tokenizer("屏幕共享", mode="index")] == ["屏幕共享", "屏幕", "共享"]


def test_tokenizer_pickles_with_its_dictionary() -> None:
    tokenizer = JiebaTokenizer(("杀猪盘",))
    assert pickle.loads(pickle.dumps(tokenizer)) == tokenizer
    assert tokenizer != JiebaTokenizer(("刷单",))


def test_user_terms_come_from_any_strings_under_category(tmp_path: Path) -> None:
    path = tmp_path / "categories.toml"
    path.write_text(textwrap.dedent("""
        [[category]]
        id = "romance_scam"
        name = "网络婚恋交友类（杀猪盘）"
        keywords = {"殺豬盤" = 3.0, "网恋" = 1}
        exclude = ["养猪场", "x"]
        description = "以刷单返利为诱饵，骗取垫付资金的诈骗"
        signals = ["帮信/两卡"]
        [[category]]
        id = "fake_job"
        [category.phrases]
        must = [["入职费"]]
    """), encoding="utf-8")
    assert set(load_user_terms(path)) == {"养猪场", "入职费", "杀猪盘", "网恋", "网络婚恋交友类",
                                          "帮信", "两卡"}


def test_repository_taxonomy_feeds_the_dictionary() -> None:
    if not CATEGORIES_FILE.is_file():
        pytest.skip("seeds/categories.toml not written yet")
    assert {"杀猪盘", "刷单返利", "屏幕共享", "安全账户", "注销校园贷"} <= set(load_user_terms())


def test_missing_categories_file_falls_back_to_builtin_terms(tmp_path: Path) -> None:
    assert set(load_user_terms(tmp_path / "absent.toml")) == set(FALLBACK_TERMS)


# -- build and update ----------------------------------------------------------------------
def test_rebuild_indexes_every_article(filled: CorpusStore, tmp_path: Path) -> None:
    result = rebuild_index(filled, tmp_path / "index")
    assert (result.added, result.updated, result.deleted, result.rebuilt) == (3, 0, 0, True)
    assert search(tmp_path / "index", "诈骗").total == 1


def test_parallel_rebuild_finds_the_same_documents(filled: CorpusStore, tmp_path: Path
                                                   ) -> None:
    for i in range(250):     # Whoosh hands workers batches of 100: several segments
        save(filled, f"more{i}", f"第{i}条：冒充客服退款，要求屏幕共享。网恋对象推荐投资{i}次。")
    rebuild_index(filled, tmp_path / "one", procs=1)
    assert rebuild_index(filled, tmp_path / "two", procs=2).added == 253
    ix = whoosh_index.open_dir(str(current_generation(tmp_path / "two")))
    with ix.reader() as reader:
        assert not reader.is_atomic()
    ix.close()
    for query in ("屏幕共享", "投资", "诈骗", "网恋 -客服", ""):
        one = search(tmp_path / "one", query, limit=300)     # all: ties order by docnum
        two = search(tmp_path / "two", query, limit=300)
        assert {(h.id, h.score, h.snippet) for h in one.hits} == {
            (h.id, h.score, h.snippet) for h in two.hits}
        assert (one.total, one.facets) == (two.total, two.facets)


def test_update_without_an_index_builds_one(filled: CorpusStore, tmp_path: Path) -> None:
    result = update_index(filled, tmp_path / "index")
    assert result.rebuilt and result.added == 3
    assert update_index(filled, tmp_path / "index") == IndexUpdate(
        seconds=pytest.approx(0, abs=5))


def test_update_rewrites_only_the_changed_document(filled: CorpusStore, tmp_path: Path) -> None:
    update_index(filled, tmp_path / "index")
    before = {h.id: h for h in search(tmp_path / "index", "", limit=10).hits}
    changed_id = save(filled, "doc1", "冒充客服要求下载会议软件")
    result = update_index(filled, tmp_path / "index")
    assert (result.added, result.updated, result.deleted, result.rebuilt) == (0, 1, 0, False)
    after = {h.id: h for h in search(tmp_path / "index", "", limit=10).hits}
    assert after.keys() == before.keys()
    assert {k: after[k] for k in after if k != changed_id} == {
        k: before[k] for k in before if k != changed_id}
    assert search(tmp_path / "index", "屏幕共享").total == 0
    assert search(tmp_path / "index", "会议").hits[0].id == changed_id


def test_update_adds_new_articles(filled: CorpusStore, tmp_path: Path) -> None:
    update_index(filled, tmp_path / "index")
    save(filled, "doc9", "注销校园贷是骗局")
    result = update_index(filled, tmp_path / "index")
    assert (result.added, result.updated, result.deleted) == (1, 0, 0)
    assert search(tmp_path / "index", "注销校园贷").total == 1


def test_tombstoned_article_leaves_the_index(filled: CorpusStore, tmp_path: Path) -> None:
    update_index(filled, tmp_path / "index")
    doc_id = save(filled, "doc0", "兼职刷单是诈骗")
    with filled.transaction():
        filled.delete_article(doc_id)
    result = update_index(filled, tmp_path / "index")
    assert (result.added, result.updated, result.deleted) == (0, 0, 1)
    assert search(tmp_path / "index", "诈骗").total == 0
    assert search(tmp_path / "index", "").total == 2


def test_second_writer_times_out_with_a_clear_error(filled: CorpusStore, tmp_path: Path
                                                    ) -> None:
    update_index(filled, tmp_path / "index")
    with writer_lock(tmp_path / "index"), pytest.raises(IndexBusyError,
                                                         match="another fraudkb process"):
        update_index(filled, tmp_path / "index", timeout=0.3)
    assert search(tmp_path / "index", "诈骗").total == 1


def test_foreign_whoosh_writer_gives_busy_error(filled: CorpusStore, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    update_index(filled, index_dir)
    ix = whoosh_index.open_dir(str(current_generation(index_dir)))
    writer = ix.writer()
    try:
        with pytest.raises(IndexBusyError, match="locked by another writer"):
            update_index(filled, index_dir, timeout=0.2)
    finally:
        writer.cancel()
        ix.close()


def test_second_writer_waits_for_the_first(filled: CorpusStore, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    update_index(filled, index_dir)
    save(filled, "doc7", "警惕虚拟币投资")
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer_lock(index_dir):
            locked.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(5)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    assert update_index(filled, index_dir, timeout=10).added == 1
    assert time.monotonic() - started >= 0.25
    holder.join()


def test_search_works_while_a_writer_holds_the_index_open(filled: CorpusStore,
                                                          tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    update_index(filled, index_dir)
    ix = whoosh_index.open_dir(str(current_generation(index_dir)))
    writer = ix.writer()
    try:
        writer.delete_by_term("id", search(index_dir, "诈骗").hits[0].id)
        results: list[int] = []
        reader = threading.Thread(target=lambda: results.append(search(index_dir, "诈骗").total))
        reader.start()
        reader.join(10)
        assert results == [1]
        other_process = subprocess.run(
            [sys.executable, "-c", "import sys; from index.search import search; "
             "print(search(sys.argv[1], '诈骗').total)", str(index_dir)],
            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
        assert other_process.stdout.strip() == "1"
    finally:
        writer.cancel()
        ix.close()


def test_searches_keep_working_during_rebuilds(filled: CorpusStore, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    for i in range(60):
        save(filled, f"extra{i}", f"第{i}号预警：冒充公检法称涉嫌洗钱，要求转入安全账户。" * 5)
    rebuild_index(filled, index_dir)
    session = SearchSession(index_dir)       # an old searcher survives the swap
    failures: list[BaseException] = []
    totals: set[int] = set()
    done = threading.Event()

    def keep_searching() -> None:
        while not done.is_set():
            try:
                totals.add(search(index_dir, "安全账户").total)
            except BaseException as exc:   # any failure at all fails the test
                failures.append(exc)
                return

    searcher = threading.Thread(target=keep_searching)
    searcher.start()
    with CorpusStore(filled.data_dir) as own_store:   # stores are one per thread
        for _ in range(3):
            rebuild_index(own_store, index_dir)
    done.set()
    searcher.join(30)
    assert failures == [] and totals == {60}
    assert session.search("安全账户").total == 60
    session.close()
    assert len(list(index_dir.glob("gen-*"))) == 2


# -- missing and stale ---------------------------------------------------------------------
def test_missing_index_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match=r"run `fraudkb crawl`.*`fraudkb reindex`"):
        search(tmp_path / "index", "诈骗")


def test_empty_index_says_what_to_run(store: CorpusStore, tmp_path: Path) -> None:
    rebuild_index(store, tmp_path / "index")
    with pytest.raises(IndexMissingError, match="empty; run `fraudkb crawl`"):
        search(tmp_path / "index", "诈骗")


def test_stale_index_asks_for_reindex_and_update_rebuilds_it(filled: CorpusStore,
                                                             tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    update_index(filled, index_dir)
    meta_path = current_generation(index_dir) / META_FILE
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "version": meta["version"] - 1}))
    with pytest.raises(IndexStaleError, match="run `fraudkb reindex`"):
        search(index_dir, "诈骗")
    assert update_index(filled, index_dir).rebuilt
    assert search(index_dir, "诈骗").total == 1
