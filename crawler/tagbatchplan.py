"""The tables of crawler/tagbatch.py (a RoutePlan laid out as numpy arrays, once per
tagger) and the few array idioms its modules share.

The batch path works on arrays of routed hits, so everything a hit's route, slot or combo
means at scoring time is an array indexed by route, slot or combo number. Slots are
renumbered kind-major (every category's keyword slot, then negatives, then excludes, then
the combo groups in file order), so that after one sort by slot each kind of hit is one
contiguous block, and inside it the hits of a category (or a combo group) are contiguous.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ahocorasick_rs
import numpy as np

from crawler.tagplan import TERM_SLOTS, RoutePlan
from crawler.taxonomy import Category

# Characters tried, in order, as the separator of the texts of a batch in the one string the
# automaton scans: the first that no key contains keeps every match inside one text.
_SEPARATORS = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\ufffe\uffff"


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """Where each key's hits go and what they weigh, as arrays. Built once per tagger."""

    categories: tuple[Category, ...]
    thresholds: np.ndarray          # (C,) float64
    # The keys' automaton (tag.Tagger's keys, the same hits in the same order, see _finder)
    # and what joins the texts of a batch for it: a character no key contains.
    find: Callable[[str], Sequence[tuple[int, int, int]]]
    separator: str | None
    key_first_route: np.ndarray     # (K,) int64: a key's routes are first .. first + count
    key_route_count: np.ndarray     # (K,) int64
    route_slot: np.ndarray          # (R,) slot of each route, kind-major (uint16 if it fits)
    route_length: np.ndarray        # (R,) int64, len(term.key)
    route_weight: np.ndarray        # (R,) float64, term.weight
    route_decisive: np.ndarray      # (R,) bool: weight >= the slot's category threshold
    route_text: np.ndarray          # (R,) object: term.text, what evidence shows
    route_text_rank: np.ndarray     # (R,) int64: order of route_text among all texts
    text_count: int                 # distinct term texts (bound of route_text_rank)
    slot_cat: np.ndarray            # (S,) int64: category of each slot
    slot_combo: np.ndarray          # (S,) int64: combo of a combo slot, -1 for the others
    slot_is_anchor: np.ndarray      # (S,) bool: first group of a windowed combo
    combo_cat: np.ndarray           # (N,) int64
    combo_weight: np.ndarray        # (N,) float64
    combo_window: np.ndarray        # (N,) int64; 0 = anywhere
    combo_nestable: np.ndarray      # (N,) bool
    combo_slots: np.ndarray         # (N, G) int64, padded with slot_count (an empty slot)
    max_window: int

    @property
    def category_count(self) -> int:
        return len(self.categories)

    @property
    def slot_count(self) -> int:
        return len(self.slot_cat)


def plan_batch(plan: RoutePlan) -> BatchPlan:
    """Lay out `plan` for tagbatch; cheap (~ms), done on a tagger's first tag_many call."""
    count = len(plan.categories)
    thresholds = np.array([category.threshold for category in plan.categories], float)
    roles = [(_kind_major(slot, count), role) for routes in plan.routes for slot, role in routes]
    slots = np.array([slot for slot, _ in roles], np.int64)
    combo_slots = _combo_slots(plan, count)
    slot_cat = np.zeros(plan.slot_count, np.int64)
    slot_cat[:count * TERM_SLOTS] = np.tile(np.arange(count), TERM_SLOTS)
    slot_combo = np.full(plan.slot_count, -1, np.int64)
    slot_is_anchor = np.zeros(plan.slot_count, bool)
    for index, (combo, group_slots) in enumerate(zip(plan.combos, combo_slots, strict=True)):
        used = group_slots[group_slots < plan.slot_count]
        slot_cat[used] = combo.category
        slot_combo[used] = index
        slot_is_anchor[used[0]] = combo.window > 0
    texts = tuple(role.term.text for _, role in roles)
    ranks = {text: rank for rank, text in enumerate(sorted(set(texts)))}
    counts = np.array([len(routes) for routes in plan.routes], np.int64)
    keys = [routes[0][1].term.key for routes in plan.routes]     # key i is routes[i]'s
    return BatchPlan(
        categories=plan.categories, thresholds=thresholds, find=_finder(keys),
        separator=_separator(keys),
        key_first_route=np.cumsum(counts) - counts, key_route_count=counts,
        route_slot=slots.astype(np.uint16) if plan.slot_count < 2 ** 16 else slots,
        route_length=np.array([role.length for _, role in roles], np.int64),
        route_weight=np.array([role.term.weight for _, role in roles], float),
        route_decisive=np.array([role.term.weight >= thresholds[slot_cat[slot]]
                                 for slot, role in roles], bool),
        route_text=np.array(texts, dtype=object),
        route_text_rank=np.array([ranks[t] for t in texts], np.int64),
        text_count=len(ranks), slot_cat=slot_cat, slot_combo=slot_combo,
        slot_is_anchor=slot_is_anchor,
        combo_cat=np.array([c.category for c in plan.combos], np.int64),
        combo_weight=np.array([c.weight for c in plan.combos], float),
        combo_window=np.array([c.window for c in plan.combos], np.int64),
        combo_nestable=np.array([c.nestable for c in plan.combos], bool),
        combo_slots=combo_slots, max_window=max((c.window for c in plan.combos), default=0))


