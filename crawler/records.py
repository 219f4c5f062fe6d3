"""Records passed between crawl stages.

fetch -> FetchResult -> decode -> Page -> links (PageLinks) / extract -> Article -> tag -> Tags
store -> StoredArticle (what the index and export read).

Records hold data, not behaviour; third-party types never appear in them.

Records that cross the process boundary of the crawl's worker pool (FetchResult out;
ProcessedPage with its PageLinks, Links, Article, Tags and Evidence back) pickle as "call the
constructor with the fields" (`_by_constructor`): frozen slots dataclasses otherwise pickle
through dataclasses' generic __getstate__/__setstate__, which call fields() for every object
(~200 µs for the ~100 Evidence of one tagged page).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _by_constructor(record: Any) -> tuple[type, tuple[object, ...]]:
    """`__reduce__` of a frozen slots record: its class, called with its fields in order."""
    return type(record), tuple([getattr(record, name) for name in record.__slots__])


class FetchOutcome(enum.StrEnum):
    """How one fetch ended. Expected per-page outcomes are values here, not exceptions."""

    OK = "ok"                          # 2xx with a body (possibly empty)
    NOT_MODIFIED = "not_modified"      # 304 to a conditional request
    HTTP_ERROR = "http_error"          # 4xx/5xx after retries
    NETWORK_ERROR = "network_error"    # connect/read/total timeout, reset, DNS ... after retries
    TOO_LARGE = "too_large"            # body (decompressed) exceeded the cap
    OUT_OF_SCOPE = "out_of_scope"      # a redirect hop left allow/deny or http(s)
    REDIRECT_LOOP = "redirect_loop"    # loop or more hops than allowed
    ROBOTS = "robots"                  # disallowed by robots.txt
    NOT_HTML = "not_html"              # content type or sniffed bytes are not HTML/text


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of fetching one URL (after following redirects ourselves)."""

    url: str                                # the URL that was asked for
    final_url: str                          # where the last redirect hop landed
    outcome: FetchOutcome
    status: int = 0                         # last HTTP status; 0 when no response
    body: bytes = b""                       # decompressed body, empty unless OK
    content_type: str | None = None         # the Content-Type header as sent
    etag: str | None = None
    last_modified: str | None = None
    redirects: tuple[str, ...] = ()         # intermediate hops, in order
    error: str | None = None                # human-readable reason when not OK
    elapsed: float = 0.0                    # seconds, including retries and waits

    __reduce__ = _by_constructor


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched HTML page as text: the one place bytes became str is decode()."""

    url: str                # final URL (after redirects)
    html: str
    encoding: str           # the codec actually used, e.g. "gb18030", "utf-8"


@dataclass(frozen=True, slots=True)
class Link:
    """A candidate URL found on a page. Pagination and redirect links keep the page's depth."""

    url: str                # absolute, normalised
    text: str = ""          # anchor text (stripped)
    is_pagination: bool = False
    is_redirect: bool = False   # <meta http-equiv=refresh> or a script setting location

    __reduce__ = _by_constructor


@dataclass(frozen=True, slots=True)
class PageLinks:
    canonical: str | None           # absolute <link rel=canonical>, if any
    links: tuple[Link, ...]

    __reduce__ = _by_constructor


@dataclass(frozen=True, slots=True)
class Article:
    """The extracted content of an article page."""

    url: str
    title: str
    published: str | None       # ISO YYYY-MM-DD or None
    text: str                   # body, paragraphs separated by "\n"

    __reduce__ = _by_constructor


@dataclass(frozen=True, slots=True)
class Evidence:
    """One matched term, with offsets into the ORIGINAL (un-normalised) text."""

    term: str
    start: int
    end: int

    __reduce__ = _by_constructor


@dataclass(frozen=True, slots=True)
class Tags:
    """Scam categories of a text, best first, with the evidence behind each."""

    categories: tuple[str, ...] = ()
    primary: str | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    evidence: Mapping[str, tuple[Evidence, ...]] = field(default_factory=dict)

    __reduce__ = _by_constructor


@dataclass(frozen=True, slots=True)
class TagColumns:
    """Tags as the corpus stores them: JSON text (categories best first, {id: score},
    {id: [[term, start, end], ...]}). Built in the crawl's workers (crawler.digest)."""

    categories: str
    primary: str | None
    scores: str
    evidence: str

    __reduce__ = _by_constructor


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """An article as kept in the corpus: what index/ and export read."""

    id: str                     # stable id derived from the article URL
    url: str
    title: str
    published: str | None       # ISO YYYY-MM-DD or None
    source: str
    kind: str                   # police | campus | gov | news | other
    text: str
    categories: tuple[str, ...]
    primary: str | None
    evidence: Mapping[str, tuple[Evidence, ...]]
    content_hash: str           # sha1 of the normalised text
    lang: str                   # "zh-Hans" / "zh-Hant"
    fetched_at: str             # ISO timestamp of the fetch that produced this version
    seq: int                    # increases every time the row changes (incremental indexing)


@dataclass(frozen=True, slots=True)
class ProcessedPage:
    """The CPU stage's output for one fetched page: decode -> links -> extract -> tag."""

    url: str                    # normalised final URL
    encoding: str
    links: PageLinks            # the links the page's source may follow
    is_article: bool
    article: Article | None     # None for list pages and pages with no usable body
    tags: Tags | None           # None also after crossing the worker boundary (see workers)
    content_hash: str | None = None     # digest.text_hash(article.text), with the article
    lang: str | None = None             # digest.detect_lang(article.text), with the article
    tag_columns: TagColumns | None = None   # digest.tag_columns(tags), with the article

    __reduce__ = _by_constructor


@dataclass(frozen=True, slots=True)
class CrawlStats:
    """What a crawl did. `fetched` counts HTTP responses; the rest classify the URLs."""

    fetched: int = 0            # responses received (incl. 304 and errors with a status)
    new: int = 0                # articles stored for the first time
    changed: int = 0            # articles whose text, title or date changed
    unchanged: int = 0          # 304, same body, or same extracted content
    duplicates: int = 0         # same article under another URL (canonical or same text)
    lists: int = 0              # list/index pages followed for links
    failed: int = 0             # HTTP errors, network errors, processing errors
    robots: int = 0             # skipped by robots.txt
    out_of_scope: int = 0       # redirects leaving allow/deny or http(s)
    too_large: int = 0          # bodies over the size cap
    not_html: int = 0           # non-HTML responses
    no_content: int = 0         # article-like pages with no extractable body
    elapsed: float = 0.0
    resumed: bool = False
    interrupted: bool = False
