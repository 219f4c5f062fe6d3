"""Scoring for crawler/tag.py: route automaton hits to categories, score each category.

The rules are those of the tag.py docstring; this module is about applying them cheaply.
A dense notice has ~135 hits of ~50 keys touching ~13 categories, and every category with a
hit must be scored exactly (Tags.scores reports those below threshold too), so the cost is
many small steps. What pays: work per key rather than per hit, tables laid out once per
taxonomy (RoutePlan) rather than looked up per call, and skipping what cannot matter (a
combo missing a group, a de-duplication of spans that are already distinct).

Hits are routed into one flat list of slots: three per category (keywords, negatives,
excludes) and one per combo group, so a combo's groups arrive already sorted out and a
combo is looked at only when every group has a hit. Every slot holds KeyHits in the order
of their key's first hit.

Float sums keep the order and the form of the original hit-by-hit code (keys by first
hit, fired combos by first hit), so scores are bit-for-bit the same as before.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

from crawler.taxonomy import Category, Scoring, Taxonomy, Term

_KEYWORD, _NEGATIVE, _EXCLUDE = range(3)    # slot offsets inside a category's block
_TERM_SLOTS = 3


@dataclass(frozen=True, slots=True)
class Role:
    """What a matched key means in one slot: a keyword, negative, exclude or combo term."""

    term: Term
    length: int                         # len(term.key): a hit's end is its start + length


# Every hit of one key for one role: (role, starts in text order). A span: (start, end,
# term) in normalised coordinates. Tuples rather than records: a notice has hundreds.
KeyHits = tuple[Role, list[int]]
Span = tuple[int, int, Term]
Slots = list[list[KeyHits] | None]
# A scored category: (category, score, spans that earned it, whether those spans are sorted
# by start and distinct, as keyword spans are until fired combos add theirs); a category
# that earned nothing has (category, 0.0, [], True).
Scored = tuple[Category, float, list[Span], bool]
Excluded = Sequence[tuple[int, int]]   # (start, end) of the exclude contexts found

_START = itemgetter(0)


@dataclass(frozen=True, slots=True)
class ComboPlan:
    """A combo with the slots its groups are routed to."""

    category: int                       # index of the category it belongs to
    weight: float
    window: int
    slots: tuple[int, ...]              # one per group
    gather: Callable[[Slots], tuple[list[KeyHits], ...]]   # slots -> its groups


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """Where each key's hits go. Built once per taxonomy; immutable."""

    categories: tuple[Category, ...]    # category i owns slots 3i .. 3i + 2
    combos: tuple[ComboPlan, ...]       # of every category, in file order
    # key -> (slot, role, combo): combo indexes `combos` for a combo group's slot, else -1
    routes: tuple[tuple[tuple[int, Role, int], ...], ...]
    slot_count: int


def plan_routes(taxonomy: Taxonomy) -> tuple[tuple[str, ...], RoutePlan]:
    """The distinct normalised keys of `taxonomy` (for the automaton) and their routes."""
    routes: dict[str, list[tuple[int, Role, int]]] = {}
    combos: list[ComboPlan] = []
    next_slot = len(taxonomy.categories) * _TERM_SLOTS
    for index, category in enumerate(taxonomy.categories):
        base = index * _TERM_SLOTS
        for offset, terms in ((_KEYWORD, category.keywords), (_NEGATIVE, category.negatives),
                              (_EXCLUDE, category.excludes)):
            for term in terms:
                routes.setdefault(term.key, []).append(
                    (base + offset, Role(term, len(term.key)), -1))
        for combo in category.combos:
            group_slots = tuple(range(next_slot, next_slot + len(combo.groups)))
            next_slot += len(combo.groups)
            for slot, group in zip(group_slots, combo.groups, strict=True):
                for term in group:
                    routes.setdefault(term.key, []).append(
                        (slot, Role(term, len(term.key)), len(combos)))
            combos.append(ComboPlan(index, combo.weight, combo.window, group_slots,
                                    itemgetter(*group_slots)))
    keys = tuple(routes)
    return keys, RoutePlan(taxonomy.categories, tuple(combos),
                           tuple(tuple(routes[k]) for k in keys), next_slot)


