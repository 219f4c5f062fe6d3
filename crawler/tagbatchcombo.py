"""Combos for crawler/tagbatch.py: which fire in which text, on which hits, batch-wide.

The rules are tagcombo's: a combo counts when every group has a hit not excluded; with a
window, the anchor is the earliest hit of the first group (in hit order: by end, then
start) that has a hit of every other group starting within `window` of its start, and each
other group offers its hit starting nearest the anchor (of equally near ones, the first in
hit order); with window 0 every group offers its first hit. A nestable combo whose spans
all lie inside one kept keyword hit does not fire. Fired combos add up per category in the
order of their first hits after, then before exclusion, then file order.

Every search is one np.searchsorted over the combo entries of the whole batch, keyed by
slot x limit + position: a hit of another group slot, or of another text, is always
farther than any window, so it never passes for a near one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crawler.tagbatchplan import BatchPlan, ranges, run_heads, run_sizes
from crawler.tagbatchtags import NONE

if TYPE_CHECKING:
    from crawler.tagbatch import Entries, Excluder, Layout
    from crawler.tagbatchterms import Spans

_FAR = np.iinfo(np.int64).max // 4          # a distance beyond any window
_LENGTH_BITS = 64                           # (end, start) order as end x 64 + (63 - length)


@dataclass(frozen=True, slots=True)
class Fired:
    """Fired combos: per (text, category) cell their weights' sum, count and first span
    position; and their spans (one per group of each fired combo)."""

    total: np.ndarray               # (D * C,) float64
    count: np.ndarray               # (D * C,) int64
    first: np.ndarray               # (D * C,) int64, NONE where none fired
    cat: np.ndarray                 # spans ...
    start: np.ndarray
    end: np.ndarray
    route: np.ndarray
    doc: np.ndarray


@dataclass(frozen=True, slots=True)
class _Groups:
    """Combo entries (not excluded) sorted by (slot, position), and matrices per (group
    slot - first combo slot, text) of where their entries begin, how many there are and
    the first in hit order; an extra last row (the padding slot) counts as present."""

    slot: np.ndarray
    route: np.ndarray
    start: np.ndarray
    end: np.ndarray
    doc: np.ndarray
    fenced: np.ndarray              # slot x limit + start, ascending, between -_FAR, _FAR
    order_keys: np.ndarray          # end x 64 + (63 - length): hit order inside a group
    lo: np.ndarray                  # (slots + 1, D)
    count: np.ndarray               # (slots + 1, D)
    first: np.ndarray               # (slots + 1, D)


def fire_combos(plan: BatchPlan, block: Entries, excluder: Excluder | None,
                keywords: Spans, layout: Layout) -> Fired:
    """The combos that fire in each text of the batch (see the module docstring)."""
    size = layout.count * plan.category_count
    if not len(block.route):
        return _none_fired(size)
    slot0 = int(plan.combo_slots[:, 0].min())
    groups, first_before = _groups(plan, block, excluder, layout, slot0)
    local = plan.combo_slots - slot0                       # padding -> the extra row
    complete = (groups.count[local] > 0).all(axis=1)       # (N, D)
    first_after = groups.first[local].min(axis=1)
    first_before = first_before[local].min(axis=1)
    combo, doc, picks = _windowed(plan, groups, complete, layout, slot0)
    if not plan.combo_window.all():
        combo, doc, picks = _anywhere(plan, groups, complete, slot0, combo, doc, picks)
    if not len(combo):
        return _none_fired(size)
    fires = ~(plan.combo_nestable[combo] & _inside_keyword(plan, groups, keywords, combo,
                                                           picks, layout.limit))
    combo, doc, picks = combo[fires], doc[fires], picks[fires]
    return _fired(plan, groups, combo, doc, picks, first_after, first_before, size)


def _none_fired(size: int) -> Fired:
    empty = np.zeros(0, np.int64)
    return Fired(np.zeros(size), np.zeros(size, np.int64), np.full(size, NONE), empty, empty,
                 empty, empty, empty)


def _groups(plan: BatchPlan, block: Entries, excluder: Excluder | None, layout: Layout,
            slot0: int) -> tuple[_Groups, np.ndarray]:
    """The entries not excluded, in (slot, position) order, with their matrices; and the
    first-hit matrix before exclusion (tagcombo orders fired combos by both)."""
    slot, route, start, doc = block.slot.astype(np.int64), block.route, block.start, block.doc
    length = plan.route_length[route]
    end = start + length
    order_keys = end * _LENGTH_BITS + (_LENGTH_BITS - 1 - length)
    out = excluder.inside(plan.slot_cat[slot], doc, start, end) if excluder else ()
    excluded_first = None
    if len(out):
        excluded_first = np.full((plan.slot_count - slot0 + 1) * layout.count, NONE)
        np.minimum.at(excluded_first, (slot[out] - slot0) * layout.count + doc[out],
                      order_keys[out])
        kept = np.ones(len(slot), bool)
        kept[out] = False
        slot, route, start, end, doc, order_keys = (slot[kept], route[kept], start[kept],
                                                    end[kept], doc[kept], order_keys[kept])
    keys = slot * layout.limit + start
    if len(keys) > 1 and (keys[1:] < keys[:-1]).any():
        order = np.argsort(keys, kind="stable")     # ties: same start, shorter first
        slot, route, start, end, doc, order_keys, keys = (
            slot[order], route[order], start[order], end[order], doc[order],
            order_keys[order], keys[order])
    lo, count, first = _segments(plan, layout, slot0, slot, doc, order_keys)
    before = first
    if excluded_first is not None:
        before = np.minimum(first, excluded_first.reshape(first.shape))
    fenced = np.concatenate([[-_FAR], keys, [_FAR]])   # every search lands inside
    return _Groups(slot, route, start, end, doc, fenced, order_keys, lo, count, first), before


def _segments(plan: BatchPlan, layout: Layout, slot0: int, slot: np.ndarray, doc: np.ndarray,
              order_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, count, first) matrices of _Groups: one count of each (slot, text), one
    reduction for the first hit of each non-empty one (entries sorted by slot, text)."""
    docs = layout.count
    rows = plan.slot_count - slot0 + 1
    count = np.bincount((slot - slot0) * docs + doc, minlength=rows * docs)
    lo = count.cumsum() - count
    count[-docs:] = 1                               # the padding row stays "present"
    first = np.full(rows * docs, NONE)
    filled = count[:-docs].nonzero()[0]
    if len(filled):                 # empty segments between filled ones add nothing
        first[filled] = np.minimum.reduceat(order_keys, lo[filled])
    return lo.reshape(rows, docs), count.reshape(rows, docs), first.reshape(rows, docs)


