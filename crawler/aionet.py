"""httpcore's network layer on plain asyncio: the sockets under the crawl's httpx client.

httpcore runs its connections on anyio, and anyio's streams cost the crawl's main process
more than the HTTP itself: a cancel scope around every read and write, a task lookup in
each, and for every pooled connection it reuses, a getpeername() and a poll() to ask whether
the server closed it. On the benchmark site a GET takes ~0.97 ms of client CPU through
anyio and ~0.69 ms through this module (benchmarks/bench_crawl.py measures both).

A connection is one asyncio Protocol with a receive buffer: reads take from the buffer or
wait for data, writes go to the transport and wait only when it asks us to (flow control),
and "is the idle connection still usable" is answered from what the protocol already saw
(data or EOF), without a system call. TLS is asyncio's own (loop.start_tls).

Errors are httpcore's: ConnectError/ConnectTimeout, ReadError/ReadTimeout,
WriteError/WriteTimeout, as its anyio backend raises them.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

# Stop reading from the socket while this much received data waits unread (a client that
# reads slowly must not buffer a whole large body), and start again below the low mark.
READ_BUFFER_HIGH = 256 * 1024
READ_BUFFER_LOW = 64 * 1024
HAPPY_EYEBALLS_DELAY = 0.25     # as anyio's connect_tcp: try the next address after this


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections with loop.create_connection; see the module docstring."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Connection, host, port,
                    local_addr=(local_address, 0) if local_address else None,
                    happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(_describe(exc)) from exc
        # asyncio already sets TCP_NODELAY on TCP sockets; these are the caller's extras.
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(transport, protocol)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not supported")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Connection(asyncio.Protocol):
    """The receiving side of one connection (and the sending side's flow control)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False                        # the peer closed, or the connection went
        self.closed = False                     # the connection went (no more writes)
        self.error: Exception | None = None     # ... by this error (None: a clean close)
        self.reading_paused = False
        self.writing_paused = False
        self.readable = _Signal()   # data or EOF arrived, for a read waiting on it
        self.writable = _Signal()   # the transport takes writes again, for a write waiting

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > READ_BUFFER_HIGH and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()   # type: ignore[union-attr]
        self.readable.fire()

    def eof_received(self) -> bool:
        self.eof = True
        self.readable.fire()
        return False    # close our side too: HTTP/1.1 never half-closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = self.closed = True
        self.error = exc
        self.readable.fire()
        self.writable.fire()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.writable.fire()

    def end_reason(self) -> str:
        """Why no more can be sent, once the connection has gone."""
        return _describe(self.error) if self.error is not None else "connection closed"


class _Signal:
    """One coroutine parked until the protocol reports an event (httpcore never reads or
    writes one connection from two tasks at once)."""

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None

    async def wait(self, timeout: float | None,
                   timeout_error: type[httpcore.TimeoutException], what: str) -> None:
        """Until fire(); `timeout_error` (saying `what` timed out) after `timeout` s."""
        self._future = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._future
        except TimeoutError as exc:
            raise timeout_error(f"timed out {what}") from exc
        finally:
            self._future = None

    def fire(self) -> None:
        if self._future is not None and not self._future.done():
            self._future.set_result(None)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection as httpcore reads and writes it."""

    def __init__(self, transport: asyncio.Transport, connection: _Connection) -> None:
        self._transport = transport
        self._connection = connection

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        connection = self._connection
        if not connection.buffer and not connection.eof:
            await connection.readable.wait(timeout, httpcore.ReadTimeout, "waiting for data")
        if connection.buffer:
            data = bytes(connection.buffer[:max_bytes])
            del connection.buffer[:max_bytes]
            if connection.reading_paused and len(connection.buffer) <= READ_BUFFER_LOW:
                connection.reading_paused = False
                self._transport.resume_reading()
            return data
        if connection.error is not None:    # e.g. reset by the peer
            raise httpcore.ReadError(_describe(connection.error))
        return b""      # end of stream: h11 decides whether that was allowed here

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        connection = self._connection
        if connection.closed or self._transport.is_closing():
            raise httpcore.WriteError(connection.end_reason())
        self._transport.write(buffer)
        if connection.writing_paused:
            await connection.writable.wait(timeout, httpcore.WriteTimeout, "sending")
            if connection.closed:
                raise httpcore.WriteError(connection.end_reason())

    async def aclose(self) -> None:
        if self._transport.get_extra_info("ssl_object") is not None:
            # A TLS close waits for the server's close_notify (up to 30 s) before closing
            # the socket, on an event loop that may be gone by then. HTTP frames its own
            # end, so a client that is done needs no TLS goodbye: drop the connection.
            self._transport.abort()
        else:
            self._transport.close()     # flushes what is unsent, then closes

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(self._transport, self._connection,
                                                 ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            self._transport.abort()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from exc
        except (OSError, ConnectionError) as exc:   # ssl.SSLError is an OSError
            self._transport.abort()
            raise httpcore.ConnectError(_describe(exc)) from exc
        if transport is None:       # the connection went during the handshake
            raise httpcore.ConnectError("connection closed during the TLS handshake")
        self._connection.transport = transport
        return AsyncioStream(transport, self._connection)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # An idle keep-alive connection that has data or EOF waiting was closed or
            # broken by the server: httpcore then drops it instead of reusing it.
            connection = self._connection
            return bool(connection.buffer) or connection.eof
        name = {"ssl_object": "ssl_object", "client_addr": "sockname",
                "server_addr": "peername", "socket": "socket"}.get(info)
        return self._transport.get_extra_info(name) if name else None