def route(plan: RoutePlan, hits: Sequence[tuple[int, int, int]]
          ) -> tuple[Slots, list[tuple[int, list[ComboPlan]]]]:
    """Slots filled with the hits, and the categories that can score, in file order: those
    with a keyword hit or a combo with a hit in every group (a combo alone can fire), each
    with those combos in file order. Any other category scores 0 and is left out of Tags."""
    slots: Slots = [None] * plan.slot_count
    filled: list[int] = []              # the combo of each slot as it fills (or -1)
    routes = plan.routes
    starts_by_key: dict[int, list[int]] = {}
    for key_index, start, _ in hits:
        starts = starts_by_key.get(key_index)
        if starts is not None:
            starts.append(start)
            continue
        # A key's first hit routes its list of starts, which its later hits then extend:
        # keys are routed in the order of their first hit.
        starts = starts_by_key[key_index] = [start]
        for slot, role, combo in routes[key_index]:
            key_hits = slots[slot]
            if key_hits is None:
                slots[slot] = [(role, starts)]
                filled.append(combo)
            else:
                key_hits.append((role, starts))
    keyword_slots = slots[_KEYWORD:len(plan.categories) * _TERM_SLOTS:_TERM_SLOTS]
    scoring: dict[int, list[ComboPlan]] = {
        index: [] for index, key_hits in enumerate(keyword_slots) if key_hits}
    combos = plan.combos
    # A combo fills one slot per group: it is complete when all of them filled.
    for index, groups_filled in sorted(Counter(filled).items()):
        if index >= 0 and groups_filled == len(combos[index].slots):
            scoring.setdefault(combos[index].category, []).append(combos[index])
    return slots, sorted(scoring.items())


# -- one category ------------------------------------------------------------------------------

def score_categories(plan: RoutePlan, routed: tuple[Slots, list[tuple[int, list[ComboPlan]]]],
                     title_end: int, body_length: int, scoring: Scoring) -> list[Scored]:
    """Score every category `route` found; see Scored."""
    slots, candidates = routed
    damping = _length_damping(body_length, scoring)
    repeat_gain, title_bonus = scoring.repeat_gain, scoring.title_bonus
    categories = plan.categories
    scored = []
    for index, combos in candidates:
        base = index * _TERM_SLOTS
        excludes = slots[base + _EXCLUDE]
        excluded = [(start, end) for start, end, _ in _spans(excludes)] if excludes else ()
        keywords = slots[base + _KEYWORD]
        if keywords:
            spans, total = _keywords_score(keywords, excluded, title_end, repeat_gain,
                                           title_bonus)
        else:
            spans, total = [], 0
        fired = _combos_score(combos, slots, spans, excluded) if combos else None
        if fired:
            total += fired[0]
            spans += fired[1]
        negatives = slots[base + _NEGATIVE]
        if negatives:
            negative_spans = _not_excluded(_spans(negatives), excluded)
            total -= _terms_score(negative_spans, title_end, repeat_gain, 0.0)
        if total <= 0 or not spans:
            scored.append((categories[index], 0.0, [], True))
        else:
            scored.append((categories[index], total / damping, spans, fired is None))
    return scored


