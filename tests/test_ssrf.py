"""Scope and SSRF: the crawl never connects to an internal address the sources did not name.

Only loopback is ever contacted: an allowed server on 127.0.0.1 and a forbidden one bound to
127.0.0.2 (a loopback alias on Linux). Private and metadata addresses (10/8, 172.16/12,
192.168/16, 169.254.169.254) are tested by the guard's decision only, under a tripwire: an
audit hook that stops any connect() beyond loopback before a packet is sent, and records it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpcore
import pytest

from crawler.config import CrawlConfig, FetchConfig, SourceConfig
from crawler.fetch import Fetcher
from crawler.netguard import GuardedBackend, NetGuard, is_private_address, literal_origins
from crawler.pipeline import crawl
from crawler.records import CrawlStats, FetchOutcome, FetchResult
from crawler.store import CorpusStore
from crawler.tag import Tagger, build_matcher
from crawler.taxonomy import default_categories_path, load_taxonomy
from servers import Route, ScriptedServer, page

FAST_FETCH = FetchConfig(connect_timeout=2, read_timeout=2, total_timeout=5, max_retries=0,
                         backoff_base=0.01)
BROAD = (re.compile(r"^https?://"),)
INTERNAL_URLS = ("http://10.0.0.1/", "http://10.255.1.2:8080/x", "http://172.16.0.1/",
                 "http://172.31.255.254/", "http://192.168.1.1/admin",
                 "http://169.254.169.254/latest/meta-data/", "http://[fd00::1]/")
ARTICLE = ("<html><head><title>刷单返利诈骗预警</title></head><body><h1>刷单返利诈骗预警</h1>"
           "<div class='article'><p>发布时间：2024-03-15</p><p>骗子以兼职刷单为名，先返小额佣金，"
           "再以连单卡单为由要求受害人垫付资金，随后拉黑失联。警方提示，凡是先垫付的刷单都是诈骗。"
           "</p></div></body></html>").encode()

# -- the tripwire ----------------------------------------------------------------------------
BLOCKED_CONNECTS: list[object] = []
ARMED = threading.Event()       # set only while a test of this module runs


def _tripwire(event: str, args: tuple[object, ...]) -> None:
    """Audit hook: refuse (and record) any TCP/UDP connect beyond loopback in this process."""
    if (event != "socket.connect" or not ARMED.is_set() or len(args) < 2
            or not isinstance(args[1], tuple)):
        return
    host = str(args[1][0])
    try:
        loopback = ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        BLOCKED_CONNECTS.append(args[1])
        raise ConnectionRefusedError(f"test tripwire: no connection to {args[1]!r}")


sys.addaudithook(_tripwire)  # hooks cannot be removed: it acts only while ARMED


@pytest.fixture(autouse=True)
def no_blocked_connects() -> Iterator[None]:
    BLOCKED_CONNECTS.clear()
    ARMED.set()
    try:
        yield
    finally:
        ARMED.clear()
    assert BLOCKED_CONNECTS == [], "something tried to connect beyond loopback"


def test_tripwire_stops_a_connect_beyond_loopback_before_any_packet() -> None:
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="tripwire"):
        sock.connect(("10.0.0.1", 80))
    assert BLOCKED_CONNECTS == [("10.0.0.1", 80)]
    BLOCKED_CONNECTS.clear()


# -- the guard's decision --------------------------------------------------------------------
@pytest.mark.parametrize("host", [
    "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.0.1",
    "169.254.169.254", "127.0.0.1", "127.0.0.2", "0.0.0.0", "100.64.0.1", "224.0.0.1",
    "::1", "[::1]", "fe80::1", "fd00::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::",
    "localhost", "LOCALHOST.", "intranet.localhost"])
def test_internal_addresses_are_private(host: str) -> None:
    assert is_private_address(host)


@pytest.mark.parametrize("host", ["8.8.8.8", "172.32.0.1", "192.169.0.1", "11.0.0.1",
                                  "2001:4860:4860::8888", "gaj.example.cn"])
def test_public_addresses_and_unresolved_names_are_not_private(host: str) -> None:
    assert not is_private_address(host)


@pytest.mark.parametrize(("pattern", "origins"), [
    (r"^http://10\.0\.0\.5:8080/", {("10.0.0.5", 8080)}),
    (r"^https?://intra\.example\.cn/", {("intra.example.cn", 80), ("intra.example.cn", 443)}),
    (r"^https://gaj\.example\.cn$", {("gaj.example.cn", 443)}),
    (r"^http://\[::1\]:81/", {("::1", 81)}),
    (r"^https?://", set()),
    (r"^https?://[^/]+\.gov\.cn/", set()),
    (r"^http://10\.\d+\.\d+\.\d+/", set()),
    (r"/fzxc/", set()),
])
def test_only_hosts_an_allow_pattern_names_literally_are_trusted(
        pattern: str, origins: set[tuple[str, int]]) -> None:
    assert literal_origins(pattern) == origins


def test_start_urls_and_literal_allow_hosts_are_trusted_by_name_and_port() -> None:
    src = SourceConfig(name="s", start_urls=("http://127.0.0.1:8000/list.htm",),
                       allow=(re.compile(r"^http://10\.1\.2\.3/"), *BROAD))
    guard = NetGuard.for_sources([src])
    assert guard.trusted == {("127.0.0.1", 8000), ("10.1.2.3", 80)}

    async def decide() -> list[str | None]:
        return [await guard.refusal(u) for u in (
            "http://127.0.0.1:8000/a.html", "http://10.1.2.3/x", "http://127.0.0.1:8001/",
            "http://localhost:8000/", "http://10.1.2.3:8080/", "http://127.0.0.2:8000/")]

    allowed, literal, other_port, other_name, literal_other_port, alias = asyncio.run(decide())
    assert allowed is None and literal is None
    for refusal in (other_port, other_name, literal_other_port, alias):
        assert refusal is not None and "internal address" in refusal


@pytest.mark.parametrize("url", ["http://2130706433:8000/", "http://0x7f.1:8000/",
                                 "http://127.1:8000/"])
def test_numeric_spellings_of_loopback_are_refused_after_resolving(url: str) -> None:
    refusal = asyncio.run(NetGuard().refusal(url))
    assert refusal is not None and "resolves to internal address 127.0.0.1" in refusal


# -- the fetcher refuses before connecting ---------------------------------------------------
def guarded_fetch(url: str, guard: NetGuard) -> FetchResult:
    async def run() -> FetchResult:
        async with Fetcher(FAST_FETCH, guard=guard) as fetcher:
            return await fetcher.fetch(url, is_allowed=lambda _url: True)

    return asyncio.run(run())


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_fetch_of_an_internal_address_is_refused_before_connecting(url: str) -> None:
    result = guarded_fetch(url, NetGuard())
    assert result.outcome is FetchOutcome.OUT_OF_SCOPE and result.status == 0
    assert "internal address" in (result.error or "")


@pytest.mark.parametrize("target", INTERNAL_URLS)
def test_redirect_to_an_internal_address_is_refused_before_connecting(target: str) -> None:
    with ScriptedServer({"/go": page(b"", status=302, headers=[("Location", target)])}) as site:
        guard = NetGuard.for_sources([SourceConfig(name="s", start_urls=(site.url("/"),))])
        result = guarded_fetch(site.url("/go"), guard)
        assert site.hits("/go") == 1
    assert result.outcome is FetchOutcome.OUT_OF_SCOPE and result.status == 302
    assert result.final_url == site.url("/go")
    assert "internal address" in (result.error or "")


def test_fetch_refusal_is_logged_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="crawler.fetch"):
        guarded_fetch("http://169.254.169.254/latest/meta-data/", NetGuard())
    assert "refused, internal address 169.254.169.254" in caplog.text


# -- whole crawls ----------------------------------------------------------------------------
class _CountingServer(ThreadingHTTPServer):
    """A server on 127.0.0.2 that counts every connection it accepts (it should get none)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.2", 0), _Secret)
        self.connections = 0

    def verify_request(self, request: object, client_address: object) -> bool:
        self.connections += 1
        return True


