"""Worker processes for the crawl's CPU stage (decode, links, extract, tag), so that every
core works while the main process fetches and writes.

Each worker builds its Tagger once, in the pool initializer: sending the taxonomy with every
page would cost ~4 ms of pickling per page, as much as extracting it. The holder below is
per-process state written only by that initializer; the main process never touches it.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing

from crawler.config import SourceConfig
from crawler.process import process_page
from crawler.records import FetchResult, ProcessedPage
from crawler.tag import Tagger, build_matcher
from crawler.taxonomy import Taxonomy

_WORKER_TAGGER: dict[str, Tagger] = {}


def _init_worker(taxonomy: Taxonomy) -> None:
    _WORKER_TAGGER["tagger"] = build_matcher(taxonomy)


def process_in_worker(result: FetchResult, source: SourceConfig,
                      min_article_chars: int) -> ProcessedPage:
    """process_page() with this worker's own Tagger."""
    return process_page(result, source, _WORKER_TAGGER["tagger"], min_article_chars)


def start_pool(taxonomy: Taxonomy, workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A process pool whose workers each hold a Tagger for `taxonomy`. Uses forkserver: the
    crawl forks nothing from a process that already runs an event loop and threads."""
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("forkserver"),
        initializer=_init_worker, initargs=(taxonomy,))