def _keywords_score(keywords: list[KeyHits], excluded: Excluded, title_end: int,
                    repeat_gain: float, title_bonus: float) -> tuple[list[Span], float]:
    """Kept keyword spans (sorted by start) and their score. Without exclusions or overlaps
    (most texts) every key keeps all its hits, so the score comes from the keys directly."""
    spans = [(start, start + role.length, role.term)
             for role, starts in keywords for start in starts]
    spans.sort()                        # (start, end): no two hits of a category are equal
    if excluded or _overlapping(spans):
        every_key_once = len(spans) == len(keywords)
        spans = _not_excluded(spans, excluded)
        if not spans:
            return spans, 0
        spans = _outermost(spans)
        if not every_key_once:
            return spans, _terms_score(spans, title_end, repeat_gain, title_bonus)
        # One hit a key: _terms_score's entries would be the kept spans themselves.
        once = 1 + repeat_gain * math.log(1)
        return spans, sum([term.weight * (once + title_bonus * (start < title_end))
                           for start, _, term in spans])
    # Disjoint hits: first-hit order of keys is first-start order, as in _terms_score.
    log = math.log
    return spans, sum([role.term.weight * (1 + repeat_gain * log(len(starts))
                                           + title_bonus * (starts[0] < title_end))
                       for role, starts in keywords])


def _spans(key_hits: list[KeyHits]) -> list[Span]:
    """One span per hit, key by key (keys in the order of their first hit)."""
    return [(start, start + role.length, role.term)
            for role, starts in key_hits for start in starts]


def _overlapping(ordered: list[Span]) -> bool:
    reach = -1
    for start, end, _ in ordered:
        if start < reach:
            return True
        reach = end
    return False


def _not_excluded(spans: list[Span], excluded: Excluded) -> list[Span]:
    """Spans not lying inside an occurrence of one of the category's exclude contexts."""
    if not excluded:
        return spans
    return [h for h in spans if not any(s <= h[0] and h[1] <= e for s, e in excluded)]


def _outermost(ordered: list[Span]) -> list[Span]:
    """Non-overlapping hits, heaviest (then longest) first: 兼职刷单 swallows its 刷单, and
    网络婚恋交友 counts once, not as 网络婚恋 + 婚恋交友 (one phrase is one piece of evidence).

    `ordered` is sorted by start, and so is the result. Hits only compete with the hits
    they overlap, so each run of chained overlaps is settled on its own (usually a pair:
    the heavier or longer wins) and every other hit is kept as it is."""
    kept: list[Span] = []
    run = [ordered[0]]
    reach = ordered[0][1]
    for span in ordered[1:]:
        if span[0] < reach:
            run.append(span)
            if span[1] > reach:
                reach = span[1]
        else:
            kept += run if len(run) == 1 else _heaviest_first(run)
            run = [span]
            reach = span[1]
    kept += run if len(run) == 1 else _heaviest_first(run)
    return kept


def _heaviest_first(run: list[Span]) -> list[Span]:
    """Greedy by (-weight, -length, start), unique (equal ones would be one hit): keep each
    hit that overlaps none kept before it. Sorted by start."""
    if len(run) == 2:
        (a_start, a_end, a), (b_start, b_end, b) = run
        a_wins = (-a.weight, a_start - a_end, a_start) < (-b.weight, b_start - b_end, b_start)
        return [run[0] if a_wins else run[1]]
    ranked = sorted([(-term.weight, start - end, start, end, term) for start, end, term in run])
    kept: list[Span] = []
    taken: set[int] = set()             # positions of kept hits: terms are a few chars long
    for _, _, start, end, term in ranked:
        covered = range(start, end)
        if taken.isdisjoint(covered):
            taken.update(covered)
            kept.append((start, end, term))
    kept.sort()                         # kept hits do not overlap: starts are unique
    return kept


def _terms_score(spans: list[Span], title_end: int, repeat_gain: float,
                 title_bonus: float) -> float:
    """Sum of weight * saturating count per distinct term, plus the title bonus."""
    terms: dict[str, list] = {}         # key -> [weight, hits, in title]; keyed by str: cheap
    for start, _, term in spans:
        entry = terms.get(term.key)
        if entry is None:
            terms[term.key] = [term.weight, 1, start < title_end]
        else:
            entry[1] += 1
            if start < title_end:
                entry[2] = True
    return sum([weight * (1 + repeat_gain * math.log(n) + title_bonus * in_title)
                for weight, n, in_title in terms.values()])


