"""The HTTP exchange: one GET -> Reply. The only module that imports httpx.

This module sets up the shared httpx.AsyncClient (headers, timeouts, connection limits, the
network guard's transport) and performs ONE request at one hop: send, classify the response
(redirect, 304, HTTP error and whether it may be retried, or a body to read through
crawler.httpbody) and wrap every transport failure in FetchError. It follows no redirects
and retries nothing: that policy is crawler.fetch's.
"""

from __future__ import annotations

import email.utils
import functools
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import httpcore
import httpx

from crawler.aionet import AsyncioBackend
from crawler.config import FetchConfig
from crawler.errors import FetchError
from crawler.httpbody import (
    ACCEPT_ENCODING,
    DECOMPRESSION_ERRORS,
    BodyCut,
    BodyPolicy,
    make_decoder,
    read_body,
)
from crawler.netguard import GuardedBackend, NetGuard
from crawler.records import FetchOutcome

HTML_MEDIA_TYPES = frozenset({"", "text/html", "application/xhtml+xml", "text/plain"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
LOCATION_EXTENSION = "fraudkb_location"
ACCEPT = "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.8,*/*;q=0.1"


@dataclass(frozen=True, slots=True)
class Reply:
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


def make_client(config: FetchConfig, guard: NetGuard | None,
                network: httpcore.AsyncNetworkBackend | None = None) -> httpx.AsyncClient:
    """The one httpx client of a Fetcher: redirects off (we follow them), Location hidden
    from httpx (`_take_location`), connections through the guard when there is one, on
    `network` (default: crawler.aionet's AsyncioBackend; the benchmark compares others)."""
    timeout = httpx.Timeout(connect=config.connect_timeout, read=config.read_timeout,
                            write=config.read_timeout, pool=config.total_timeout)
    limits = httpx.Limits(max_connections=config.max_connections,
                          max_keepalive_connections=config.max_connections)
    headers = {"User-Agent": config.user_agent, "Accept": ACCEPT,
               "Accept-Encoding": ACCEPT_ENCODING,
               "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    return httpx.AsyncClient(follow_redirects=False, timeout=timeout,
                             transport=_transport(limits, guard, network or AsyncioBackend()),
                             headers=headers,
                             event_hooks={"response": [_take_location]})


async def exchange(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                   policy: BodyPolicy) -> Reply:
    """Send one GET and read (or refuse) its body; httpx errors are wrapped in FetchError."""
    try:
        request = client.build_request("GET", _http_url(url), headers=headers)
        response = await client.send(request, stream=True)
        try:
            return await _read_reply(response, policy)
        finally:
            # Closing an unfinished stream drops the connection: the rest is never read.
            await response.aclose()
    except httpx.HTTPError as exc:
        raise FetchError(url, _describe(exc)) from exc
    except DECOMPRESSION_ERRORS as exc:
        raise FetchError(url, f"corrupt compressed body: {exc}") from exc


def invalid_url_reason(url: str) -> str | None:
    """Why httpx cannot request `url` (a syntax problem), or None when it can."""
    try:
        _http_url(url)
    except httpx.InvalidURL as exc:
        return str(exc)
    return None


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


async def _read_reply(response: httpx.Response, policy: BodyPolicy) -> Reply:
    """Turn a streamed response into a Reply, reading the body only when it is wanted."""
    status, headers = response.status_code, response.headers
    base = Reply(None, status=status, content_type=headers.get("content-type"),
                 etag=headers.get("etag"), last_modified=headers.get("last-modified"))
    location = response.extensions.get(LOCATION_EXTENSION)
    if status in REDIRECT_STATUSES and location:
        return Reply(None, status=status, location=location)
    if status == 304:
        return replace(base, outcome=FetchOutcome.NOT_MODIFIED)
    if status >= 300:
        error = f"HTTP {status}" if status >= 400 else f"HTTP {status} without a usable Location"
        return replace(base, outcome=FetchOutcome.HTTP_ERROR, error=error,
                       is_retryable=status == 429 or status >= 500,
                       retry_after=_retry_after(headers.get("retry-after")))
    return await _read_content(response, policy, base)


async def _read_content(response: httpx.Response, policy: BodyPolicy, base: Reply) -> Reply:
    """The reply for a 2xx: refuse non-HTML types and undecodable codings, else read."""
    media_type = (base.content_type or "").split(";")[0].strip().lower()
    if policy.is_page and media_type not in HTML_MEDIA_TYPES:
        return replace(base, outcome=FetchOutcome.NOT_HTML, error=f"content type {media_type}")
    coding = response.headers.get("content-encoding")
    decoder = make_decoder(coding)
    if decoder is None:
        return replace(base, outcome=FetchOutcome.NOT_HTML,
                       error=f"unsupported Content-Encoding {coding!r}")
    try:
        body = await read_body(response.aiter_raw(), decoder, policy)
    except BodyCut as cut:
        if policy.is_page:
            return replace(base, outcome=cut.outcome, error=cut.error)
        body = bytes(cut.partial)       # robots.txt: obey what fits (RFC 9309 2.5)
    return replace(base, outcome=FetchOutcome.OK, body=body)


def _transport(limits: httpx.Limits, guard: NetGuard | None,
               network: httpcore.AsyncNetworkBackend) -> httpx.AsyncHTTPTransport:
    """httpx's transport on `network`; with a guard, its connections open through
    GuardedBackend, so the address connected to is one the guard checked (see
    crawler.netguard)."""
    transport = httpx.AsyncHTTPTransport(limits=limits)
    pool = transport._pool      # httpx offers no public hook for httpcore's backend
    if not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpcore has no _network_backend: neither our network "
                           "layer nor the network guard can be installed; pin httpcore 1.x")
    pool._network_backend = GuardedBackend(guard, network) if guard is not None else network
    return transport


@functools.lru_cache(maxsize=64)
def _http_url(url: str) -> httpx.URL:
    """httpx's parse of `url` (raises httpx.InvalidURL). Cached: the fetcher's scope check
    validates each URL (`invalid_url_reason`) just before `exchange` requests it, and one
    parse costs ~0.1 ms. URLs are immutable."""
    return httpx.URL(url)


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