def _distances(fenced: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Distance from each query to the nearest key (of _Groups.fenced)."""
    at = np.searchsorted(fenced, queries)
    return np.minimum(fenced[at] - queries, queries - fenced[at - 1])


def _windowed(plan: BatchPlan, groups: _Groups, complete: np.ndarray, layout: Layout,
              slot0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(combo, text, picked entry per group) of the windowed combos that find an anchor."""
    pair_combo, pair_doc = np.nonzero(complete & (plan.combo_window > 0)[:, None])
    first_slot = plan.combo_slots[pair_combo, 0] - slot0
    counts = groups.count[first_slot, pair_doc]
    anchors = ranges(groups.lo[first_slot, pair_doc], counts)
    pair = np.repeat(np.arange(len(pair_combo)), counts)
    combo = pair_combo[pair]
    # A window wider than the longest text is no narrower than that text.
    window = np.minimum(plan.combo_window[combo], layout.longest)
    valid = np.ones(len(anchors), bool)
    width = plan.combo_slots.shape[1]
    for group in range(1, width):
        has = plan.combo_slots[combo, group] < plan.slot_count
        some = slice(None) if has.all() else has.nonzero()[0]
        queries = plan.combo_slots[combo[some], group] * layout.limit
        queries += groups.start[anchors[some]]
        valid[some] &= _distances(groups.fenced, queries) <= window[some]
    anchors, pair = anchors[valid], pair[valid]
    chosen = _earliest(groups.order_keys[anchors], pair)
    anchors, pair = anchors[chosen], pair[chosen]
    combo = pair_combo[pair]
    picks = np.full((len(anchors), width), -1, np.int64)
    picks[:, 0] = anchors
    for group in range(1, width):
        has = (plan.combo_slots[combo, group] < plan.slot_count).nonzero()[0]
        picks[has, group] = _nearest(groups, anchors[has],
                                     plan.combo_slots[combo[has], group], layout.limit)
    return combo, pair_doc[pair], picks


def _earliest(order_keys: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Index of the entry with the least order key in each run of equal, ascending `run`
    (keys are unique inside a run: one slot's hits in one text)."""
    if not len(run):
        return np.zeros(0, np.int64)
    heads = run_heads(run)
    least = np.minimum.reduceat(order_keys, heads)
    return (order_keys == np.repeat(least, run_sizes(heads, len(run)))).nonzero()[0]


def _nearest(groups: _Groups, anchors: np.ndarray, slot: np.ndarray, limit: int
             ) -> np.ndarray:
    """For each anchor, the entry of its group `slot` starting nearest it; of equally near
    ones the first in hit order (the shorter of two starting together, the left of two
    equidistant unless the right one ends first). Every anchor has one within its window."""
    fenced, last = groups.fenced, len(groups.start) - 1
    queries = slot * limit + groups.start[anchors]
    right = np.searchsorted(fenced, queries)
    left = np.searchsorted(fenced, fenced[right - 1])     # the first starting there
    right_distance, left_distance = fenced[right] - queries, queries - fenced[left]
    # Fenced index i is entry i - 1; a fence is never nearest (the anchor has a partner).
    right, left = np.minimum(right - 1, last), np.maximum(left - 1, 0)
    take_left = (left_distance < right_distance) | (
        (left_distance == right_distance) & (groups.end[left] <= groups.end[right]))
    return np.where(take_left, left, right)


def _anywhere(plan: BatchPlan, groups: _Groups, complete: np.ndarray, slot0: int,
              combo: np.ndarray, doc: np.ndarray, picks: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add the window-0 combos complete in a text: each group's first hit in hit order."""
    open_combo, open_doc = np.nonzero(complete & (plan.combo_window == 0)[:, None])
    if not len(open_combo):
        return combo, doc, picks
    local = plan.combo_slots[open_combo] - slot0
    real = local < plan.slot_count - slot0          # not the padding row
    rows, docs = local[real], np.broadcast_to(open_doc[:, None], local.shape)[real]
    counts = groups.count[rows, docs]
    entries = ranges(groups.lo[rows, docs], counts)
    segment = np.repeat(np.arange(len(rows)), counts)
    is_first = groups.order_keys[entries] == groups.first[rows, docs][segment]
    extra = np.full(local.shape, -1, np.int64)
    extra[real] = entries[is_first]                 # one per segment: keys are unique
    return (np.concatenate([combo, open_combo]), np.concatenate([doc, open_doc]),
            np.concatenate([picks, extra]))


def _inside_keyword(plan: BatchPlan, groups: _Groups, keywords: Spans, combo: np.ndarray,
                    picks: np.ndarray, limit: int) -> np.ndarray:
    """Whether one kept keyword hit of the combo's category covers all its picked spans:
    the last one starting at or before them (kept keyword hits do not overlap)."""
    used = picks >= 0
    safe = np.where(used, picks, 0)
    low = np.where(used, groups.start[safe], NONE).min(axis=1)
    high = np.where(used, groups.end[safe], -1).max(axis=1)
    cat = plan.combo_cat[combo]
    if not len(keywords.cat):
        return np.zeros(len(combo), bool)
    at = np.searchsorted(keywords.cat * limit + keywords.start, cat * limit + low, "right") - 1
    safe_at = np.maximum(at, 0)
    return (at >= 0) & (keywords.cat[safe_at] == cat) & (keywords.end[safe_at] >= high)


def _fired(plan: BatchPlan, groups: _Groups, combo: np.ndarray, doc: np.ndarray,
           picks: np.ndarray, first_after: np.ndarray, first_before: np.ndarray,
           size: int) -> Fired:
    """Sum the fired combos per cell in tagcombo's order and list their spans."""
    cat = plan.combo_cat[combo]
    order = np.lexsort((combo, first_before[combo, doc], first_after[combo, doc], cat))
    combo, doc, cat, picks = combo[order], doc[order], cat[order], picks[order]
    cell = doc * plan.category_count + cat
    total = np.bincount(cell, plan.combo_weight[combo], size)
    count = np.bincount(cell, minlength=size)
    used = picks >= 0
    entries = picks[used]
    span_cell = np.repeat(cell, used.sum(axis=1))
    first = np.full(size, NONE)
    np.minimum.at(first, span_cell, groups.start[entries])
    return Fired(total, count, first, np.repeat(cat, used.sum(axis=1)), groups.start[entries],
                 groups.end[entries], groups.route[entries], groups.doc[entries])