def _length_damping(body_length: int, scoring: Scoring) -> float:
    """>= 1: long round-ups collect weak hits by sheer length, so their scores shrink."""
    if body_length <= scoring.length_reference:
        return 1.0
    return 1 + scoring.length_damping * math.log(body_length / scoring.length_reference)


# -- combos ------------------------------------------------------------------------------------

def _combos_score(combos: list[ComboPlan], slots: Slots, keyword_spans: list[Span],
                  excluded: Excluded) -> tuple[float, list[Span]] | None:
    """Total weight of the combos that fire and the spans that made them fire; None if none.

    Fired combos add up in the order of their first hits (hit order: by end, then start);
    ties (one key opening two combos) go by the first hit before exclusion, then by file
    order, which is the order hit-by-hit routing used to add them up in."""
    fired: list[tuple[ComboPlan, tuple[list[list[KeyHits]], ...], list[Span]]] = []
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
        if chosen and not _inside_one_keyword(chosen, keyword_spans):
            fired.append((combo, ordering, chosen))
    if not fired:
        return None
    if len(fired) > 1:
        fired.sort(key=_first_combo_hits)
    total, spans = 0.0, []
    for combo, _, chosen in fired:
        total += combo.weight
        spans += chosen
    return total, spans


def _first_combo_hits(fired: tuple[ComboPlan, tuple[list[list[KeyHits]], ...], list[Span]]
                      ) -> tuple[tuple[int, int], ...]:
    """(end, start) of the first hit of each of a fired combo's group lists (after, then
    before exclusion): the order fired combos add up in."""
    return tuple(min((starts[0] + role.length, starts[0]) for group in groups
                     for role, starts in group) for groups in fired[1])


def _not_excluded_starts(group: list[KeyHits], excluded: Excluded) -> list[KeyHits]:
    kept = []
    for role, starts in group:
        inside = [s for s in starts
                  if not any(a <= s and s + role.length <= b for a, b in excluded)]
        if inside:
            kept.append((role, inside))
    return kept


def _inside_one_keyword(fired: list[Span], keyword_spans: list[Span]) -> bool:
    """True when one keyword hit already covers every span of a combo: 冒充 + 公检法 inside
    the keyword 冒充公检法 are one phrase, counted once by the keyword. Kept keyword spans do
    not overlap, so the last one starting at or before the combo reaches furthest."""
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


def _combo_spans(window: int, groups: list[list[KeyHits]]) -> list[Span]:
    """One span per group, all within `window` of the first group's span; [] if impossible.

    Anchors are the first group's hits in hit order; every other group offers its hit
    starting nearest the anchor, of equally near ones the first in hit order."""
    if window == 0:
        return [_first_hit(group) for group in groups]
    others = groups[1:]
    # Most anchors fail, so each is tested against every other group's starts merged, one
    # bisection a group; the tie-broken nearest hits are picked for the winner alone.
    merged = [group[0][1] if len(group) == 1 else sorted([s for _, ss in group for s in ss])
              for group in others]
    # A key's hits come in start order, so its first anchor in window is its first in hit
    # order; the group's first is the earliest (end, start) of those.
    anchor = None
    for role, positions in groups[0]:
        at = _first_in_window(positions, merged, window)
        if at >= 0:
            position = positions[at]
            candidate = (position + role.length, position, role.term)
            if anchor is None or candidate < anchor:
                anchor = candidate
    if anchor is None:
        return []
    end, position, term = anchor
    return [(position, end, term), *(_nearest(group, position) for group in others)]


def _first_in_window(positions: list[int], merged: list[list[int]], window: int) -> int:
    """Index of the first of `positions` with a start of every list of `merged` within
    `window`; -1 if none."""
    bisect_left = bisect.bisect_left
    for index, position in enumerate(positions):
        for starts in merged:
            at = bisect_left(starts, position)
            if not ((at < len(starts) and starts[at] - position <= window)
                    or (at > 0 and position - starts[at - 1] <= window)):
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
