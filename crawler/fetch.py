"""HTTP fetching: URL -> FetchResult. The only module that knows httpx.

Contracts:
- Redirects are followed here, not by httpx: every hop is resolved against the current URL
  and checked with the caller's `is_allowed` (scope) and for http(s) before it is requested.
- Bodies are streamed RAW and decompressed by our own decoders that never produce more than
  the room left under `max_body_bytes`, so a compression bomb costs at most about the cap in
  memory and the connection is dropped as soon as the cap is passed.
- Each request (one attempt at one hop, body included) runs under `total_timeout`, which
  stops slow-drip and endless responses that the per-read timeout cannot.
- Connection errors, read/connect timeouts, 429 and 5xx are retried with exponential backoff
  and full jitter (Retry-After honoured, capped at `backoff_max`).
- Per-URL problems come back as a FetchResult, never as an exception; asyncio cancellation
  propagates.
- With a `NetGuard` (the crawl always passes one), every hop's host is checked BEFORE any
  connection: internal addresses (private, loopback, link-local, ...) not trusted by the
  sources end in OUT_OF_SCOPE, logged as a warning (see `crawler.netguard` for the rule).
  Connections then open through the guard's backend, which checks the address it connects
  to again (a name rebound to an internal address fails as a network error).
  Without one (fetcher unit tests), any address may be connected to.

A Fetcher is bound to the event loop that first uses it; share one per crawl (not thread-safe).
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import random
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import urldefrag, urljoin, urlsplit

import brotli
import httpx

from crawler.config import FetchConfig
from crawler.errors import FetchError
from crawler.netguard import UNRESOLVED, GuardedBackend, NetGuard, Origin, url_origin
from crawler.records import FetchOutcome, FetchResult

logger = logging.getLogger(__name__)

RobotsCheck = Callable[[str], Awaitable[bool]]

HTML_MEDIA_TYPES = frozenset({"", "text/html", "application/xhtml+xml", "text/plain"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Bytes that mark a body as binary whatever its Content-Type claims. Old Office files (OLE2)
# are listed because Chinese government sites often serve .doc/.xls notices as text/html.
BINARY_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"%PDF-", "PDF document"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE2 document (doc/xls)"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\x1f\x8b\x08", "gzip data"),
)
SNIFF_BYTES = 8                     # longest signature above
ROBOTS_MAX_BYTES = 500 * 1024       # RFC 9309 2.5: parse at least the first 500 KiB
ROBOTS_MAX_REDIRECTS = 5            # RFC 9309 2.3.1.2: follow at least five redirects
# brotli >= 1.2 can cap its output; older versions could be bombed, so br is not offered.
BOUNDED_BROTLI = hasattr(brotli.Decompressor, "can_accept_more_data")
ACCEPT_ENCODING = "gzip, deflate, br" if BOUNDED_BROTLI else "gzip, deflate"
LOCATION_EXTENSION = "fraudkb_location"
ACCEPT = "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.8,*/*;q=0.1"


class _Decoder(Protocol):
    def decode(self, data: bytes, max_length: int) -> bytes:
        """Decompress `data`, returning at most about `max_length` bytes."""


class _Identity:
    """No Content-Encoding: bytes pass through (the caller counts them)."""

    def decode(self, data: bytes, max_length: int) -> bytes:
        """Return `data` unchanged."""
        return data


class _Zlib:
    """gzip / zlib-deflate with an output cap.

    The caller always asks for one byte more than the room left, so when zlib stops at
    `max_length` the body is over the cap and the unconsumed input no longer matters.
    """

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._obj = zlib.decompressobj(wbits)
        self._started = False

    def decode(self, data: bytes, max_length: int) -> bytes:
        """Decompress up to `max_length` bytes of output."""
        try:
            out = self._obj.decompress(data, max_length)
        except zlib.error:
            # Some servers send raw deflate (no zlib header) as "deflate"; retry it raw once.
            if self._started or self._wbits != zlib.MAX_WBITS:
                raise
            self._wbits = -zlib.MAX_WBITS
            self._obj = zlib.decompressobj(self._wbits)
            out = self._obj.decompress(data, max_length)
        self._started = True
        return out


class _Brotli:
    """brotli with an output cap (brotli >= 1.2; its buffer may overshoot by one block)."""

    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def decode(self, data: bytes, max_length: int) -> bytes:
        """Decompress up to about `max_length` bytes of output."""
        out = self._obj.process(data, output_buffer_limit=max_length)
        while len(out) < max_length and not self._obj.can_accept_more_data():
            out += self._obj.process(b"", output_buffer_limit=max_length - len(out))
        return out


def _make_decoder(content_encoding: str | None) -> _Decoder | None:
    """A decoder for the Content-Encoding header, or None when we cannot decode it."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return _Identity()
    if len(codings) > 1:
        return None     # stacked codings: never offered by us, too rare to be worth a bound
    if codings[0] in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if codings[0] == "deflate":
        return _Zlib(zlib.MAX_WBITS)
    if codings[0] == "br" and BOUNDED_BROTLI:
        return _Brotli()
    return None


