"""RobotsCache against real local servers: rules, failure policy, Crawl-delay, one fetch."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
from pytest_httpserver import HTTPServer

from crawler.config import USER_AGENT, FetchConfig
from crawler.fetch import Fetcher
from crawler.robots import RobotsCache, origin_key, product_token, robots_url
from servers import Handler, ScriptedServer, page

FAST = FetchConfig(connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0, max_retries=1,
                   backoff_base=0.01, backoff_max=0.05)
RULES = b"""User-agent: *
Disallow: /private/
Crawl-delay: 2.5

User-agent: fraudkb
Disallow: /no-bots/
Allow: /no-bots/ok.html
Crawl-delay: 4
"""


def check(urls: list[str]) -> tuple[list[bool], list[float | None]]:
    """is_allowed() for each URL (concurrently), then crawl_delay() for each."""

    async def run() -> tuple[list[bool], list[float | None]]:
        async with Fetcher(FAST) as fetcher:
            robots = RobotsCache(fetcher, USER_AGENT)
            allowed = await asyncio.gather(*(robots.is_allowed(u) for u in urls))
            return list(allowed), [robots.crawl_delay(u) for u in urls]

    return asyncio.run(run())


def robots_route(body: bytes = RULES, delay: float = 0.0) -> ScriptedServer:
    """A server whose robots.txt answers after `delay` seconds, plus a page."""

    def slow_robots(handler: Handler) -> None:
        handler.server.stopping.wait(delay)
        page(body, content_type="text/plain")(handler)

    return ScriptedServer({"/robots.txt": slow_robots})


def test_disallow_rules_for_our_agent_are_honoured() -> None:
    with robots_route() as server:
        allowed, _ = check([server.url("/news/1.html"), server.url("/no-bots/x.html"),
                            server.url("/no-bots/ok.html"), server.url("/private/x.html")])
    # Our own group wins over "*", so /private/ (a "*" rule only) is allowed for us.
    assert allowed == [True, False, True, True]


def test_star_group_applies_when_no_group_names_us() -> None:
    with robots_route(b"User-agent: *\nDisallow: /private/\n") as server:
        allowed, delays = check([server.url("/private/x"), server.url("/public")])
    assert allowed == [False, True]
    assert delays == [None, None]


def test_crawl_delay_for_our_agent_is_read() -> None:
    with robots_route() as server:
        _, delays = check([server.url("/a")])
    assert delays == [4.0]


def test_crawl_delay_is_none_before_robots_is_loaded() -> None:
    async def run() -> float | None:
        async with Fetcher(FAST) as fetcher:
            return RobotsCache(fetcher, USER_AGENT).crawl_delay("http://127.0.0.1:1/x")

    assert asyncio.run(run()) is None


def test_404_robots_allows_all(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("missing", status=404)
    allowed, delays = check([httpserver.url_for("/private/x"), httpserver.url_for("/")])
    assert allowed == [True, True] and delays == [None, None]


def test_500_robots_disallows_all_and_is_logged(httpserver: HTTPServer,
                                                caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("oops", status=500)
    with caplog.at_level(logging.WARNING, logger="crawler.robots"):
        allowed, _ = check([httpserver.url_for("/"), httpserver.url_for("/news/1.html")])
    assert allowed == [False, False]
    assert len(httpserver.log) == FAST.max_retries + 1      # retried like any 5xx
    assert "robots.txt unreachable (500)" in caplog.text


def test_unreachable_robots_host_disallows_all() -> None:
    with socket.socket() as probe:      # an OS-chosen port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    allowed, _ = check([f"http://127.0.0.1:{port}/page.html"])
    assert allowed == [False]


def test_robots_is_fetched_once_per_host_under_concurrency() -> None:
    with robots_route(delay=0.2) as server:
        urls = [server.url(f"/news/{n}.html") for n in range(20)]
        allowed, _ = check(urls)
        assert server.hits("/robots.txt") == 1
    assert all(allowed)


def test_each_port_is_a_separate_robots_origin() -> None:
    with robots_route(b"User-agent: *\nDisallow: /\n") as closed, robots_route(b"") as open_:
        allowed, _ = check([closed.url("/a"), open_.url("/a"), closed.url("/b")])
        assert (closed.hits("/robots.txt"), open_.hits("/robots.txt")) == (1, 1)
    assert allowed == [False, True, False]


def test_robots_redirect_to_another_host_is_followed(httpserver: HTTPServer) -> None:
    with robots_route(b"User-agent: *\nDisallow: /secret/\n") as other:
        httpserver.expect_request("/robots.txt").respond_with_data(
            "", status=301, headers={"Location": other.url("/robots.txt")})
        allowed, _ = check([httpserver.url_for("/secret/x"), httpserver.url_for("/open")])
    assert allowed == [False, True]


def test_cancelled_robots_fetch_lets_the_next_caller_fetch() -> None:
    async def run(url: str) -> bool:
        async with Fetcher(FAST) as fetcher:
            robots = RobotsCache(fetcher, USER_AGENT)
            first = asyncio.create_task(robots.is_allowed(url))
            await asyncio.sleep(0.05)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            return await robots.is_allowed(url)

    with robots_route(b"User-agent: *\nDisallow: /x\n", delay=0.3) as server:
        started = time.monotonic()
        assert asyncio.run(run(server.url("/x"))) is False
        assert time.monotonic() - started < 3


def test_origin_key_and_robots_url_normalise_the_origin() -> None:
    assert origin_key("HTTP://Example.COM/a") == ("http", "example.com", 80)
    assert origin_key("https://example.com:8443/a") == ("https", "example.com", 8443)
    assert robots_url("https://user:pw@example.com:8443/a?q#f") == (
        "https://example.com:8443/robots.txt")


def test_product_token_is_the_name_before_the_version() -> None:
    assert product_token(USER_AGENT) == "fraudkb"


def test_oversized_robots_is_obeyed_up_to_500_kib() -> None:
    body = b"User-agent: *\nDisallow: /x/\n" + b"# padding\n" * 60_000     # ~600 KB
    with robots_route(body) as server:
        allowed, _ = check([server.url("/x/1"), server.url("/y/1")])
    assert allowed == [False, True]
