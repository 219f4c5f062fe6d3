"""Re-tag the whole corpus after categories.toml changed: no re-fetch, one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.store import CorpusStore
from crawler.tag import Tagger


@dataclass(frozen=True, slots=True)
class RetagResult:
    documents: int      # articles re-tagged
    changed: int        # of which the labels or evidence changed


def retag_corpus(store: CorpusStore, tagger: Tagger) -> RetagResult:
    """Tag every stored article again and store the new tags where they differ. Atomic: an
    interrupt leaves the old tags in place. Changed articles get a new change number, so the
    next index update rewrites exactly them."""
    documents = changed = 0
    with store.transaction():
        for article in list(store.iter_articles()):
            documents += 1
            changed += store.update_tags(article.id, tagger.tag(article.text,
                                                                title=article.title))
    return RetagResult(documents=documents, changed=changed)