@dataclass(frozen=True, slots=True)
class _Policy:
    """How a body is treated: pages are type-checked and capped; robots.txt is truncated."""

    max_bytes: int
    is_page: bool


@dataclass(frozen=True, slots=True)
class _Reply:
    """One response (or failure) at one hop, as the retry and redirect loops see it."""

    outcome: FetchOutcome | None        # None: a redirect to `location`
    status: int = 0
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    location: str | None = None
    retry_after: float | None = None
    error: str | None = None
    is_retryable: bool = False


class _BodyCut(Exception):
    """The body was abandoned part-way (too large or binary); carries what was read."""

    def __init__(self, outcome: FetchOutcome, error: str, partial: bytes | bytearray) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error
        self.partial = partial


class Fetcher:
    """Fetches URLs with one shared httpx.AsyncClient. Use `async with Fetcher(cfg) as f:`."""

    def __init__(self, config: FetchConfig, *, guard: NetGuard | None = None) -> None:
        self._config = config
        self._guard = guard
        self._verdicts: dict[Origin | None, str | None] = {}
        self._random = random.Random()
        timeout = httpx.Timeout(connect=config.connect_timeout, read=config.read_timeout,
                                write=config.read_timeout, pool=config.total_timeout)
        limits = httpx.Limits(max_connections=config.max_connections,
                              max_keepalive_connections=config.max_connections)
        headers = {"User-Agent": config.user_agent, "Accept": ACCEPT,
                   "Accept-Encoding": ACCEPT_ENCODING,
                   "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
        self._client = httpx.AsyncClient(follow_redirects=False, timeout=timeout,
                                         transport=_transport(limits, guard), headers=headers,
                                         event_hooks={"response": [_take_location]})

    async def __aenter__(self) -> Self:
        """Return self; the client is closed on exit."""
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        """Close the HTTP client."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client and its connections. Idempotent."""
        await self._client.aclose()

    async def fetch(self, url: str, *, is_allowed: Callable[[str], bool],
                    etag: str | None = None, last_modified: str | None = None,
                    robots_allows: RobotsCheck | None = None) -> FetchResult:
        """Fetch one page, following in-scope redirects. Never raises for per-URL problems.

        `robots_allows`, when given, is asked about every redirect target before it is
        requested (the caller checks the first URL itself); a refusal ends in ROBOTS."""
        started = time.monotonic()
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        policy = _Policy(self._config.max_body_bytes, is_page=True)
        result = await self._follow(url, is_allowed, headers, self._config.max_redirects, policy,
                                    robots_allows)
        if result.outcome is FetchOutcome.NOT_MODIFIED:
            # A 304 may omit the validators; the ones we sent are still the current ones.
            result = replace(result, etag=result.etag or etag,
                                         last_modified=result.last_modified or last_modified)
        logger.debug("fetched %s: %s %s %s", url, result.outcome, result.status,
                     result.error or "")
        return replace(result, elapsed=time.monotonic() - started)

    async def fetch_robots(self, url: str) -> tuple[int, str]:
        """Fetch a robots.txt URL: (last status, text). Status 0 means no response at all.

        Redirects are followed to any http(s) host (up to 5); the text is empty unless the
        status is 2xx, and is cut at 500 KiB rather than refused.
        """
        policy = _Policy(min(ROBOTS_MAX_BYTES, self._config.max_body_bytes), is_page=False)
        result = await self._follow(url, lambda _url: True, {}, ROBOTS_MAX_REDIRECTS, policy)
        logger.debug("fetched %s: %s %s %s", url, result.outcome, result.status,
                     result.error or "")
        if result.outcome is not FetchOutcome.OK:
            return result.status, ""
        # RFC 9309 2.3: robots.txt is UTF-8; a BOM is allowed and dropped.
        return result.status, result.body.decode("utf-8-sig", errors="replace")

    async def refusal(self, url: str) -> str | None:
        """Why the network guard forbids connecting for `url` (logged), or None. Never
        connects; None when this fetcher has no guard. Verdicts are kept per origin for the
        fetcher's lifetime (one crawl), so a host is resolved once, not per URL."""
        if self._guard is None:
            return None
        origin = url_origin(url)
        if origin in self._verdicts:
            reason = self._verdicts[origin]
        else:
            reason = await self._guard.refusal(url)
            if not (reason or "").startswith(UNRESOLVED):
                self._verdicts[origin] = reason
        if reason is None:
            return None
        logger.warning("refused, %s: %s", reason, url)
        return f"{reason}: {url}"

    async def _follow(self, url: str, is_allowed: Callable[[str], bool],
                      headers: dict[str, str], max_redirects: int,
                      policy: _Policy, robots_allows: RobotsCheck | None = None) -> FetchResult:
        """Request `url`, following redirects ourselves so each hop is scope-checked."""
        refusal = _refusal(url, is_allowed) or await self.refusal(url)
        if refusal:
            return FetchResult(url, url, FetchOutcome.OUT_OF_SCOPE, error=refusal)
        current, hops, seen = url, [], {urldefrag(url).url}
        while True:
            reply = await self._request(current, headers, policy)
            if reply.outcome is not None:
                return _result(url, current, tuple(hops), reply)
            target = urldefrag(urljoin(current, reply.location or "")).url
            stop = _redirect_stop(target, is_allowed, seen, len(hops), max_redirects)
            if stop is None and (refusal := await self.refusal(target)):
                stop = FetchOutcome.OUT_OF_SCOPE, refusal   # before robots.txt is asked
            if stop is None and robots_allows is not None and not await robots_allows(target):
                stop = FetchOutcome.ROBOTS, f"redirect to {target} disallowed by robots.txt"
            if stop:
                return FetchResult(url, current, stop[0], status=reply.status,
                                   redirects=tuple(hops), error=stop[1])
            hops.append(target)
            seen.add(target)
            current = target

    async def _request(self, url: str, headers: dict[str, str], policy: _Policy) -> _Reply:
        """One hop with retries: backoff with full jitter, Retry-After honoured (capped)."""
        for attempt in range(self._config.max_retries + 1):
            reply = await self._attempt(url, headers, policy)
            if not reply.is_retryable or attempt == self._config.max_retries:
                return reply
            delay = self._backoff(attempt, reply.retry_after)
            logger.debug("retrying %s in %.2fs after %s", url, delay, reply.error or reply.status)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt always returns")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry `attempt + 1`."""
        cap = self._config.backoff_max
        if retry_after is not None:
            return min(retry_after, cap)
        return self._random.uniform(0, min(cap, self._config.backoff_base * 2 ** attempt))

    async def _attempt(self, url: str, headers: dict[str, str], policy: _Policy) -> _Reply:
        """One request under the total time limit; transport failures become replies."""
        limit = self._config.total_timeout
        try:
            async with asyncio.timeout(limit):
                return await self._exchange(url, headers, policy)
        except TimeoutError:
            # Not retried: a server that drips or never ends will do it again.
            return _Reply(FetchOutcome.NETWORK_ERROR, error=f"total time limit {limit:g}s exceeded")
        except FetchError as exc:
            return _Reply(FetchOutcome.NETWORK_ERROR, error=exc.reason, is_retryable=True)

    async def _exchange(self, url: str, headers: dict[str, str], policy: _Policy) -> _Reply:
        """Send one GET and read (or refuse) its body; httpx errors are wrapped in FetchError."""
        try:
            request = self._client.build_request("GET", _http_url(url), headers=headers)
            response = await self._client.send(request, stream=True)
            try:
                return await _read_reply(response, policy)
            finally:
                # Closing an unfinished stream drops the connection: the rest is never read.
                await response.aclose()
        except httpx.HTTPError as exc:
            raise FetchError(url, _describe(exc)) from exc
        except (zlib.error, brotli.error) as exc:
            raise FetchError(url, f"corrupt compressed body: {exc}") from exc


async def _take_location(response: httpx.Response) -> None:
    """Response hook: move Location out of httpx's sight into the response's extensions.

    Even with follow_redirects=False, httpx parses Location to build `next_request` and
    raises InvalidURL (losing the response) on one it cannot parse, e.g. "javascript:...".
    We resolve and vet Location ourselves, so httpx must not see it.
    """
    location = response.headers.get("location")
    if location is not None:
        del response.headers["location"]
        response.extensions[LOCATION_EXTENSION] = location.strip()


async def _read_reply(response: httpx.Response, policy: _Policy) -> _Reply:
    """Turn a streamed response into a _Reply, reading the body only when it is wanted."""
    status, headers = response.status_code, response.headers
    base = _Reply(None, status=status, content_type=headers.get("content-type"),
                  etag=headers.get("etag"), last_modified=headers.get("last-modified"))
    location = response.extensions.get(LOCATION_EXTENSION)
    if status in REDIRECT_STATUSES and location:
        return _Reply(None, status=status, location=location)
    if status == 304:
        return replace(base, outcome=FetchOutcome.NOT_MODIFIED)
    if status >= 300:
        error = f"HTTP {status}" if status >= 400 else f"HTTP {status} without a usable Location"
        return replace(base, outcome=FetchOutcome.HTTP_ERROR, error=error,
                       is_retryable=status == 429 or status >= 500,
                       retry_after=_retry_after(headers.get("retry-after")))
    return await _read_content(response, policy, base)


async def _read_content(response: httpx.Response, policy: _Policy, base: _Reply) -> _Reply:
    """The reply for a 2xx: refuse non-HTML types and undecodable codings, else read."""
    media_type = (base.content_type or "").split(";")[0].strip().lower()
    if policy.is_page and media_type not in HTML_MEDIA_TYPES:
        return replace(base, outcome=FetchOutcome.NOT_HTML, error=f"content type {media_type}")
    coding = response.headers.get("content-encoding")
    decoder = _make_decoder(coding)
    if decoder is None:
        return replace(base, outcome=FetchOutcome.NOT_HTML,
                       error=f"unsupported Content-Encoding {coding!r}")
    try:
        body = await _read_body(response, decoder, policy)
    except _BodyCut as cut:
        if policy.is_page:
            return replace(base, outcome=cut.outcome, error=cut.error)
        body = bytes(cut.partial)       # robots.txt: obey what fits (RFC 9309 2.5)
    return replace(base, outcome=FetchOutcome.OK, body=body)


async def _read_body(response: httpx.Response, decoder: _Decoder, policy: _Policy) -> bytes:
    """Stream raw bytes through `decoder`, stopping at the cap or at a binary signature."""
    body = bytearray()
    sniffed = not policy.is_page
    async for raw in response.aiter_raw():
        # Ask for one byte more than the room left: getting it means "over the cap".
        body += decoder.decode(raw, policy.max_bytes - len(body) + 1)
        if len(body) > policy.max_bytes:
            del body[policy.max_bytes:]
            raise _BodyCut(FetchOutcome.TOO_LARGE,
                           f"body larger than {policy.max_bytes} bytes (decompressed)", body)
        if not sniffed and len(body) >= SNIFF_BYTES:
            _check_signature(body)
            sniffed = True
    if not sniffed:
        _check_signature(body)
    return bytes(body)


def _check_signature(body: bytearray) -> None:
    """Raise _BodyCut when the first bytes are a known binary format."""
    for signature, name in BINARY_SIGNATURES:
        if body.startswith(signature):
            raise _BodyCut(FetchOutcome.NOT_HTML, f"body is a {name}", b"")


def _refusal(url: str, is_allowed: Callable[[str], bool]) -> str | None:
    """Why `url` may not be requested (scheme, syntax, scope), or None when it may."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return f"not an http(s) URL: {url}"
    try:
        _http_url(url)
    except httpx.InvalidURL as exc:
        return f"invalid URL {url}: {exc}"
    if not is_allowed(url):
        return f"outside the allowed scope: {url}"
    return None


def _transport(limits: httpx.Limits, guard: NetGuard | None) -> httpx.AsyncHTTPTransport:
    """httpx's transport; with a guard, its connections open through GuardedBackend, so the
    address connected to is one the guard checked (see crawler.netguard)."""
    transport = httpx.AsyncHTTPTransport(limits=limits)
    if guard is not None:
        pool = transport._pool      # httpx offers no public hook for httpcore's backend
        if not hasattr(pool, "_network_backend"):
            raise RuntimeError("this httpcore has no _network_backend: the network guard "
                               "cannot check connections; pin httpcore 1.x")
        pool._network_backend = GuardedBackend(guard)
    return transport


@functools.lru_cache(maxsize=64)
def _http_url(url: str) -> httpx.URL:
    """httpx's parse of `url` (raises httpx.InvalidURL). Cached: _refusal validates each URL
    just before _exchange requests it, and one parse costs ~0.1 ms. URLs are immutable."""
    return httpx.URL(url)


def _redirect_stop(target: str, is_allowed: Callable[[str], bool], seen: set[str],
                   hops: int, max_redirects: int) -> tuple[FetchOutcome, str] | None:
    """Why a redirect to `target` must not be followed (outcome, error), or None."""
    refusal = _refusal(target, is_allowed)
    if refusal:
        return FetchOutcome.OUT_OF_SCOPE, refusal
    if target in seen:
        return FetchOutcome.REDIRECT_LOOP, f"redirect loop: {target} seen twice"
    if hops >= max_redirects:
        return FetchOutcome.REDIRECT_LOOP, f"more than {max_redirects} redirects"
    return None


def _result(url: str, final_url: str, hops: tuple[str, ...], reply: _Reply) -> FetchResult:
    """The FetchResult for the last reply of a redirect chain."""
    return FetchResult(url=url, final_url=final_url, outcome=reply.outcome or FetchOutcome.OK,
                       status=reply.status, body=reply.body, content_type=reply.content_type,
                       etag=reply.etag, last_modified=reply.last_modified, redirects=hops,
                       error=reply.error)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)     # RFC 9110 HTTP-dates are GMT
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(exc: httpx.HTTPError) -> str:
    """A short human-readable reason for a transport failure."""
    detail = str(exc) or "no detail"
    return f"{type(exc).__name__}: {detail}"
