"""The crawl pipeline end to end, against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import os
import pickle
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import crawler.pipeline
from crawler.batching import BatchingPool, run_batch
from crawler.config import CrawlConfig, FetchConfig, SourceConfig
from crawler.demo import DEMO_SITE, demo_sources, serve_directory
from crawler.digest import detect_lang, tag_columns, text_hash
from crawler.pipeline import crawl
from crawler.process import process_page
from crawler.records import FetchOutcome, FetchResult
from crawler.store import CorpusStore
from crawler.tag import build_matcher
from crawler.taxonomy import default_categories_path, load_taxonomy
from crawler.workers import _init_worker, process_batch_in_worker
from servers import Route, ScriptedServer, page, slow_headers

FAST_FETCH = FetchConfig(connect_timeout=2, read_timeout=2, total_timeout=5, max_retries=0,
                         backoff_base=0.01)


@pytest.fixture(scope="module")
def tagger():
    return build_matcher(load_taxonomy(default_categories_path()))


def run(data: Path, tagger, sources, **options):
    config = CrawlConfig(sources=tuple(sources), fetch=options.pop("fetch", FAST_FETCH),
                         **options)
    with CorpusStore(data) as store:
        stats = crawl(config, store, tagger)
        articles = list(store.iter_articles())
        pages = {row: store.known_page(row) for row in _page_urls(store)}
    return stats, articles, pages


def _page_urls(store: CorpusStore) -> list[str]:
    return [r[0] for r in store._db.execute("SELECT url FROM pages")]


def source(base: str, *start: str, **options) -> SourceConfig:
    options.setdefault("delay", 0.0)
    options.setdefault("article", (re.compile(r"/a\d+\.html$"),))
    return SourceConfig(name=options.pop("name", "site"), kind="police",
                        start_urls=tuple(base + s for s in start), **options)


def editable(bodies: dict[str, bytes]) -> dict:
    """Routes serving whatever `bodies` holds at request time (tests edit the site)."""
    return {path: (lambda handler, p=path: page(bodies[p])(handler)) for path in bodies}


def article_html(title: str, body: str, links: str = "") -> bytes:
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n"))
    return (f"<html><head><title>{title}</title></head><body><h1>{title}</h1>"
            f"<div class='article'><p>发布时间：2024-03-15</p>{paragraphs}</div>{links}"
            "</body></html>").encode()


def list_html(*hrefs: str, next_href: str | None = None) -> bytes:
    items = "".join(f"<li><a href='{h}'>反诈预警 {h}</a><span>2024-03-15</span></li>"
                    for h in hrefs)
    pager = f"<a href='{next_href}'>下一页</a>" if next_href else ""
    return f"<html><body><ul>{items}</ul>{pager}</body></html>".encode()


NOTICE = ("近期我市发生多起刷单返利诈骗案件。骗子在社交平台发布兼职广告，声称动动手指就能赚佣金，"
          "先让受害人做点赞关注等小任务并返还小额佣金，随后以连单、卡单为由要求垫付大额资金。\n"
          "警方提示：凡是要求先垫付资金的刷单兼职都是诈骗，请勿轻信。")


# -- the demo site -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_crawl(tmp_path_factory, tagger):
    data = tmp_path_factory.mktemp("demo")
    with serve_directory(DEMO_SITE) as base:
        first = run(data, tagger, demo_sources(base))
        second = run(data, tagger, demo_sources(base))
    return base, first, second


def test_demo_crawl_stores_every_notice_once(demo_crawl):
    _, (stats, articles, _), _ = demo_crawl
    urls = [a.url for a in articles]
    assert len(urls) == len(set(urls)) >= 14
    assert stats.new == len(articles)
    assert stats.failed == 0
    assert all(a.title and a.text for a in articles)


def test_demo_crawl_follows_trs_script_pager_and_plain_pager(demo_crawl):
    base, (_, _, pages), _ = demo_crawl
    for path in ("/fzxc/index_1.html", "/fzxc/index_2.html", "/bwc/2052/list2.htm"):
        assert pages[base + path].page_kind == "list", path


def test_demo_gbk_page_is_decoded(demo_crawl):
    _, (_, articles, _), _ = demo_crawl
    gbk = [a for a in articles if "t20240520" in a.url]
    assert gbk, "the GBK notice was not stored"
    assert "\ufffd" not in gbk[0].text and re.search(r"[\u4e00-\u9fff]{20}", gbk[0].text)


def test_demo_canonical_duplicate_is_stored_once(demo_crawl):
    _, (stats, articles, _), _ = demo_crawl
    assert stats.duplicates >= 1
    assert not any("_print" in a.url for a in articles)


def test_demo_robots_disallowed_page_is_skipped_and_counted(demo_crawl):
    base, (stats, _, pages), _ = demo_crawl
    assert stats.robots >= 1
    assert pages[base + "/admin/login.html"].page_kind == "skipped"


def test_second_crawl_of_unchanged_site_makes_no_new_documents(demo_crawl):
    _, (first, articles, _), (second, articles_after, _) = demo_crawl
    assert second.new == second.changed == 0 and second.unchanged > 0
    assert len(articles_after) == len(articles)
    # list pages holding only known articles end their pagination chain
    assert second.lists < first.lists and second.fetched < first.fetched


def test_articles_are_tagged_during_the_crawl(demo_crawl):
    _, (_, articles, _), _ = demo_crawl
    tagged = [a for a in articles if a.categories]
    assert len(tagged) >= len(articles) * 0.8
    assert {a.primary for a in tagged} >= {"brushing_rebate", "fake_customer_service"}


# -- incremental refresh -------------------------------------------------------------------
def test_second_crawl_stops_paginating_at_a_page_of_known_articles(tmp_path, tagger):
    bodies = {"/list.htm": list_html("/a1.html", "/a2.html", next_href="/list2.htm"),
              "/list2.htm": list_html("/a3.html", next_href="/list3.htm"),
              "/list3.htm": list_html("/a4.html"),
              "/a5.html": article_html("新案例", "第五起。" + NOTICE)}
    for number in range(1, 5):
        bodies[f"/a{number}.html"] = article_html(f"刷单诈骗案例{number}",
                                                  f"第{number}起。" + NOTICE)
    with ScriptedServer(editable(bodies)) as server:
        src = source(server.url(""), "/list.htm")
        first, _, _ = run(tmp_path, tagger, [src])
        assert first.new == 4 and server.hits("/list3.htm") == 1
        second, _, _ = run(tmp_path, tagger, [src])
        assert second.new == 0 and second.unchanged == 2
        assert server.hits("/list2.htm") == 1  # not fetched again
        bodies["/list.htm"] = list_html("/a5.html", "/a1.html", next_href="/list2.htm")
        third, _, _ = run(tmp_path, tagger, [src])
        assert third.new == 1 and server.hits("/list2.htm") == 2


def test_changed_article_is_counted_changed(tmp_path, tagger):
    bodies = {"/list.htm": list_html("/a1.html"), "/a1.html": article_html("刷单诈骗", NOTICE)}
    with ScriptedServer(editable(bodies)) as server:
        src = source(server.url(""), "/list.htm")
        run(tmp_path, tagger, [src])
        bodies["/a1.html"] = article_html("刷单诈骗（更新）", NOTICE + "\n补充提醒。")
        stats, articles, _ = run(tmp_path, tagger, [src])
    assert stats.changed == 1 and articles[0].title.startswith("刷单诈骗（更新）")


def test_known_article_is_fetched_conditionally_and_304_is_unchanged(tmp_path, tagger):
    site = tmp_path / "site"
    site.mkdir()
    (site / "list.htm").write_bytes(list_html("/a1.html"))
    (site / "a1.html").write_bytes(article_html("刷单诈骗", NOTICE))
    old = time.time() - 3600
    os.utime(site / "a1.html", (old, old))
    with serve_directory(site) as base:
        src = source(base, "/list.htm")
        run(tmp_path / "data", tagger, [src])
        stats, _, pages = run(tmp_path / "data", tagger, [src])
    assert stats.unchanged == 1 and stats.new == 0
    assert pages[base + "/a1.html"].last_modified


# -- traps ---------------------------------------------------------------------------------
def test_calendar_style_infinite_links_are_bounded(tmp_path, tagger):
    def calendar(handler):
        day = int(re.search(r"d=(-?\d+)", handler.path).group(1)) if "d=" in handler.path else 0
        body = (f"<html><body><a href='/cal?d={day + 1}'>后一天</a>"
                f"<a href='/cal?d={day - 1}'>前一天</a></body></html>").encode()
        page(body)(handler)

    with ScriptedServer({"/cal": calendar}) as server:
        src = source(server.url(""), "/cal", max_depth=3)
        stats, _, pages = run(tmp_path, tagger, [src])
    assert len(pages) == 8  # /cal and d=-3..3: depth bounds the walk
    assert stats.lists == 8


def test_endless_pager_is_bounded_by_max_pagination_and_max_pages(tmp_path, tagger):
    def pager(handler):
        number = int(re.search(r"list(\d+)", handler.path).group(1))
        page(list_html(next_href=f"/list{number + 1}.htm"))(handler)

    with ScriptedServer({f"/list{n}.htm": pager for n in range(1, 500)}) as server:
        src = source(server.url(""), "/list1.htm", max_pages=200)
        _, _, pages = run(tmp_path, tagger, [src], max_pagination=20)
    assert len(pages) == 21


def test_slow_page_times_out_without_stalling_the_crawl(tmp_path, tagger):
    routes = {"/list.htm": page(list_html("/slow.html", "/a1.html", "/a2.html")),
              "/slow.html": slow_headers(30),
              "/a1.html": page(article_html("刷单诈骗一", "一。" + NOTICE)),
              "/a2.html": page(article_html("刷单诈骗二", "二。" + NOTICE))}
    fetch = FetchConfig(read_timeout=0.5, total_timeout=1, max_retries=0)
    started = time.monotonic()
    with ScriptedServer(routes) as server:
        stats, articles, _ = run(tmp_path, tagger, [source(server.url(""), "/list.htm")],
                                 fetch=fetch)
    assert stats.failed == 1 and len(articles) == 2
    assert time.monotonic() - started < 20  # generous: the slow page must not hold the crawl


def test_redirect_out_of_scope_is_refused_and_counted(tmp_path, tagger):
    with ScriptedServer({"/secret.html": page(b"<p>internal</p>")}) as other:
        routes = {"/list.htm": page(list_html("/go.html")),
                  "/go.html": page(b"", status=302,
                                   headers=[("Location", other.url("/secret.html"))])}
        with ScriptedServer(routes) as server:
            base = server.url("")
            src = source(base, "/list.htm", allow=(re.compile("^" + re.escape(base)),))
            stats, _, _ = run(tmp_path, tagger, [src])
        assert stats.out_of_scope == 1 and other.hits("/secret.html") == 0


def test_max_pages_limits_each_source(tmp_path, tagger):
    hrefs = [f"/a{n}.html" for n in range(10)]
    routes = {"/list.htm": page(list_html(*hrefs))}
    routes.update({h: page(article_html(f"案例{h}", h + NOTICE)) for h in hrefs})
    with ScriptedServer(routes) as server:
        stats, articles, _ = run(tmp_path, tagger, [source(server.url(""), "/list.htm")],
                                 max_pages=4)
    assert len(articles) == 3 and stats.lists == 1


def test_unreachable_robots_txt_counts_the_host_as_failed_not_disallowed(tmp_path, tagger):
    routes = {"/robots.txt": page(b"busy", status=503), "/list.htm": page(list_html("/a1.html"))}
    with ScriptedServer(routes) as server:
        stats, _, pages = run(tmp_path, tagger, [source(server.url(""), "/list.htm")])
        assert server.hits("/list.htm") == 0
    assert stats.failed == 1 and stats.robots == 0
    assert pages[server.url("/list.htm")].page_kind is None


def test_redirect_to_a_robots_disallowed_path_is_not_followed(tmp_path, tagger):
    routes = {"/robots.txt": page(b"User-agent: *\nDisallow: /private/\n", "text/plain"),
              "/list.htm": page(list_html("/a1.html")),
              "/a1.html": page(b"", status=301, headers=[("Location", "/private/a1.html")]),
              "/private/a1.html": page(article_html("内部", NOTICE))}
    with ScriptedServer(routes) as server:
        stats, articles, _ = run(tmp_path, tagger, [source(server.url(""), "/list.htm")])
        assert server.hits("/private/a1.html") == 0
    assert stats.robots == 1 and not articles


def test_worker_processes_store_the_same_articles_as_in_process(tmp_path, tagger):
    with serve_directory(DEMO_SITE) as base:
        _, in_process, _ = run(tmp_path / "one", tagger, demo_sources(base))
        stats, pooled, _ = run(tmp_path / "two", tagger, demo_sources(base), workers=2)
    assert stats.failed == 0
    assert {(a.url, a.text, a.categories) for a in pooled} == {
        (a.url, a.text, a.categories) for a in in_process}


def test_start_page_that_only_meta_refreshes_leads_to_the_site(tmp_path, tagger):
    routes = {"/index.html": page(b"<html><head><meta http-equiv='refresh' "
                                  b"content='0;url=/list.htm'></head><body></body></html>"),
              "/list.htm": page(list_html("/a1.html")),
              "/a1.html": page(article_html("刷单诈骗", NOTICE))}
    with ScriptedServer(routes) as server:
        stats, articles, _ = run(tmp_path, tagger,
                                 [source(server.url(""), "/index.html", max_depth=1)])
    assert [a.url for a in articles] == [server.url("/a1.html")]
    assert stats.lists == 2


def test_one_request_in_flight_per_host(tmp_path, tagger):
    # Regression: a fetch task freed its host's slot after fetching and again when it
    # finished processing, by then freeing the slot of the host's next request, still in
    # flight; a third request then started beside it.
    lock, active, peak = threading.Lock(), [0], [0]

    def slow(body: bytes):
        def route(handler) -> None:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.03)
            with lock:
                active[0] -= 1
            page(body)(handler)
        return route

    hrefs = [f"/a{n}.html" for n in range(1, 9)]
    routes = {"/list.htm": slow(list_html(*hrefs)),
              **{h: slow(article_html(f"刷单诈骗{h}", NOTICE)) for h in hrefs}}
    with ScriptedServer(routes) as server:
        stats, _, _ = run(tmp_path, tagger, [source(server.url(""), "/list.htm")],
                          concurrency=8, fetch=FetchConfig(
                              connect_timeout=2, read_timeout=2, total_timeout=5,
                              max_retries=0, backoff_base=0.01, obey_robots=False))
    assert stats.fetched == 9 and stats.failed == 0
    assert peak[0] == 1


def _slow_cpu_stage(monkeypatch, wait: Callable[[], object]) -> list[int]:
    """Make each article's CPU stage call `wait` first; returns a list whose [0] counts
    the articles in the CPU stage right now (routes read it)."""
    inside = [0]
    lock = threading.Lock()
    real = crawler.pipeline.process_page

    def slowed(result, *args):
        if "/a" not in result.url:
            return real(result, *args)
        with lock:
            inside[0] += 1
        try:
            wait()
            return real(result, *args)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(crawler.pipeline, "process_page", slowed)
    return inside


def _articles(count: int, route: Callable[[bytes], Route]) -> dict[str, Route]:
    hrefs = [f"/a{n}.html" for n in range(1, count + 1)]
    return {"/list.htm": page(list_html(*hrefs)),
            **{h: route(article_html(f"刷单诈骗{h}", f"{NOTICE}\n案例编号{h}")) for h in hrefs}}


def test_fetching_goes_on_while_pages_wait_for_the_cpu_stage(tmp_path, tagger, monkeypatch):
    # Regression: a page waiting for the CPU stage held one of the `concurrency` request
    # slots, so fetching stopped whenever the workers fell behind. With one slot, the
    # server now serves four more articles while the first one's processing still waits.
    release = threading.Event()
    _slow_cpu_stage(monkeypatch, functools.partial(release.wait, 10))
    served = [0]

    def counted(body: bytes) -> Route:
        def route(handler) -> None:
            served[0] += 1
            if served[0] >= 5:
                release.set()
            page(body)(handler)
        return route

    started = time.monotonic()
    with ScriptedServer(_articles(8, counted)) as server:
        stats, articles, _ = run(tmp_path, tagger, [source(server.url(""), "/list.htm")],
                                 concurrency=1)
    assert release.is_set() and time.monotonic() - started < 10
    assert stats.fetched == 9 and len(articles) == 8


def test_pages_in_flight_and_waiting_for_the_cpu_stage_are_bounded(tmp_path, tagger,
                                                                   monkeypatch):
    # One slow worker (pages processed one at a time) and a backlog of 3: a request only
    # starts while fewer than 3 pages are fetched but not yet processed.
    monkeypatch.setattr(crawler.pipeline, "BACKLOG_PAGES_PER_WORKER", 3)
    one_at_a_time = threading.Lock()

    def slow_worker() -> None:
        with one_at_a_time:
            time.sleep(0.05)

    inside = _slow_cpu_stage(monkeypatch, slow_worker)
    lock, active, held = threading.Lock(), [0], []

    def observed(body: bytes) -> Route:
        def route(handler) -> None:
            with lock:
                active[0] += 1
                held.append(inside[0] + active[0])
            time.sleep(0.01)
            with lock:
                active[0] -= 1
            page(body)(handler)
        return route

    with ScriptedServer(_articles(12, observed)) as server:
        stats, articles, _ = run(tmp_path, tagger, [source(server.url(""), "/list.htm")],
                                 concurrency=4)
    assert stats.fetched == 13 and len(articles) == 12
    assert max(held) == 3


def test_records_crossing_the_worker_boundary_pickle_to_equal_records(tagger):
    site_url = "http://127.0.0.1:1"
    links = "".join(f"<a href='/a{n}.html'>第{n}条</a>" for n in range(3))
    body = article_html("刷单诈骗预警", NOTICE, links).decode()
    body = body.replace("<head>", f"<head><link rel='canonical' href='{site_url}/a1.html'>")
    result = FetchResult(f"{site_url}/a1.html", f"{site_url}/a1.html", FetchOutcome.OK,
                         status=200, body=body.encode(), content_type="text/html")
    processed = process_page(result, source(site_url, "/list.htm"), tagger)
    assert processed.article is not None and processed.tags is not None
    assert processed.tags.evidence and processed.links.links
    for record in (result, processed, processed.links, processed.article, processed.tags,
                   processed.tag_columns, *processed.links.links):
        assert pickle.loads(pickle.dumps(record)) == record


def test_process_page_keeps_only_the_sources_links_and_fingerprints_the_article(tagger):
    site_url = "http://127.0.0.1:1"
    links = "<a href='/a2.html'>本站另一条</a><a href='https://elsewhere.example.cn/x'>外站</a>"
    result = FetchResult(f"{site_url}/a1.html", f"{site_url}/a1.html", FetchOutcome.OK,
                         status=200, body=article_html("刷单诈骗预警", NOTICE, links),
                         content_type="text/html")
    processed = process_page(result, source(site_url, "/list.htm"), tagger)
    assert [link.url for link in processed.links.links] == [f"{site_url}/a2.html"]
    article, tags = processed.article, processed.tags
    assert article is not None and tags is not None
    assert processed.content_hash == text_hash(article.text)
    assert processed.lang == detect_lang(article.text)
    assert processed.tag_columns == tag_columns(tags)


def test_worker_batch_tags_articles_together_and_keeps_failures_per_page(tagger):
    site_url = "http://127.0.0.1:1"
    bodies = [("刷单诈骗预警", NOTICE), ("校园贷提醒", "注销校园贷要求屏幕共享的都是诈骗。" * 4),
              ("通知", "本校图书馆周末照常开放，欢迎同学们前来借阅。" * 3)]
    pages = [FetchResult(f"{site_url}/a{i}.html", f"{site_url}/a{i}.html", FetchOutcome.OK,
                         status=200, body=article_html(title, text), content_type="text/html")
             for i, (title, text) in enumerate(bodies)]
    scope = source(site_url, "/list.htm")
    _init_worker(tagger.taxonomy)
    batch = [(pages[0], scope, 40), (pages[1], None, 40), (pages[1], scope, 40),
             (pages[2], scope, 40)]
    results = process_batch_in_worker(batch)
    assert isinstance(results[1], AttributeError)       # no source: that page alone fails
    for result, (fetched, _, _) in zip([results[0], *results[2:]], [batch[0], *batch[2:]],
                                       strict=True):
        alone = process_page(fetched, scope, tagger)
        assert result.tags is None                      # tag columns cross, not Tags
        assert result == dataclasses.replace(alone, tags=None)


def _half(n: int) -> float:
    if n < 0:
        raise ValueError(f"negative: {n}")
    return n / 2


class _CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.tasks = 0

    def submit(self, *args, **kwargs):
        self.tasks += 1
        return super().submit(*args, **kwargs)


def test_batching_pool_shares_tasks_once_pages_queue_and_keeps_errors_per_page():
    async def main(executor):
        batches = BatchingPool(executor, functools.partial(run_batch, _half), max_tasks=1)
        return await asyncio.gather(*(batches.run(n) for n in (2, -1, 4, 6, 8)),
                                    return_exceptions=True)

    with _CountingExecutor() as executor:
        results = asyncio.run(main(executor))
    assert results[0] == 1 and results[2:] == [2, 3, 4]
    assert isinstance(results[1], ValueError) and "negative: -1" in str(results[1])
    assert executor.tasks == 2     # the first page alone, then the four that queued meanwhile


def test_batching_pool_survives_a_cancelled_page_and_fails_all_on_a_broken_pool():
    async def cancelled_one(executor):
        batches = BatchingPool(executor, functools.partial(run_batch, _half), max_tasks=1)
        first = asyncio.ensure_future(batches.run(2))
        doomed = asyncio.ensure_future(batches.run(4))
        last = asyncio.ensure_future(batches.run(6))
        await asyncio.sleep(0)
        doomed.cancel()
        return await first, await last

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        assert asyncio.run(cancelled_one(executor)) == (1, 3)

    async def broken(executor):
        batches = BatchingPool(executor, functools.partial(run_batch, _half), max_tasks=2)
        return await asyncio.gather(batches.run(2), batches.run(4), return_exceptions=True)

    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    executor.shutdown()
    assert all(isinstance(r, RuntimeError) for r in asyncio.run(broken(executor)))
