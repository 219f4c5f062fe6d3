"""Exceptions raised by the crawler package.

    FraudkbError                 base of everything fraudkb raises on purpose
    ├── ConfigError              a bad sources.toml / categories.toml (.path, .line, .problem)
    ├── CorpusError              the corpus cannot be opened or written (.path, .problem)
    │   └── CorpusBusyError      another crawl holds the corpus
    └── FetchError               a transport failure wrapped at the fetch boundary (.url, .reason)

Expected per-page outcomes (robots disallow, 404, too large, duplicate) are not exceptions:
they are FetchOutcome values and counts in CrawlStats.
"""

from __future__ import annotations

from pathlib import Path


class FraudkbError(Exception):
    """Base class for errors fraudkb raises deliberately."""


class ConfigError(FraudkbError):
    """A configuration file is malformed. The message names the file, line and problem."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {problem}")


class CorpusError(FraudkbError):
    """The corpus database cannot be opened, read or written."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CorpusBusyError(CorpusError):
    """Another crawl is writing to this corpus."""


class FetchError(FraudkbError):
    """A transport-level failure for one URL (wrapped third-party exception)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")
