"""Ranked retrieval over posting arrays: Whoosh's BM25F scores, computed with numpy.

Whoosh's collector scores every match one posting at a time in Python, and its matchers
intersect and unite lists one id at a time: a common word (14k of 20k documents) took
30+ ms. Here a term's postings are read a block at a time into arrays, and the query shapes
`index.query.compile_query` builds for plain words (Term, And, Or, AndNot, Every) become
vectorised unions and intersections over dense per-document arrays. Scores are Whoosh's
own BM25F: the same formula, idf, average and per-document length bytes (a test compares
them with Whoosh's search). Any other shape (phrases) is matched and scored by Whoosh,
and then combined here like the rest.

A `Ranker` belongs to one searcher: the index snapshot it reads never changes, so its
per-document columns (lengths, dates, categories) are read once and kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from whoosh import query as wq
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import IndexReader
from whoosh.scoring import BM25F
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

_LENGTH_OF_BYTE = np.array([byte_to_length(b) for b in range(256)], dtype=np.float64)
_EMPTY_DOCS = np.zeros(0, dtype=np.int64)
_EMPTY_SCORES = np.zeros(0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Matches:
    """Matching global docnums (ascending, unique) and each one's score."""

    docs: np.ndarray        # int64
    scores: np.ndarray      # float64, aligned with docs

    def __len__(self) -> int:
        return len(self.docs)

    def where(self, keep: np.ndarray) -> Matches:
        """The matches where `keep` (a boolean array aligned with docs) is True."""
        return Matches(self.docs[keep], self.scores[keep])


EMPTY = Matches(_EMPTY_DOCS, _EMPTY_SCORES)


