"""Typed, frozen configuration: defaults in code, overridden by sources.toml, then by CLI flags.

`load_sources()` is the one function that reads sources.toml; `apply_overrides()` the one
that applies command-line choices. Tests build configs directly (`CrawlConfig(max_pages=3)`).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from crawler.errors import ConfigError
from crawler.urls import scheme_and_host

SOURCE_KINDS = ("police", "campus", "gov", "news", "other")
USER_AGENT = "fraudkb/0.1 (+anti-fraud notice archiver; respects robots.txt)"


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """How one HTTP request behaves."""

    user_agent: str = USER_AGENT
    connect_timeout: float = 10.0       # seconds to establish a connection
    read_timeout: float = 20.0          # seconds between two received chunks
    total_timeout: float = 60.0         # whole request incl. body: stops slow-drip servers
    max_body_bytes: int = 5 * 1024 * 1024   # counted on decompressed bytes
    max_redirects: int = 10
    max_retries: int = 3                # on connection errors, 429 and 5xx
    backoff_base: float = 0.5           # seconds; doubled per attempt, with jitter
    backoff_max: float = 30.0           # cap for backoff and for honoured Retry-After
    obey_robots: bool = True
    max_connections: int = 16           # HTTP connection pool size, across all hosts


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One site to crawl, as declared in sources.toml."""

    name: str
    start_urls: tuple[str, ...]
    kind: str = "other"
    allow: tuple[re.Pattern[str], ...] = ()     # empty: the start URLs' hosts
    deny: tuple[re.Pattern[str], ...] = ()
    article: tuple[re.Pattern[str], ...] = ()   # empty: decide from the page
    max_depth: int = 2
    max_pages: int = 200
    delay: float = 1.0

    def is_allowed(self, url: str) -> bool:
        """True when `url` is http(s), inside `allow` (or a start host) and not in `deny`."""
        scheme, hostname = scheme_and_host(url)
        if scheme not in ("http", "https") or not hostname:
            return False
        if any(p.search(url) for p in self.deny):
            return False
        if self.allow:
            return any(p.search(url) for p in self.allow)
        return hostname in _hosts_of(self.start_urls)

    def is_article_url(self, url: str) -> bool | None:
        """True/False when `article` patterns decide; None when the page must decide."""
        if not self.article:
            return None
        return any(p.search(url) for p in self.article)


@functools.cache
def _hosts_of(urls: tuple[str, ...]) -> frozenset[str | None]:
    # is_allowed runs for every link of every page: parse the start URLs once.
    return frozenset(urlsplit(u).hostname for u in urls)


@dataclass(frozen=True, slots=True)
class CrawlConfig:
    """A whole crawl: the sources plus crawl-wide limits."""

    sources: tuple[SourceConfig, ...] = ()
    fetch: FetchConfig = field(default_factory=FetchConfig)
    max_pages: int | None = None        # overrides each source's max_pages when set
    concurrency: int = 8                # requests in flight across all hosts
    max_pagination: int = 100           # list pages followed in one pagination chain
    min_article_chars: int = 40         # shorter extracted bodies are not articles
    workers: int = 1                    # processes for decode/extract/tag; 1 = in-process


_SOURCE_KEYS = {f.name for f in dataclasses.fields(SourceConfig)}


def load_sources(path: str | Path) -> tuple[SourceConfig, ...]:
    """Read and validate sources.toml. Raises ConfigError naming file, line and problem."""
    path = Path(path)
    try:
        raw_text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read: {exc}") from exc
    try:
        data = tomllib.loads(raw_text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, f"TOML syntax error: {exc}", _toml_error_line(exc)) from exc
    unknown_top = set(data) - {"source"}
    if unknown_top:
        raise ConfigError(path, f"unknown top-level key(s): {', '.join(sorted(unknown_top))}")
    entries = data.get("source")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(path, "no [[source]] entries")
    sources = tuple(
        _parse_source(path, raw_text, i, entry) for i, entry in enumerate(entries)
    )
    seen: set[str] = set()
    for source in sources:
        if source.name in seen:
            line = _line_of(raw_text, f'"{source.name}"', nth=1)
            raise ConfigError(path, f"duplicate source name {source.name!r}", line)
        seen.add(source.name)
    return sources


