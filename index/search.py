"""Search the index: filters, sorting, facets and fast snippets; our records out.

The query language is in `index.query`. Results are our frozen `Hit` records, never Whoosh
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

from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh.searching import Searcher
from whoosh.sorting import FieldFacet

from index.errors import IndexMissingError, IndexStaleError
from index.query import compile_query, parse_query
from index.schema import current_generation, is_current, read_meta, schema_user_terms

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
        self._categories: dict[str, frozenset[int]] | None = None
        self._live: frozenset[int] | None = None

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
        base = _filters(source, since)
        wanted = [wq.Term("categories", c) for c in categories]
        full_filter = _and_all([*base, wq.Or(wanted)] if wanted else base)
        results = self._searcher.search(
            compiled.query, filter=full_filter, limit=max(1, limit),
            sortedby=FieldFacet("published", reverse=True) if sort == "date" else None)
        found = [(r.docnum, r.score, r.fields()) for r in results][:max(0, limit)]
        if sort == "date":
            found = self._with_relevance(compiled.query, found)
        facets, total = self._facets(compiled.query, base, set(categories))
        hits = self._hits(found, compiled.highlight if snippets else None)
        return SearchResult(hits, total, facets, parsed.describe())

    def _with_relevance(self, query: wq.Query, found: list[tuple[int, float | None, dict]]
                        ) -> list[tuple[int, float | None, dict]]:
        """Sorted results carry the sort key as their score: score just these few docs."""
        scored = self._searcher.search(query, filter={d for d, _, _ in found},
                                       limit=max(1, len(found)))
        scores = {r.docnum: r.score for r in scored}
        return [(docnum, scores.get(docnum), stored) for docnum, _, stored in found]

    def _facets(self, query: wq.Query, base: list[wq.Query], wanted: set[str]
                ) -> tuple[dict[str, int], int]:
        """Category counts over the matches without the category filter, and the total."""
        matched = self._matching(wq.And([query, *base]) if base else query)
        facets: dict[str, int] = {}
        in_wanted: set[int] = set()
        for category, members in self._category_docs().items():
            docs = matched & members
            if docs:
                facets[category] = len(docs)
            if category in wanted:
                in_wanted |= docs
        ordered = dict(sorted(facets.items(), key=lambda kv: (-kv[1], kv[0])))
        return ordered, len(in_wanted) if wanted else len(matched)

    def _matching(self, query: wq.Query) -> Set[int]:
        """Docnums matching `query`. The shapes compile_query builds (Term, And, Or, Not,
        Every) are evaluated with set operations over posting lists: for a common word the
        generic docs_for_query walks 10k+ matches through Python-level union matchers (64 %
        of such a search). Anything else (phrases, date ranges) falls back to it."""
        live = self._live_docs()
        if isinstance(query, wq.Term):
            reader = self._searcher.reader()
            if (query.fieldname, query.text) not in reader:
                return frozenset()
            return live.intersection(reader.postings(query.fieldname, query.text).all_ids())
        if isinstance(query, wq.And):
            parts = sorted((self._matching(q) for q in query.subqueries), key=len)
            return frozenset(parts[0].intersection(*parts[1:])) if parts else live
        if isinstance(query, wq.Or):
            return frozenset().union(*(self._matching(q) for q in query.subqueries))
        if isinstance(query, wq.Not):
            return live - self._matching(query.query)
        if isinstance(query, wq.Every):
            return live
        return frozenset(self._searcher.docs_for_query(query))

    def _live_docs(self) -> frozenset[int]:
        """Every non-deleted docnum of this searcher's snapshot (read once per session)."""
        if self._live is None:
            self._live = frozenset(self._searcher.reader().all_doc_ids())
        return self._live

    def _category_docs(self) -> dict[str, frozenset[int]]:
        """Docnums per category, read once per session: the searcher is a fixed snapshot,
        and reading postings per query was most of the search time (62 % at 5,000 docs)."""
        if self._categories is None:
            reader = self._searcher.reader()
            self._categories = {
                category: frozenset(reader.postings("categories", category).all_ids())
                for category in reader.field_terms("categories")}
        return self._categories

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
                return ix, ix.searcher()
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
        ix = whoosh_index.open_dir(str(gen_dir))
    except whoosh_index.EmptyIndexError as exc:
        raise IndexMissingError(index_dir, "the search index has no commit yet; run "
                                "`fraudkb reindex`") from exc
    except (ImportError, AttributeError, pickle.UnpicklingError) as exc:  # an older schema
        raise IndexStaleError(index_dir, _STALE) from exc
    if ix.doc_count() == 0:
        ix.close()
        raise IndexMissingError(index_dir, "the search index is empty; run `fraudkb crawl` "
                                "to fetch notices (or `fraudkb reindex` after a crawl)")
    return ix


def _and_all(queries: list[wq.Query]) -> wq.Query | None:
    if not queries:
        return None
    return queries[0] if len(queries) == 1 else wq.And(queries)


def _filters(source: str | None, since: dt.date | None) -> list[wq.Query]:
    filters: list[wq.Query] = []
    if source:
        filters.append(wq.Term("source", source))
    if since is not None:
        start = dt.datetime.combine(since, dt.time.min)
        filters.append(wq.DateRange("published", start, None))
    return filters


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

