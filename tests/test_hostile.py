"""Hostile HTTP through a whole crawl: bombs, endless and dripping bodies, lying headers, bad
bytes, binaries posing as HTML, 10,000 links, deep paths, redirect chains and broken hrefs.

None may crash or stall the crawl beyond its limits; each is recorded with its outcome and
counted in CrawlStats; the good pages around them are stored. (tests/test_fetch.py covers the
fetcher alone; this is the crawl loop's view.)
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest

from crawler.config import CrawlConfig, FetchConfig, SourceConfig
from crawler.pipeline import crawl
from crawler.records import CrawlStats
from crawler.store import CorpusStore
from crawler.tag import Tagger, build_matcher
from crawler.taxonomy import default_categories_path, load_taxonomy
from fixture_site import article_html
from servers import (
    MIB,
    Handler,
    Route,
    ScriptedServer,
    endless_chunked,
    gzip_bomb,
    page,
    slow_drip,
    wrong_length,
)

CAP = MIB
# total_timeout is the limit under test; read_timeout is longer so that it is the one to act
LIMITS = FetchConfig(connect_timeout=2, read_timeout=3, total_timeout=1, max_body_bytes=CAP,
                     max_retries=0, max_redirects=10, backoff_base=0.01)
MANY_LINKS = 10_000
DEEP = "/" + "/".join(["a"] * 200)
GOOD = ["/a1.html", "/a2.html", "/a3.html"]
HostileCrawl = tuple[str, CrawlStats, float, Path]     # base URL, stats, seconds, data dir
BROKEN_HREFS = ["/sp ace.html", "/bad%zz%.html", "/%E4%B8%AD%E6%96%87.html", "/中文 路径.html",
                "http://例子.测试/x.html", "http://xn--fsqu00a.xn--0zwm56d/y.html",
                "http://[::1", "http://a b.cn/", "//", "http://127.0.0.1:99999/x",
                "javascript:alert(1)", "%", "http://%zz/", "mailto:x@y.cn"]


def slow_chunks(interval: float) -> Route:
    """Chunked HTML, one small chunk every `interval` s, forever: never reaches the cap."""

    def route(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        while not handler.server.stopping.wait(interval):
            handler.wfile.write(b"8\r\n<p>x</p>\r\n")
            handler.wfile.flush()

    return route


def redirect_chain(prefix: str, hops: int, final: str) -> dict[str, Route]:
    """/prefix0 -> /prefix1 -> ... -> /prefix{hops-1} -> final."""
    targets = [f"{prefix}{n + 1}" for n in range(hops - 1)] + [final]
    return {f"{prefix}{n}": page(b"", status=302, headers=[("Location", target)])
            for n, target in enumerate(targets)}


def hostile_routes() -> tuple[dict[str, Route], dict[str, str]]:
    """The site's routes and the outcome each hostile path must be recorded with."""
    body_utf8 = article_html(4)
    mixed = body_utf8.replace("诈骗".encode(), "诈骗".encode("gbk"), 2) + b"\xff\xfe\x00\x80"
    gbk_declared_but_broken = article_html(5).decode().encode("gbk") + b"\x81\x20\xfe\xff"
    expected = {
        "/gzip-bomb.html": "too_large", "/br-bomb.html": "too_large",
        "/endless.html": "too_large", "/big.html": "too_large",
        "/drip.html": "network_error", "/slow-chunks.html": "network_error",
        "/short.html": "network_error", "/short-stall.html": "network_error",
        "/png.html": "not_html", "/pdf.html": "not_html", "/gif.html": "not_html",
        "/chain-long0": "redirect_loop", "/loop": "redirect_loop",
        "/chain-ok0": "ok", "/mixed-utf8.html": "ok", "/broken-gbk.html": "ok",
        "/overlong.html": "ok", "/many.html": "ok", DEEP: "ok",
    }
    routes: dict[str, Route] = {
        "/gzip-bomb.html": gzip_bomb(1024 * MIB),
        "/br-bomb.html": page(brotli.compress(bytes(64 * MIB), quality=1),
                              headers=[("Content-Encoding", "br")]),
        "/endless.html": endless_chunked(),
        "/big.html": page(b"<p>" + b"x" * 2 * CAP),
        "/drip.html": slow_drip(0.05),
        "/slow-chunks.html": slow_chunks(0.05),
        "/short.html": wrong_length(100_000, b"<html><body><p>cut"),
        "/short-stall.html": wrong_length(100_000, b"<html><body><p>cut", hold=10),
        "/overlong.html": wrong_length(60, article_html(6)),
        "/png.html": page(b"\x89PNG\r\n\x1a\n" + bytes(2000)),
        "/pdf.html": page(b"%PDF-1.7\n" + bytes(2000)),
        "/gif.html": page(b"GIF89a" + bytes(100), content_type="text/html; charset=gbk"),
        "/mixed-utf8.html": page(mixed),
        "/broken-gbk.html": page(gbk_declared_but_broken, "text/html; charset=gbk"),
        "/loop": page(b"", status=301, headers=[("Location", "/loop")]),
        "/many.html": page(("<html><body>" + "".join(
            f"<a href='/m/{n}.html'>链接{n}</a>" for n in range(MANY_LINKS))
            + "</body></html>").encode()),
        DEEP: page(b"<html><body><p>deep</p></body></html>"),
        "/a7.html": page(article_html(7)),
    }
    routes.update(redirect_chain("/chain-ok", 5, "/a7.html"))
    routes.update(redirect_chain("/chain-long", 20, "/a1.html"))
    routes.update({path: page(article_html(n)) for n, path in enumerate(GOOD, start=1)})
    hrefs = [*GOOD, *expected, *BROKEN_HREFS]
    items = "".join(f"<li><a href=\"{h}\">反诈预警 {n}</a></li>" for n, h in enumerate(hrefs))
    routes["/index.html"] = page(f"<html><body><ul>{items}</ul></body></html>".encode())
    return routes, expected


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return build_matcher(load_taxonomy(default_categories_path()))


