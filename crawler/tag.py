"""Tag text with scam categories by weighted keyword rules, explaining every decision.

    text --normalize_with_origin--> normalised text (+ map back to the original)
         --one Aho-Corasick pass--> hits of every term of every category
         --per category (tagscore)--> drop excluded and overlapped hits, score
         --> compare to thresholds --> Tags(categories, primary, scores, evidence with
             ORIGINAL offsets, built for the tagged categories only)

Score of a category = (sum over distinct keywords of weight * (1 + repeat_gain * ln(hits))
+ title_bonus * weight for keywords also in the title + weights of the combos that fire
- negative terms) / length damping. A category is tagged when its score reaches its
threshold and, unless the text hits one of its type-naming terms, secondary_ratio of the
best score. Primary is the best-scoring one, except that among categories within
primary_margin of the best, the one the text names first wins (round-ups list their main
type first). All knobs live in categories.toml (see its header).

The matcher is built once per taxonomy by build_matcher(); a Tagger is immutable, safe to
share between threads, and pickles by rebuilding from its taxonomy.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING

import ahocorasick_rs

from crawler.records import Evidence, Tags
from crawler.tagplan import RoutePlan, Span, plan_routes
from crawler.tagscore import Scored, rank_labels, route, score_categories
from crawler.taxonomy import Category, Scoring, Taxonomy
from crawler.textnorm import normalize_with_origin

if TYPE_CHECKING:
    from crawler.tagbatchplan import BatchPlan

# A hit in normalised coordinates: (term key index, start, end).
Hit = tuple[int, int, int]
Finder = Callable[[str], Sequence[Hit]]

_START = itemgetter(0)
_SCORE = itemgetter(1)
# Evidence's slot setters, for _make_evidence.
_NEW_EVIDENCE = object.__new__
_SET_TERM = Evidence.term.__set__           # type: ignore[attr-defined]
_SET_START = Evidence.start.__set__         # type: ignore[attr-defined]
_SET_END = Evidence.end.__set__             # type: ignore[attr-defined]


class Tagger:
    """A taxonomy compiled into one automaton. Immutable (tag_many's tables aside, built
    on first use); tag() and tag_many() are thread-safe."""

    __slots__ = ("_batch", "_find", "_plan", "taxonomy")

    def __init__(self, taxonomy: Taxonomy, find: Finder, plan: RoutePlan) -> None:
        self.taxonomy = taxonomy
        self._find = find               # normalised text -> (key index, start, end) hits
        self._plan = plan               # where each key's hits go (see tagplan)
        self._batch: BatchPlan | None = None    # tag_many's tables, see _batch_plan

    def __reduce__(self) -> tuple[Callable[[Taxonomy], Tagger], tuple[Taxonomy]]:
        # The automaton cannot be pickled; a worker process rebuilds it from the taxonomy.
        return build_matcher, (self.taxonomy,)

    def tag(self, text: str, title: str = "") -> Tags:
        """Tag `text`; with a title, offsets index into `title + "\\n" + text` (see tag_text)."""
        combined = f"{title}\n{text}" if title else text
        normalised, origin = normalize_with_origin(combined)
        title_end = bisect.bisect_left(origin, len(title)) if title else 0
        body_length = len(normalised) - title_end
        scoring = self.taxonomy.scoring
        routed = route(self._plan, self._find(normalised))
        scored = score_categories(self._plan, routed, title_end, body_length, scoring)
        return _to_tags(scored, origin, scoring)

    def tag_many(self, texts: Sequence[str], titles: Sequence[str] | None = None
                 ) -> list[Tags]:
        """[self.tag(text, title) ...]: the same Tags, computed for the whole batch at once
        with numpy (crawler.tagbatch): in batches of 64, ~2.5x faster on dense notices and
        ~1.5x on light ones. Batches too small to pay for that go text by text."""
        from crawler import tagbatch  # numpy loads on first use: tag() stays light
        return tagbatch.tag_many(self, texts, titles)

    def _batch_plan(self) -> BatchPlan:
        """tag_many's tables, built on first use (a race builds the same tables twice)."""
        if self._batch is None:
            from crawler.tagbatchplan import plan_batch
            self._batch = plan_batch(self._plan)
        return self._batch


def build_matcher(taxonomy: Taxonomy) -> Tagger:
    """Compile every normalised term of `taxonomy` into one automaton, once."""
    keys, plan = plan_routes(taxonomy)
    return Tagger(taxonomy, _compile(keys), plan)


def tag_text(text: str, taxonomy: Taxonomy, title: str = "") -> Tags:
    """Tag one text (convenience: builds the matcher each call; reuse build_matcher()).

    Offsets contract: Evidence.start/end index the ORIGINAL string that was tagged. Without
    a title that is `text`; with a title it is `title + "\\n" + text`, so a body offset is
    `len(title) + 1` larger than in `text` and title hits have end <= len(title).
    """
    return build_matcher(taxonomy).tag(text, title)


