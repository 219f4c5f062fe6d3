import pytest

from crawler.digest import detect_lang, tag_columns, text_hash
from crawler.errors import CorpusBusyError, CorpusError
from crawler.frontier import FrontierEntry
from crawler.records import Article, Evidence, Tags
from crawler.store import CorpusStore, PageRecord

TAGS = Tags(categories=("brushing_rebate",), primary="brushing_rebate",
            scores={"brushing_rebate": 2.5},
            evidence={"brushing_rebate": (Evidence("刷单", 0, 2),)})


def article(url="http://a.cn/t1.html", text="刷单返利是诈骗，先垫付后返佣金的兼职都是骗局。"):
    return Article(url=url, title="警惕刷单", published="2024-03-15", text=text)


@pytest.fixture
def store(tmp_path):
    with CorpusStore(tmp_path) as corpus:
        yield corpus


def save(store, art=None, tags=TAGS):
    with store.transaction():
        return store.save_article(source="s", kind="police", article=art or article(), tags=tags)


def test_article_is_new_then_unchanged_then_changed(store):
    assert save(store)[0] == "new"
    assert save(store)[0] == "unchanged"
    assert save(store, article(text="刷单返利是诈骗。新的段落。"))[0] == "changed"
    assert store.count_articles() == 1


def test_same_text_under_another_url_is_a_duplicate_not_a_second_article(store):
    first = save(store)
    copy = article(url="http://b.cn/copy.html",
                   text="刷单返利是诈骗，\n先垫付后返佣金的兼职都是骗局。 ")
    assert save(store, copy) == ("duplicate", first[1])
    assert store.count_articles() == 1


