"""Search the index: filters, sorting, facets and fast snippets; our records out.

The query language is in `index.query`; ranking, totals, facets and filters are computed
by `index.rank` over posting arrays. Results are our frozen `Hit` records, never Whoosh
objects. Snippets never re-segment text: the body field stores each word's character offsets
(into the original text), so a snippet reads the offsets of the query words in each hit from
the postings and marks whole indexed words.

Safe during index writes: searches read the live generation; a commit deleting files a
search had just listed is retried.
"""

from __future__ import annotations

import datetime as dt
import pickle
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from whoosh import index as whoosh_index
from whoosh.searching import Searcher
from whoosh.util.times import datetime_to_long

from index.errors import IndexMissingError, IndexStaleError
from index.query import compile_query, parse_query
from index.rank import Matches, Ranker
from index.schema import (
    current_generation,
    is_current,
    open_generation,
    read_meta,
    schema_user_terms,
)

SNIPPET_CHARS = 120         # characters of body text shown around the best passage
SNIPPET_LEAD = 20           # characters kept before the first hit of the passage
MAX_SNIPPET_SPANS = 400     # occurrences considered per hit (the best passage is early)
_SPACES = re.compile(r"\s")

OPEN_ATTEMPTS = 5
OPEN_RETRY_SECONDS = 0.05
_TRANSIENT = (OSError, whoosh_index.IndexCorruptedError)
_STALE = ("the search index was built by another version of fraudkb; run `fraudkb reindex` "
          "to rebuild it")

SortOrder = Literal["relevance", "date"]


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result. `snippet_spans` are (start, end) offsets in `snippet` of each
    marked hit, brackets included: snippet[start:end] == "[诈骗]"."""

    id: str
    url: str
    title: str
    published: str | None       # ISO YYYY-MM-DD or None
    source: str
    kind: str
    categories: tuple[str, ...]
    score: float
    snippet: str
    snippet_spans: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Ranked hits, the total number of matches, and category counts of the matches
    (counted before the --category filter, so each count is what that filter would give)."""

    hits: tuple[Hit, ...]
    total: int
    facets: Mapping[str, int]
    query_used: str


