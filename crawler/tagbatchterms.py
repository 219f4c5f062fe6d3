"""Keywords and negatives for crawler/tagbatch.py: tagscore's rules over the batch's arrays.

Keyword hits of a category count unless an exclude context of that category holds them;
overlapping ones are settled as tagscore._outermost settles them (see outermost); each
distinct term then scores weight * (1 + repeat_gain * ln(hits) + title_bonus * in_title),
summed per (text, category) in the order of the terms' first kept hits, as
tagscore._terms_score adds them.
Negatives score the same way without overlaps or title bonus, in the order of their
key's first hit (tagscore's slot order), counting the hits no exclusion holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crawler.tagbatchplan import BatchPlan, run_heads, run_sizes
from crawler.taxonomy import Scoring

if TYPE_CHECKING:
    from crawler.tagbatch import Entries, Excluder, Layout


@dataclass(frozen=True, slots=True)
class Spans:
    """Kept keyword hits, sorted by (category, position); none overlap inside a category."""

    cat: np.ndarray
    start: np.ndarray
    end: np.ndarray
    route: np.ndarray
    doc: np.ndarray


def kept_keywords(plan: BatchPlan, block: Entries, excluder: Excluder | None,
                  layout: Layout) -> Spans:
    """Keyword hits not excluded, overlaps settled as tagscore._outermost does."""
    cat = block.slot.astype(np.int64)               # keyword slot c belongs to category c
    start, route, doc = block.start, block.route, block.doc
    end = start + plan.route_length[route]
    out = excluder.inside(cat, doc, start, end) if excluder is not None else ()
    if len(out):
        kept = np.ones(len(cat), bool)
        kept[out] = False
        cat, start, end, route, doc = cat[kept], start[kept], end[kept], route[kept], doc[kept]
    keys = cat * layout.limit + start
    if len(keys) > 1 and (keys[1:] < keys[:-1]).any():
        # Hit order is by end: a hit inside a longer, earlier-starting one comes after it.
        order = np.argsort(keys, kind="stable")     # ties: same start, shorter first
        keys, cat, start, end, route, doc = (keys[order], cat[order], start[order],
                                             end[order], route[order], doc[order])
    kept = outermost(keys, cat * layout.limit + end, plan.route_weight[route], start, end)
    if kept is not None:
        cat, start, end, route, doc = cat[kept], start[kept], end[kept], route[kept], doc[kept]
    return Spans(cat, start, end, route, doc)


def outermost(keys: np.ndarray, ends: np.ndarray, weight: np.ndarray, start: np.ndarray,
              end: np.ndarray) -> np.ndarray | None:
    """Mask of the hits kept by tagscore._outermost (None: all of them), for hits sorted
    by (key, end) where keys are category x limit + start and ends the same. Runs of chained
    overlaps are found with a running maximum of ends; a pair keeps the heavier, then
    longer, then earlier hit; a run of three is settled in closed form (_settle_threes),
    longer ones by the reference's greedy rule, all at once (_heaviest_first). A dense
    notice has ~19 pairs, ~5 runs of three and ~1 longer run."""
    if len(keys) < 2:
        return None
    reach = np.maximum.accumulate(ends)
    opens = np.empty(len(keys), bool)
    opens[0] = True
    np.greater_equal(keys[1:], reach[:-1], out=opens[1:])
    if opens.all():
        return None
    run_starts = opens.nonzero()[0]
    sizes = run_sizes(run_starts, len(keys))
    kept = np.ones(len(keys), bool)
    length = end - start
    first = run_starts[sizes == 2]
    a_wins = _ranks_above(weight, length, start, first, first + 1)
    kept[first] = a_wins
    kept[first + 1] = ~a_wins
    _settle_threes(run_starts[sizes == 3], weight, length, start, end, kept)
    longer = sizes > 3
    if longer.any():
        _heaviest_first(run_starts[longer], sizes[longer], weight, length, start, end, kept)
    return kept


def _ranks_above(weight: np.ndarray, length: np.ndarray, start: np.ndarray, a: np.ndarray,
                 b: np.ndarray) -> np.ndarray:
    """Whether hit a comes before hit b by (-weight, -length, start)."""
    return (weight[a] > weight[b]) | ((weight[a] == weight[b]) & (
        (length[a] > length[b]) | ((length[a] == length[b]) & (start[a] < start[b]))))


def _settle_threes(firsts: np.ndarray, weight: np.ndarray, length: np.ndarray,
                   start: np.ndarray, end: np.ndarray, kept: np.ndarray) -> None:
    """_heaviest_first on runs of three hits a, b, c (by start), in closed form: the one
    ranking first is kept, and so is each other one not overlapping it (a hit overlapping
    it goes, and then the third has nothing kept but the first to clash with)."""
    a, b, c = firsts, firsts + 1, firsts + 2
    a_first = _ranks_above(weight, length, start, a, b) & _ranks_above(weight, length, start,
                                                                       a, c)
    b_first = ~a_first & _ranks_above(weight, length, start, b, c)
    c_first = ~(a_first | b_first)
    # a and b overlap (b opened no run); a later hit overlaps x when it starts before x ends.
    a_c, b_c = start[c] < end[a], start[c] < end[b]
    kept[a] = a_first | (c_first & ~a_c)
    kept[b] = b_first | (c_first & ~b_c)
    kept[c] = c_first | (a_first & ~a_c) | (b_first & ~b_c)


def _heaviest_first(firsts: np.ndarray, sizes: np.ndarray, weight: np.ndarray,
                    length: np.ndarray, start: np.ndarray, end: np.ndarray,
                    kept: np.ndarray) -> None:
    """tagscore._heaviest_first on runs of 4+ hits, all runs at once: rank each run's hits
    by (-weight, -length, start) and keep, rank by rank, each hit overlapping no hit kept
    before it. Writes into `kept`."""
    width = int(sizes.max())
    rows = np.arange(len(firsts))
    columns = np.arange(width)
    present = columns < sizes[:, None]
    at = np.where(present, firsts[:, None] + columns, firsts[:, None])
    starts, ends = start[at], end[at]
    # One lexsort of all runs: by row, absent columns last, then the reference's rank.
    ranked = np.lexsort((starts.ravel(), -length[at].ravel(), -weight[at].ravel(),
                         ~present.ravel(), np.repeat(rows, width)))
    ranked = ranked.reshape(len(firsts), width) - (rows * width)[:, None]
    chosen = np.zeros((len(firsts), width), bool)
    for rank in range(width):
        column = ranked[:, rank]
        lo, hi = starts[rows, column], ends[rows, column]
        clash = (chosen & (starts < hi[:, None]) & (ends > lo[:, None])).any(axis=1)
        chosen[rows, column] = present[rows, column] & ~clash
    kept[at[present]] = chosen[present]


def keyword_totals(plan: BatchPlan, spans: Spans, layout: Layout,
                   scoring: Scoring) -> np.ndarray:
    """(D * C,) keyword score per (text, category): distinct terms summed in the order of
    their first kept hit, as tagscore._terms_score does."""
    first, hits = _first_of_each(plan, spans.route, spans.doc, layout.count, None)
    return _term_sums(plan, spans.route[first], spans.doc[first], spans.start[first], hits,
                      layout, scoring.repeat_gain, scoring.title_bonus)


def negative_totals(plan: BatchPlan, block: Entries, excluder: Excluder | None,
                    layout: Layout, scoring: Scoring) -> np.ndarray:
    """(D * C,) what negatives subtract: terms in the order of their key's first hit (even
    an excluded one, as in tagscore), counting hits outside exclusions, no title bonus."""
    route, doc = block.route, block.doc
    counted = None
    if excluder is not None and len(route):
        end = block.start + plan.route_length[route]
        out = excluder.inside(plan.slot_cat[block.slot], doc, block.start, end)
        if len(out):
            counted = np.ones(len(route), bool)
            counted[out] = False
    first, hits = _first_of_each(plan, route, doc, layout.count, counted)
    some = hits > 0
    return _term_sums(plan, route[first][some], doc[first][some], block.start[first][some],
                      hits[some], layout, scoring.repeat_gain, 0.0)


def _first_of_each(plan: BatchPlan, route: np.ndarray, doc: np.ndarray, docs: int,
                   counted: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Indexes (ascending) of the first entry of each (route, text), and how many entries
    of each are `counted` (all when None)."""
    if not len(route):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # A stable sort of 16-bit integers is a radix sort: ~15x faster than int64's timsort.
    narrow = route.astype(np.uint16) if len(plan.route_slot) <= 2 ** 16 else route
    order = np.argsort(narrow, kind="stable")
    heads = run_heads(route[order].astype(np.int64) * docs + doc[order])
    if counted is None:
        sizes = run_sizes(heads, len(route))
    else:
        sizes = np.add.reduceat(counted[order].astype(np.int64), heads)
    per_entry = np.full(len(route), -1, np.int64)
    per_entry[order[heads]] = sizes
    first = (per_entry >= 0).nonzero()[0]
    return first, per_entry[first]


def _term_sums(plan: BatchPlan, route: np.ndarray, doc: np.ndarray, start: np.ndarray,
               hits: np.ndarray, layout: Layout, gain: float, bonus: float) -> np.ndarray:
    """Sum per (text, category) of weight * (1 + gain * ln(hits) + bonus * in_title), in
    array order: the operations of tagscore._terms_score, term by term."""
    cells = layout.count * plan.category_count
    if not len(route):
        return np.zeros(cells)
    logs = np.array([0.0, *map(math.log, range(1, int(hits.max()) + 1))])
    in_title = start < layout.title_ends[doc]
    scores = plan.route_weight[route] * ((1 + gain * logs[hits]) + bonus * in_title)
    cat = plan.slot_cat[plan.route_slot[route]]
    return np.bincount(doc * plan.category_count + cat, scores, cells)