class _Secret(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body><p>internal secret</p></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def forbidden() -> Iterator[_CountingServer]:
    server = _CountingServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return build_matcher(load_taxonomy(default_categories_path()))


def secret_url(server: _CountingServer, path: str = "/secret.html") -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}{path}"


def run_crawl(data: Path, tagger: Tagger, src: SourceConfig) -> CrawlStats:
    config = CrawlConfig(sources=(src,), fetch=FAST_FETCH)
    with CorpusStore(data) as store:
        return crawl(config, store, tagger)


def hostile_site(forbidden_base: str, other_port_base: str) -> tuple[dict[str, Route], list[str]]:
    """An allowed site whose list page links and redirects to internal addresses."""
    redirects = {"/r-alias": forbidden_base + "/secret.html",
                 "/r-meta": "http://169.254.169.254/latest/meta-data/",
                 "/r-localhost": other_port_base.replace("127.0.0.1", "localhost") + "/",
                 "/r-private": "http://192.168.0.1/",
                 "/r-file": "file:///etc/passwd"}
    links = [forbidden_base + "/secret.html", forbidden_base.replace("127.0.0.2", "localhost"),
             "http://[::1]:1/", other_port_base + "/secret.html", *INTERNAL_URLS,
             "file:///etc/passwd", "ftp://127.0.0.1/x", *redirects, "/a1.html"]
    items = "".join(f"<li><a href='{h}'>链接 {n}</a></li>" for n, h in enumerate(links))
    routes = {"/list.htm": page(f"<html><body><ul>{items}</ul></body></html>".encode()),
              "/a1.html": page(ARTICLE)}
    routes.update({path: page(b"", status=302, headers=[("Location", target)])
                   for path, target in redirects.items()})
    return routes, list(redirects)


