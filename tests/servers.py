"""Real HTTP servers on 127.0.0.1 (OS-chosen port) for what pytest-httpserver cannot script.

`ScriptedServer({"/path": route})` serves each path with a route: a function that writes a
raw response through the stdlib handler, so it can sleep, drip, never end, lie about
Content-Length or stream a compression bomb. Routes wait on `server.stopping`, so stopping
the server wakes sleeping handlers at once. Every request is counted per path.
"""

from __future__ import annotations

import struct
import sys
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

Route = Callable[["Handler"], None]
Headers = Iterable[tuple[str, str]]

HTML_UTF8 = "text/html; charset=utf-8"
MIB = 1024 * 1024
BOMB_BATCH = 64         # deflate blocks (of 1 MiB inflated) per socket write


class Handler(BaseHTTPRequestHandler):
    """Dispatches GET requests to the server's routes; one request per connection."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        """Count the hit and run the route for the path (404 when there is none)."""
        path = urlsplit(self.path).path
        self.server.record(path)
        self.close_connection = True
        route = self.server.routes.get(path)
        if route is None:
            send(self, 404, b"not found", "text/plain")
        else:
            route(self)

    def log_message(self, fmt: str, *args: object) -> None:
        """Stay quiet: test output is not the place for access logs."""


class _Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer that tolerates clients hanging up (they do so on purpose)."""

    daemon_threads = True

    def __init__(self, routes: Mapping[str, Route]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes = dict(routes)
        self.stopping = threading.Event()
        self._hits: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, path: str) -> None:
        """Count one request for `path`."""
        with self._lock:
            self._hits[path] += 1

    def hits(self, path: str) -> int:
        """How many requests `path` received."""
        with self._lock:
            return self._hits[path]

    def handle_error(self, request: object, client_address: object) -> None:
        """Ignore disconnects (the fetcher drops connections at caps and timeouts)."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class ScriptedServer:
    """A threaded stdlib server on 127.0.0.1, used as `with ScriptedServer(routes) as s:`."""

    def __init__(self, routes: Mapping[str, Route]) -> None:
        self._server = _Server(routes)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Self:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Wake sleeping routes, stop serving and close the socket."""
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def url(self, path: str = "/") -> str:
        """Absolute URL of `path` on this server."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def hits(self, path: str) -> int:
        """How many requests `path` received."""
        return self._server.hits(path)


def send(handler: Handler, status: int, body: bytes, content_type: str | None = HTML_UTF8,
         headers: Headers = ()) -> None:
    """Write a complete response with a correct Content-Length."""
    handler.send_response(status)
    if content_type is not None:
        handler.send_header("Content-Type", content_type)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body)


def page(body: bytes, content_type: str | None = HTML_UTF8, status: int = 200,
         headers: Headers = ()) -> Route:
    """A route answering with a fixed response."""
    fixed_headers = tuple(headers)
    return lambda handler: send(handler, status, body, content_type, fixed_headers)


def slow_headers(delay: float, body: bytes = b"<p>late</p>") -> Route:
    """A route that says nothing for `delay` seconds, then answers (tests read timeouts)."""

    def route(handler: Handler) -> None:
        if not handler.server.stopping.wait(delay):
            send(handler, 200, body)

    return route


def slow_drip(interval: float, claimed_length: int = 10 * MIB) -> Route:
    """A route that sends headers at once, then one byte every `interval` s until stopped."""

    def route(handler: Handler) -> None:
        _start(handler, [("Content-Type", HTML_UTF8), ("Content-Length", str(claimed_length))])
        while not handler.server.stopping.wait(interval):
            handler.wfile.write(b"x")
            handler.wfile.flush()

    return route


def endless_chunked(chunk: bytes = b"<p>" + b"a" * 16380 + b"</p>") -> Route:
    """A route streaming chunked HTML as fast as it can, forever (until the client leaves)."""

    def route(handler: Handler) -> None:
        _start(handler, [("Content-Type", HTML_UTF8), ("Transfer-Encoding", "chunked")])
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        while not handler.server.stopping.is_set():
            handler.wfile.write(frame)

    return route


def wrong_length(claimed: int, body: bytes, content_type: str = HTML_UTF8,
                 hold: float = 0.0) -> Route:
    """A route promising `claimed` bytes but sending only `body`, then hanging up.

    With `hold`, the connection stays open (silent) that long before hanging up, so a client
    that tries to read the rest would wait for its read timeout.
    """

    def route(handler: Handler) -> None:
        _start(handler, [("Content-Type", content_type), ("Content-Length", str(claimed))])
        handler.wfile.write(body)
        handler.wfile.flush()
        handler.server.stopping.wait(hold)

    return route


def gzip_bomb(decompressed_size: int = 1024 * MIB) -> Route:
    """A route streaming gzip of `decompressed_size` zero bytes (~1 KB on the wire per MiB).

    Built from one deflate block of 1 MiB of zeros ending in a full flush: the compressor's
    state is reset at each flush, so the same bytes can be repeated to make a valid stream of
    any length without compressing a gigabyte in the test.
    """
    blocks = max(1, decompressed_size // MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(MIB)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    final_block = b"\x03\x00"       # an empty, final, fixed-Huffman deflate block
    length = len(first) + len(block) * (blocks - 1) + len(final_block) + 8

    def route(handler: Handler) -> None:
        _start(handler, [("Content-Type", HTML_UTF8), ("Content-Encoding", "gzip"),
                         ("Content-Length", str(length))])
        handler.wfile.write(first)
        # Write ~64 KiB of wire at a time (64 MiB inflated), like a fast real server: a
        # client decompressing whole network reads would allocate that much per read.
        for sent in range(1, blocks, BOMB_BATCH):
            if handler.server.stopping.is_set():
                return
            handler.wfile.write(block * min(BOMB_BATCH, blocks - sent))
        handler.wfile.write(final_block + _gzip_trailer(zeros, blocks))

    return route


def _gzip_trailer(unit: bytes, count: int) -> bytes:
    """CRC32 and size (mod 2**32) of `unit` repeated `count` times: the gzip trailer."""
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(unit, crc)
    return struct.pack("<II", crc, (len(unit) * count) & 0xFFFFFFFF)


def _start(handler: Handler, headers: Headers) -> None:
    """Send the status line and headers of a 200 whose body the route streams itself."""
    handler.send_response(200)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.flush()
