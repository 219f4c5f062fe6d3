"""Fetcher against real servers on 127.0.0.1: redirects, retries, timeouts, caps, types."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import socket
import time
import tracemalloc
import zlib
from collections.abc import Callable
from email.utils import formatdate

import brotli
import pytest
from pytest_httpserver import HTTPServer

from crawler.config import FetchConfig
from crawler.fetch import Fetcher
from crawler.records import FetchOutcome, FetchResult
from servers import (
    MIB,
    ScriptedServer,
    endless_chunked,
    gzip_bomb,
    page,
    slow_drip,
    slow_headers,
    wrong_length,
)

# Short limits keep the suite fast; each test overrides only what it is about.
FAST = FetchConfig(connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0,
                   max_body_bytes=MIB, max_retries=2, backoff_base=0.01, backoff_max=0.05)
HTML = b"<html><head><title>t</title></head><body><p>hello</p></body></html>"


def allow_all(url: str) -> bool:
    """A scope that lets every http(s) URL through."""
    return True


def fetch(url: str, config: FetchConfig = FAST, is_allowed: Callable[[str], bool] = allow_all,
          **kwargs: str) -> FetchResult:
    """Run one Fetcher.fetch on a fresh event loop."""

    async def run() -> FetchResult:
        async with Fetcher(config) as fetcher:
            return await fetcher.fetch(url, is_allowed=is_allowed, **kwargs)

    return asyncio.run(run())


def config(**changes: float) -> FetchConfig:
    """FAST with some fields changed."""
    return dataclasses.replace(FAST, **changes)


def test_html_page_is_fetched_with_validators_and_user_agent(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/p", headers={"User-Agent": FAST.user_agent}).respond_with_data(
        HTML, content_type="text/html; charset=utf-8",
        headers={"ETag": '"v1"', "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"})
    result = fetch(httpserver.url_for("/p"))
    assert result.outcome is FetchOutcome.OK
    assert (result.status, result.body, result.etag) == (200, HTML, '"v1"')
    assert result.last_modified == "Wed, 01 Jan 2025 00:00:00 GMT"
    assert result.content_type == "text/html; charset=utf-8"
    assert result.final_url == result.url and result.redirects == ()


def test_redirect_chain_is_followed_and_hops_recorded(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data("", status=301, headers={"Location": "b"})
    httpserver.expect_request("/b").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/c")})
    httpserver.expect_request("/c").respond_with_data(HTML, content_type="text/html")
    result = fetch(httpserver.url_for("/a"))
    assert result.outcome is FetchOutcome.OK
    assert result.redirects == (httpserver.url_for("/b"), httpserver.url_for("/c"))
    assert result.final_url == httpserver.url_for("/c")
    assert result.url == httpserver.url_for("/a") and result.body == HTML


def test_redirect_loop_is_given_up(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("", status=302, headers={"Location": "/y"})
    httpserver.expect_request("/y").respond_with_data("", status=302, headers={"Location": "/x"})
    result = fetch(httpserver.url_for("/x"))
    assert result.outcome is FetchOutcome.REDIRECT_LOOP
    assert result.error == f"redirect loop: {httpserver.url_for('/x')} seen twice"
    assert len(httpserver.log) == 2


def test_more_redirects_than_allowed_is_a_redirect_loop(httpserver: HTTPServer) -> None:
    for n in range(5):
        httpserver.expect_request(f"/{n}").respond_with_data(
            "", status=307, headers={"Location": f"/{n + 1}"})
    result = fetch(httpserver.url_for("/0"), config(max_redirects=2))
    assert result.outcome is FetchOutcome.REDIRECT_LOOP
    assert result.error == "more than 2 redirects"
    assert result.redirects == (httpserver.url_for("/1"), httpserver.url_for("/2"))


def test_redirect_to_another_server_outside_allow_is_refused(httpserver: HTTPServer) -> None:
    with ScriptedServer({"/elsewhere": page(HTML)}) as other:
        httpserver.expect_request("/go").respond_with_data(
            "", status=302, headers={"Location": other.url("/elsewhere")})
        inside = httpserver.url_for("/")
        result = fetch(httpserver.url_for("/go"), is_allowed=lambda u: u.startswith(inside))
        assert other.hits("/elsewhere") == 0
    assert result.outcome is FetchOutcome.OUT_OF_SCOPE
    assert other.url("/elsewhere") in (result.error or "")
    assert result.final_url == httpserver.url_for("/go") and result.status == 302


@pytest.mark.parametrize("location", ["ftp://example.com/x", "javascript:alert(1)",
                                      "mailto:a@b.cn"])
def test_redirect_to_non_http_scheme_is_refused(httpserver: HTTPServer, location: str) -> None:
    httpserver.expect_request("/go").respond_with_data("", status=301,
                                                       headers={"Location": location})
    result = fetch(httpserver.url_for("/go"))
    assert result.outcome is FetchOutcome.OUT_OF_SCOPE
    assert result.error == f"not an http(s) URL: {location}"


def test_start_url_outside_scope_is_not_requested(httpserver: HTTPServer) -> None:
    result = fetch(httpserver.url_for("/p"), is_allowed=lambda u: False)
    assert result.outcome is FetchOutcome.OUT_OF_SCOPE
    assert httpserver.log == []


def test_404_is_http_error_without_retry(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone").respond_with_data("nope", status=404)
    result = fetch(httpserver.url_for("/gone"))
    assert (result.outcome, result.status, result.body) == (FetchOutcome.HTTP_ERROR, 404, b"")
    assert len(httpserver.log) == 1


def test_500_twice_then_200_is_ok_after_retries(httpserver: HTTPServer) -> None:
    for _ in range(2):
        httpserver.expect_ordered_request("/flaky").respond_with_data("err", status=500)
    httpserver.expect_ordered_request("/flaky").respond_with_data(HTML, content_type="text/html")
    result = fetch(httpserver.url_for("/flaky"))
    assert (result.outcome, result.body) == (FetchOutcome.OK, HTML)
    assert len(httpserver.log) == 3


def test_persistent_503_is_http_error_after_max_retries(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/down").respond_with_data("busy", status=503)
    result = fetch(httpserver.url_for("/down"))
    assert (result.outcome, result.status) == (FetchOutcome.HTTP_ERROR, 503)
    assert len(httpserver.log) == FAST.max_retries + 1


def test_429_retry_after_seconds_is_honoured(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/r").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"})
    httpserver.expect_ordered_request("/r").respond_with_data(HTML, content_type="text/html")
    started = time.monotonic()
    result = fetch(httpserver.url_for("/r"), config(backoff_max=5.0))
    # Jittered backoff alone would wait at most backoff_base (0.01 s).
    assert 0.9 <= time.monotonic() - started < 4
    assert result.outcome is FetchOutcome.OK


def test_retry_after_http_date_is_honoured_up_to_backoff_max(httpserver: HTTPServer) -> None:
    later = formatdate(time.time() + 3, usegmt=True)
    httpserver.expect_ordered_request("/r").respond_with_data(
        "", status=503, headers={"Retry-After": later})
    httpserver.expect_ordered_request("/r").respond_with_data(HTML, content_type="text/html")
    started = time.monotonic()
    result = fetch(httpserver.url_for("/r"), config(backoff_max=0.5))
    assert 0.45 <= time.monotonic() - started < 2.5
    assert result.outcome is FetchOutcome.OK


def test_huge_retry_after_is_capped_at_backoff_max(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/r").respond_with_data("", status=429,
                                                      headers={"Retry-After": "3600"})
    started = time.monotonic()
    result = fetch(httpserver.url_for("/r"))
    assert time.monotonic() - started < 3
    assert (result.outcome, result.status) == (FetchOutcome.HTTP_ERROR, 429)
    assert len(httpserver.log) == FAST.max_retries + 1


def test_server_slower_than_read_timeout_is_network_error_quickly() -> None:
    with ScriptedServer({"/slow": slow_headers(10)}) as server:
        started = time.monotonic()
        result = fetch(server.url("/slow"), config(read_timeout=0.2, max_retries=1))
        assert time.monotonic() - started < 3
        assert server.hits("/slow") == 2        # a timeout is retried
    assert result.outcome is FetchOutcome.NETWORK_ERROR
    assert "ReadTimeout" in (result.error or "")


def test_slow_drip_body_is_cut_by_total_timeout() -> None:
    with ScriptedServer({"/drip": slow_drip(0.02)}) as server:
        started = time.monotonic()
        result = fetch(server.url("/drip"), config(total_timeout=0.5))
        assert time.monotonic() - started < 3
        assert server.hits("/drip") == 1        # dripping again would not help: no retry
    assert result.outcome is FetchOutcome.NETWORK_ERROR
    assert result.error == "total time limit 0.5s exceeded"


def test_endless_chunked_body_is_too_large_and_dropped() -> None:
    with ScriptedServer({"/endless": endless_chunked()}) as server:
        result = fetch(server.url("/endless"), config(max_body_bytes=256 * 1024))
    # Not NETWORK_ERROR from total_timeout: reading stopped at the cap.
    assert (result.outcome, result.body) == (FetchOutcome.TOO_LARGE, b"")
    assert result.error == f"body larger than {256 * 1024} bytes (decompressed)"


def test_oversized_plain_body_is_too_large(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"<p>" + b"x" * 2 * MIB,
                                                        content_type="text/html")
    result = fetch(httpserver.url_for("/big"))
    assert result.outcome is FetchOutcome.TOO_LARGE


def test_body_exactly_at_the_cap_is_ok(httpserver: HTTPServer) -> None:
    body = b"<p>" + b"x" * (MIB - 3)
    httpserver.expect_request("/edge").respond_with_data(gzip.compress(body),
                                                         content_type="text/html",
                                                         headers={"Content-Encoding": "gzip"})
    assert fetch(httpserver.url_for("/edge")).body == body


def test_gzip_bomb_of_1gb_is_cut_at_the_cap_without_large_memory() -> None:
    with ScriptedServer({"/bomb": gzip_bomb(1024 * MIB)}) as server:
        tracemalloc.start()
        try:
            started = time.monotonic()
            result = fetch(server.url("/bomb"))
            elapsed = time.monotonic() - started
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert result.outcome is FetchOutcome.TOO_LARGE
    assert elapsed < 5
    # The cap is 1 MiB; httpx's own decoder would have inflated each 64 KiB read ~1000x.
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_brotli_bomb_is_cut_at_the_cap(httpserver: HTTPServer) -> None:
    bomb = brotli.compress(bytes(64 * MIB), quality=1)
    httpserver.expect_request("/bomb").respond_with_data(
        bomb, content_type="text/html", headers={"Content-Encoding": "br"})
    result = fetch(httpserver.url_for("/bomb"))
    assert result.outcome is FetchOutcome.TOO_LARGE


@pytest.mark.parametrize("encoding, compress", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda data: zlib.compress(data)[2:-4]),     # raw deflate, as some IIS send
    ("br", brotli.compress),
])
def test_compressed_page_within_the_cap_is_decompressed(
        httpserver: HTTPServer, encoding: str, compress: Callable[[bytes], bytes]) -> None:
    httpserver.expect_request("/z").respond_with_data(
        compress(HTML), content_type="text/html", headers={"Content-Encoding": encoding})
    result = fetch(httpserver.url_for("/z"))
    assert (result.outcome, result.body) == (FetchOutcome.OK, HTML)


def test_corrupt_gzip_body_is_network_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/z").respond_with_data(
        b"this is not gzip", content_type="text/html", headers={"Content-Encoding": "gzip"})
    result = fetch(httpserver.url_for("/z"), config(max_retries=0))
    assert result.outcome is FetchOutcome.NETWORK_ERROR
    assert "corrupt compressed body" in (result.error or "")


def test_png_served_as_text_html_is_not_html(httpserver: HTTPServer) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    httpserver.expect_request("/img").respond_with_data(png, content_type="text/html")
    result = fetch(httpserver.url_for("/img"))
    assert (result.outcome, result.error) == (FetchOutcome.NOT_HTML, "body is a PNG image")
    assert result.body == b""


def test_short_pdf_without_content_type_is_not_html() -> None:
    with ScriptedServer({"/doc": page(b"%PDF-1", content_type=None)}) as server:
        result = fetch(server.url("/doc"))
    assert result.outcome is FetchOutcome.NOT_HTML


@pytest.mark.parametrize("content_type", ["text/plain", "application/xhtml+xml", None])
def test_text_types_and_missing_type_are_accepted(content_type: str | None) -> None:
    with ScriptedServer({"/t": page(HTML, content_type=content_type)}) as server:
        assert fetch(server.url("/t")).outcome is FetchOutcome.OK


def test_pdf_content_type_is_not_html_and_body_not_read() -> None:
    # The server sends 8 of 50 MiB bytes and then stalls: reading on would hit read_timeout.
    stall = wrong_length(50 * MIB, b"%PDF-1.7", content_type="application/pdf", hold=10)
    with ScriptedServer({"/f.pdf": stall}) as server:
        started = time.monotonic()
        result = fetch(server.url("/f.pdf"), config(read_timeout=3.0))
        assert time.monotonic() - started < 2
    assert (result.outcome, result.error) == (FetchOutcome.NOT_HTML,
                                              "content type application/pdf")


def test_if_none_match_304_is_not_modified(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/p", headers={"If-None-Match": '"v1"'}).respond_with_data(
        "", status=304)
    result = fetch(httpserver.url_for("/p"), etag='"v1"')
    assert (result.outcome, result.status) == (FetchOutcome.NOT_MODIFIED, 304)
    assert result.etag == '"v1"'        # kept from the request when the 304 omits it


def test_if_modified_since_is_sent(httpserver: HTTPServer) -> None:
    since = "Wed, 01 Jan 2025 00:00:00 GMT"
    httpserver.expect_request("/p", headers={"If-Modified-Since": since}).respond_with_data(
        "", status=304, headers={"Last-Modified": since})
    result = fetch(httpserver.url_for("/p"), last_modified=since)
    assert (result.outcome, result.last_modified) == (FetchOutcome.NOT_MODIFIED, since)


def test_body_shorter_than_content_length_is_network_error() -> None:
    with ScriptedServer({"/short": wrong_length(1000, b"<p>only this</p>")}) as server:
        result = fetch(server.url("/short"), config(max_retries=1))
        assert server.hits("/short") == 2
    assert result.outcome is FetchOutcome.NETWORK_ERROR
    assert "RemoteProtocolError" in (result.error or "")


def test_refused_connection_is_network_error() -> None:
    with socket.socket() as probe:      # an OS-chosen port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = fetch(f"http://127.0.0.1:{port}/", config(max_retries=1))
    assert (result.outcome, result.status) == (FetchOutcome.NETWORK_ERROR, 0)
    assert "ConnectError" in (result.error or "")


def test_cancellation_propagates_out_of_fetch() -> None:
    async def run(url: str) -> None:
        async with Fetcher(FAST) as fetcher:
            task = asyncio.create_task(fetcher.fetch(url, is_allowed=allow_all))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    with ScriptedServer({"/slow": slow_headers(10)}) as server:
        asyncio.run(run(server.url("/slow")))


def test_fetch_robots_follows_redirect_to_another_host(httpserver: HTTPServer) -> None:
    rules = b"User-agent: *\nDisallow: /private/\n"
    with ScriptedServer({"/robots.txt": page(rules, content_type="text/plain")}) as other:
        httpserver.expect_request("/robots.txt").respond_with_data(
            "", status=301, headers={"Location": other.url("/robots.txt")})

        async def run() -> tuple[int, str]:
            async with Fetcher(FAST) as fetcher:
                return await fetcher.fetch_robots(httpserver.url_for("/robots.txt"))

        assert asyncio.run(run()) == (200, rules.decode())
