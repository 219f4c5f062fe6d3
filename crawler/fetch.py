"""HTTP fetching policy: URL -> FetchResult, with scope checks, redirects and retries.

The Fetcher decides what is requested and how often; one request at one hop is
`crawler.httpclient.exchange` (the only module that imports httpx), and the body is read by
`crawler.httpbody`.

Contracts:
- Redirects are followed here, not by httpx: every hop is resolved against the current URL
  and checked with the caller's `is_allowed` (scope) and for http(s) before it is requested.
- Bodies are streamed RAW and decompressed by our own decoders that never produce more than
  the room left under `max_body_bytes`, so a compression bomb costs at most about the cap in
  memory and the connection is dropped as soon as the cap is passed (crawler.httpbody).
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
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import TracebackType
from typing import Self
from urllib.parse import urldefrag, urljoin, urlsplit

import sniffio

from crawler.config import FetchConfig
from crawler.errors import FetchError
from crawler.httpbody import BodyPolicy
from crawler.httpclient import Reply, exchange, invalid_url_reason, make_client
from crawler.netguard import UNRESOLVED, NetGuard, Origin, url_origin
from crawler.records import FetchOutcome, FetchResult

logger = logging.getLogger(__name__)

RobotsCheck = Callable[[str], Awaitable[bool]]

ROBOTS_MAX_BYTES = 500 * 1024       # RFC 9309 2.5: parse at least the first 500 KiB
ROBOTS_MAX_REDIRECTS = 5            # RFC 9309 2.3.1.2: follow at least five redirects


class Fetcher:
    """Fetches URLs with one shared httpx.AsyncClient. Use `async with Fetcher(cfg) as f:`."""

    def __init__(self, config: FetchConfig, *, guard: NetGuard | None = None) -> None:
        self._config = config
        self._guard = guard
        self._verdicts: dict[Origin | None, str | None] = {}
        self._random = random.Random()
        self._client = make_client(config, guard)

    async def __aenter__(self) -> Self:
        """Return self; the client is closed on exit."""
        # httpcore asks sniffio which async library runs at every lock and cancel shield;
        # told once for this task and those it starts, sniffio no longer looks up the
        # current task each time (~5 % of the crawl's main process).
        self._library = sniffio.current_async_library_cvar.set("asyncio")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        """Close the HTTP client."""
        try:
            await self.aclose()
        finally:
            sniffio.current_async_library_cvar.reset(self._library)

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
        policy = BodyPolicy(self._config.max_body_bytes, is_page=True)
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
        policy = BodyPolicy(min(ROBOTS_MAX_BYTES, self._config.max_body_bytes), is_page=False)
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
                      policy: BodyPolicy, robots_allows: RobotsCheck | None = None) -> FetchResult:
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

    async def _request(self, url: str, headers: dict[str, str], policy: BodyPolicy) -> Reply:
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

    async def _attempt(self, url: str, headers: dict[str, str], policy: BodyPolicy) -> Reply:
        """One request under the total time limit; transport failures become replies."""
        limit = self._config.total_timeout
        try:
            async with asyncio.timeout(limit):
                return await exchange(self._client, url, headers, policy)
        except TimeoutError:
            # Not retried: a server that drips or never ends will do it again.
            return Reply(FetchOutcome.NETWORK_ERROR, error=f"total time limit {limit:g}s exceeded")
        except FetchError as exc:
            return Reply(FetchOutcome.NETWORK_ERROR, error=exc.reason, is_retryable=True)


def _refusal(url: str, is_allowed: Callable[[str], bool]) -> str | None:
    """Why `url` may not be requested (scheme, syntax, scope), or None when it may."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return f"not an http(s) URL: {url}"
    if (problem := invalid_url_reason(url)) is not None:
        return f"invalid URL {url}: {problem}"
    if not is_allowed(url):
        return f"outside the allowed scope: {url}"
    return None


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


def _result(url: str, final_url: str, hops: tuple[str, ...], reply: Reply) -> FetchResult:
    """The FetchResult for the last reply of a redirect chain."""
    return FetchResult(url=url, final_url=final_url, outcome=reply.outcome or FetchOutcome.OK,
                       status=reply.status, body=reply.body, content_type=reply.content_type,
                       etag=reply.etag, last_modified=reply.last_modified, redirects=hops,
                       error=reply.error)

