"""The routing plan of crawler/tag.py: a taxonomy laid out once for cheap per-call scoring.

Hits are routed into one flat list of slots: three per category (keywords, negatives,
excludes) and one per combo group, so a combo's groups arrive already sorted out and a
combo is looked at only when every group has a hit. Every slot holds KeyHits in the order
of their key's first hit.

Everything a hit needs at scoring time (weight, length, term) sits on its Role, and every
fact that does not depend on the text (can two hits of a key overlap? can a combo lie inside
one keyword?) is settled here, so tag() pays for neither lookups nor re-derivations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

from crawler.taxonomy import Category, Combo, Taxonomy, Term

KEYWORD, NEGATIVE, EXCLUDE = range(3)   # slot offsets inside a category's block
TERM_SLOTS = 3


@dataclass(frozen=True, slots=True)
class Role:
    """What a matched key means in one slot: a keyword, negative, exclude or combo term."""

    term: Term
    length: int                         # len(term.key): a hit's end is its start + length
    weight: float                       # term.weight, one attribute hop closer
    self_overlapping: bool              # two hits of the key can overlap (ABA in ABABA)


# Every hit of one key for one role: (role, starts in text order). A span: (start, end,
# term) in normalised coordinates. Tuples rather than records: a notice has hundreds.
KeyHits = tuple[Role, list[int]]
Span = tuple[int, int, Term]
Slots = list[list[KeyHits] | None]
Excluded = Sequence[tuple[int, int]]   # (start, end) of the exclude contexts found


@dataclass(frozen=True, slots=True)
class ComboPlan:
    """A combo, with the slots its groups are routed to."""

    category: int                       # index of the category it belongs to
    weight: float
    window: int
    # slots -> its groups, one slot each (a combo has two groups at least, so the getter
    # always returns a tuple)
    gather: Callable[[Slots], tuple[list[KeyHits], ...]]
    # Whether some keyword of the category holds a term of every group: only then can the
    # combo's hits all lie inside one keyword hit (and be voided, see tagcombo).
    nestable: bool


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """Where each key's hits go. Built once per taxonomy; immutable."""

    categories: tuple[Category, ...]    # category i owns slots 3i .. 3i + 2
    combos: tuple[ComboPlan, ...]       # of every category, in file order
    routes: tuple[tuple[tuple[int, Role], ...], ...]    # key -> (slot, role) of each use
    slot_count: int
    gathers: tuple[Callable[[Slots], tuple[list[KeyHits] | None, ...]], ...]  # of `combos`


def plan_routes(taxonomy: Taxonomy) -> tuple[tuple[str, ...], RoutePlan]:
    """The distinct normalised keys of `taxonomy` (for the automaton) and their routes."""
    routes: dict[str, list[tuple[int, Role]]] = {}
    combos: list[ComboPlan] = []
    next_slot = len(taxonomy.categories) * TERM_SLOTS
    for index, category in enumerate(taxonomy.categories):
        base = index * TERM_SLOTS
        for offset, terms in ((KEYWORD, category.keywords), (NEGATIVE, category.negatives),
                              (EXCLUDE, category.excludes)):
            for term in terms:
                routes.setdefault(term.key, []).append((base + offset, _role(term)))
        for combo in category.combos:
            group_slots = tuple(range(next_slot, next_slot + len(combo.groups)))
            next_slot += len(combo.groups)
            for slot, group in zip(group_slots, combo.groups, strict=True):
                for term in group:
                    routes.setdefault(term.key, []).append((slot, _role(term)))
            combos.append(ComboPlan(index, combo.weight, combo.window,
                                    itemgetter(*group_slots), _nestable(combo, category)))
    keys = tuple(routes)
    return keys, RoutePlan(taxonomy.categories, tuple(combos),
                           tuple(tuple(routes[k]) for k in keys), next_slot,
                           tuple(combo.gather for combo in combos))


def _nestable(combo: Combo, category: Category) -> bool:
    # A combo's hits inside one keyword hit are substrings of that keyword's key.
    return any(all(any(term.key in keyword.key for term in group) for group in combo.groups)
               for keyword in category.keywords)


def _role(term: Term) -> Role:
    key = term.key
    # Two hits of a key overlap only when a proper prefix of it is also its suffix.
    bordered = any(key[:size] == key[-size:] for size in range(1, len(key)))
    return Role(term, len(key), term.weight, bordered)