@pytest.fixture(scope="module")
def hostile_crawl(tmp_path_factory: pytest.TempPathFactory, tagger: Tagger
                  ) -> Iterator[HostileCrawl]:
    routes, _ = hostile_routes()
    data = tmp_path_factory.mktemp("hostile")
    with ScriptedServer(routes) as server:
        base = server.url("")
        src = SourceConfig(name="hostile", start_urls=(base + "/index.html",), delay=0.0,
                           max_depth=2, max_pages=60,
                           article=(re.compile(r"/a\d+\.html$"),))
        started = time.monotonic()
        with CorpusStore(data) as store:
            stats = crawl(CrawlConfig(sources=(src,), fetch=LIMITS), store, tagger)
        yield base, stats, time.monotonic() - started, data


def page_outcomes(data: Path) -> dict[str, tuple[str, str | None, str | None]]:
    db = sqlite3.connect(f"file:{data / 'corpus.sqlite'}?mode=ro", uri=True)
    try:
        return {url: (outcome, error, kind) for url, outcome, error, kind in db.execute(
            "SELECT url, outcome, error, page_kind FROM pages")}
    finally:
        db.close()


def test_every_hostile_response_is_recorded_with_its_outcome(hostile_crawl: HostileCrawl) -> None:
    base, _, _, data = hostile_crawl
    _, expected = hostile_routes()
    outcomes = page_outcomes(data)
    recorded = {path: outcomes[base + path][0] for path in expected if base + path in outcomes}
    assert recorded == expected


def test_time_limits_cut_dripping_and_endless_bodies(hostile_crawl: HostileCrawl) -> None:
    base, _, _, data = hostile_crawl
    outcomes = page_outcomes(data)
    for path in ("/drip.html", "/slow-chunks.html"):
        assert outcomes[base + path][1] == "total time limit 1s exceeded", path
    for path in ("/gzip-bomb.html", "/br-bomb.html", "/endless.html"):
        assert outcomes[base + path][1] == f"body larger than {CAP} bytes (decompressed)"


def test_hostile_responses_are_counted_in_the_summary(hostile_crawl: HostileCrawl) -> None:
    _, stats, _, _ = hostile_crawl
    assert stats.too_large == 4 and stats.not_html == 3
    # 4 network errors and 2 redirect loops, plus the 404s of whatever in-scope junk URLs
    # and /m/N.html links the page budget reached
    assert stats.failed >= 6
    assert stats.out_of_scope == 0 and not stats.interrupted


def test_good_pages_around_the_hostile_ones_are_stored(hostile_crawl: HostileCrawl) -> None:
    base, stats, _, data = hostile_crawl
    outcomes = page_outcomes(data)
    with CorpusStore(data, create=False) as store:
        urls = {a.url for a in store.iter_articles()}
    assert {base + p for p in [*GOOD, "/a7.html"]} <= urls
    assert outcomes[base + "/chain-ok0"][2] == "article"
    for path in ("/mixed-utf8.html", "/broken-gbk.html"):
        assert outcomes[base + path][2] in ("article", "list", "skipped"), path
    assert stats.new >= 4


def test_ten_thousand_links_are_queued_and_the_page_budget_holds(
        hostile_crawl: HostileCrawl) -> None:
    base, _, _, data = hostile_crawl
    db = sqlite3.connect(f"file:{data / 'corpus.sqlite'}?mode=ro", uri=True)
    try:
        queued = db.execute("SELECT COUNT(*) FROM frontier WHERE url LIKE ?",
                            (base + "/m/%",)).fetchone()[0]
        fetched = db.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
    finally:
        db.close()
    assert queued == MANY_LINKS
    assert fetched <= 60


def test_broken_hrefs_are_requested_percent_encoded_and_never_leave_the_site(
        hostile_crawl: HostileCrawl) -> None:
    base, _, _, data = hostile_crawl
    outcomes = page_outcomes(data)
    assert all(url.startswith(base) for url in outcomes)     # IDN and junk hosts: dropped
    # spaces and non-ASCII are percent-encoded, broken escapes kept as they are; the server
    # answered each (404), so each was a well-formed request
    for path in ("/sp%20ace.html", "/bad%zz%.html", "/%E4%B8%AD%E6%96%87.html",
                 "/%E4%B8%AD%E6%96%87%20%E8%B7%AF%E5%BE%84.html", "/%"):
        assert outcomes[base + path][:2] == ("http_error", "HTTP 404"), path


def test_hostile_site_does_not_stall_the_crawl(hostile_crawl: HostileCrawl) -> None:
    _, _, elapsed, _ = hostile_crawl
    # three 1 s limits in a row on one host, bombs cut at 1 MiB, ~10,000 URLs over the page
    # budget dropped: ~3 s. (Dropping them 64 per half-second idle wait took 80 s.)
    assert elapsed < 30
