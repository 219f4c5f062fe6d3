"""Network-level scope: never connect to a private, loopback or otherwise internal address
unless the sources named that host explicitly (SSRF guard).

The allow/deny regexes decide which URLs are *wanted*; this module decides which addresses
may be *connected to*. It matters when `allow` is broad (`['^https?://']`) or when a
public-looking name resolves to an internal address (a metadata service, an intranet box).

The rule (`NetGuard.refusal`):
1. A URL whose host and port are trusted may be fetched wherever the host resolves. Trusted
   are (a) the host:port of every start URL, and (b) every host an `allow` pattern names
   literally, e.g. `'^http://10\\.0\\.0\\.5:8080/'` (that port) or `'^https?://intra\\.cn/'`
   (ports 80 and 443). Trust is by the name as written: a start URL on 127.0.0.1 does not
   make `localhost`, another port, or 127.0.0.2 trusted.
2. Any other URL is resolved first (`loop.getaddrinfo`, the same resolver the connection
   will use) and refused when ANY address is not globally routable: private (10/8,
   172.16/12, 192.168/16, fc00::/7), loopback, link-local (169.254/16 incl. cloud metadata,
   fe80::/10), shared (100.64/10), multicast, reserved or unspecified. Names under
   `localhost` are refused without a lookup. A name that does not resolve is refused too.

The check runs twice: `refusal()` before a request (a clean "out of scope" outcome), and
`GuardedBackend` when a connection opens. The backend resolves the name itself, applies the
same rule to the addresses and connects to an address it checked, never re-resolving: a DNS
server answering differently the second time (DNS rebinding) meets the check again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore

from crawler.aionet import AsyncioBackend
from crawler.config import SourceConfig
from crawler.urls import DEFAULT_PORTS

# The host an allow pattern names literally: optional ^, a scheme (http, https or https?),
# then a host of letters, digits, '-' and escaped dots (or an escaped [IPv6] literal), an
# optional port, then the end of the authority. Anything with a wildcard names no host.
_LITERAL_HOST = re.compile(
    r"^\^?(?P<scheme>https\?|https|http)://"
    r"(?P<host>(?:[A-Za-z0-9-]|\\\.)+|\\\[[0-9A-Fa-f:.]+\\\])"
    r"(?::(?P<port>\d{1,5}))?(?:/|\$|\\/|$)")

Origin = tuple[str, int]
UNRESOLVED = "cannot resolve"   # the one verdict that may change on the next try


def is_private_address(host: str) -> bool:
    """True when `host` (an IP literal, bracketed or not, or a name) is certainly internal:
    a non-global IP address, or a name under `localhost`. Other names need resolving
    (`NetGuard.refusal` does that) and give False here."""
    host = _host_name(host)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])   # drop an IPv6 zone id
    except ValueError:
        return False
    return _is_internal(address)


def _host_name(host: str) -> str:
    """A host as written in a URL or handed to connect: no brackets, no trailing dot."""
    return host.strip().strip("[]").rstrip(".").lower()


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return _is_internal(mapped)
    return not address.is_global or address.is_multicast


def url_origin(url: str) -> Origin | None:
    """(host, port) of an http(s) URL, the port made explicit; None when it has neither."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    return (host, port) if host and port else None


def literal_origins(pattern: str) -> set[Origin]:
    """The origins an allow pattern names literally (empty when it names no single host)."""
    match = _LITERAL_HOST.match(pattern)
    if match is None:
        return set()
    host = match["host"].replace("\\", "").strip("[]").lower()
    if match["port"]:
        return {(host, int(match["port"]))}
    schemes = {"https?": ("http", "https")}.get(match["scheme"], (match["scheme"],))
    return {(host, DEFAULT_PORTS[scheme]) for scheme in schemes}


@dataclass(frozen=True, slots=True)
class NetGuard:
    """Which origins may be internal; `refusal()` applies the module's rule to one URL."""

    trusted: frozenset[Origin] = frozenset()
    resolve_timeout: float = 10.0

    @classmethod
    def for_sources(cls, sources: Iterable[SourceConfig],
                    resolve_timeout: float = 10.0) -> NetGuard:
        """Trust the start URLs' origins and the hosts the allow patterns name literally."""
        trusted: set[Origin] = set()
        for source in sources:
            trusted.update(o for o in map(url_origin, source.start_urls) if o is not None)
            for pattern in source.allow:
                trusted.update(literal_origins(pattern.pattern))
        return cls(frozenset(trusted), resolve_timeout)

    async def refusal(self, url: str) -> str | None:
        """Why `url` must not be connected to, or None when it may. Never connects. The
        verdict holds for every URL of the same origin, except an UNRESOLVED one."""
        origin = url_origin(url)
        if origin is None:
            return "no host to check"
        if origin in self.trusted:
            return None
        return (await self.vet(*origin))[1]

    async def vet(self, host: str, port: int) -> tuple[tuple[str, ...], str | None]:
        """(the addresses `host` resolves to, why connecting is refused or None) for an
        untrusted origin. Refused when any address is internal or there is none."""
        if is_private_address(host):
            return (), f"internal address {host} (not a start URL or allow host)"
        addresses = await self._resolve(host, port)
        if not addresses:
            return (), f"{UNRESOLVED} {host}"
        internal = sorted(a for a in addresses if is_private_address(a))
        if internal:
            return (), f"{host} resolves to internal address {internal[0]}"
        return tuple(sorted(addresses)), None

    async def _resolve(self, host: str, port: int) -> set[str]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.resolve_timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, TimeoutError):
            return set()
        return {str(info[4][0]) for info in infos}


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer with the guard at connect time: a trusted origin connects
    as named; any other name is resolved here, vetted, and one of the vetted addresses is
    connected to (TLS still verifies the certificate against the name)."""

    def __init__(self, guard: NetGuard, inner: httpcore.AsyncNetworkBackend | None = None
                 ) -> None:
        self._guard = guard
        self._inner = inner or AsyncioBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        name = _host_name(host)
        if (name, port) in self._guard.trusted:
            return await self._inner.connect_tcp(host, port, timeout, local_address,
                                                 socket_options)
        addresses, refusal = await self._guard.vet(name, port)
        if refusal is not None:
            raise httpcore.ConnectError(f"refused by the network guard: {refusal}")
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address,
                                                     socket_options)
            except httpcore.ConnectError as exc:    # try the name's next address
                failure = exc
        assert failure is not None      # vet() never accepts an empty address list
        raise failure

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("refused by the network guard: unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
