"""Build and update the index from the corpus (read only through CorpusStore's public API).

`update_index` writes only what changed since the last indexed corpus change number and drops
tombstoned ids; `rebuild_index` builds a fresh generation beside the live one and switches to
it with one atomic rename, so searches never see a half-built index.

Concurrency contract: one index writer at a time, enforced by an flock on `write.lock` (a
second writer waits up to `timeout` seconds, then raises IndexBusyError). Readers never take
the lock and never block. Both functions are idempotent: re-running them changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh.writing import IndexWriter

from crawler.records import StoredArticle
from crawler.store import CorpusStore
from index.analysis import CATEGORIES_FILE, load_user_terms
from index.errors import IndexBusyError
from index.schema import (
    LOCK_FILE,
    IndexMeta,
    build_schema,
    current_generation,
    is_current,
    new_meta,
    open_generation,
    read_meta,
    set_current_generation,
    terms_digest,
    write_meta,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 500                # articles read, deduplicated and written per step
WRITER_TIMEOUT = 120.0          # seconds a second writer waits for the lock
LOCK_POLL_SECONDS = 0.1
WRITER_LIMIT_MB = 128           # Whoosh's in-memory posting buffer, per writer process
# Two writer processes (multisegment) measured 1.5-1.9x one writer on 2 cores: 200 docs
# 109 -> 189 docs/s, 600 docs 5.4 -> 2.9 s, 2,000 docs 103 -> 157 docs/s, identical hits and
# scores (benchmarks/bench_index.py). Below this size each worker's jieba load (~0.5 s) and
# process start-up are not worth it.
PARALLEL_MIN_DOCS = 500
KEEP_GENERATIONS = 2            # the live one and the one before (a search may still read it)


@dataclass(frozen=True, slots=True)
class IndexUpdate:
    """What one update or rebuild did."""

    added: int = 0
    updated: int = 0
    deleted: int = 0
    seconds: float = 0.0
    rebuilt: bool = False


def update_index(store: CorpusStore, index_dir: str | Path, *,
                 timeout: float = WRITER_TIMEOUT) -> IndexUpdate:
    """Index corpus changes since the last update (a full rebuild when missing or stale)."""
    index_dir = Path(index_dir)
    started = time.perf_counter()
    with writer_lock(index_dir, timeout):
        gen_dir = current_generation(index_dir)
        meta = read_meta(gen_dir) if gen_dir else None
        if gen_dir is None or meta is None or not is_current(meta):
            return _rebuild_locked(store, index_dir, started, CATEGORIES_FILE, None)
        added, updated, deleted = _apply_changes(store, index_dir, gen_dir, meta, timeout)
    result = IndexUpdate(added, updated, deleted, time.perf_counter() - started)
    logger.info("index updated: %s", result)
    return result


def _apply_changes(store: CorpusStore, index_dir: Path, gen_dir: Path, meta: IndexMeta,
                   timeout: float) -> tuple[int, int, int]:
    """Write the articles changed and drop the ids deleted since `meta.seq`."""
    if meta.user_terms_sha1 != terms_digest(load_user_terms()):
        logger.info("categories.toml terms changed since the index was built; it keeps its "
                    "own dictionary until `fraudkb reindex`")
    # Read the high-water mark first: every change up to it is then certainly included;
    # changes racing in after it are applied again next time (idempotent).
    target = store.max_seq()
    ix = open_generation(gen_dir, readonly=False)
    try:
        with _whoosh_writer(ix, index_dir, timeout) as writer:
            added, updated = _write_changes(writer, store.articles_changed_since(meta.seq))
            deleted = sum(writer.delete_by_term("id", doc_id) or 0
                          for doc_id in store.deleted_since(meta.seq))
    finally:
        ix.close()
    write_meta(gen_dir, replace(meta, seq=target))
    return added, updated, deleted


def rebuild_index(store: CorpusStore, index_dir: str | Path, *,
                  categories_path: Path | None = CATEGORIES_FILE, procs: int | None = None,
                  timeout: float = WRITER_TIMEOUT) -> IndexUpdate:
    """Build a new index from the whole corpus and swap it in atomically.

    `procs=None` picks parallel writing for large corpora; searches keep working throughout.
    """
    index_dir = Path(index_dir)
    started = time.perf_counter()
    with writer_lock(index_dir, timeout):
        return _rebuild_locked(store, index_dir, started, categories_path, procs)


def _rebuild_locked(store: CorpusStore, index_dir: Path, started: float,
                    categories_path: Path | None, procs: int | None) -> IndexUpdate:
    """Build a new generation beside the live one, then point searches at it."""
    user_terms = load_user_terms(categories_path)
    target = store.max_seq()
    previous = current_generation(index_dir)
    gen_dir = _new_generation_dir(index_dir)
    if procs is None:
        procs = min(2, os.cpu_count() or 1) if store.count_articles() >= PARALLEL_MIN_DOCS else 1
    try:
        added = _build_generation(store, gen_dir, user_terms, procs)
    except BaseException:
        shutil.rmtree(gen_dir, ignore_errors=True)   # also on Ctrl-C: the live index stays
        raise
    write_meta(gen_dir, new_meta(user_terms, target))
    set_current_generation(index_dir, gen_dir)
    _remove_old_generations(index_dir, {gen_dir.name, previous.name if previous else ""})
    result = IndexUpdate(added=added, seconds=time.perf_counter() - started, rebuilt=True)
    logger.info("index rebuilt in %s: %s", gen_dir, result)
    return result


def _build_generation(store: CorpusStore, gen_dir: Path, user_terms: tuple[str, ...],
                      procs: int) -> int:
    """Write every article into a new Whoosh index in `gen_dir`; returns the count."""
    ix = whoosh_index.create_in(str(gen_dir), build_schema(user_terms))
    # multisegment: each process keeps its own segment, skipping a single-threaded final
    # merge that makes procs=2 no faster than one writer (MEASUREMENTS.md).
    options = {"procs": procs, "multisegment": True} if procs > 1 else {}
    try:
        with ix.writer(limitmb=WRITER_LIMIT_MB, **options) as writer:
            return _add_all(writer, store.iter_articles())
    finally:
        ix.close()


def _add_all(writer: IndexWriter, articles: Iterable[StoredArticle]) -> int:
    """Add every article once (a fresh index has nothing to replace)."""
    seen: set[str] = set()
    for batch in _batches(articles, BATCH_SIZE):
        for article in _dedupe(batch, seen):
            writer.add_document(**_document(article))
    return len(seen)


def _write_changes(writer: IndexWriter, articles: Iterable[StoredArticle]) -> tuple[int, int]:
    """`update_document` each changed article once; returns (added, updated)."""
    added = updated = 0
    seen: set[str] = set()
    with writer.searcher() as searcher:
        for batch in _batches(articles, BATCH_SIZE):
            for article in _dedupe(batch, seen):
                if searcher.document_number(id=article.id) is None:
                    added += 1
                else:
                    updated += 1
                writer.update_document(**_document(article))
    return added, updated


def _batches(items: Iterable[StoredArticle], size: int) -> Iterator[list[StoredArticle]]:
    batch: list[StoredArticle] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _dedupe(batch: list[StoredArticle], seen: set[str]) -> list[StoredArticle]:
    """The newest version of each id not written yet in this writer: adding then updating
    one unique key inside one Whoosh writer would leave two documents."""
    newest = {article.id: article for article in batch if article.id not in seen}
    seen.update(newest)
    return list(newest.values())


def _document(article: StoredArticle) -> dict[str, object]:
    """The Whoosh fields of one article (`published` omitted when unknown or malformed)."""
    doc: dict[str, object] = {
        "id": article.id, "url": article.url, "title": article.title, "text": article.text,
        "source": article.source, "kind": article.kind,
        "categories": ",".join(article.categories), "primary": article.primary,
    }
    with contextlib.suppress(TypeError, ValueError):
        doc["published"] = dt.datetime.fromisoformat(str(article.published)[:10])
    return doc


@contextlib.contextmanager
def _whoosh_writer(ix: whoosh_index.Index, index_dir: Path, timeout: float
                   ) -> Iterator[IndexWriter]:
    """Whoosh's own writer lock is free while we hold ours, unless something outside fraudkb
    writes this index: then wait, and say so clearly instead of a bare LockError."""
    try:
        writer = ix.writer(timeout=timeout)
    except whoosh_index.LockError as exc:
        raise IndexBusyError(index_dir, "the index is locked by another writer; wait for it "
                             "to finish, then try again") from exc
    with writer:
        yield writer


@contextlib.contextmanager
def writer_lock(index_dir: Path, timeout: float = WRITER_TIMEOUT) -> Iterator[None]:
    """Hold the one-writer lock of `index_dir`, waiting up to `timeout` seconds for it."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while not _try_flock(fd):
            if time.monotonic() >= deadline:
                raise IndexBusyError(index_dir, f"another fraudkb process has been writing "
                                     f"the index for over {timeout:g} s; wait for it to "
                                     "finish, then try again")
            time.sleep(LOCK_POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _new_generation_dir(index_dir: Path) -> Path:
    numbers = [int(p.name[4:]) for p in index_dir.glob("gen-*") if p.name[4:].isdigit()]
    gen_dir = index_dir / f"gen-{max(numbers, default=0) + 1:06d}"
    gen_dir.mkdir()
    return gen_dir


def _remove_old_generations(index_dir: Path, keep: set[str]) -> None:
    """Delete generations older than the previous one (and leftovers of crashed rebuilds)."""
    for path in sorted(index_dir.glob("gen-*"))[:-KEEP_GENERATIONS]:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