class SearchSession:
    """One open index for many searches (a long-lived searcher). Not thread-safe: one per
    thread. Use as a context manager, or call close()."""

    def __init__(self, index_dir: str | Path) -> None:
        self.index_dir = Path(index_dir)
        self._index, self._searcher = _open_searcher(self.index_dir)
        self._user_terms = schema_user_terms(self._index.schema)
        self._ranker = Ranker(self._searcher)

    def __enter__(self) -> SearchSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._searcher.close()
        self._index.close()

    def search(self, query: str | Sequence[str], *, categories: Sequence[str] = (),
               source: str | None = None, since: dt.date | None = None, limit: int = 10,
               sort: SortOrder = "relevance", snippets: bool = True) -> SearchResult:
        """Search; categories are ORed, all other filters ANDed. See the module docstring.
        `snippets=False` leaves snippets empty (faster, for callers that do not show them)."""
        parsed = parse_query(query)
        compiled = compile_query(parsed, self._searcher.reader(), self._user_terms)
        matches = self._ranker.evaluate(compiled.query)
        base = self._filter_mask(source, since)
        if base is not None:
            matches = matches.where(base[matches.docs])
        facets, wanted = self._facets(matches, categories)
        if wanted is not None:
            matches = matches.where(wanted)
        top = self._top(matches, max(0, limit), sort)
        found = [(docnum, score, self._searcher.stored_fields(docnum)) for docnum, score in top]
        hits = self._hits(found, compiled.highlight if snippets else None)
        return SearchResult(hits, len(matches), facets, parsed.describe())

    def _filter_mask(self, source: str | None, since: dt.date | None) -> np.ndarray | None:
        """Documents passing --source and --since (None: no such filter)."""
        mask = None
        if source:
            mask = self._ranker.mask(self._ranker.postings("source", source)[0])
        if since is not None:
            start = datetime_to_long(dt.datetime.combine(since, dt.time.min))
            recent = self._ranker.column("published") >= start
            mask = recent if mask is None else mask & recent
        return mask

    def _facets(self, matches: Matches, categories: Sequence[str]
                ) -> tuple[dict[str, int], np.ndarray | None]:
        """Category counts over the matches (before the category filter, so each count is
        what that filter would give), and which matches the filter keeps (None: no filter)."""
        names, members = self._ranker.members("categories")
        of_matches = members[:, matches.docs]
        counts = of_matches.sum(axis=1)
        facets = {names[row]: int(n) for row, n in enumerate(counts) if n}
        ordered = dict(sorted(facets.items(), key=lambda kv: (-kv[1], kv[0])))
        if not categories:
            return ordered, None
        wanted = set(categories)
        rows = [row for row, name in enumerate(names) if name in wanted]
        return ordered, of_matches[rows].any(axis=0)

    def _top(self, matches: Matches, limit: int, sort: SortOrder) -> list[tuple[int, float]]:
        """The best `limit` matches: by score, or newest first (undated last); ties in
        docnum order, as Whoosh orders them."""
        key = -matches.scores if sort == "relevance" else (
            -self._ranker.column("published")[matches.docs])
        if len(matches) > limit:        # only the candidates that can make the cut
            cut = np.partition(key, limit - 1)[limit - 1] if limit else -np.inf
            within = np.flatnonzero(key <= cut)
            order = within[np.lexsort((matches.docs[within], key[within]))][:limit]
        else:
            order = np.lexsort((matches.docs, key))
        return [(int(matches.docs[i]), float(matches.scores[i])) for i in order]

    def _hits(self, found: list[tuple[int, float | None, dict]], words: frozenset[str] | None
              ) -> tuple[Hit, ...]:
        """Our records from Whoosh's; `words=None` means no snippets."""
        spans = _word_offsets(self._searcher, sorted(d for d, _, _ in found), words or set())
        hits = []
        for docnum, score, stored in found:
            snippet, marks = ("", ()) if words is None else make_snippet(
                stored.get("text", ""), spans.get(docnum, []))
            published = stored.get("published")
            hits.append(Hit(
                id=stored["id"], url=stored.get("url", ""), title=stored.get("title", ""),
                published=published.date().isoformat() if published else None,
                source=stored.get("source", ""), kind=stored.get("kind", ""),
                categories=tuple(c for c in stored.get("categories", "").split(",") if c),
                score=round(float(score or 0.0), 4), snippet=snippet, snippet_spans=marks))
        return tuple(hits)


def search(index_dir: str | Path, query: str | Sequence[str], *,
           categories: Sequence[str] = (), source: str | None = None,
           since: dt.date | None = None, limit: int = 10,
           sort: SortOrder = "relevance", snippets: bool = True) -> SearchResult:
    """Open the index in `index_dir`, run one search, close it. Raises IndexMissingError or
    IndexStaleError (messages say which command to run). Safe during index writes."""
    with SearchSession(index_dir) as session:
        return session.search(query, categories=categories, source=source, since=since,
                              limit=limit, sort=sort, snippets=snippets)


def _open_searcher(index_dir: Path) -> tuple[whoosh_index.Index, Searcher]:
    """Open the live generation, retrying briefly: a writer's commit deletes merged segment
    files and old TOCs, which a reader that listed them a moment before may then miss."""
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            ix = _open_index(index_dir)
            try:
                searcher = ix.searcher()
                if searcher.doc_count() == 0:
                    searcher.close()
                    raise IndexMissingError(
                        index_dir, "the search index is empty; run `fraudkb crawl` to fetch "
                        "notices (or `fraudkb reindex` after a crawl)")
                return ix, searcher
            except BaseException:
                ix.close()
                raise
        except _TRANSIENT as exc:
            if attempt == OPEN_ATTEMPTS:
                raise IndexMissingError(index_dir, f"the search index cannot be read ({exc}); "
                                        "run `fraudkb reindex`") from exc
            time.sleep(OPEN_RETRY_SECONDS * attempt)
    raise AssertionError("unreachable")


