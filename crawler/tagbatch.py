"""Tag many texts at once: Tagger.tag_many, the rules of crawler/tag.py applied with numpy.

    texts --normalise each (as tag())--> joined by a separator no key contains
          --one automaton pass--> hits --routes (tagbatchplan)--> entries sorted by slot
          --keywords (tagbatchterms): drop excluded, settle overlaps, score terms
          --combos (tagbatchcombo)--> fired combos and their spans
          --negatives (tagbatchterms), damping--> scores per (text, category)
          --> Tags per text (tagbatchtags)

tag() spends most of a dense notice on per-hit Python steps; here each step is a few array
operations over the hits of the whole batch, whatever the taxonomy's shapes (no case falls
back to the reference code; only batches too small to pay, or too big for int64 keys, go
text by text). The output is tag()'s to the bit (tests/test_tagbatch.py compares the Tags
and the unrounded scores): every float is computed with the same operations in the same
order as tagscore (sums of distinct terms in order of their first kept hit, fired combos
in order of their first hits, np.bincount adding in array order like sum()), and
logarithms come from math.log, not np.log. The automaton is the tagger's keys compiled
as a contiguous NFA (see tagbatchplan._finder): the same hits in the same order.

Positions: a hit's position is its offset in the joined text plus text index x `pad`, so
that hits of different texts are farther apart than any combo window; keys that also hold
a category or slot add category (slot) x `limit`, with `limit` above every position.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np

from crawler.records import Tags
from crawler.tagbatchcombo import Fired, fire_combos
from crawler.tagbatchplan import BatchPlan, run_heads
from crawler.tagbatchtags import NONE, Cells, build_tags
from crawler.tagbatchterms import Spans, kept_keywords, keyword_totals, negative_totals
from crawler.tagplan import TERM_SLOTS
from crawler.tagscore import length_damping
from crawler.taxonomy import Scoring
from crawler.textnorm import normalize_with_origin

if TYPE_CHECKING:
    from crawler.tag import Tagger

__all__ = ["score_batch", "tag_batch", "tag_many"]

Hit = tuple[int, int, int]
# A batch costs ~0.4 ms whatever its size (~150 numpy calls) and saves per hit, so where it
# pays depends on how dense the hits are: from ~16 short texts (tag_dev's, ~50 characters:
# 58-66 vs 61-64 µs a text with tag()); for 1,500-character notices from 2 dense ones (188
# hits per 1,000 characters: 0.81 vs 1.18 ms a notice) but only from ~6 light generated ones
# (96 hits: 0.34 vs 0.34 ms). Notices as police sites write them hold ~150 (blind4's long
# texts, the demo site's), and the crawl's pages of 4 pay (0.72 vs 1.23 ms): hence 6,000.
MIN_BATCH_TEXTS = 16
MIN_BATCH_CHARS = 6_000


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each text of a batch sits: in the joined string and in position space."""

    texts: list[str]                # normalised
    origins: list[Sequence[int]]    # normalised offset -> original offset, per text
    offsets: np.ndarray             # (D,) start of each text in the joined string
    base: np.ndarray                # (D,) position of each text's first character
    title_ends: np.ndarray          # (D,) position where each text's title ends
    damping: np.ndarray             # (D,) length damping of each text
    longest: int                    # length of the longest text
    pad: int                        # extra gap between texts: more than any combo window
    limit: int                      # above every position + length + window

    @property
    def count(self) -> int:
        return len(self.texts)


@dataclass(frozen=True, slots=True)
class Entries:
    """Routed hits, one per (hit, route), sorted by slot and in hit order inside a slot."""

    slot: np.ndarray
    route: np.ndarray
    start: np.ndarray               # positions (see the module docstring)
    doc: np.ndarray
    bounds: np.ndarray              # (S + 1,): slot s holds entries bounds[s] .. bounds[s+1]

    def block(self, first_slot: int, end_slot: int) -> Entries:
        """The entries of slots first_slot .. end_slot - 1 (views, no copies)."""
        lo, hi = int(self.bounds[first_slot]), int(self.bounds[end_slot])
        return Entries(self.slot[lo:hi], self.route[lo:hi], self.start[lo:hi],
                       self.doc[lo:hi], self.bounds)


def tag_many(tagger: Tagger, texts: Sequence[str], titles: Sequence[str] | None = None
             ) -> list[Tags]:
    """Tagger.tag_many: tag_batch for batches worth it (MIN_BATCH_TEXTS texts or
    MIN_BATCH_CHARS characters, and keys that fit, see _fits), else tag() text by text."""
    titles = _titles(texts, titles)
    plan = tagger._batch_plan()
    worth = len(texts) >= MIN_BATCH_TEXTS or sum(map(len, texts)) >= MIN_BATCH_CHARS
    if worth and _fits(plan, texts, titles):
        return _tag_all(plan, texts, titles, tagger.taxonomy.scoring)
    return [tagger.tag(text, title) for text, title in zip(texts, titles, strict=True)]


