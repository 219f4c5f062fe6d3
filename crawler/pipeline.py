"""crawl(config, store, tagger) -> CrawlStats: the one crawl loop.

Shape: an asyncio scheduler hands URLs to fetch tasks, at most one request in flight per host
and one every `delay` seconds (or robots Crawl-delay, whichever is longer) per host, many hosts
at once. Each task fetches, frees its host for the next request, and then runs the CPU stage
(`process_page`) in an executor (worker processes get pages in batches once pages queue up
for them: crawler.batching). `concurrency` bounds the requests in flight; pages waiting for
the CPU stage have a bound of their own (the backlog), so fetching runs ahead of the
workers instead of waiting on them. The scheduler alone touches the store: its ResultWriter
(crawler.crawlwrite) writes results in batched transactions together with their frontier
state, so a kill loses at most the last batch and the pages still in the backlog, which are
simply fetched again on resume.
The frontier lives in SQLite: memory does not grow with the number of URLs seen.

This loop is the per-URL error boundary: an unexpected exception while handling one URL is
logged with the URL, counted as failed, and the crawl goes on.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from crawler.batching import BatchingPool
from crawler.config import CrawlConfig, SourceConfig
from crawler.crawlwrite import Outcome, ResultWriter
from crawler.errors import CorpusError
from crawler.fetch import Fetcher
from crawler.frontier import FrontierEntry
from crawler.netguard import NetGuard
from crawler.process import process_page
from crawler.records import CrawlStats, FetchOutcome, FetchResult, ProcessedPage
from crawler.robots import RobotsCache
from crawler.store import CorpusStore, KnownPage
from crawler.tag import Tagger
from crawler.urls import host_key, normalize_url
from crawler.workers import process_batch_in_worker, start_pool

logger = logging.getLogger(__name__)

FLUSH_EVERY_RESULTS = 50        # results per write transaction ...
FLUSH_EVERY_SECONDS = 1.0       # ... or at least this often
LEASE_BATCH = 64                # URLs taken from the frontier per source at a time
# Fetched pages waiting for, or in, the CPU stage, per worker. Fetching goes on while they
# wait, so the workers always find a full batch: counting them against `concurrency` (as
# before) stalled fetching whenever the workers fell behind, and the workers then sat idle
# for ~15 % of a crawl, then got pages one or two at a time.
BACKLOG_PAGES_PER_WORKER = 48
BACKLOG_MAX_BYTES = 64 * 1024 * 1024   # and never more body bytes than this, however large
ProgressCallback = Callable[[CrawlStats], None]


@dataclass(slots=True)
class _HostSlot:
    """Politeness state of one scheme://host:port."""

    queue: collections.deque[FrontierEntry] = field(default_factory=collections.deque)
    next_time: float = 0.0
    busy: bool = False


def crawl(config: CrawlConfig, store: CorpusStore, tagger: Tagger, *,
          on_progress: ProgressCallback | None = None) -> CrawlStats:
    """Crawl the configured sources into `store`. Ctrl-C (SIGINT) stops cleanly: finished
    pages are kept, the rest stays queued, and the next crawl resumes; the returned stats
    then have `interrupted=True`. Takes the store's crawl lock for its whole run.

    With `config.workers > 1` the CPU stage runs in that many worker processes; with 1 it
    runs in a thread of this process (cheaper to start, for small crawls and tests)."""
    store.crawl_lock()
    pool = start_pool(tagger.taxonomy, config.workers) if config.workers > 1 else None
    try:
        runner = _Crawl(config, store, tagger, on_progress, pool)
        return asyncio.run(runner.run())
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        store.release_crawl_lock()


