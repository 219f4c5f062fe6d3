"""The corpus database file: schema, connection, transactions and the one-crawler lock.

`CorpusDatabase` opens `corpus.sqlite` in WAL mode, creates the tables (the whole schema
lives here, in `_SCHEMA`) and checks the schema version. It is the base class that gives
`crawler.store.CorpusStore` its connection (`_db`), `transaction()` and `crawl_lock()`; it
reads and writes no rows itself beyond `meta`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from crawler.errors import CorpusBusyError, CorpusError

CORPUS_FILE = "corpus.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pages (
    url TEXT PRIMARY KEY,            -- normalised URL as requested
    source TEXT NOT NULL,
    final_url TEXT,
    outcome TEXT NOT NULL,           -- FetchOutcome value
    status INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    etag TEXT,
    last_modified TEXT,
    body_hash TEXT,                  -- sha1 of the raw body
    body BLOB,                       -- zlib-compressed raw body (re-extract without re-crawl)
    content_type TEXT,
    encoding TEXT,
    page_kind TEXT,                  -- article | list | duplicate | skipped
    article_id TEXT,                 -- the article this page is (or duplicates)
    first_seen TEXT NOT NULL,
    fetched_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    published TEXT,
    text TEXT NOT NULL,
    categories TEXT NOT NULL,        -- JSON list, best first
    primary_category TEXT,
    scores TEXT NOT NULL,            -- JSON {id: score}
    evidence TEXT NOT NULL,          -- JSON {id: [[term, start, end], ...]}
    content_hash TEXT NOT NULL,      -- sha1 of the normalised text
    lang TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_seq ON articles(seq);
CREATE INDEX IF NOT EXISTS articles_hash ON articles(content_hash);
CREATE TABLE IF NOT EXISTS tombstones (id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS frontier (
    url TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    depth INTEGER NOT NULL,
    chain INTEGER NOT NULL DEFAULT 0,    -- pagination hops from the first list page
    is_pagination INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'queued'  -- queued | leased | done
);
-- rowid is insertion order: leasing oldest first makes the crawl breadth-first.
CREATE INDEX IF NOT EXISTS frontier_state ON frontier(state);
CREATE TABLE IF NOT EXISTS crawls (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    state TEXT NOT NULL,                 -- running | finished | interrupted | failed
    sources TEXT NOT NULL,               -- JSON list of source names
    stats TEXT                           -- JSON CrawlStats
);
"""


BUSY_TIMEOUT = 30.0     # seconds a command waits for another one's write lock


def now_iso() -> str:
    """The current UTC time as the corpus stores it (ISO 8601, whole seconds)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


class CorpusDatabase:
    """The connection to one data directory's corpus. Not thread-safe: one per thread/process."""

    def __init__(self, data_dir: str | Path, *, create: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / CORPUS_FILE
        if not create and not self.path.exists():
            raise CorpusError(self.path, "no corpus here yet; run `fraudkb crawl` or "
                              "`fraudkb demo` first")
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # timeout= is SQLite's busy timeout (PRAGMA busy_timeout reads 30000 after it).
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT)
            self._db.row_factory = sqlite3.Row
            _enable_wal(self._db, BUSY_TIMEOUT)
            self._db.execute("PRAGMA synchronous=NORMAL")
            if create:
                self._db.executescript(_SCHEMA)
                self._check_version()
        except (sqlite3.Error, OSError) as exc:
            raise CorpusError(self.path, f"cannot open corpus: {exc}"
                              f"{_read_only_hint(self.data_dir)}") from exc
        self._lock_fd: int | None = None
        self._in_transaction = False

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        self.release_crawl_lock()
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))
        elif int(row["value"]) != SCHEMA_VERSION:
            raise CorpusError(self.path, f"corpus schema version {row['value']} is not "
                              f"{SCHEMA_VERSION}; use a matching fraudkb version")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all. Nested use joins the outer one."""
        if self._in_transaction:
            yield
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise CorpusError(self.path, f"cannot write: {exc}") from exc
        self._in_transaction = True
        try:
            yield
        except sqlite3.Error as exc:   # e.g. disk full or read-only while writing a statement
            self._rollback()
            raise CorpusError(self.path, _write_problem(exc)) from exc
        except BaseException:
            self._rollback()
            raise
        else:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise CorpusError(self.path, _write_problem(exc)) from exc
        finally:
            self._in_transaction = False

    def _rollback(self) -> None:
        """Roll back unless SQLite already did: on SQLITE_FULL, IOERR and the like it rolls
        back by itself, and a second ROLLBACK would raise and hide the real error."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def crawl_lock(self) -> None:
        """Take the one-crawler lock, or raise CorpusBusyError naming the holder."""
        lock_path = self.data_dir / "crawl.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CorpusError(lock_path, f"cannot take the crawl lock: {exc.strerror}"
                              f"{_read_only_hint(self.data_dir)}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            raise CorpusBusyError(self.data_dir, f"another crawl (pid {holder}) is writing to "
                                  "this data directory; wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self._lock_fd = fd

    def release_crawl_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None


def _enable_wal(db: sqlite3.Connection, timeout: float) -> None:
    """Switch the file to WAL (a no-op when it already is). Switching a new file needs an
    exclusive lock, and SQLite refuses it at once, without the busy handler, when another
    process opens the same new corpus at that moment (a search started with the first
    crawl): so wait and retry, up to the busy timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _write_problem(exc: sqlite3.Error) -> str:
    """What went wrong with a write, and what to do (nothing of the batch was written)."""
    if getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        return (f"cannot write: {exc}; check the free disk space, then run the same "
                "command again (a crawl resumes where it stopped)")
    return f"cannot write: {exc}"


def _read_only_hint(data_dir: Path) -> str:
    """A hint for the user when the data directory cannot be written at all."""
    if data_dir.is_dir() and not os.access(data_dir, os.W_OK):
        return (f"; the data directory {data_dir} is read-only: use a writable --data "
                "directory")
    return ""