def tag_batch(tagger: Tagger, texts: Sequence[str], titles: Sequence[str] | None = None
              ) -> list[Tags]:
    """[tagger.tag(text, title) ...] computed batch-wide whatever the batch's size (text by
    text only if the keys would not fit, see _fits)."""
    titles = _titles(texts, titles)
    plan = tagger._batch_plan()
    if not _fits(plan, texts, titles):
        return [tagger.tag(text, title) for text, title in zip(texts, titles, strict=True)]
    return _tag_all(plan, texts, titles, tagger.taxonomy.scoring)


def _titles(texts: Sequence[str], titles: Sequence[str] | None) -> Sequence[str]:
    if titles is None:
        return [""] * len(texts)
    if len(titles) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(titles)} titles")
    return titles


def score_batch(tagger: Tagger, texts: Sequence[str], titles: Sequence[str] | None = None
                ) -> list[dict[str, float]]:
    """The unrounded scores behind each text's Tags.scores (category order), batch-wide:
    tests compare them with tagscore's bit for bit, which rounded scores cannot show."""
    titles = _titles(texts, titles)
    scored = _score_all(tagger._batch_plan(), texts, titles, tagger.taxonomy.scoring)
    if scored is None:
        return [{} for _ in texts]
    ids = [category.id for category in tagger.taxonomy.categories]
    cells = scored[1]
    return [{ids[cat]: float(cells.score[doc, cat]) for cat in row.nonzero()[0]}
            for doc, row in enumerate(cells.scored)]


def _tag_all(plan: BatchPlan, texts: Sequence[str], titles: Sequence[str],
             scoring: Scoring) -> list[Tags]:
    scored = _score_all(plan, texts, titles, scoring)
    if scored is None:
        return [Tags() for _ in texts]
    return build_tags(plan, *scored, scoring)


def _score_all(plan: BatchPlan, texts: Sequence[str], titles: Sequence[str],
               scoring: Scoring) -> tuple[Layout, Cells, Spans, Fired] | None:
    """The pipeline of the module docstring up to the Tags; None when nothing matched."""
    layout = _layout(plan, texts, titles, scoring)
    assert plan.separator is not None               # see _fits
    # The hits' ~20,000 tuples are dropped as soon as they are arrays: the evidence
    # records built later then reuse their memory.
    hits = _hit_arrays(plan.find(plan.separator.join(layout.texts)))
    if not len(hits):
        return None
    entries = _route(plan, layout, hits)
    count = plan.category_count
    excluder = _excluder(plan, entries.block(2 * count, 3 * count), layout)
    keywords = kept_keywords(plan, entries.block(0, count), excluder, layout)
    kw_total = keyword_totals(plan, keywords, layout, scoring)
    fired = fire_combos(plan, entries.block(TERM_SLOTS * count, plan.slot_count),
                        excluder, keywords, layout)
    negative = negative_totals(plan, entries.block(count, 2 * count), excluder, layout,
                               scoring)
    return layout, _cells(plan, layout, keywords, fired, kw_total, negative), keywords, fired


def _fits(plan: BatchPlan, texts: Sequence[str], titles: Sequence[str]) -> bool:
    """Whether the batch can be joined (some separator is in no key) and its widest keys,
    (category x limit + position) x 64 x term texts, fit in int64 (short of gigabytes)."""
    if plan.separator is None:
        return False
    # NFKC makes at most 18 characters of one; a title adds a newline.
    chars = 18 * (sum(map(len, texts)) + sum(map(len, titles)) + len(texts))
    limit = 2 * chars + len(texts) * (plan.max_window + 1) + 64
    widest = max(plan.slot_count + 1, plan.category_count * 64 * plan.text_count)
    return widest * limit < 2 ** 62


# -- texts and hits ----------------------------------------------------------------------------

def _layout(plan: BatchPlan, texts: Sequence[str], titles: Sequence[str],
            scoring: Scoring) -> Layout:
    """Normalise every text exactly as tag() does and place it in position space."""
    normalised, origins, title_ends, damping = [], [], [], []
    for text, title in zip(texts, titles, strict=True):
        combined = f"{title}\n{text}" if title else text
        norm, origin = normalize_with_origin(combined)
        title_end = bisect.bisect_left(origin, len(title)) if title else 0
        normalised.append(norm)
        origins.append(origin)
        title_ends.append(title_end)
        damping.append(length_damping(len(norm) - title_end, scoring))     # tag()'s own
    lengths = np.array([len(t) for t in normalised], np.int64)
    offsets = np.cumsum(lengths + 1) - (lengths + 1)
    longest = int(lengths.max(initial=0))
    pad = min(plan.max_window, longest) + 1
    base = offsets + np.arange(len(lengths), dtype=np.int64) * pad
    limit = int(base[-1] + lengths[-1]) + longest + 64 if len(lengths) else 64
    return Layout(normalised, origins, offsets, base, base + np.array(title_ends, np.int64),
                  np.array(damping, float), longest, pad, limit)


