"""The SQLite corpus: the source of truth (WAL mode).

Tables: `pages` (every fetched URL: status, validators, hashes, compressed raw body),
`articles` (extracted title/date/text + tags and evidence, with a change sequence number),
`tombstones` (ids removed from the corpus, for incremental indexing), `frontier` (the
current crawl's queue, so an interrupted crawl resumes), `crawls` (one row per crawl run).

`CorpusStore` is the public API. This module holds its page and article reads and writes,
the change feed for the index and the stats; the schema, connection, transactions and crawl
lock are `crawler.corpusdb`, the crawl runs and frontier queue `crawler.frontier`.

Contract: every write method must be called inside `with store.transaction():`; a batch is
all-or-nothing, so an interrupt or kill never leaves a half-written article. One crawl
process writes at a time (`crawl_lock()`); readers (search, export, stats) never block.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from crawler.corpusdb import now_iso
from crawler.digest import detect_lang, tag_columns, text_hash
from crawler.frontier import CrawlQueue
from crawler.records import Article, Evidence, StoredArticle, TagColumns, Tags

logger = logging.getLogger(__name__)


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


def article_id(url: str) -> str:
    """Stable document id: the first 16 hex digits of sha1(url)."""
    return hashlib.sha1(url.encode("utf-8")).hexdigest()[:16]


class CorpusStore(CrawlQueue):
    """The corpus database of one data directory. Not thread-safe: one per thread/process.

    Open with `CorpusStore(data_dir)` (`create=False` to refuse a missing corpus); use as a
    context manager or call `close()`."""

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

    def update_tags(self, doc_id: str, tags: Tags) -> str:
        """Replace an article's tags. Returns what changed: "labels" (categories or primary),
        "evidence" (only scores or evidence, e.g. after a weight change), or "" (nothing, and
        nothing is written: the article keeps its change number)."""
        row = self._db.execute("SELECT categories, primary_category, scores, evidence "
                               "FROM articles WHERE id=?", (doc_id,)).fetchone()
        if row is None:
            return ""
        columns = tag_columns(tags)
        labels_changed = (row["categories"], row["primary_category"]) != (
            columns.categories, columns.primary)
        if not labels_changed and (row["scores"], row["evidence"]) == (
                columns.scores, columns.evidence):
            return ""
        self._db.execute("UPDATE articles SET categories=?, primary_category=?, scores=?, "
                         "evidence=?, seq=? WHERE id=?",
                         (columns.categories, columns.primary, columns.scores,
                          columns.evidence, self._next_seq(), doc_id))
        return "labels" if labels_changed else "evidence"

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

    def article_texts(self, after: int = 0, limit: int = 256
                      ) -> list[tuple[int, str, str, str]]:
        """(rowid, id, title, text) of up to `limit` articles with a rowid above `after`, in
        rowid order. Rewriting an article keeps its rowid, so this pages through the corpus
        while it is being rewritten (retag), without holding it all in memory."""
        return [tuple(row) for row in self._db.execute(
            "SELECT rowid, id, title, text FROM articles WHERE rowid > ? ORDER BY rowid "
            "LIMIT ?", (after, limit))]

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


def _stored_article(row: sqlite3.Row) -> StoredArticle:
    evidence = {cat: tuple(Evidence(t, s, e) for t, s, e in items)
                for cat, items in json.loads(row["evidence"]).items()}
    return StoredArticle(
        id=row["id"], url=row["url"], title=row["title"], published=row["published"],
        source=row["source"], kind=row["kind"], text=row["text"],
        categories=tuple(json.loads(row["categories"])), primary=row["primary_category"],
        evidence=evidence, content_hash=row["content_hash"], lang=row["lang"],
        fetched_at=row["fetched_at"], seq=row["seq"])