class _Crawl:
    def __init__(self, config: CrawlConfig, store: CorpusStore, tagger: Tagger,
                 on_progress: ProgressCallback | None,
                 pool: concurrent.futures.ProcessPoolExecutor | None) -> None:
        self.config = config
        self.store = store
        self.tagger = tagger
        self.on_progress = on_progress
        # Pages go to the workers in batches once they queue up; two tasks per worker keep
        # each one busy while the other's result travels back.
        self.batches = (BatchingPool(pool, process_batch_in_worker,
                                     max_tasks=2 * config.workers)
                        if pool is not None else None)
        self.sources = {s.name: s for s in config.sources}
        self.counts: collections.Counter[str] = collections.Counter()
        self.done_per_source: collections.Counter[str] = collections.Counter()
        self.leased_per_source: collections.Counter[str] = collections.Counter()
        self.exhausted: set[str] = set()
        self.hosts: dict[str, _HostSlot] = {}
        self.pending_writes: list[Outcome] = []
        self.fetching = 0                   # requests in flight: at most config.concurrency
        self.backlog_pages = 0              # fetched pages waiting for or in the CPU stage
        self.backlog_bytes = 0
        self.max_backlog_pages = BACKLOG_PAGES_PER_WORKER * max(1, config.workers)
        self.writer = ResultWriter(store, self.sources, config.max_pagination, self.counts,
                                   on_new_links=self.exhausted.discard)
        self.last_flush = time.monotonic()
        self.started = time.monotonic()
        self.stop = asyncio.Event()
        # Set when the loop has something to do: a host freed, room in the backlog, a task
        # finished (it is then in `finished`), or a stop requested.
        self.wakeup = asyncio.Event()
        self.finished: list[asyncio.Task[Outcome]] = []
        self.resumed = False

    def _page_budget(self, source: SourceConfig) -> int:
        return self.config.max_pages if self.config.max_pages is not None else source.max_pages

    # -- main loop -----------------------------------------------------------------------
    async def run(self) -> CrawlStats:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGINT, self._request_stop)
        run = self.store.begin_crawl(self.sources)
        self.resumed = run.resumed
        if run.resumed:
            self.done_per_source.update(self.store.done_counts())
            logger.info("resuming crawl #%s", run.id)
        else:
            with self.store.transaction():
                self.store.enqueue(FrontierEntry(normalize_url(u), s.name, 0)
                                   for s in self.sources.values() for u in s.start_urls)
        state = "failed"
        try:
            guard = NetGuard.for_sources(self.config.sources,
                                         self.config.fetch.connect_timeout)
            async with Fetcher(self.config.fetch, guard=guard) as fetcher:
                robots = RobotsCache(fetcher, self.config.fetch.user_agent)
                await self._schedule(fetcher, robots)
            state = "interrupted" if self.stop.is_set() else "finished"
        finally:
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.remove_signal_handler(signal.SIGINT)
            stats = self._close(run.id, state)
        return stats

    def _close(self, crawl_id: int, state: str) -> CrawlStats:
        """Write what is finished, requeue the rest, record the run. On a failed crawl the
        original error matters more than a second one while closing: log, don't mask."""
        try:
            self._flush()
            self._release_queued()
            stats = self._stats(interrupted=state != "finished")
            self.store.finish_crawl(crawl_id, state, dataclasses.asdict(stats))
        except Exception as exc:
            if state != "failed":
                raise
            if isinstance(exc, CorpusError):
                # The store failing again (a disk still full): the caller reports the first
                # failure, and the unfinished run simply resumes next time.
                logger.debug("while closing the failed crawl: %s", exc)
            else:
                logger.exception("while closing the failed crawl")
            stats = self._stats(interrupted=True)
        return stats

    def _request_stop(self) -> None:
        logger.warning("interrupted: finishing the current batch (Ctrl-C again to abort)")
        self.stop.set()
        self.wakeup.set()
        # A second Ctrl-C falls through to Python's default handler (KeyboardInterrupt).
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)

    async def _schedule(self, fetcher: Fetcher, robots: RobotsCache) -> None:
        tasks: set[asyncio.Task[Outcome]] = set()
        try:
            while not self.stop.is_set():
                self._refill()
                self._launch(tasks, fetcher, robots)
                if not tasks and self.pending_writes:
                    self._flush()  # idle: write now, the results' links are the next work
                    continue
                if not tasks and not self._has_queued():
                    break
                if not self.wakeup.is_set():
                    # One event, not asyncio.wait() over every task: that would hook and
                    # unhook a callback on each of the ~100 pages in flight or in the
                    # backlog at every turn of this loop.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._seconds_until_next_slot()):
                            await self.wakeup.wait()
                self.wakeup.clear()
                finished, self.finished = self.finished, []
                for task in finished:
                    tasks.discard(task)
                    self._handle(task.result())
                if self.pending_writes and (
                        len(self.pending_writes) >= FLUSH_EVERY_RESULTS
                        or time.monotonic() - self.last_flush >= FLUSH_EVERY_SECONDS):
                    self._flush()
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for task_result in results:
                if isinstance(task_result, Outcome):  # finished while we were stopping
                    self._handle(task_result)

    def _has_queued(self) -> bool:
        return any(slot.queue for slot in self.hosts.values()) or bool(
            set(self.sources) - self.exhausted)

    def _seconds_until_next_slot(self) -> float:
        now = time.monotonic()
        waits = [slot.next_time - now for slot in self.hosts.values()
                 if slot.queue and not slot.busy]
        return max(0.005, min(waits)) if waits else 0.5

    # -- frontier -> host queues ---------------------------------------------------------
    def _refill(self) -> None:
        """Lease more URLs for sources that have few waiting in memory."""
        for name in self.sources:
            if name in self.exhausted or self.leased_per_source[name] >= LEASE_BATCH // 2:
                continue
            spent = self.done_per_source[name] >= self._page_budget(self.sources[name])
            with self.store.transaction():
                # Over its page budget: drop the rest of its queue at once, not 64 per wait.
                entries = [] if spent else self.store.lease(LEASE_BATCH, [name])
                if spent:
                    self.store.drop_queued(name)
            if not entries:
                self.exhausted.add(name)
                continue
            for entry in entries:
                self.hosts.setdefault(host_key(entry.url), _HostSlot()).queue.append(entry)
            self.leased_per_source[name] += len(entries)

    def _launch(self, tasks: set[asyncio.Task[Outcome]], fetcher: Fetcher,
                robots: RobotsCache) -> None:
        now = time.monotonic()
        for key, slot in self.hosts.items():
            if not self._may_fetch():
                return
            while slot.queue and not slot.busy and slot.next_time <= now:
                entry = slot.queue.popleft()
                self.leased_per_source[entry.source] -= 1
                source = self.sources[entry.source]
                if self.done_per_source[entry.source] >= self._page_budget(source):
                    self._drop(entry)  # over this source's page budget
                    continue
                self.done_per_source[entry.source] += 1
                slot.busy = True
                self.fetching += 1
                task = asyncio.create_task(self._fetch(entry, key, fetcher, robots))
                task.add_done_callback(self._task_done)
                tasks.add(task)

    def _task_done(self, task: asyncio.Task[Outcome]) -> None:
        if not task.cancelled():    # cancelled: the loop is stopping and gathers them
            self.finished.append(task)
            self.wakeup.set()

    def _may_fetch(self) -> bool:
        """Whether another request may start: fewer than `concurrency` in flight, and room
        for its page in the backlog (which counts the requests in flight too)."""
        return (self.fetching < self.config.concurrency
                and self.fetching + self.backlog_pages < self.max_backlog_pages
                and self.backlog_bytes < BACKLOG_MAX_BYTES)

    def _drop(self, entry: FrontierEntry) -> None:
        with self.store.transaction():
            self.store.mark_done(entry.url)

    def _release_queued(self) -> None:
        urls = [e.url for slot in self.hosts.values() for e in slot.queue]
        if urls:
            with self.store.transaction():
                self.store.release(urls)

    # -- one URL -------------------------------------------------------------------------
    async def _fetch(self, entry: FrontierEntry, key: str, fetcher: Fetcher,
                     robots: RobotsCache) -> Outcome:
        slot = self.hosts[key]
        source = self.sources[entry.source]
        holds_slot = True
        try:
            refusal = await fetcher.refusal(entry.url)
            if refusal:  # an internal address: not even its robots.txt is asked for
                return Outcome(entry, None, FetchResult(entry.url, entry.url,
                                                         FetchOutcome.OUT_OF_SCOPE, error=refusal))
            if self.config.fetch.obey_robots and not await robots.is_allowed(entry.url):
                return Outcome(entry, None, _robots_refusal(entry.url, robots))
            delay = max(source.delay, robots.crawl_delay(entry.url) or 0.0)
            slot.next_time = time.monotonic() + delay
            known = self.store.known_page(entry.url)
            conditional = known is not None and known.page_kind in ("article", "duplicate")
            result = await fetcher.fetch(
                entry.url, is_allowed=source.is_allowed,
                etag=known.etag if conditional and known else None,
                last_modified=known.last_modified if conditional and known else None,
                robots_allows=robots.is_allowed if self.config.fetch.obey_robots else None)
            # The host may serve our next request while this one is processed. Freed once:
            # freeing again later would free the slot of the host's next request, in flight.
            holds_slot = False
            self._free(slot)
            if result.outcome is not FetchOutcome.OK or self._is_unchanged(known, result):
                return Outcome(entry, known, result)
            return Outcome(entry, known, result, await self._process(result, source))
        except (asyncio.CancelledError, concurrent.futures.BrokenExecutor):
            raise  # a dead worker pool fails every URL: end the crawl, don't count them
        except Exception as exc:  # the per-URL error boundary
            logger.warning("failed, %s: %s: %s", entry.url, type(exc).__name__, exc,
                           exc_info=logger.isEnabledFor(logging.DEBUG))
            return Outcome(entry, None, FetchResult(entry.url, entry.url,
                                                     FetchOutcome.NETWORK_ERROR),
                            error=f"{type(exc).__name__}: {exc}")
        finally:
            if holds_slot:
                self._free(slot)

    async def _process(self, result: FetchResult, source: SourceConfig) -> ProcessedPage:
        """The CPU stage for one fetched page, counted in the backlog while it waits."""
        size = len(result.body)
        self.backlog_pages += 1
        self.backlog_bytes += size
        try:
            if self.batches is not None:
                return await self.batches.run(result, source, self.config.min_article_chars)
            return await asyncio.get_running_loop().run_in_executor(
                None, process_page, result, source, self.tagger,
                self.config.min_article_chars)
        finally:
            self.backlog_pages -= 1
            self.backlog_bytes -= size
            self.wakeup.set()   # room in the backlog: the loop may start a request

    def _free(self, slot: _HostSlot) -> None:
        if slot.busy:
            slot.busy = False
            self.fetching -= 1
            self.wakeup.set()

    @staticmethod
    def _is_unchanged(known: KnownPage | None, result: FetchResult) -> bool:
        """A known article whose raw body is byte-identical needs no re-processing."""
        if known is None or known.page_kind not in ("article", "duplicate"):
            return False
        return known.body_hash is not None and known.body_hash == _sha1(result.body)

    def _handle(self, outcome: Outcome) -> None:
        self.pending_writes.append(outcome)

    # -- writing -------------------------------------------------------------------------
    def _flush(self) -> None:
        if not self.pending_writes:
            return
        batch, self.pending_writes = self.pending_writes, []
        self.writer.write(batch)
        self.last_flush = time.monotonic()
        if self.on_progress is not None:
            self.on_progress(self._stats(interrupted=False))

    def _stats(self, *, interrupted: bool) -> CrawlStats:
        fields = {f.name for f in dataclasses.fields(CrawlStats)}
        counts = {k: v for k, v in self.counts.items() if k in fields}
        return CrawlStats(**counts, elapsed=round(time.monotonic() - self.started, 3),
                          resumed=self.resumed, interrupted=interrupted)


def _robots_refusal(url: str, robots: RobotsCache) -> FetchResult:
    """A disallowed URL; an unreachable robots.txt is a failure of the host, not a rule."""
    reason = robots.unreachable_reason(url)
    if reason is None:
        return FetchResult(url, url, FetchOutcome.ROBOTS, error="disallowed by robots.txt")
    return FetchResult(url, url, FetchOutcome.NETWORK_ERROR,
                       error=f"robots.txt unreachable ({reason}): host skipped")


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()