def _hit_arrays(found: Sequence[Hit]) -> np.ndarray:
    """(hits, 3) array of (key, start, end); np.fromiter over the chained tuples is ~2x
    faster than np.array(found)."""
    return np.fromiter(chain.from_iterable(found), np.int64, 3 * len(found)).reshape(-1, 3)


def _route(plan: BatchPlan, layout: Layout, hits: np.ndarray) -> Entries:
    """One entry per (hit, route of its key), sorted by slot (a radix sort: slots fit in 16
    bits), keeping hit order inside each slot."""
    keys, starts = hits[:, 0], hits[:, 1]
    doc = np.searchsorted(layout.offsets, starts, "right") - 1
    counts = plan.key_route_count[keys]
    total = int(counts.sum())
    hit = np.repeat(np.arange(len(keys)), counts)
    route = np.repeat(plan.key_first_route[keys] - (np.cumsum(counts) - counts), counts)
    route += np.arange(total)
    slot = plan.route_slot[route]
    order = np.argsort(slot, kind="stable")
    slot, route, hit = slot[order], route[order], hit[order]
    doc = doc[hit]
    start = starts[hit] + doc * layout.pad
    bounds = np.searchsorted(slot, np.arange(plan.slot_count + 1))
    return Entries(slot, route, start, doc, bounds)


# -- exclusions --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Excluder:
    """Exclude-context hits of the batch: keys category x limit + start, sorted, and the
    furthest end (same form) reached by any of them up to each; and which (text, category)
    cells have any."""

    keys: np.ndarray
    reach: np.ndarray
    cells: np.ndarray               # (D * C,) bool
    categories: int
    limit: int

    def inside(self, cat: np.ndarray, doc: np.ndarray, start: np.ndarray, end: np.ndarray
               ) -> np.ndarray:
        """Indexes of the spans lying inside an exclude hit of their category: one starting
        at or before them reaches at least their end. Hits of earlier categories reach
        less than category x limit, so they never count; spans of cells without exclude
        hits (nearly all) are not searched."""
        maybe = self.cells[doc * self.categories + cat].nonzero()[0]
        base = cat[maybe] * self.limit
        at = np.searchsorted(self.keys, base + start[maybe], "right") - 1
        return maybe[(at >= 0) & (self.reach[at] >= base + end[maybe])]


def _excluder(plan: BatchPlan, block: Entries, layout: Layout) -> Excluder | None:
    if not len(block.route):
        return None
    cat = plan.slot_cat[block.slot]
    base = cat * layout.limit
    keys = base + block.start
    order = np.argsort(keys, kind="stable")
    reach = np.maximum.accumulate((base + block.start + plan.route_length[block.route])[order])
    cells = np.zeros(layout.count * plan.category_count, bool)
    cells[block.doc * plan.category_count + cat] = True
    return Excluder(keys[order], reach, cells, plan.category_count, layout.limit)


# -- totals ------------------------------------------------------------------------------------

def _cells(plan: BatchPlan, layout: Layout, keywords: Spans, fired: Fired,
           kw_total: np.ndarray, negative: np.ndarray) -> Cells:
    """Score and first positions per (text, category); which cells scored (tagscore keeps
    a category when its total is positive and it has a kept keyword hit or fired combo)."""
    count = plan.category_count
    cell = keywords.doc * count + keywords.cat
    size = layout.count * count
    total = (kw_total + fired.total) - negative
    spans = np.bincount(cell, minlength=size) + fired.count
    # First kept keyword hit of each cell: spans are sorted by (category, position).
    first = np.full(size, NONE)
    heads = run_heads(cell)
    first[cell[heads]] = keywords.start[heads]
    np.minimum(first, fired.first, out=first)
    decisive = np.full(size, NONE)
    strong = plan.route_decisive[keywords.route].nonzero()[0]
    heads = strong[run_heads(cell[strong])]
    decisive[cell[heads]] = keywords.start[heads]
    scored = (total > 0) & (spans > 0)
    score = total.reshape(layout.count, count) / layout.damping[:, None]
    return Cells(scored.reshape(layout.count, count), score, first.reshape(layout.count, count),
                 decisive.reshape(layout.count, count))
