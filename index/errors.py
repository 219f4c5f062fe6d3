"""Exceptions raised by the index package.

    FraudkbError (crawler.errors)
    └── SearchIndexError         the index cannot be used (.index_dir, .problem)
        ├── IndexMissingError    no index yet, or it holds no documents
        ├── IndexStaleError      built by another fraudkb version: rebuild it
        └── IndexBusyError       another process holds the index writer lock
    └── ExportError              an export cannot be written as asked (the CLI exits 2)

Not called IndexError: never shadow builtins.
"""

from __future__ import annotations

from pathlib import Path

from crawler.errors import FraudkbError


class SearchIndexError(FraudkbError):
    """The search index cannot be read or written. The message says what to run."""

    def __init__(self, index_dir: str | Path, problem: str) -> None:
        self.index_dir = str(index_dir)
        self.problem = problem
        super().__init__(f"{self.index_dir}: {problem}")


class IndexMissingError(SearchIndexError):
    """There is no index (or it is empty): run `fraudkb crawl` or `fraudkb reindex`."""


class IndexStaleError(SearchIndexError):
    """The index was built by an incompatible fraudkb version: run `fraudkb reindex`."""


class IndexBusyError(SearchIndexError):
    """Another process is writing the index and did not finish within the timeout."""


class ExportError(FraudkbError):
    """An export cannot be written as asked (.path, .problem); the CLI exits 2."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{self.path}: {problem}")
