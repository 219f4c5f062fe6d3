"""robots.txt: one fetch per origin, parsed with protego, answering is_allowed and Crawl-delay.

Failure policy (RFC 9309 2.3.1): 2xx -> the rules; 3xx left over after 5 redirects and 4xx
-> allow all ("unavailable"); 5xx, 429 and network failures -> disallow all ("unreachable"),
logged at WARNING because it silently empties a whole host. 429 counts as unreachable, as
Google treats it, since the server is asking us to back off.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit, urlunsplit

from protego import Protego

from crawler.fetch import Fetcher
from crawler.urls import OriginKey, origin

logger = logging.getLogger(__name__)

ALLOW_ALL = ""
DISALLOW_ALL = "User-agent: *\nDisallow: /\n"


class RobotsCache:
    """robots.txt rules per scheme+host+port, fetched once for the cache's lifetime.

    Concurrent callers for the same origin wait for a single fetch. Not thread-safe: use it
    from one event loop.
    """

    def __init__(self, fetcher: Fetcher, user_agent: str) -> None:
        self._fetcher = fetcher
        self._agent = product_token(user_agent)
        self._rules: dict[OriginKey, Protego] = {}
        self._locks: dict[OriginKey, asyncio.Lock] = {}
        self._unreachable: dict[OriginKey, str] = {}

    async def is_allowed(self, url: str) -> bool:
        """True when robots.txt of the URL's origin lets our user agent fetch it."""
        rules = await self._rules_for(url)
        return rules.can_fetch(url, self._agent)

    def crawl_delay(self, url: str) -> float | None:
        """Crawl-delay (seconds) for the URL's origin, once is_allowed() has loaded it."""
        rules = self._rules.get(origin_key(url))
        return rules.crawl_delay(self._agent) if rules is not None else None

    def unreachable_reason(self, url: str) -> str | None:
        """Why the origin's robots.txt could not be read ("HTTP 503", "network error"), when
        that is why is_allowed() said no; None otherwise. Lets the crawl count such URLs as
        failed rather than as disallowed by the site."""
        return self._unreachable.get(origin_key(url))

    async def _rules_for(self, url: str) -> Protego:
        """The cached rules of the URL's origin, fetching them at most once."""
        key = origin_key(url)
        rules = self._rules.get(key)
        if rules is not None:
            return rules
        # A lock per origin: later callers wait, then find the cached rules. If the fetching
        # caller is cancelled, the next waiter simply fetches instead.
        async with self._locks.setdefault(key, asyncio.Lock()):
            rules = self._rules.get(key)
            if rules is None:
                rules = await self._load(key, robots_url(url))
                self._rules[key] = rules
        return rules

    async def _load(self, key: OriginKey, url: str) -> Protego:
        """Fetch and parse one robots.txt, applying the failure policy."""
        status, text = await self._fetcher.fetch_robots(url)
        if is_unreachable(status):
            self._unreachable[key] = f"HTTP {status}" if status else "network error"
        return Protego.parse(rules_text(url, status, text))


def is_unreachable(status: int) -> bool:
    """RFC 9309 "unreachable": no response, 5xx, or (as Google treats it) 429."""
    return status == 0 or status == 429 or status >= 500


def rules_text(url: str, status: int, text: str) -> str:
    """The robots.txt text to obey for a fetch that ended with `status` (0: no response)."""
    if 200 <= status < 300:
        return text
    if is_unreachable(status):
        logger.warning("robots.txt unreachable (%s), not crawling that host: %s",
                       status or "network error", url)
        return DISALLOW_ALL
    logger.debug("robots.txt unavailable (%s), allowing all: %s", status, url)
    return ALLOW_ALL


def origin_key(url: str) -> OriginKey:
    """(scheme, lower-case host, port): the scope of one robots.txt."""
    return origin(url)


def robots_url(url: str) -> str:
    """The robots.txt URL for the origin of `url` (credentials dropped)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme.lower(), netloc, "/robots.txt", "", ""))


def product_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched on: "fraudkb" in "fraudkb/0.1 (...)"."""
    token = user_agent.strip().split("/", 1)[0].split(" ", 1)[0]
    return token or user_agent