class Ranker:
    """Evaluates plain-word queries for one searcher. Not thread-safe (like the searcher)."""

    def __init__(self, searcher: Searcher) -> None:
        self._searcher = searcher
        self._reader: IndexReader = searcher.reader()
        self._leaves = [(leaf.reader(), offset) for leaf, offset in searcher.leaf_searchers()]
        self.doc_count = self._reader.doc_count_all()
        weighting = searcher.weighting
        # Only BM25F is reproduced here; another weighting model means Whoosh scores.
        self._bm25 = weighting if type(weighting) is BM25F else None
        self._live: np.ndarray | None = None
        self._lengths: dict[str, np.ndarray] = {}
        self._columns: dict[str, np.ndarray] = {}
        self._members: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}

    # -- queries ---------------------------------------------------------------------------
    def evaluate(self, query: wq.Query) -> Matches:
        """The matches of `query` with their scores."""
        if self._bm25 is None:
            return self._scored_by_whoosh(query)
        if isinstance(query, wq.Term):
            return self.term(query.fieldname, query.text, query.boost)
        if isinstance(query, wq.Every) and query.fieldname in (None, "", "*"):
            docs = np.flatnonzero(self.live())      # Whoosh: every live doc, weight = boost
            return Matches(docs, np.full(len(docs), float(query.boost)))
        if query.boost != 1.0:      # a boosted And/Or: Whoosh scales its children's sum
            return self._scored_by_whoosh(query)
        if isinstance(query, wq.Or):
            return self._union([self.evaluate(q) for q in query.subqueries])
        if isinstance(query, wq.And) and not any(
                isinstance(q, wq.Not) for q in query.subqueries):
            return self._intersection([self.evaluate(q) for q in query.subqueries])
        if isinstance(query, wq.AndNot):
            kept, dropped = self.evaluate(query.a), self.evaluate(query.b)
            return kept.where(~self.mask(dropped.docs)[kept.docs])
        return self._scored_by_whoosh(query)

    def _scored_by_whoosh(self, query: wq.Query) -> Matches:
        """Every match of a shape not reproduced here (phrases), scored by Whoosh
        exhaustively (its top-N collector's block skipping can drop a document's second
        field and misrank it)."""
        found = [(hit.docnum, hit.score) for hit in self._searcher.search(query, limit=None)]
        if not found:
            return EMPTY
        docs = np.array([d for d, _ in found], dtype=np.int64)
        scores = np.array([s or 0.0 for _, s in found], dtype=np.float64)
        order = np.argsort(docs, kind="stable")
        return Matches(docs[order], scores[order])

    def term(self, field: str, text: str, boost: float = 1.0) -> Matches:
        """One term's live postings, scored the way Whoosh's BM25F scorer scores them."""
        docs, weights = self.postings(field, text)
        if not len(docs):
            return EMPTY
        if not self._searcher.schema[field].scorable:
            scores = weights        # Whoosh's WeightScorer: the posting weight
        else:
            scores = self._bm25_scores(field, text, docs, weights)
        return Matches(docs, scores * boost if boost != 1.0 else scores)

    def postings(self, field: str, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(global docnums, weights) of a term's postings in live documents."""
        doc_parts, weight_parts = [], []
        for reader, offset in self._leaves:
            if (field, text) not in reader:
                continue
            for ids, weights in _blocks(reader.postings(field, text)):
                doc_parts.append(ids + offset)
                weight_parts.append(weights)
        if not doc_parts:
            return _EMPTY_DOCS, _EMPTY_SCORES
        docs = np.concatenate(doc_parts)
        weights = np.concatenate(weight_parts)
        keep = self.live()[docs]
        return (docs, weights) if keep.all() else (docs[keep], weights[keep])

    def _bm25_scores(self, field: str, text: str, docs: np.ndarray, weights: np.ndarray
                     ) -> np.ndarray:
        # whoosh.scoring.bm25, term by term in the same order, so the floats agree.
        bm25 = self._bm25
        assert bm25 is not None
        b = bm25._field_B.get(field, bm25.B)
        k1 = bm25.K1
        idf = self._searcher.idf(field, text)
        avgfl = self._searcher.avg_field_length(field) or 1
        lengths = self.lengths(field)[docs]
        return idf * ((weights * (k1 + 1)) / (weights + k1 * ((1 - b) + b * lengths / avgfl)))

    def _union(self, parts: list[Matches]) -> Matches:
        parts = [p for p in parts if len(p)]
        if len(parts) <= 1:
            return parts[0] if parts else EMPTY
        total = np.zeros(self.doc_count, dtype=np.float64)
        present = np.zeros(self.doc_count, dtype=bool)
        for part in parts:
            total[part.docs] += part.scores
            present[part.docs] = True
        docs = np.flatnonzero(present)
        return Matches(docs, total[docs])

    def _intersection(self, parts: list[Matches]) -> Matches:
        parts = sorted(parts, key=len)
        result = parts[0]
        for other in parts[1:]:
            if not len(result):
                return EMPTY
            keep = self.mask(other.docs)[result.docs]
            scores = np.zeros(self.doc_count, dtype=np.float64)
            scores[other.docs] = other.scores
            docs = result.docs[keep]
            result = Matches(docs, result.scores[keep] + scores[docs])
        return result

    # -- per-document columns --------------------------------------------------------------
    def mask(self, docs: np.ndarray) -> np.ndarray:
        """A boolean array over all docnums, True at `docs`."""
        present = np.zeros(self.doc_count, dtype=bool)
        present[docs] = True
        return present

    def live(self) -> np.ndarray:
        """True for every document not deleted in this snapshot."""
        if self._live is None:
            self._live = self.mask(np.fromiter(self._reader.all_doc_ids(), dtype=np.int64))
        return self._live

    def lengths(self, field: str) -> np.ndarray:
        """Every document's length of `field` as Whoosh's scorer sees it (the length byte)."""
        if field not in self._lengths:
            parts = [_lengths_array(reader, field) for reader, _ in self._leaves]
            self._lengths[field] = _LENGTH_OF_BYTE[np.concatenate(parts).astype(np.intp)]
        return self._lengths[field]

    def column(self, field: str) -> np.ndarray:
        """Every document's value of a sortable numeric column (int64), e.g. published."""
        if field not in self._columns:
            parts = [_column_array(reader.column_reader(field, translate=False),
                                   reader.doc_count_all(), ">i8") for reader, _ in self._leaves]
            self._columns[field] = np.concatenate(parts)
        return self._columns[field]

    def members(self, field: str) -> tuple[tuple[str, ...], np.ndarray]:
        """The terms of a keyword field (e.g. categories) and a terms × docs boolean matrix."""
        if field not in self._members:
            terms = tuple(sorted(self._reader.field_terms(field)))
            matrix = np.zeros((len(terms), self.doc_count), dtype=bool)
            for row, term in enumerate(terms):
                matrix[row, self.postings(field, term)[0]] = True
            self._members[field] = (terms, matrix)
        return self._members[field]


def _blocks(matcher: object) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A leaf posting list as (local ids, weights) arrays, a stored block at a time.
    Deleted documents are left in: the caller masks them with the live set."""
    if isinstance(matcher, FilterMatcher):
        matcher = matcher.child
    if not isinstance(matcher, W3LeafMatcher):     # inlined single postings
        ids, weights = [], []
        while matcher.is_active():                  # type: ignore[attr-defined]
            ids.append(matcher.id())                # type: ignore[attr-defined]
            weights.append(matcher.weight())        # type: ignore[attr-defined]
            matcher.next()                          # type: ignore[attr-defined]
        yield np.array(ids, dtype=np.int64), np.array(weights, dtype=np.float64)
        return
    # The block reader's own fields (whoosh-ng 5.4.0, pinned): one unpickled tuple per
    # block of up to 128 postings, instead of a Python call per posting.
    while matcher.is_active():
        matcher._read_ids()
        matcher._read_weights()
        yield (np.asarray(matcher._ids, dtype=np.int64),
               np.asarray(matcher._weights, dtype=np.float64))
        matcher._next_block()


def _lengths_array(reader: IndexReader, field: str) -> np.ndarray:
    """One segment's length bytes of `field` (Whoosh keeps them in a per-document column
    outside the schema, so only the segment's per-document reader opens it)."""
    perdoc = reader._perdoc      # type: ignore[attr-defined]
    name = f"_{field}_len"
    if not perdoc.has_column(name):
        return np.zeros(reader.doc_count_all(), dtype=np.int64)
    return _column_array(perdoc.column_reader(name, LENGTHS_COLUMN), reader.doc_count_all(),
                         ">u1")


def _column_array(column: object, count: int, dtype: str) -> np.ndarray:
    """A fixed-width numeric column of one segment as an int64 array (the column's default
    past its last written document)."""
    try:        # the stored bytes in one read: the reader's own fields (whoosh-ng 5.4.0)
        data = column._dbfile.get(column._basepos,  # type: ignore[attr-defined]
                                  column._count * column._fixedlen)  # type: ignore[attr-defined]
        values = np.frombuffer(data, dtype=dtype).astype(np.int64)
        default = column._default       # type: ignore[attr-defined]
    except AttributeError:      # another column reader: read it value by value
        return np.fromiter(iter(column), dtype=np.int64, count=count)  # type: ignore[call-overload]
    if len(values) < count:
        values = np.concatenate([values, np.full(count - len(values), default, np.int64)])
    return values[:count]