def _open_index(index_dir: Path) -> whoosh_index.Index:
    """The live generation, or a clear error saying what to run."""
    gen_dir = current_generation(index_dir)
    if gen_dir is None:
        raise IndexMissingError(index_dir, "there is no search index yet; run `fraudkb crawl` "
                                "to fetch and index notices, or `fraudkb reindex` to index "
                                "the corpus you already have")
    meta = read_meta(gen_dir)
    if meta is None or not is_current(meta):
        raise IndexStaleError(index_dir, _STALE)
    try:
        ix = open_generation(gen_dir)
    except whoosh_index.EmptyIndexError as exc:
        raise IndexMissingError(index_dir, "the search index has no commit yet; run "
                                "`fraudkb reindex`") from exc
    except (ImportError, AttributeError, pickle.UnpicklingError) as exc:  # an older schema
        raise IndexStaleError(index_dir, _STALE) from exc
    return ix


def _word_offsets(searcher: Searcher, docnums: list[int], words: Set[str]
                  ) -> dict[int, list[tuple[int, int]]]:
    """(start, end) in the original body of every indexed occurrence of `words`, per doc,
    read from the postings (no re-segmentation)."""
    offsets: dict[int, list[tuple[int, int]]] = {d: [] for d in docnums}
    reader = searcher.reader()
    for word in words:
        if ("text", word) not in reader:
            continue
        postings = reader.postings("text", word)
        for docnum in docnums:
            if not postings.is_active():
                break
            postings.skip_to(docnum)
            if postings.is_active() and postings.id() == docnum:
                chars = postings.value_as("characters")[:MAX_SNIPPET_SPANS]
                offsets[docnum].extend((start, end) for _, start, end in chars)
    return offsets


def make_snippet(text: str, spans: list[tuple[int, int]], width: int = SNIPPET_CHARS
                 ) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The best passage of `text` (most distinct hits, then most hits) with hits marked
    `[...]`, and the marks' offsets in the returned string."""
    merged = _merge(sorted(spans))
    start = _best_window_start(text, merged, width)
    end = min(len(text), start + width)
    inside = [(s, e) for s, e in merged if s >= start and e <= end]
    pieces: list[str] = ["…"] if start > 0 else []
    marks: list[tuple[int, int]] = []
    cursor, length = start, len(pieces[0]) if pieces else 0
    for s, e in inside:
        before, word = _flat(text[cursor:s]), "[" + _flat(text[s:e]) + "]"
        pieces += [before, word]
        marks.append((length + len(before), length + len(before) + len(word)))
        length += len(before) + len(word)
        cursor = e
    pieces.append(_flat(text[cursor:end]) + ("…" if end < len(text) else ""))
    return "".join(pieces), tuple(marks)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping hits (诈骗 inside 网络诈骗) become one mark."""
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def _best_window_start(text: str, spans: list[tuple[int, int]], width: int) -> int:
    """Start of the window with the most distinct hit words, then the most hits, opened up
    to SNIPPET_LEAD characters early when that loses no hit. Windows starting at a hit are
    the only candidates needed; one linear slide, as a common word can have many hits."""
    words = [text[s:e] for s, e in spans]
    counts: Counter[str] = Counter()
    best_key, best_start, best_end, j = (-1, -1), 0, 0, 0
    for i, (start, _) in enumerate(spans):
        while j < len(spans) and spans[j][1] <= start + width:
            counts[words[j]] += 1
            j += 1
        if j <= i:          # this hit alone is wider than the window
            j, counts = i + 1, Counter()
            continue
        if (len(counts), j - i) > best_key:
            best_key, best_start, best_end = (len(counts), j - i), start, spans[j - 1][1]
        counts[words[i]] -= 1
        if not counts[words[i]]:
            del counts[words[i]]
    return best_start - min(SNIPPET_LEAD, best_start, best_start + width - best_end)


def _flat(text: str) -> str:
    """Whitespace (newlines between paragraphs) as single spaces, same length per char."""
    return _SPACES.sub(" ", text)

