"""The SQLite corpus: the source of truth (WAL mode).

Tables: `pages` (every fetched URL: status, validators, hashes, compressed raw body),
`articles` (extracted title/date/text + tags and evidence, with a change sequence number),
`tombstones` (ids removed from the corpus, for incremental indexing), `frontier` (the
current crawl's queue, so an interrupted crawl resumes), `crawls` (one row per crawl run).

Contract: every write method must be called inside `with store.transaction():`; a batch is
all-or-nothing, so an interrupt or kill never leaves a half-written article. One crawl
process writes at a time (`crawl_lock()`); readers (search, export, stats) never block.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from crawler.digest import detect_lang, tag_columns, text_hash
from crawler.errors import CorpusBusyError, CorpusError
from crawler.records import Article, Evidence, StoredArticle, TagColumns, Tags

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class FrontierEntry:
    url: str
    source: str
    depth: int
    chain: int = 0
    is_pagination: bool = False


@dataclass(frozen=True, slots=True)
class KnownPage:
    """What the corpus remembers of a URL: validators for conditional requests."""

    etag: str | None
    last_modified: str | None
    body_hash: str | None
    page_kind: str | None
    article_id: str | None


@dataclass(frozen=True, slots=True)
class PageRecord:
    """One fetch, as recorded in `pages`."""

    url: str
    source: str
    final_url: str
    outcome: str
    status: int = 0
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body: bytes | None = None
    content_type: str | None = None
    encoding: str | None = None
    page_kind: str | None = None
    article_id: str | None = None


@dataclass(frozen=True, slots=True)
class CrawlRun:
    id: int
    resumed: bool


def article_id(url: str) -> str:
    """Stable document id: the first 16 hex digits of sha1(url)."""
    return hashlib.sha1(url.encode("utf-8")).hexdigest()[:16]


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


class CorpusStore:
    """The corpus database of one data directory. Not thread-safe: one per thread/process."""

    def __init__(self, data_dir: str | Path, *, create: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / CORPUS_FILE
        if not create and not self.path.exists():
            raise CorpusError(self.path, "no corpus here yet; run `fraudkb crawl` or "
                              "`fraudkb demo` first")
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
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

    def __enter__(self) -> CorpusStore:
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

    # -- crawls and frontier -------------------------------------------------------------
    def begin_crawl(self, source_names: Iterable[str]) -> CrawlRun:
        """Resume an unfinished crawl whose queue is not empty, else start a new one."""
        names = sorted(source_names)
        with self.transaction():
            last = self._db.execute(
                "SELECT id, state, sources FROM crawls ORDER BY id DESC LIMIT 1").fetchone()
            pending = self._db.execute(
                "SELECT COUNT(*) FROM frontier WHERE state != 'done'").fetchone()[0]
            # A failed crawl (disk full, a dead worker pool) resumes too: its finished
            # pages are saved, and starting afresh would stop paginating at the first page
            # of known articles, never reaching the rest of its queue.
            if (last is not None and last["state"] in ("running", "interrupted", "failed")
                    and pending and json.loads(last["sources"]) == names):
                self._db.execute("UPDATE frontier SET state='queued' WHERE state='leased'")
                self._db.execute("UPDATE crawls SET state='running' WHERE id=?", (last["id"],))
                return CrawlRun(id=last["id"], resumed=True)
            if last is not None and last["state"] == "running":
                self._db.execute("UPDATE crawls SET state='interrupted' WHERE id=?",
                                 (last["id"],))
            self._db.execute("DELETE FROM frontier")
            cursor = self._db.execute(
                "INSERT INTO crawls (started_at, state, sources) VALUES (?, 'running', ?)",
                (now_iso(), json.dumps(names)))
            return CrawlRun(id=int(cursor.lastrowid or 0), resumed=False)

    def finish_crawl(self, crawl_id: int, state: str, stats: Mapping[str, object]) -> None:
        with self.transaction():
            self._db.execute("UPDATE crawls SET finished_at=?, state=?, stats=? WHERE id=?",
                             (now_iso(), state, json.dumps(dict(stats)), crawl_id))

    def enqueue(self, entries: Iterable[FrontierEntry]) -> int:
        """Add URLs not seen in this crawl; returns how many were new (dedup by URL)."""
        before = self._db.total_changes
        self._db.executemany(
            "INSERT OR IGNORE INTO frontier (url, source, depth, chain, is_pagination) "
            "VALUES (?, ?, ?, ?, ?)",
            [(e.url, e.source, e.depth, e.chain, int(e.is_pagination)) for e in entries])
        return self._db.total_changes - before

    def lease(self, limit: int, sources: Iterable[str] | None = None) -> list[FrontierEntry]:
        """Take up to `limit` queued URLs (oldest first) and mark them leased."""
        params: list[object] = []
        where = "state='queued'"
        if sources is not None:
            names = list(sources)
            if not names:
                return []
            where += f" AND source IN ({','.join('?' * len(names))})"
            params.extend(names)
        rows = self._db.execute(
            f"SELECT url, source, depth, chain, is_pagination FROM frontier WHERE {where} "
            "ORDER BY rowid LIMIT ?", [*params, limit]).fetchall()
        self._db.executemany("UPDATE frontier SET state='leased' WHERE url=?",
                             [(r["url"],) for r in rows])
        return [FrontierEntry(r["url"], r["source"], r["depth"], r["chain"],
                              bool(r["is_pagination"])) for r in rows]

    def mark_done(self, url: str) -> None:
        self._db.execute("UPDATE frontier SET state='done' WHERE url=?", (url,))

    def mark_all_done(self, urls: Iterable[str]) -> None:
        """mark_done() for many URLs in one statement (the crawl's batch writes)."""
        self._db.executemany("UPDATE frontier SET state='done' WHERE url=?",
                             [(url,) for url in urls])

    def drop_queued(self, source: str) -> int:
        """Mark every still-queued URL of `source` done (its page budget is spent)."""
        return self._db.execute("UPDATE frontier SET state='done' WHERE source=? AND "
                                "state='queued'", (source,)).rowcount

    def release(self, urls: Iterable[str]) -> None:
        """Put leased URLs back in the queue (interrupted before they were fetched)."""
        self._db.executemany("UPDATE frontier SET state='queued' WHERE url=? AND state='leased'",
                             [(u,) for u in urls])

    def done_counts(self) -> dict[str, int]:
        """Pages fetched so far in the current crawl, per source (for resume)."""
        rows = self._db.execute(
            "SELECT source, COUNT(*) AS n FROM frontier WHERE state='done' GROUP BY source")
        return {r["source"]: r["n"] for r in rows}

    def is_in_frontier(self, url: str) -> bool:
        return self._db.execute("SELECT 1 FROM frontier WHERE url=?", (url,)).fetchone() is not None

    # -- pages ---------------------------------------------------------------------------
    def known_page(self, url: str) -> KnownPage | None:
        row = self._db.execute(
            "SELECT etag, last_modified, body_hash, page_kind, article_id FROM pages "
            "WHERE url=?", (url,)).fetchone()
        if row is None:
            return None
        return KnownPage(row["etag"], row["last_modified"], row["body_hash"],
                         row["page_kind"], row["article_id"])

    def page_kinds(self, urls: Iterable[str]) -> dict[str, str | None]:
        """{url: page_kind} for those of `urls` that were fetched before."""
        urls = list(dict.fromkeys(urls))
        kinds: dict[str, str | None] = {}
        for start in range(0, len(urls), 500):
            chunk = urls[start:start + 500]
            kinds.update((r[0], r[1]) for r in self._db.execute(
                f"SELECT url, page_kind FROM pages WHERE url IN ({','.join('?' * len(chunk))})",
                chunk))
        return kinds

    def record_page(self, page: PageRecord) -> None:
        """Insert or update the fetch record of one URL. Keeps the old body on 304/failure."""
        now = now_iso()
        # Level 1: a third less CPU than 6 for ~1 % more bytes on HTML (the crawl's writer
        # process compresses every fetched page).
        body = zlib.compress(page.body, 1) if page.body is not None else None
        body_hash = hashlib.sha1(page.body).hexdigest() if page.body is not None else None
        self._db.execute(
            """INSERT INTO pages (url, source, final_url, outcome, status, error, etag,
                   last_modified, body_hash, body, content_type, encoding, page_kind,
                   article_id, first_seen, fetched_at)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
               ON CONFLICT(url) DO UPDATE SET
                   source=excluded.source, final_url=excluded.final_url,
                   outcome=excluded.outcome, status=excluded.status, error=excluded.error,
                   etag=COALESCE(excluded.etag, etag),
                   last_modified=COALESCE(excluded.last_modified, last_modified),
                   body_hash=COALESCE(excluded.body_hash, body_hash),
                   body=COALESCE(excluded.body, body),
                   content_type=COALESCE(excluded.content_type, content_type),
                   encoding=COALESCE(excluded.encoding, encoding),
                   page_kind=COALESCE(excluded.page_kind, page_kind),
                   article_id=COALESCE(excluded.article_id, article_id),
                   fetched_at=excluded.fetched_at""",
            (page.url, page.source, page.final_url, page.outcome, page.status, page.error,
             page.etag, page.last_modified, body_hash, body, page.content_type, page.encoding,
             page.page_kind, page.article_id, now, now))

    def page_body(self, url: str) -> bytes | None:
        """The raw body last fetched for `url`, decompressed."""
        row = self._db.execute("SELECT body FROM pages WHERE url=?", (url,)).fetchone()
        return zlib.decompress(row["body"]) if row and row["body"] is not None else None

    # -- articles ------------------------------------------------------------------------
    def save_article(self, *, source: str, kind: str, article: Article,
                     tags: Tags | TagColumns, fetched_at: str | None = None,
                     content_hash: str | None = None,
                     lang: str | None = None) -> tuple[str, str]:
        """Store an article; returns (status, id) with status new | changed | unchanged |
        duplicate. A duplicate (same normalised text under another URL) is not stored again.

        The crawl passes tags already serialised and the text's hash and lang, computed in
        its workers (crawler.digest); they are computed here when not given."""
        doc_id = article_id(article.url)
        digest = content_hash or text_hash(article.text)
        # One query for both: this article's row, and a twin (same text under another id).
        rows = self._db.execute(
            "SELECT id, content_hash, title, published FROM articles WHERE id=? "
            "UNION ALL SELECT * FROM (SELECT id, content_hash, title, published FROM articles "
            "WHERE content_hash=? AND id != ? LIMIT 1)", (doc_id, digest, doc_id)).fetchall()
        existing = next((row for row in rows if row["id"] == doc_id), None)
        twin = next((row for row in rows if row["id"] != doc_id), None)
        if existing is None and twin is not None:
            return "duplicate", twin["id"]
        if existing is not None and (existing["content_hash"], existing["title"],
                                     existing["published"]) == (digest, article.title,
                                                                article.published):
            return "unchanged", doc_id
        columns = tags if isinstance(tags, TagColumns) else tag_columns(tags)
        self._db.execute(
            """INSERT OR REPLACE INTO articles (id, url, source, kind, title, published, text,
                   categories, primary_category, scores, evidence, content_hash, lang,
                   fetched_at, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            (doc_id, article.url, source, kind, article.title, article.published, article.text,
             columns.categories, columns.primary, columns.scores, columns.evidence, digest,
             lang or detect_lang(article.text), fetched_at or now_iso(), self._next_seq()))
        self._db.execute("DELETE FROM tombstones WHERE id=?", (doc_id,))
        return ("new" if existing is None else "changed"), doc_id

    def update_tags(self, doc_id: str, tags: Tags) -> bool:
        """Replace an article's tags; returns True when its labels changed."""
        row = self._db.execute("SELECT categories, primary_category, evidence FROM articles "
                               "WHERE id=?", (doc_id,)).fetchone()
        if row is None:
            return False
        columns = tag_columns(tags)
        if (row["categories"], row["primary_category"], row["evidence"]) == (
                columns.categories, columns.primary, columns.evidence):
            return False
        self._db.execute("UPDATE articles SET categories=?, primary_category=?, scores=?, "
                         "evidence=?, seq=? WHERE id=?",
                         (columns.categories, columns.primary, columns.scores,
                          columns.evidence, self._next_seq(), doc_id))
        return True

    def delete_article(self, doc_id: str) -> None:
        """Remove an article and leave a tombstone so the index drops it too."""
        if self._db.execute("DELETE FROM articles WHERE id=?", (doc_id,)).rowcount:
            self._db.execute("INSERT OR REPLACE INTO tombstones VALUES (?, ?)",
                             (doc_id, self._next_seq()))

    def _next_seq(self) -> int:
        return int(self._db.execute(
            "INSERT INTO meta VALUES ('seq', '1') ON CONFLICT(key) DO UPDATE "
            "SET value = CAST(value AS INTEGER) + 1 RETURNING value").fetchone()[0])

    def max_seq(self) -> int:
        """The highest change sequence number so far (0 for an empty corpus)."""
        row = self._db.execute("SELECT value FROM meta WHERE key='seq'").fetchone()
        return int(row[0]) if row else 0

    def get_article(self, doc_id: str) -> StoredArticle | None:
        row = self._db.execute("SELECT * FROM articles WHERE id=?", (doc_id,)).fetchone()
        return _stored_article(row) if row else None

    def iter_articles(self) -> Iterator[StoredArticle]:
        """Every article, in change order. Reads a consistent snapshot."""
        return self.articles_changed_since(0)

    def articles_changed_since(self, seq: int) -> Iterator[StoredArticle]:
        """Articles written (new, changed or retagged) after change number `seq`."""
        cursor = self._db.execute("SELECT * FROM articles WHERE seq > ? ORDER BY seq", (seq,))
        for row in cursor:
            yield _stored_article(row)

    def deleted_since(self, seq: int) -> list[str]:
        """Ids of articles removed after change number `seq`."""
        return [r[0] for r in self._db.execute("SELECT id FROM tombstones WHERE seq > ?",
                                               (seq,))]

    def count_articles(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM articles").fetchone()[0])

    # -- reports -------------------------------------------------------------------------
    def stats(self) -> dict[str, object]:
        """Documents by source, category and month, and the last crawl."""
        db = self._db
        by_source = {r[0]: r[1] for r in db.execute(
            "SELECT source, COUNT(*) FROM articles GROUP BY source ORDER BY 2 DESC")}
        by_category = {r[0]: r[1] for r in db.execute(
            "SELECT value, COUNT(*) FROM articles, json_each(articles.categories) "
            "GROUP BY value ORDER BY 2 DESC")}
        by_month = {r[0] or "unknown": r[1] for r in db.execute(
            "SELECT substr(published, 1, 7), COUNT(*) FROM articles GROUP BY 1 ORDER BY 1")}
        last = db.execute("SELECT * FROM crawls ORDER BY id DESC LIMIT 1").fetchone()
        return {
            "articles": self.count_articles(),
            "pages": db.execute("SELECT COUNT(*) FROM pages").fetchone()[0],
            "by_source": by_source,
            "by_category": by_category,
            "by_month": by_month,
            "last_crawl": None if last is None else {
                "started_at": last["started_at"], "finished_at": last["finished_at"],
                "state": last["state"], "stats": json.loads(last["stats"] or "{}")},
        }


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


def _stored_article(row: sqlite3.Row) -> StoredArticle:
    evidence = {cat: tuple(Evidence(t, s, e) for t, s, e in items)
                for cat, items in json.loads(row["evidence"]).items()}
    return StoredArticle(
        id=row["id"], url=row["url"], title=row["title"], published=row["published"],
        source=row["source"], kind=row["kind"], text=row["text"],
        categories=tuple(json.loads(row["categories"])), primary=row["primary_category"],
        evidence=evidence, content_hash=row["content_hash"], lang=row["lang"],
        fetched_at=row["fetched_at"], seq=row["seq"])
