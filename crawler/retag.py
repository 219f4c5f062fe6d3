"""Re-tag the whole corpus after categories.toml changed: no re-fetch, one transaction.

Articles are read a page at a time (store.article_texts) and tagged a batch at a time
(Tagger.tag_many), so memory stays flat however large the corpus is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crawler.store import CorpusStore
from crawler.tag import Tagger

RETAG_BATCH = 256       # articles read and tagged together

RetagProgress = Callable[[int, int], None]     # (articles done, articles in the corpus)


@dataclass(frozen=True, slots=True)
class RetagResult:
    documents: int      # articles re-tagged
    changed: int        # of which the labels (categories or primary) changed
    rescored: int       # of which only scores or evidence changed


def retag_corpus(store: CorpusStore, tagger: Tagger,
                 on_progress: RetagProgress | None = None) -> RetagResult:
    """Tag every stored article again and store the new tags where they differ. Atomic: an
    interrupt leaves the old tags in place. Rewritten articles get a new change number, so
    the next index update rewrites exactly them."""
    total = store.count_articles()
    documents = changed = rescored = 0
    after = 0
    with store.transaction():
        while batch := store.article_texts(after, RETAG_BATCH):
            after = batch[-1][0]
            tags = tagger.tag_many([text for _, _, _, text in batch],
                                   [title for _, _, title, _ in batch])
            for (_, doc_id, _, _), article_tags in zip(batch, tags, strict=True):
                what = store.update_tags(doc_id, article_tags)
                changed += what == "labels"
                rescored += what == "evidence"
            documents += len(batch)
            if on_progress is not None:
                on_progress(documents, total)
    return RetagResult(documents=documents, changed=changed, rescored=rescored)
