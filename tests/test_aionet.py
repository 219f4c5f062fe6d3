"""crawler.aionet, httpcore's network layer on asyncio: TLS, reused and stale keep-alive
connections, flow control and errors, against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.server
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpcore
import pytest
import trustme

from crawler.aionet import READ_BUFFER_HIGH, AsyncioBackend
from crawler.config import FetchConfig
from crawler.fetch import Fetcher
from crawler.records import FetchOutcome, FetchResult

FAST = FetchConfig(connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0, max_retries=0,
                   backoff_base=0.01)
HTML = "<html><body><p>防范电信网络诈骗</p></body></html>".encode()


def fetch_all(urls: list[str], config: FetchConfig = FAST, pause: float = 0.0
              ) -> list[FetchResult]:
    """Fetch `urls` one after another with one Fetcher (one connection pool)."""

    async def run() -> list[FetchResult]:
        results = []
        async with Fetcher(config) as fetcher:
            for url in urls:
                results.append(await fetcher.fetch(url, is_allowed=lambda _: True))
                await asyncio.sleep(pause)
        return results

    return asyncio.run(run())


# -- TLS -------------------------------------------------------------------------------
class _PageHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(HTML)))
        self.end_headers()
        self.wfile.write(HTML)

    def log_message(self, fmt: str, *args: object) -> None:
        pass


@contextmanager
def https_server(certificate_for: str) -> Iterator[tuple[str, trustme.CA]]:
    """An HTTPS server on 127.0.0.1 whose certificate (from a fresh CA) names
    `certificate_for`; yields its base URL and the CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(certificate_for).configure_cert(context)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", ca
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Make the client trust a CA (httpx reads SSL_CERT_FILE when it builds its context)."""

    def trust(ca: trustme.CA) -> None:
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))

    return trust


def test_https_page_is_fetched_over_tls_and_the_connection_reused(trusted) -> None:
    with https_server("127.0.0.1") as (base, ca):
        trusted(ca)
        results = fetch_all([f"{base}/a.html", f"{base}/b.html"])
    assert [r.outcome for r in results] == [FetchOutcome.OK, FetchOutcome.OK]
    assert results[1].body == HTML


def test_certificate_for_another_name_is_refused(trusted) -> None:
    with https_server("other.example.cn") as (base, ca):
        trusted(ca)
        [result] = fetch_all([f"{base}/a.html"])
    assert result.outcome is FetchOutcome.NETWORK_ERROR
    assert "CERTIFICATE_VERIFY_FAILED" in (result.error or "")


def test_certificate_from_an_unknown_ca_is_refused(trusted) -> None:
    with https_server("127.0.0.1") as (base, _):
        trusted(trustme.CA())
        [result] = fetch_all([f"{base}/a.html"])
    assert result.outcome is FetchOutcome.NETWORK_ERROR
    assert "CERTIFICATE_VERIFY_FAILED" in (result.error or "")


# -- keep-alive --------------------------------------------------------------------------
class _KeepAliveServer(socketserver.ThreadingTCPServer):
    """Answers each request with a keep-alive response, then closes the connection after
    `linger` seconds of silence (as servers drop idle keep-alive connections)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, linger: float) -> None:
        super().__init__(("127.0.0.1", 0), _KeepAliveHandler)
        self.linger = linger
        self.connections = 0
        self.requests = 0


class _KeepAliveHandler(socketserver.BaseRequestHandler):
    server: _KeepAliveServer

    def handle(self) -> None:
        self.server.connections += 1
        self.request.settimeout(self.server.linger)
        pending = b""
        while True:
            try:
                data = self.request.recv(65536)
            except TimeoutError:
                return      # idle too long: hang up
            if not data:
                return
            pending += data
            while b"\r\n\r\n" in pending:
                _, pending = pending.split(b"\r\n\r\n", 1)
                self.server.requests += 1
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                                     b"Connection: keep-alive\r\n"
                                     + f"Content-Length: {len(HTML)}\r\n\r\n".encode() + HTML)


@contextmanager
def keep_alive_server(linger: float) -> Iterator[_KeepAliveServer]:
    server = _KeepAliveServer(linger)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_keep_alive_connection_is_reused() -> None:
    with keep_alive_server(linger=5.0) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        results = fetch_all([f"{base}/{n}.html" for n in range(5)])
    assert all(r.outcome is FetchOutcome.OK for r in results)
    assert (server.requests, server.connections) == (5, 1)


def test_connection_the_server_closed_while_idle_is_not_reused() -> None:
    # The pool must see the server's close (EOF waiting on the idle connection) and open a
    # new connection; reusing the dead one would fail the request (no retries here).
    with keep_alive_server(linger=0.05) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        results = fetch_all([f"{base}/{n}.html" for n in range(3)], pause=0.3)
    assert all(r.outcome is FetchOutcome.OK for r in results), [r.error for r in results]
    assert (server.requests, server.connections) == (3, 3)


# -- the stream itself ----------------------------------------------------------------------
@contextmanager
def raw_server(script) -> Iterator[int]:
    """A one-connection TCP server running `script(conn)`; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            script(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(timeout=5)
        listener.close()


def test_reading_pauses_while_unread_data_piles_up_and_loses_nothing() -> None:
    payload = bytes(range(256)) * (4 * READ_BUFFER_HIGH // 256)     # 1 MiB

    async def run(port: int) -> tuple[bool, bytes]:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        await asyncio.sleep(0.2)    # the server sends it all while nobody reads
        paused = stream._connection.reading_paused
        received = bytearray()
        while chunk := await stream.read(65536, timeout=2):
            received += chunk
        await stream.aclose()
        return paused, bytes(received)

    with raw_server(lambda conn: conn.sendall(payload)) as port:
        paused, received = asyncio.run(run(port))
    assert paused
    assert received == payload


def test_silent_server_is_a_read_timeout_and_a_refused_port_a_connect_error() -> None:
    release = threading.Event()

    async def read_with_timeout(port: int) -> None:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        try:
            await stream.read(1024, timeout=0.1)
        finally:
            await stream.aclose()

    with raw_server(lambda conn: release.wait(5)) as port:
        with pytest.raises(httpcore.ReadTimeout):
            asyncio.run(read_with_timeout(port))
        release.set()

    unused = socket.create_server(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()
    with pytest.raises(httpcore.ConnectError):
        asyncio.run(AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2))


def test_reset_connection_is_a_read_error_and_writing_to_it_a_write_error() -> None:
    def reset(conn: socket.socket) -> None:
        conn.recv(100)
        # SO_LINGER 0: close() sends RST instead of FIN
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    async def run(port: int) -> tuple[type[BaseException], type[BaseException]]:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        await stream.write(b"GET / HTTP/1.1\r\n\r\n", timeout=2)
        errors = []
        for attempt in (stream.read(1024, timeout=2), stream.write(b"more", timeout=2)):
            try:
                await attempt
            except (httpcore.ReadError, httpcore.WriteError) as exc:
                errors.append(type(exc))
        await stream.aclose()
        return tuple(errors)

    with raw_server(reset) as port:
        assert asyncio.run(run(port)) == (httpcore.ReadError, httpcore.WriteError)