def _kind_major(slot: int, count: int) -> int:
    """A RoutePlan slot renumbered: category c's keyword, negative and exclude slots become
    c, count + c and 2 * count + c; combo group slots keep their numbers (after those)."""
    if slot >= count * TERM_SLOTS:
        return slot
    category, kind = divmod(slot, TERM_SLOTS)
    return kind * count + category


def _combo_slots(plan: RoutePlan, count: int) -> np.ndarray:
    """(combos, most groups) slot numbers of each combo's groups, padded with slot_count."""
    every_slot = list(range(plan.slot_count))
    groups = [combo.gather(every_slot) for combo in plan.combos]   # gather picks the slots
    width = max((len(g) for g in groups), default=2)
    table = np.full((len(groups), width), plan.slot_count, np.int64)
    for index, group_slots in enumerate(groups):
        table[index, :len(group_slots)] = group_slots
    assert (table[:, 0] >= count * TERM_SLOTS).all()             # combo slots come last
    return table


def _finder(keys: list[str]) -> Callable[[str], Sequence[tuple[int, int, int]]]:
    """An overlapping finder over the plan's keys, in key order (the tagger's automaton
    numbers keys the same way), as a contiguous NFA rather than the tagger's DFA.

    Same hits, same order (tests/test_tagbatch.py compares whole Tags), but scanning a
    batch's ~100,000 characters between the batch's array work, the NFA took 90 µs a
    dense notice against the DFA's 180: the DFA wins only in a tight loop where its larger
    tables stay in cache (benchmarks/bench_tag.py). It builds in ~3 ms.
    """
    automaton = ahocorasick_rs.AhoCorasick(
        keys, matchkind=ahocorasick_rs.MatchKind.Standard,
        implementation=ahocorasick_rs.Implementation.ContiguousNFA)
    return functools.partial(automaton.find_matches_as_indexes, overlapping=True)


def _separator(keys: list[str]) -> str | None:
    """A character no key contains; None if keys hold every candidate (then tag_many tags
    text by text)."""
    return next((char for char in _SEPARATORS if not any(char in key for key in keys)), None)



# -- array idioms ------------------------------------------------------------------------------
# Written out rather than np.diff(prepend=...) / np.flatnonzero: those wrappers cost ~10 µs a
# call in Python, and a batch makes ~100 such calls (a batch of one text pays them all).

def run_heads(values: np.ndarray) -> np.ndarray:
    """Indexes where each run of equal adjacent values begins."""
    opens = np.empty(len(values), bool)
    if len(values):
        opens[0] = True
        np.not_equal(values[1:], values[:-1], out=opens[1:])
    return opens.nonzero()[0]


def run_sizes(heads: np.ndarray, total: int) -> np.ndarray:
    """Lengths of the runs beginning at `heads` in an array of `total` items."""
    sizes = np.empty_like(heads)
    if len(heads):
        np.subtract(heads[1:], heads[:-1], out=sizes[:-1])
        sizes[-1] = total - heads[-1]
    return sizes


def ranges(lo: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenated aranges lo[i] .. lo[i] + count[i] - 1."""
    ends = count.cumsum()
    return np.repeat(lo - (ends - count), count) + np.arange(int(ends[-1]) if len(ends) else 0)