def test_broad_allow_never_reaches_internal_hosts_and_counts_each_refusal(
        tmp_path: Path, tagger: Tagger, forbidden: _CountingServer,
        caplog: pytest.LogCaptureFixture) -> None:
    with ScriptedServer({"/secret.html": page(b"<p>other port</p>")}) as other_port:
        other_base = other_port.url("")
        routes, redirect_paths = hostile_site(secret_url(forbidden, ""), other_base)
        with ScriptedServer(routes) as site:
            src = SourceConfig(name="s", start_urls=(site.url("/list.htm"),), allow=BROAD,
                               delay=0.0, article=(re.compile(r"/a\d+\.html$"),))
            with caplog.at_level(logging.WARNING, logger="crawler.fetch"):
                stats = run_crawl(tmp_path, tagger, src)
            assert all(site.hits(p) == 1 for p in redirect_paths)
        assert other_port.hits("/secret.html") == 0
    assert forbidden.connections == 0
    # 4 loopback links + 7 private links + 5 redirects (4 to internal hosts, 1 to file:);
    # file: and ftp: links are no web links at all and are never queued.
    assert stats.out_of_scope == 4 + len(INTERNAL_URLS) + 5
    assert stats.new == 1 and stats.failed == 0 and stats.robots == 0
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert len(refusals) == 4 + len(INTERNAL_URLS) + 4
    assert any("169.254.169.254" in message for message in refusals)


def test_default_scope_drops_links_to_other_hosts_without_fetching(
        tmp_path: Path, tagger: Tagger, forbidden: _CountingServer) -> None:
    routes, _ = hostile_site(secret_url(forbidden, ""), "http://127.0.0.1:1")
    with ScriptedServer(routes) as site:
        src = SourceConfig(name="s", start_urls=(site.url("/list.htm"),), delay=0.0,
                           article=(re.compile(r"/a\d+\.html$"),))
        stats = run_crawl(tmp_path, tagger, src)
    assert forbidden.connections == 0
    # Links off the start host are outside the regex scope and never queued; the 5 redirects
    # are refused by that scope. The default scope is the start HOST, so the link to another
    # port of 127.0.0.1 is queued, and the network guard (trust is per host AND port) refuses
    # it: 6 in all.
    assert stats.out_of_scope == 6 and stats.new == 1


