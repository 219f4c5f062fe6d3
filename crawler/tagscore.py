"""Scoring for crawler/tag.py: route automaton hits to categories, score each category.

The rules are those of the tag.py docstring; this module is about applying them cheaply.
A dense notice has ~135 hits of ~50 keys touching ~11 categories, and every category with a
hit must be scored exactly (Tags.scores reports those below threshold too), so the cost is
many small steps. What pays: work per key rather than per hit, tables laid out once per
taxonomy (tagplan.RoutePlan) rather than looked up per call, and skipping what cannot
matter (a combo missing a group, an overlap check for a key hit alone, a de-duplication of
spans that are already distinct).

Float sums keep the order and the form of the original hit-by-hit code (keys by first
hit, fired combos by first hit), so scores are bit-for-bit the same as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import compress, repeat
from operator import call

from crawler.tagcombo import combos_score
from crawler.tagplan import (
    EXCLUDE,
    KEYWORD,
    NEGATIVE,
    TERM_SLOTS,
    ComboPlan,
    Excluded,
    KeyHits,
    RoutePlan,
    Slots,
    Span,
)
from crawler.taxonomy import Category, Scoring

# A scored category: (category, score > 0, spans that earned it, whether those spans are
# sorted by start and distinct, as keyword spans are until fired combos add theirs).
Scored = tuple[Category, float, list[Span], bool]
Routed = tuple[Slots, list[tuple[int, list[ComboPlan]]]]


def route(plan: RoutePlan, hits: Sequence[tuple[int, int, int]]) -> Routed:
    """Slots filled with the hits, and the categories that can score, in file order: those
    with a keyword hit or a combo with a hit in every group (a combo alone can fire), each
    with those combos in file order. Any other category scores 0 and is left out of Tags."""
    starts_by_key: dict[int, list[int]] = {}
    for key_index, start, _ in hits:
        starts = starts_by_key.get(key_index)
        if starts is None:
            starts_by_key[key_index] = [start]
        else:
            starts.append(start)
    slots: Slots = [None] * plan.slot_count
    routes = plan.routes
    # Dicts keep insertion order: keys are routed in the order of their first hit.
    for key_index, starts in starts_by_key.items():
        for slot, role in routes[key_index]:
            key_hits = slots[slot]
            if key_hits is None:
                slots[slot] = [(role, starts)]
            else:
                key_hits.append((role, starts))
    count = len(plan.categories)
    with_keywords = compress(range(count), slots[KEYWORD:count * TERM_SLOTS:TERM_SLOTS])
    # A combo is complete when each of its group slots filled. Checking all ~40 in one pass
    # of C-level calls is cheaper than counting the groups in the loop above.
    complete = list(compress(plan.combos, map(all, map(call, plan.gathers, repeat(slots)))))
    if not complete:
        return slots, [(index, []) for index in with_keywords]
    candidates: dict[int, list[ComboPlan]] = {index: [] for index in with_keywords}
    for combo in complete:              # in file order, so each category's are too
        candidates.setdefault(combo.category, []).append(combo)
    return slots, sorted(candidates.items())


# -- labels ------------------------------------------------------------------------------------

# A category over its threshold, as the label rules see it: (its index, damped score, start
# of its first span, start of its first decisive hit or None). A decisive hit is one of a
# term weighing at least the category's threshold: a term that names the type.
Candidate = tuple[int, float, int, "int | None"]


def rank_labels(candidates: list[Candidate], scoring: Scoring) -> list[int]:
    """The indexes of the labels among `candidates` (given in category order), primary
    first, then by score. Both tag() and tag_many() decide by this rule.

    - Best score first; equal scores: the category whose evidence starts first.
    - A long notice on one scam brushes others with their common words (a 保证金 in a job
      scam, a 派出所 in a romance scam): a secondary label needs secondary_ratio of the best
      score, or a decisive hit (a type named, as a round-up list does).
    - Near-ties for primary (within primary_margin of the best) go to the type the text
      names first: its first decisive hit, else its first hit of any weight. A weak 兼职
      near the top must not make "三防虚假招聘" look like the type a round-up leads with.
    """
    if len(candidates) < 2:
        return [candidate[0] for candidate in candidates]
    passing = sorted(candidates, key=_by_score_then_start)
    least = scoring.secondary_ratio * passing[0][1]
    passing = [item for item in passing if item[1] >= least or item[3] is not None]
    if len(passing) > 1:
        # Sorted by score, the contenders are a prefix; min() keeps the first of equals.
        floor = scoring.primary_margin * passing[0][1]
        if passing[1][1] >= floor:
            contenders = sum(1 for item in passing if item[1] >= floor)
            primary = min(range(contenders), key=lambda i: _lead_position(passing[i]))
            if primary:
                passing.insert(0, passing.pop(primary))
    return [item[0] for item in passing]


def _by_score_then_start(item: Candidate) -> tuple[float, int]:
    return -item[1], item[2]


def _lead_position(item: Candidate) -> int:
    return item[3] if item[3] is not None else item[2]


# -- one category ------------------------------------------------------------------------------

def score_categories(plan: RoutePlan, routed: Routed, title_end: int, body_length: int,
                     scoring: Scoring) -> list[Scored]:
    """Score every category `route` found; see Scored. Categories that earned nothing (no
    kept span, or negatives outweighing the rest) are left out: Tags reports none of them."""
    slots, candidates = routed
    damping = length_damping(body_length, scoring)
    repeat_gain, title_bonus = scoring.repeat_gain, scoring.title_bonus
    categories = plan.categories
    scored: list[Scored] = []
    for index, combos in candidates:
        base = index * TERM_SLOTS
        excludes = slots[base + EXCLUDE]
        excluded = [(start, end) for start, end, _ in _spans(excludes)] if excludes else ()
        keywords = slots[base + KEYWORD]
        if keywords:
            spans, total = _keywords_score(keywords, excluded, title_end, repeat_gain,
                                           title_bonus)
        else:
            spans, total = [], 0
        fired = combos_score(combos, slots, spans, excluded) if combos else None
        if fired:
            total += fired[0]
            spans += fired[1]
        negatives = slots[base + NEGATIVE]
        if negatives:
            negative_spans = _not_excluded(_spans(negatives), excluded)
            total -= _terms_score(negative_spans, title_end, repeat_gain, 0.0)
        if total > 0 and spans:
            scored.append((categories[index], total / damping, spans, fired is None))
    return scored


def _keywords_score(keywords: list[KeyHits], excluded: Excluded, title_end: int,
                    repeat_gain: float, title_bonus: float) -> tuple[list[Span], float]:
    """Kept keyword spans (sorted by start) and their score. Without exclusions or overlaps
    (most texts) every key keeps all its hits, so the score comes from the keys directly."""
    if len(keywords) == 1 and not excluded:
        role, starts = keywords[0]
        if len(starts) == 1 or not role.self_overlapping:
            # One key whose hits cannot overlap: nothing to sort, check or de-duplicate.
            length, term = role.length, role.term
            return [(start, start + length, term) for start in starts], role.weight * (
                1 + repeat_gain * math.log(len(starts)) + title_bonus * (starts[0] < title_end))
    # Keys come in the order of their first hit (by end), so spans of disjoint hits, one a
    # key, come out sorted by start; anything else shows as a span starting before the
    # previous one ends, and then takes the sort and the overlap check.
    spans: list[Span] = []
    reach = -1
    settled = True                      # sorted by start and disjoint so far
    for role, starts in keywords:
        length, term = role.length, role.term
        for start in starts:
            if start < reach:
                settled = False
            reach = start + length
            spans.append((start, reach, term))
    if not settled:
        spans.sort()                    # (start, end): no two hits of a category are equal
        if not excluded:
            settled = not _overlapping(spans)
    if settled and not excluded:
        # Disjoint hits: first-hit order of keys is first-start order, as in _terms_score.
        log = math.log
        return spans, sum([role.weight * (1 + repeat_gain * log(len(starts))
                                          + title_bonus * (starts[0] < title_end))
                           for role, starts in keywords])
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
    spans = iter(ordered)
    run = [next(spans)]
    reach = run[0][1]
    for span in spans:
        if span[0] < reach:
            run.append(span)
            if span[1] > reach:
                reach = span[1]
            continue
        kept += _settled(run)
        run = [span]
        reach = span[1]
    kept += _settled(run)
    return kept


def _settled(run: list[Span]) -> list[Span]:
    """What a run of overlapping hits keeps (a lone hit keeps itself)."""
    if len(run) == 1:
        return run
    if len(run) == 2:
        return [_heavier(run[0], run[1])]
    return _heaviest_first(run)


def _heavier(a: Span, b: Span) -> Span:
    """Of two overlapping hits, the one _heaviest_first keeps."""
    a_term, b_term = a[2], b[2]
    if (-a_term.weight, a[0] - a[1], a[0]) < (-b_term.weight, b[0] - b[1], b[0]):
        return a
    return b


def _heaviest_first(run: list[Span]) -> list[Span]:
    """Greedy by (-weight, -length, start), unique (equal ones would be one hit): keep each
    hit that overlaps none kept before it. Sorted by start."""
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


def length_damping(body_length: int, scoring: Scoring) -> float:
    """>= 1: long round-ups collect weak hits by sheer length, so their scores shrink."""
    if body_length <= scoring.length_reference:
        return 1.0
    return 1 + scoring.length_damping * math.log(body_length / scoring.length_reference)
