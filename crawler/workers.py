"""Worker processes for the crawl's CPU stage (decode, links, extract, tag), so that every
core works while the main process fetches and writes.

Each worker builds its Tagger once, in the pool initializer: sending the taxonomy with every
page would cost ~4 ms of pickling per page, as much as extracting it. The holder below is
per-process state written only by that initializer; the main process never touches it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import gc
import multiprocessing
from collections.abc import Sequence

from crawler.batching import picklable, run_batch
from crawler.config import SourceConfig
from crawler.process import finish_page, prepare_page
from crawler.records import FetchResult, ProcessedPage
from crawler.tag import Tagger, build_matcher
from crawler.taxonomy import Taxonomy

_WORKER_TAGGER: dict[str, Tagger] = {}


def _init_worker(taxonomy: Taxonomy) -> None:
    _WORKER_TAGGER["tagger"] = build_matcher(taxonomy)
    # The tagger's ~50k objects live as long as the worker: moved out of the collector's
    # generations, full collections stop walking them (~70 µs a page, 2 % of a worker).
    gc.freeze()


def process_batch_in_worker(batch: Sequence[tuple[FetchResult, SourceConfig, int]]
                            ) -> list[ProcessedPage | BaseException]:
    """A task's pages (each `(result, source, min_article_chars)`), processed in this
    worker: each prepared on its own, then their articles tagged in one tag_many call
    (~2.5x cheaper than one by one on dense notices). A page that fails gets its exception
    in its place; its batch mates go on.

    Pages go back without their Tags objects: the store takes the tags as `tag_columns`,
    and unpickling ~100 Evidence objects per article would cost the crawl's writer process
    ~0.1 ms a page."""
    tagger = _WORKER_TAGGER["tagger"]
    prepared = run_batch(prepare_page, batch)
    articles = [page.article for page in prepared
                if isinstance(page, ProcessedPage) and page.article is not None]
    tags = iter(tagger.tag_many([a.text for a in articles], [a.title for a in articles]))
    finished: list[ProcessedPage | BaseException] = []
    for page in prepared:
        if isinstance(page, ProcessedPage) and page.article is not None:
            try:
                page = dataclasses.replace(finish_page(page, next(tags)), tags=None)
            except Exception as exc:  # per page, as in run_batch
                page = picklable(exc)
        finished.append(page)
    return finished


def start_pool(taxonomy: Taxonomy, workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A process pool whose workers each hold a Tagger for `taxonomy`. Uses forkserver: the
    crawl forks nothing from a process that already runs an event loop and threads."""
    context = multiprocessing.get_context("forkserver")
    # The fork server imports this module (lxml, trafilatura, the tagger) once and every
    # worker forks with it loaded, instead of each importing it (~0.2 s CPU per worker).
    # It only takes effect when this process starts its fork server, i.e. at its first pool.
    context.set_forkserver_preload([__name__])
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker,
        initargs=(taxonomy,))
