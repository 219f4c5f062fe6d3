"""Co-occurrence rules (combos) for crawler/tagscore.py: which fire, and on which hits.

A combo fires when every group has a hit within `window` characters of a hit of the first
group (anywhere for window 0), unless its hits all lie inside one keyword hit (冒充 + 公检法
inside 冒充公检法 are one phrase, counted once by the keyword). A dense notice tries ~7
combos, most with a hit or two a group, so the common shapes get the short paths.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from itertools import chain
from operator import itemgetter

from crawler.tagplan import ComboPlan, Excluded, KeyHits, Slots, Span
from crawler.taxonomy import Term

_START = itemgetter(0)
_STARTS = itemgetter(1)                 # of a KeyHits
# A fired combo: (combo, its group lists after and before exclusion, the spans it fired on).
Fired = tuple[ComboPlan, tuple[list[list[KeyHits]], ...], list[Span]]


def combos_score(combos: list[ComboPlan], slots: Slots, keyword_spans: list[Span],
                 excluded: Excluded) -> tuple[float, list[Span]] | None:
    """Total weight of the combos that fire and the spans that made them fire; None if none.

    Fired combos add up in the order of their first hits (hit order: by end, then start);
    ties (one key opening two combos) go by the first hit before exclusion, then by file
    order, which is the order hit-by-hit routing used to add them up in."""
    fired: list[Fired] = []
    for combo in combos:
        groups = combo.gather(slots)    # every group has hits (see route)
        if excluded:
            kept = [_not_excluded_starts(group, excluded) for group in groups]
            if not all(kept):
                continue
            ordering = (kept, groups)
        else:
            kept = groups
            ordering = (groups,)
        chosen = _combo_spans(combo.window, kept)
        if chosen and not (combo.nestable and _inside_one_keyword(chosen, keyword_spans)):
            fired.append((combo, ordering, chosen))
    if not fired:
        return None
    if len(fired) == 1:                 # 0.0 + weight is weight: nothing to order or add
        return fired[0][0].weight, fired[0][2]
    fired.sort(key=_first_combo_hits)
    total, spans = 0.0, []
    for combo, _, chosen in fired:
        total += combo.weight
        spans += chosen
    return total, spans


def _first_combo_hits(fired: Fired) -> tuple[tuple[int, int], ...]:
    """(end, start) of the first hit of each of a fired combo's group lists (after, then
    before exclusion): the order fired combos add up in."""
    return tuple([min([(starts[0] + role.length, starts[0]) for group in groups
                       for role, starts in group]) for groups in fired[1]])


def _not_excluded_starts(group: list[KeyHits], excluded: Excluded) -> list[KeyHits]:
    kept = []
    for role, starts in group:
        inside = [s for s in starts
                  if not any(a <= s and s + role.length <= b for a, b in excluded)]
        if inside:
            kept.append((role, inside))
    return kept


def _inside_one_keyword(fired: list[Span], keyword_spans: list[Span]) -> bool:
    """True when one keyword hit covers every span of a combo. Kept keyword spans do not
    overlap, so the last one starting at or before the combo reaches furthest."""
    if not keyword_spans:
        return False
    start, end = fired[0][0], fired[0][1]
    for span in fired:
        if span[0] < start:
            start = span[0]
        if span[1] > end:
            end = span[1]
    at = bisect.bisect_right(keyword_spans, start, key=_START)
    return at > 0 and end <= keyword_spans[at - 1][1]


def _combo_spans(window: int, groups: list[list[KeyHits]] | tuple[list[KeyHits], ...]
                 ) -> list[Span]:
    """One span per group, all within `window` of the first group's span; [] if impossible.

    Anchors are the first group's hits in hit order; every other group offers its hit
    starting nearest the anchor, of equally near ones the first in hit order."""
    if window == 0:
        return [_first_hit(group) for group in groups]
    others = groups[1:]
    if len(groups) == 2:                # most combos: one partner group, no lists of lists
        partners = _starts(groups[1])
        anchor = _earliest_anchor(groups[0],
                                  lambda positions: _first_near(positions, partners, window))
    else:
        # Most anchors fail, so each is tested against every other group's starts merged,
        # one bisection a group; the tie-broken nearest hits are picked for the winner alone.
        merged = [_starts(group) for group in others]
        anchor = _earliest_anchor(groups[0],
                                  lambda positions: _first_in_window(positions, merged, window))
    if anchor is None:
        return []
    end, position, term = anchor
    return [(position, end, term), *[_nearest(group, position) for group in others]]


def _earliest_anchor(anchors: list[KeyHits], first_in_window: Callable[[list[int]], int]
                     ) -> tuple[int, int, str] | None:
    """(end, start, term) of the first group's earliest hit that opens a window. A key's hits
    come in start order, so its first anchor in window is its first in hit order; the group's
    first is the earliest (end, start) of those."""
    anchor = None
    for role, positions in anchors:
        at = first_in_window(positions)
        if at >= 0:
            position = positions[at]
            candidate = (position + role.length, position, role.term)
            if anchor is None or candidate < anchor:
                anchor = candidate
    return anchor


def _starts(group: list[KeyHits]) -> list[int]:
    """Every start of a group's hits, sorted (a single key's already are)."""
    if len(group) == 1:
        return group[0][1]
    return sorted(chain.from_iterable(map(_STARTS, group)))     # C-level all the way


def _first_near(positions: list[int], partners: list[int], window: int) -> int:
    """Index of the first of `positions` with one of the sorted `partners` within `window`;
    -1 if none. Loops over the shorter list: a frequent word opening the combo has many
    positions and few partners, each of which is one bisection away from its first anchor."""
    bisect_left = bisect.bisect_left
    if len(partners) < len(positions):
        first = len(positions)
        for start in partners:
            at = bisect_left(positions, start - window, 0, first)
            if at < first and positions[at] <= start + window:
                first = at
        return first if first < len(positions) else -1
    last = len(partners)
    for index, position in enumerate(positions):
        at = bisect_left(partners, position)
        if (at < last and partners[at] - position <= window) or (
                at and position - partners[at - 1] <= window):
            return index
    return -1


def _first_in_window(positions: list[int], merged: list[list[int]], window: int) -> int:
    """Index of the first of `positions` with a start of every list of `merged` within
    `window`; -1 if none. A list with no start near a position has none near any position
    before its next start minus `window` either, so the search jumps there."""
    bisect_left = bisect.bisect_left
    index, count = 0, len(positions)
    while index < count:
        position = positions[index]
        for starts in merged:
            at = bisect_left(starts, position)
            if (at < len(starts) and starts[at] - position <= window) or (
                    at and position - starts[at - 1] <= window):
                continue
            if at == len(starts):       # every start is behind and too far: no later luck
                return -1
            index = bisect_left(positions, starts[at] - window, index + 1)
            break
        else:
            return index
    return -1


def _first_hit(group: list[KeyHits]) -> Span:
    """The group's first hit in hit order (no two keys share an end and a start)."""
    if len(group) == 1:
        role, starts = group[0]
        return starts[0], starts[0] + role.length, role.term
    end, start, term = min((starts[0] + role.length, starts[0], role.term)
                           for role, starts in group)
    return start, end, term


def _nearest(group: list[KeyHits], position: int) -> Span:
    """The group's hit starting nearest `position`; of equally near ones the first in hit
    order (by end, then start)."""
    if len(group) == 1:                 # of two equally near hits the left one ends first
        role, starts = group[0]
        at = bisect.bisect_left(starts, position)
        if at == len(starts) or (at > 0 and position - starts[at - 1] <= starts[at] - position):
            at -= 1
        return starts[at], starts[at] + role.length, role.term
    best: tuple[int, int, int, Term] | None = None
    for role, starts in group:
        at = bisect.bisect_left(starts, position)
        if at < len(starts):
            start = starts[at]
            candidate = (start - position, start + role.length, start, role.term)
            if best is None or candidate < best:
                best = candidate
        if at > 0:
            start = starts[at - 1]
            candidate = (position - start, start + role.length, start, role.term)
            if best is None or candidate < best:
                best = candidate
    assert best is not None             # groups are never empty here
    _, end, start, term = best
    return start, end, term
