"""URL normalisation: one spelling per page, so the frontier dedupes by URL."""

from __future__ import annotations

import functools
import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

# Query parameters that identify a campaign or a share, never a different page.
TRACKING_PARAMS = frozenset({
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id",
    "spm", "from", "share_token", "sharer", "share_from", "isappinstalled", "scene",
    "clicktime", "enterid", "fbclid", "gclid", "wfr", "_hsenc", "_hsmi",
})
DEFAULT_PORTS = {"http": 80, "https": 443}
# Java servlet session ids in the path (JCMS and other gov CMSs): one page, many spellings.
SESSION_IN_PATH = re.compile(r";jsessionid=[^/?#]*", re.IGNORECASE)
OriginKey = tuple[str, str, int | None]    # (scheme, host, port)
IGNORED_SCHEMES = ("mailto:", "javascript:", "tel:", "sms:", "data:", "about:", "#")


def normalize_url(url: str) -> str:
    """Canonical form: lower-case scheme/host, IDN as punycode, no default port, no fragment,
    no tracking parameters or session ids, sorted query, normalised percent-encoding and dot
    segments."""
    canonical = canonicalize_url(SESSION_IN_PATH.sub("", url.strip()), keep_fragments=False)
    parts = urlsplit(canonical)
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:  # IPv6 literal: hostname drops the brackets
        host = f"[{host}]"
    port = _port(parts)
    netloc = host if port is None or DEFAULT_PORTS.get(parts.scheme) == port else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k.lower() not in TRACKING_PARAMS]
    query = parts.query if len(kept) == len(pairs) else urlencode(kept)
    return urlunsplit((parts.scheme, netloc, parts.path or "/", query, ""))


def _port(parts) -> int | None:
    try:
        return parts.port
    except ValueError:  # a non-numeric or out-of-range port: treat as none
        return None


def resolve_link(base: str, href: str) -> str | None:
    """Absolute normalised URL of `href` on page `base`, or None when it is not a web link."""
    href = href.strip()
    if not href or href.lower().startswith(IGNORED_SCHEMES):
        return None
    if href.startswith("/") and not href.startswith("//"):
        # Root-relative links (navigation, footers) repeat on every page of a site: they
        # depend only on the page's origin, so their resolution is memoised per origin.
        return _resolve(_site_root(base), href)
    return _resolve(base, href)


@functools.lru_cache(maxsize=256)
def _site_root(base: str) -> str:
    """scheme://netloc/ of a page URL: parsed once per page, not once per link on it."""
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}/"


@functools.lru_cache(maxsize=16384)
def scheme_and_host(url: str) -> tuple[str, str | None]:
    """(scheme, lower-case hostname or None) of `url`. Memoised: scope checks run on every
    link of every page, and a site's navigation links repeat on all of its pages."""
    parts = urlsplit(url)
    return parts.scheme, parts.hostname


@functools.lru_cache(maxsize=16384)
def _resolve(base: str, href: str) -> str | None:
    try:
        absolute = urljoin(base, href)
    except ValueError:  # e.g. an invalid IPv6 literal
        return None
    if urlsplit(absolute).scheme not in ("http", "https"):
        return None
    try:
        return normalize_url(absolute)
    except ValueError:
        return None


def origin(url: str) -> OriginKey:
    """(scheme, lower-case host, port with the scheme's default made explicit): the unit of
    politeness and of robots.txt. A malformed port counts as the default one."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), _port(parts) or DEFAULT_PORTS.get(scheme)


def host_key(url: str) -> str:
    """origin() as one string, scheme://host:port, for keying per-host state."""
    scheme, host, port = origin(url)
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