def test_failed_transaction_leaves_nothing_half_written(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.save_article(source="s", kind="police", article=article(), tags=TAGS)
        raise RuntimeError("killed mid-batch")
    assert store.count_articles() == 0


def test_change_sequence_drives_incremental_reads_and_tombstones(store):
    _, doc_id = save(store)
    seq = store.max_seq()
    save(store, article(url="http://a.cn/t2.html", text="冒充公检法称涉嫌洗钱要求转入安全账户。"))
    assert [a.url for a in store.articles_changed_since(seq)] == ["http://a.cn/t2.html"]
    with store.transaction():
        store.delete_article(doc_id)
    assert store.deleted_since(seq) == [doc_id]


def test_stored_article_round_trips_tags_and_evidence(store):
    _, doc_id = save(store)
    stored = store.get_article(doc_id)
    assert stored.categories == ("brushing_rebate",)
    assert stored.evidence == {"brushing_rebate": (Evidence("刷单", 0, 2),)}
    assert stored.published == "2024-03-15" and stored.lang == "zh-Hans"


def test_update_tags_reports_whether_labels_changed(store):
    _, doc_id = save(store)
    seq = store.get_article(doc_id).seq
    with store.transaction():
        assert store.update_tags(doc_id, TAGS) == ""
    assert store.get_article(doc_id).seq == seq         # nothing written
    rescored = Tags(categories=TAGS.categories, primary=TAGS.primary,
                    scores={"brushing_rebate": 3.0}, evidence=TAGS.evidence)
    with store.transaction():
        assert store.update_tags(doc_id, rescored) == "evidence"
        assert store.update_tags(doc_id, Tags()) == "labels"
    assert store.get_article(doc_id).categories == ()
    assert store.get_article(doc_id).seq > seq          # the index will rewrite it


def test_article_texts_pages_through_the_corpus_while_it_is_rewritten(store):
    ids = [save(store, article(url=f"http://a.cn/{i}.html", text=f"第{i}条通知，刷单是诈骗。"))[1]
           for i in range(5)]
    seen, after = [], 0
    while page := store.article_texts(after, limit=2):
        after = page[-1][0]
        with store.transaction():
            for _, doc_id, title, text in page:
                assert title == "警惕刷单" and text.endswith("刷单是诈骗。")
                store.update_tags(doc_id, Tags())       # a new seq, the same rowid
                seen.append(doc_id)
    assert seen == ids


def test_interrupted_crawl_resumes_with_leased_urls_requeued(store):
    run = store.begin_crawl(["s"])
    with store.transaction():
        store.enqueue([FrontierEntry(f"http://a.cn/{i}", "s", 0) for i in range(3)])
        leased = store.lease(2)
        store.mark_done(leased[0].url)
    store.finish_crawl(run.id, "interrupted", {})
    resumed = store.begin_crawl(["s"])
    assert resumed.resumed and resumed.id == run.id
    with store.transaction():
        assert [e.url for e in store.lease(10)] == ["http://a.cn/1", "http://a.cn/2"]
    assert store.done_counts() == {"s": 1}


def test_finished_crawl_starts_a_fresh_frontier(store):
    run = store.begin_crawl(["s"])
    with store.transaction():
        store.enqueue([FrontierEntry("http://a.cn/1", "s", 0)])
    store.finish_crawl(run.id, "finished", {})
    assert store.begin_crawl(["s"]).resumed is False
    assert not store.is_in_frontier("http://a.cn/1")


def test_enqueue_dedupes_by_url(store):
    store.begin_crawl(["s"])
    with store.transaction():
        assert store.enqueue([FrontierEntry("http://a.cn/1", "s", 0)] * 3) == 1
        assert store.enqueue([FrontierEntry("http://a.cn/1", "s", 1)]) == 0


def test_page_record_keeps_validators_and_compressed_body(store):
    body = "<html>兼职刷单</html>".encode()
    with store.transaction():
        store.record_page(PageRecord(url="http://a.cn/1", source="s", final_url="http://a.cn/1",
                                     outcome="ok", status=200, etag='"v1"', body=body,
                                     page_kind="article"))
        store.record_page(PageRecord(url="http://a.cn/1", source="s", final_url="http://a.cn/1",
                                     outcome="not_modified", status=304))
    known = store.known_page("http://a.cn/1")
    assert known.etag == '"v1"' and known.page_kind == "article"
    assert store.page_body("http://a.cn/1") == body


def test_second_crawler_on_one_data_directory_is_refused(tmp_path):
    with CorpusStore(tmp_path) as first, CorpusStore(tmp_path) as second:
        first.crawl_lock()
        with pytest.raises(CorpusBusyError, match="another crawl"):
            second.crawl_lock()


def test_read_commands_on_missing_corpus_say_what_to_run(tmp_path):
    with pytest.raises(CorpusError, match="fraudkb crawl"):
        CorpusStore(tmp_path / "nothing", create=False)


def test_article_saved_with_worker_computed_columns_equals_one_saved_with_tags(tmp_path):
    art = article(text="冒充客服退款诈骗，對方要求開啟屏幕共享。" * 3)
    with CorpusStore(tmp_path / "a") as plain, CorpusStore(tmp_path / "b") as prepared:
        with plain.transaction():
            _, doc_id = plain.save_article(source="s", kind="police", article=art, tags=TAGS,
                                           fetched_at="2024-03-15T00:00:00+00:00")
        with prepared.transaction():
            prepared.save_article(source="s", kind="police", article=art,
                                  tags=tag_columns(TAGS), content_hash=text_hash(art.text),
                                  lang=detect_lang(art.text),
                                  fetched_at="2024-03-15T00:00:00+00:00")
        assert plain.get_article(doc_id) == prepared.get_article(doc_id)


def test_twin_under_another_url_is_found_when_the_article_itself_is_new_or_known(store):
    first = save(store)
    assert save(store, article(url="http://b.cn/copy.html")) == ("duplicate", first[1])
    assert save(store) == ("unchanged", first[1])
    changed = article(text="刷单返利是诈骗。另一段。")
    assert save(store, changed) == ("changed", first[1])
    assert save(store, article(url="http://b.cn/copy.html", text=changed.text)) == (
        "duplicate", first[1])


def test_mark_all_done_marks_each_url(store):
    store.begin_crawl(["s"])
    with store.transaction():
        store.enqueue([FrontierEntry(f"http://a.cn/{i}", "s", 0) for i in range(3)])
        leased = store.lease(3)
        store.mark_all_done(e.url for e in leased[:2])
    assert store.done_counts() == {"s": 2}


def test_retag_pages_through_the_corpus_reporting_progress_and_what_changed(store,
                                                                            monkeypatch):
    import crawler.retag
    from crawler.tag import build_matcher
    from crawler.taxonomy import default_categories_path, load_taxonomy

    tagger = build_matcher(load_taxonomy(default_categories_path()))
    scam = "兼职刷单先垫付，返利佣金都是诈骗，第{}次提醒。"
    plain = "本校图书馆周末照常开放，第{}周。"
    texts = [scam.format(1), plain.format(1), scam.format(2), plain.format(2), scam.format(3)]
    for i, text in enumerate(texts):
        save(store, article(url=f"http://a.cn/{i}.html", text=text), tags=Tags())
    monkeypatch.setattr(crawler.retag, "RETAG_BATCH", 2)
    progress: list[tuple[int, int]] = []
    result = crawler.retag.retag_corpus(store, tagger, on_progress=lambda *p: progress.append(p))
    assert progress == [(2, 5), (4, 5), (5, 5)]
    assert (result.documents, result.changed, result.rescored) == (5, 5, 0)  # title 警惕刷单
    again = crawler.retag.retag_corpus(store, tagger)
    assert (again.documents, again.changed, again.rescored) == (5, 0, 0)