def _parse_source(path: Path, raw_text: str, index: int, entry: object) -> SourceConfig:
    line = _line_of(raw_text, "[[source]]", nth=index)
    if not isinstance(entry, dict):
        raise ConfigError(path, f"source #{index + 1} is not a table", line)
    name = entry.get("name")
    label = f"source {name!r}" if isinstance(name, str) else f"source #{index + 1}"

    def fail(problem: str, key: str | None = None) -> ConfigError:
        key_line = _line_of(raw_text, key, after=line) if key else None
        return ConfigError(path, f"{label}: {problem}", key_line or line)

    unknown = set(entry) - _SOURCE_KEYS
    if unknown:
        bad = sorted(unknown)[0]
        return_keys = ", ".join(sorted(_SOURCE_KEYS))
        raise fail(f"unknown key {bad!r} (known keys: {return_keys})", bad)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):
        raise fail("'name' must be a non-empty string of letters, digits, '-', '_', '.'", "name")
    kind = entry.get("kind", "other")
    if kind not in SOURCE_KINDS:
        raise fail(f"'kind' must be one of {', '.join(SOURCE_KINDS)}, not {kind!r}", "kind")
    start_urls = entry.get("start_urls")
    if not isinstance(start_urls, list) or not start_urls:
        raise fail("'start_urls' must be a non-empty list of http(s) URLs", "start_urls")
    for url in start_urls:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise fail(f"start URL {url!r} is not an http(s) URL", "start_urls")
    patterns = {key: _compile_all(entry.get(key, []), key, fail) for key in
                ("allow", "deny", "article")}
    numbers = {
        "max_depth": _number(entry, "max_depth", 2, int, fail),
        "max_pages": _number(entry, "max_pages", 200, int, fail),
        "delay": float(_number(entry, "delay", 1.0, (int, float), fail)),
    }
    source = SourceConfig(name=name, kind=kind, start_urls=tuple(start_urls), **patterns,
                          **numbers)
    for url in start_urls:
        if not source.is_allowed(url):
            raise fail(f"start URL {url} is outside its own allow/deny patterns", "start_urls")
    return source


def _compile_all(values: object, key: str, fail) -> tuple[re.Pattern[str], ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise fail(f"'{key}' must be a list of regular expressions (strings)", key)
    compiled = []
    for value in values:
        try:
            compiled.append(re.compile(value))
        except re.error as exc:
            raise fail(f"bad regular expression in '{key}': {value!r}: {exc}", key) from exc
    return tuple(compiled)


def _number(entry: dict, key: str, default, types, fail):
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, types) or value < 0:
        raise fail(f"'{key}' must be a non-negative number, not {value!r}", key)
    return value


def _toml_error_line(exc: tomllib.TOMLDecodeError) -> int | None:
    match = re.search(r"line (\d+)", str(exc))
    return int(match.group(1)) if match else None


def _line_of(text: str, needle: str | None, nth: int = 0, after: int | None = None) -> int | None:
    """1-based line of the nth occurrence of `needle` (at or after line `after`)."""
    if needle is None:
        return None
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if after is not None and number < after:
            continue
        stripped = line.strip()
        if stripped.startswith(needle) or (after is not None and needle in line):
            if seen == nth:
                return number
            seen += 1
    return None


def apply_overrides(config: CrawlConfig, *, source_names: tuple[str, ...] = (),
                    max_pages: int | None = None) -> CrawlConfig:
    """Apply CLI choices (the last layer of precedence). Unknown names raise ConfigError."""
    sources = config.sources
    if source_names:
        known = {s.name for s in sources}
        missing = [n for n in source_names if n not in known]
        if missing:
            raise ConfigError("--source", f"unknown source(s) {', '.join(missing)}; "
                              f"known: {', '.join(sorted(known))}")
        sources = tuple(s for s in sources if s.name in source_names)
    return dataclasses.replace(config, sources=sources,
                               max_pages=max_pages if max_pages is not None else config.max_pages)
