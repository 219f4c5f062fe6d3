"""The crawl's writing side: fetch outcomes -> the corpus, one transaction per batch.

crawler.pipeline schedules fetches and hands every finished URL here as an Outcome. A batch
of them is written in one transaction together with the frontier marks that say they are
done, so a kill loses at most the last batch, which is fetched again on resume. Writing a
page also queues the links it found: that is how the crawl discovers its next work.

This is the per-URL error boundary for storage-side surprises: one page that cannot be
written is logged and counted as failed; a storage failure (disk full, read-only directory)
ends the crawl instead.
"""

from __future__ import annotations

import collections
import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from crawler.config import SourceConfig
from crawler.errors import CorpusError
from crawler.frontier import FrontierEntry
from crawler.records import FetchOutcome, FetchResult, ProcessedPage
from crawler.store import CorpusStore, KnownPage, PageRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a fetch task hands back to the scheduler, to be written."""

    entry: FrontierEntry
    known: KnownPage | None
    result: FetchResult
    processed: ProcessedPage | None = None
    error: str | None = None


class ResultWriter:
    """Writes batches of Outcomes into `store`, tallying them in `counts` (the crawl's
    CrawlStats counters). `on_new_links(source)` is called when a page queued new URLs for
    that source, so that the scheduler looks at the source again."""

    def __init__(self, store: CorpusStore, sources: Mapping[str, SourceConfig],
                 max_pagination: int, counts: collections.Counter[str],
                 on_new_links: Callable[[str], None]) -> None:
        self.store = store
        self.sources = sources
        self.max_pagination = max_pagination
        self.counts = counts
        self.on_new_links = on_new_links

    def write(self, batch: list[Outcome]) -> None:
        """Write every outcome of `batch` and mark its URLs done, in one transaction."""
        with self.store.transaction():
            for outcome in batch:
                try:
                    self._write(outcome)
                except Exception as exc:  # per-URL boundary for storage-side surprises
                    if isinstance(exc, _FATAL_STORE_ERRORS):
                        raise
                    logger.warning("failed, %s: %s: %s", outcome.entry.url,
                                   type(exc).__name__, exc)
                    self.counts["failed"] += 1
            self.store.mark_all_done(outcome.entry.url for outcome in batch)

    def _write(self, outcome: Outcome) -> None:
        entry, result = outcome.entry, outcome.result
        if result.status:
            self.counts["fetched"] += 1
        counter = _OUTCOME_COUNTER.get(result.outcome)
        if outcome.error is not None:
            self.counts["failed"] += 1
            self._record(entry, result, error=outcome.error)
            return
        if counter is not None:
            self.counts[counter] += 1
            log = logger.info if counter == "failed" else logger.debug
            log("%s, %s: %s", counter, entry.url, result.error or result.status)
            self._record(entry, result, page_kind=None if counter == "failed" else "skipped")
            return
        if result.outcome is FetchOutcome.NOT_MODIFIED or outcome.processed is None:
            self.counts["unchanged"] += 1
            self._record(entry, result)
            return
        self._write_processed(entry, outcome.known, result, outcome.processed)

    def _write_processed(self, entry: FrontierEntry, known: KnownPage | None,
                         result: FetchResult, processed: ProcessedPage) -> None:
        source = self.sources[entry.source]
        kind, doc_id = "list", None
        tags = processed.tag_columns or processed.tags
        if processed.article is not None and tags is not None:
            status, doc_id = self.store.save_article(
                source=source.name, kind=source.kind, article=processed.article, tags=tags,
                content_hash=processed.content_hash, lang=processed.lang)
            if status == "unchanged" and known is None:
                status = "duplicate"  # first fetch of a URL whose article we already hold
            kind = "duplicate" if status == "duplicate" else "article"
            self.counts[{"new": "new", "changed": "changed", "unchanged": "unchanged",
                         "duplicate": "duplicates"}[status]] += 1
        elif processed.is_article:
            kind = "skipped"
            self.counts["no_content"] += 1
        else:
            self.counts["lists"] += 1
        self._record(entry, result, encoding=processed.encoding, page_kind=kind,
                     article_id=doc_id)
        self._enqueue_links(entry, source, processed, known_before=known is not None)

    def _enqueue_links(self, entry: FrontierEntry, source: SourceConfig,
                       processed: ProcessedPage, *, known_before: bool) -> None:
        links = processed.links.links   # process_page kept only the source's links
        follow_pagination = not (known_before and self._only_known_articles(links))
        new_entries = []
        for link in links:
            if link.is_redirect:  # a meta-refresh or script redirect: the same page, moved
                if entry.chain < self.max_pagination:
                    new_entries.append(FrontierEntry(link.url, source.name, entry.depth,
                                                     entry.chain + 1))
            elif link.is_pagination:
                chain = entry.chain + 1
                if not follow_pagination or chain > self.max_pagination:
                    continue
                new_entries.append(FrontierEntry(link.url, source.name, entry.depth, chain, True))
            elif entry.depth + 1 <= source.max_depth:
                new_entries.append(FrontierEntry(link.url, source.name, entry.depth + 1))
        if new_entries and self.store.enqueue(new_entries):
            self.on_new_links(source.name)

    def _only_known_articles(self, links: Iterable) -> bool:
        """True when every non-pager link of a list page is already a stored article page:
        the incremental re-crawl stops paginating there."""
        targets = [link.url for link in links if not link.is_pagination]
        kinds = self.store.page_kinds(targets)
        known_articles = sum(1 for kind in kinds.values() if kind in ("article", "duplicate"))
        return known_articles > 0 and len(kinds) == len(set(targets))

    def _record(self, entry: FrontierEntry, result: FetchResult, *, error: str | None = None,
                encoding: str | None = None, page_kind: str | None = None,
                article_id: str | None = None) -> None:
        keep_body = result.outcome is FetchOutcome.OK
        self.store.record_page(PageRecord(
            url=entry.url, source=entry.source, final_url=result.final_url,
            outcome=str(result.outcome), status=result.status, error=error or result.error,
            etag=result.etag, last_modified=result.last_modified,
            body=result.body if keep_body else None, content_type=result.content_type,
            encoding=encoding, page_kind=page_kind, article_id=article_id))


_OUTCOME_COUNTER = {
    FetchOutcome.HTTP_ERROR: "failed",
    FetchOutcome.NETWORK_ERROR: "failed",
    FetchOutcome.REDIRECT_LOOP: "failed",
    FetchOutcome.TOO_LARGE: "too_large",
    FetchOutcome.OUT_OF_SCOPE: "out_of_scope",
    FetchOutcome.ROBOTS: "robots",
    FetchOutcome.NOT_HTML: "not_html",
}

# Storage failures (disk full, read-only directory) end the crawl instead of being counted.
_FATAL_STORE_ERRORS = (CorpusError, sqlite3.Error, OSError)