def test_internal_host_named_in_allow_is_crawled(
        tmp_path: Path, tagger: Tagger, forbidden: _CountingServer) -> None:
    base = secret_url(forbidden, "")
    routes = {"/list.htm": page(f"<a href='{base}/secret.html'>内部</a>".encode())}
    with ScriptedServer(routes) as site:
        allow = (re.compile(re.escape(site.url("/"))), re.compile("^" + re.escape(base + "/")))
        src = SourceConfig(name="s", start_urls=(site.url("/list.htm"),), allow=allow,
                           delay=0.0)
        stats = run_crawl(tmp_path, tagger, src)
    assert forbidden.connections >= 1 and stats.out_of_scope == 0 and stats.failed == 0


# -- the connect-time check (GuardedBackend) -----------------------------------------------
class _SpyBackend(httpcore.AsyncNetworkBackend):
    """Records where a connection was asked for, and refuses it (nothing is contacted)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None,
                          socket_options=None):
        self.asked.append((host, port))
        raise httpcore.ConnectError("spy: not connecting")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _answers(monkeypatch: pytest.MonkeyPatch, *answers: set[str]) -> list[str]:
    """Make NetGuard's resolver give `answers` in turn (the last one from then on)."""
    asked: list[str] = []

    async def resolve(self: NetGuard, host: str, port: int) -> set[str]:
        asked.append(host)
        return answers[min(len(asked), len(answers)) - 1]

    monkeypatch.setattr(NetGuard, "_resolve", resolve)
    return asked


def test_backend_connects_to_the_address_it_checked_not_the_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _answers(monkeypatch, {"93.184.216.34"})
    spy = _SpyBackend()
    backend = GuardedBackend(NetGuard(), inner=spy)
    with pytest.raises(httpcore.ConnectError, match="spy"):
        asyncio.run(backend.connect_tcp("news.example.cn", 443))
    assert spy.asked == [("93.184.216.34", 443)]
    assert asked == ["news.example.cn"]


def test_backend_refuses_a_name_rebound_to_an_internal_address(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The pre-request check sees a public address; the connection's own lookup gets the
    internal one (DNS rebinding) and is refused before any connect."""
    _answers(monkeypatch, {"93.184.216.34"}, {"169.254.169.254"})
    guard = NetGuard()
    spy = _SpyBackend()

    async def check_then_connect() -> str | None:
        verdict = await guard.refusal("http://rebind.example.cn/latest/meta-data/")
        refused = re.escape("internal address 169.254.169.254")
        with pytest.raises(httpcore.ConnectError, match=refused):
            await GuardedBackend(guard, inner=spy).connect_tcp("rebind.example.cn", 80)
        return verdict

    assert asyncio.run(check_then_connect()) is None
    assert spy.asked == []


def test_backend_passes_trusted_origins_through_unresolved(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _answers(monkeypatch, set())
    spy = _SpyBackend()
    backend = GuardedBackend(NetGuard(frozenset({("127.0.0.1", 8080)})), inner=spy)
    with pytest.raises(httpcore.ConnectError, match="spy"):
        asyncio.run(backend.connect_tcp("127.0.0.1", 8080))
    with pytest.raises(httpcore.ConnectError, match=re.escape("internal address 127.0.0.1")):
        asyncio.run(backend.connect_tcp("127.0.0.1", 8081))      # another port: not trusted
    assert spy.asked == [("127.0.0.1", 8080)]
    assert asked == []


def test_fetcher_refuses_a_rebound_name_at_connect_time(
        monkeypatch: pytest.MonkeyPatch, forbidden: _CountingServer) -> None:
    """The pre-request check sees a public address; the connection's lookup gets 127.0.0.2,
    where a server waits: the fetch fails and that server is never contacted."""
    port = forbidden.server_address[1]
    _answers(monkeypatch, {"93.184.216.34"}, {"127.0.0.2"})

    async def fetch() -> FetchResult:
        async with Fetcher(FAST_FETCH, guard=NetGuard()) as fetcher:
            return await fetcher.fetch(f"http://rebind.example.cn:{port}/secret.html",
                                       is_allowed=lambda url: True)

    result = asyncio.run(fetch())
    assert result.outcome is FetchOutcome.NETWORK_ERROR
    assert "internal address 127.0.0.2" in (result.error or "")
    assert forbidden.connections == 0