def render_evidence(text: str, tags: Tags, mark: Callable[[str], str] = lambda s: f"[{s}]"
                    ) -> str:
    """Return `text` with every evidence span (of any category) wrapped by `mark`."""
    pieces: list[str] = []
    position = 0
    for start, end in _merged_spans(tags):
        pieces.append(text[position:start])
        pieces.append(mark(text[start:end]))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _merged_spans(tags: Tags) -> list[tuple[int, int]]:
    """Evidence spans of all categories, overlapping ones merged (兼职 inside 兼职刷单)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted({(e.start, e.end) for evs in tags.evidence.values() for e in evs}):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


# -- compiling ---------------------------------------------------------------------------------

def _compile(keys: tuple[str, ...]) -> Finder:
    """An overlapping-match finder over `keys` (character offsets).

    ahocorasick-rs (Rust) scanned ~3x faster than pyahocorasick on Chinese text (104 vs
    33 MB/s in benchmarks/bench_tag.py, same hits), so it is the one matcher we ship. Its DFA
    form scans ~20 % faster than the default NFA (8.5 vs 10.5 ms/MB on the benchmark's
    notices, same hits in the same order) and takes ~9 ms to build for 1,800 keys.
    """
    automaton = ahocorasick_rs.AhoCorasick(keys, matchkind=ahocorasick_rs.MatchKind.Standard,
                                           implementation=ahocorasick_rs.Implementation.DFA)
    # A partial, not a lambda: one Python frame less per call.
    return functools.partial(automaton.find_matches_as_indexes, overlapping=True)


# -- result ------------------------------------------------------------------------------------

def _to_tags(scored: list[Scored], origin: Sequence[int], scoring: Scoring) -> Tags:
    """Passing categories, primary first then by score, with original offsets. `scored`
    holds the categories with a positive score (see score_categories)."""
    passing = [item for item in scored if item[1] >= item[0].threshold]
    if len(passing) > 1:
        order = rank_labels([(index, score, _first_start(spans, distinct),
                              _first_decisive_start(category, spans))
                             for index, (category, score, spans, distinct)
                             in enumerate(passing)], scoring)
        passing = [passing[index] for index in order]
    evidence = {category.id: _evidence(spans, distinct, origin)
                for category, _, spans, distinct in passing}
    ids = tuple([item[0].id for item in passing])
    # reverse=True keeps equal scores in category order, as sorting by -score did.
    if len(scored) > 1:
        scored = sorted(scored, key=_SCORE, reverse=True)
    scores = {item[0].id: round(item[1], 3) for item in scored}
    return Tags(categories=ids, primary=ids[0] if ids else None, scores=scores,
                evidence=evidence)


def _first_start(spans: list[Span], distinct: bool) -> int:
    """Where a category's evidence starts; `distinct` spans are sorted by start."""
    return spans[0][0] if distinct else min(map(_START, spans))


def _first_decisive_start(category: Category, spans: list[Span]) -> int | None:
    """Start of the first hit whose term weighs at least the category's threshold (a term
    that names the type), or None."""
    threshold = category.threshold
    return min((span[0] for span in spans if span[2].weight >= threshold), default=None)


def _evidence(spans: list[Span], distinct: bool, origin: Sequence[int]
              ) -> tuple[Evidence, ...]:
    """De-duplicated evidence in text order, offsets mapped back to the original text.
    `distinct` spans (sorted by start, no two alike) need no de-duplicating."""
    make = _make_evidence
    unique = (spans if distinct
              else sorted({(start, end, term.text) for start, end, term in spans}))
    if type(origin) is range and origin.start == 0 and origin.step == 1:
        # Normalisation kept every offset (no NFKC length change): nothing to map.
        if distinct:
            return tuple([make(term.text, start, end) for start, end, term in unique])
        return tuple([make(text, start, end) for start, end, text in unique])
    if distinct:
        return tuple([make(term.text, origin[start], origin[end - 1] + 1)
                      for start, end, term in unique])
    return tuple([make(text, origin[start], origin[end - 1] + 1)
                  for start, end, text in unique])


def _make_evidence(term: str, start: int, end: int) -> Evidence:
    """Evidence(term, start, end) at ~60 % of the cost: a frozen dataclass's __init__ sets
    each field through object.__setattr__, and a dense notice yields ~20 of them. Filling
    the slots of a fresh object builds the same record (tests/test_tag.py pins the fields,
    so a field added to Evidence fails there rather than going missing here)."""
    evidence = _NEW_EVIDENCE(Evidence)
    _SET_TERM(evidence, term)
    _SET_START(evidence, start)
    _SET_END(evidence, end)
    return evidence
