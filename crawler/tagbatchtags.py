"""Tags for crawler/tagbatch.py: tag._to_tags's rules over per-(text, category) cells.

Ranking is per text and small (a dozen scored categories at most), so it stays Python,
fed with plain lists. Evidence is the bulk of the output (~130 records for a dense notice):
its spans are picked, sorted, de-duplicated and mapped to original offsets as arrays, and
the records are filled slot by slot in C-level loops, as tag._make_evidence does one by one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np

from crawler.records import Evidence, Tags
from crawler.tagbatchplan import BatchPlan, run_heads
from crawler.tagscore import Candidate, rank_labels
from crawler.taxonomy import Scoring

if TYPE_CHECKING:
    from crawler.tagbatch import Layout
    from crawler.tagbatchcombo import Fired
    from crawler.tagbatchterms import Spans

NONE = np.iinfo(np.int64).max               # "no such position" in Cells
_SCORE = itemgetter(1)
_NEW_EVIDENCE = object.__new__
_SET_TERM = Evidence.term.__set__           # type: ignore[attr-defined]
_SET_START = Evidence.start.__set__         # type: ignore[attr-defined]
_SET_END = Evidence.end.__set__             # type: ignore[attr-defined]

@dataclass(frozen=True, slots=True)
class Cells:
    """Per (text, category): whether it scored (see tagscore), its damped score, and the
    positions _to_tags ranks by."""

    scored: np.ndarray              # (D, C) bool
    score: np.ndarray               # (D, C) float64
    first: np.ndarray               # (D, C) int64: first span
    decisive: np.ndarray            # (D, C) int64: first decisive keyword hit, or NONE


def build_tags(plan: BatchPlan, layout: Layout, cells: Cells, keywords: Spans, fired: Fired,
               scoring: Scoring) -> list[Tags]:
    """One Tags per text, as tag._to_tags builds it."""
    per_text = _items_per_text(cells)
    thresholds = plan.thresholds.tolist()
    ranked = [_ranked(items, thresholds, scoring) for items in per_text]
    count = plan.category_count
    passing = np.zeros(layout.count * count, bool)
    for doc, order in enumerate(ranked):
        if order:
            passing[[doc * count + cat for cat in order]] = True
    evidence = _evidence(plan, layout, keywords, fired, passing)
    ids = [category.id for category in plan.categories]
    tags = []
    for doc, (items, order) in enumerate(zip(per_text, ranked, strict=True)):
        if len(items) > 1:
            items = sorted(items, key=_SCORE, reverse=True)  # equal scores: category order
        tags.append(Tags(
            categories=tuple([ids[cat] for cat in order]),
            primary=ids[order[0]] if order else None,
            scores={ids[item[0]]: round(item[1], 3) for item in items},
            evidence={ids[cat]: evidence[doc * count + cat] for cat in order}))
    return tags


def _items_per_text(cells: Cells) -> list[list[Candidate]]:
    """The scored cells of each text as rank_labels' candidates, in category order."""
    docs, cats = np.nonzero(cells.scored)
    decisive = [None if position == NONE else position
                for position in cells.decisive[docs, cats].tolist()]
    items = list(zip(cats.tolist(), cells.score[docs, cats].tolist(),
                     cells.first[docs, cats].tolist(), decisive, strict=True))
    bounds = np.cumsum(np.count_nonzero(cells.scored, axis=1)).tolist()
    return [items[lo:hi] for lo, hi in zip([0, *bounds], bounds, strict=False)]


def _ranked(items: list[Candidate], thresholds: list[float], scoring: Scoring) -> list[int]:
    """The passing categories of one text, primary first then by score (tag._to_tags)."""
    return rank_labels([item for item in items if item[1] >= thresholds[item[0]]], scoring)


# -- evidence ----------------------------------------------------------------------------------

def _evidence(plan: BatchPlan, layout: Layout, keywords: Spans, fired: Fired,
              passing: np.ndarray) -> dict[int, tuple[Evidence, ...]]:
    """Evidence per passing (text, category) cell: the spans of its kept keyword hits and
    fired combos, de-duplicated, sorted by (start, end, term), in original offsets."""
    count = plan.category_count
    keep = passing[keywords.doc * count + keywords.cat]
    cat, start, end = keywords.cat[keep], keywords.start[keep], keywords.end[keep]
    route, doc = keywords.route[keep], keywords.doc[keep]
    keep = passing[fired.doc * count + fired.cat]
    if keep.any():                  # combo spans join: sort, and drop repeated spans
        cat, start, end, route, doc = (np.concatenate([a, b[keep]]) for a, b in (
            (cat, fired.cat), (start, fired.start), (end, fired.end), (route, fired.route),
            (doc, fired.doc)))
        key = ((cat * layout.limit + start) * 64 + (end - start)) * plan.text_count
        key += plan.route_text_rank[route]
        order = np.argsort(key, kind="stable")
        key = key[order]
        unique = order[run_heads(key)]
        cat, start, end, route, doc = (cat[unique], start[unique], end[unique],
                                       route[unique], doc[unique])
    records = _records(plan, layout, start - layout.base[doc], end - layout.base[doc], route,
                       doc)
    cell = doc * count + cat
    heads = run_heads(cell)
    bounds = [*heads.tolist(), len(cell)]
    return {key: tuple(records[lo:hi]) for key, lo, hi in
            zip(cell[heads].tolist(), bounds, bounds[1:], strict=False)}


def _records(plan: BatchPlan, layout: Layout, start: np.ndarray, end: np.ndarray,
             route: np.ndarray, doc: np.ndarray) -> list[Evidence]:
    """Evidence(term, original start, original end) for spans given in normalised offsets
    of their text."""
    start, end = _original_offsets(layout, start, end, doc)
    texts = plan.route_text[route].tolist()
    records = list(map(_NEW_EVIDENCE, repeat(Evidence, len(texts))))
    deque(map(_SET_TERM, records, texts), 0)
    deque(map(_SET_START, records, start.tolist()), 0)
    deque(map(_SET_END, records, end.tolist()), 0)
    return records


def _original_offsets(layout: Layout, start: np.ndarray, end: np.ndarray, doc: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Map spans through their text's origin; the texts whose normalisation kept every
    offset (most) need nothing, the others' origins are joined into one array."""
    mapped = [index for index, origin in enumerate(layout.origins) if not _is_identity(origin)]
    if not mapped:
        return start, end
    sizes = np.array([len(layout.origins[index]) for index in mapped], np.int64)
    where = np.full(layout.count, -1, np.int64)
    where[mapped] = np.cumsum(sizes) - sizes
    joined = np.concatenate([np.asarray(layout.origins[index], np.int64) for index in mapped])
    some = (where[doc] >= 0).nonzero()[0]
    at = where[doc[some]] + start[some]
    start, end = start.copy(), end.copy()
    end[some] = joined[at + (end[some] - start[some]) - 1] + 1
    start[some] = joined[at]
    return start, end


def _is_identity(origin: Sequence[int]) -> bool:
    # normalize_with_origin returns range(len(text)) when it kept every offset.
    return type(origin) is range and origin.start == 0 and origin.step == 1
