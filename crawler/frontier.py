"""The crawl frontier, persisted in the corpus: crawl runs and their queue of URLs.

Tables `crawls` (one row per crawl run) and `frontier` (the current crawl's queue: dedupe by
URL, breadth-first leasing, so an interrupted crawl resumes where it stopped). `CrawlQueue`
is the part of `crawler.store.CorpusStore` that reads and writes them. Like every write
method of the store, the queue writes must run inside `with store.transaction():`;
`begin_crawl()` and `finish_crawl()` open one themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from crawler.corpusdb import CorpusDatabase, now_iso


@dataclass(frozen=True, slots=True)
class FrontierEntry:
    """A URL in the queue: its source, link hops from a start URL, and pagination chain."""

    url: str
    source: str
    depth: int
    chain: int = 0
    is_pagination: bool = False


@dataclass(frozen=True, slots=True)
class CrawlRun:
    """The crawl that `begin_crawl()` started, or resumed from an unfinished one."""

    id: int
    resumed: bool


class CrawlQueue(CorpusDatabase):
    """Crawl runs and the frontier queue; the base of CorpusStore, not used on its own."""

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
