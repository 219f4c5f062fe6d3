"""Tag text with scam categories by weighted keyword rules, explaining every decision.

    text --normalize_with_origin--> normalised text (+ map back to the original)
         --one Aho-Corasick pass--> hits of every term of every category
         --per category (tagscore)--> drop excluded and overlapped hits, score
         --> compare to thresholds --> Tags(categories, primary, scores, evidence with
             ORIGINAL offsets, built for the tagged categories only)

Score of a category = (sum over distinct keywords of weight * (1 + repeat_gain * ln(hits))
+ title_bonus * weight for keywords also in the title + weights of the combos that fire
- negative terms) / length damping. A category is tagged when its score reaches its
threshold; primary is the best-scoring one, except that among categories within
primary_margin of the best, the one the text names first wins (round-ups list their main
type first). All knobs live in categories.toml (see its header).

The matcher is built once per taxonomy by build_matcher(); a Tagger is immutable, safe to
share between threads, and pickles by rebuilding from its taxonomy.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from operator import itemgetter

import ahocorasick_rs

from crawler.records import Evidence, Tags
from crawler.tagscore import RoutePlan, Scored, Span, plan_routes, route, score_categories
from crawler.taxonomy import Category, Taxonomy
from crawler.textnorm import normalize_with_origin

# A hit in normalised coordinates: (term key index, start, end).
Hit = tuple[int, int, int]
Finder = Callable[[str], Sequence[Hit]]

_START = itemgetter(0)
_SCORE = itemgetter(1)


class Tagger:
    """A taxonomy compiled into one automaton. Immutable; tag() is thread-safe."""

    __slots__ = ("_find", "_plan", "taxonomy")

    def __init__(self, taxonomy: Taxonomy, find: Finder, plan: RoutePlan) -> None:
        self.taxonomy = taxonomy
        self._find = find               # normalised text -> (key index, start, end) hits
        self._plan = plan               # where each key's hits go (see tagscore)

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
        return _to_tags(scored, origin, scoring.primary_margin)


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
    return lambda text: automaton.find_matches_as_indexes(text, overlapping=True)


# -- result ------------------------------------------------------------------------------------

def _to_tags(scored: list[Scored], origin: Sequence[int], primary_margin: float) -> Tags:
    """Passing categories, primary first then by score, with original offsets."""
    positive = [item for item in scored if item[1] > 0]     # a positive score has spans
    passing = [item for item in positive if item[1] >= item[0].threshold]
    passing.sort(key=lambda item: (-item[1], _first_start(item[2], item[3])))
    if passing:
        # Near-ties for primary go to the type the text names first (see Scoring). Sorted by
        # score, the contenders are a prefix of `passing`; min() keeps the first of equals.
        floor = primary_margin * passing[0][1]
        contenders = sum(1 for item in passing if item[1] >= floor)
        primary = min(range(contenders),
                      key=lambda i: _lead_position(passing[i][0], passing[i][2]))
        passing.insert(0, passing.pop(primary))
    evidence = {c.id: _evidence(spans, distinct, origin) for c, _, spans, distinct in passing}
    ids = tuple(item[0].id for item in passing)
    # reverse=True keeps equal scores in category order, as sorting by -score did.
    scores = {item[0].id: round(item[1], 3)
              for item in sorted(positive, key=_SCORE, reverse=True)}
    return Tags(categories=ids, primary=ids[0] if ids else None, scores=scores,
                evidence=evidence)


def _first_start(spans: list[Span], distinct: bool = False) -> int:
    return spans[0][0] if distinct else min(map(_START, spans))   # distinct: sorted


def _lead_position(category: Category, spans: list[Span]) -> int:
    """Where the text names the category: its first decisive hit (a term weighing at least
    the threshold, such as a type name), else its first hit of any weight. A weak 兼职 near
    the top must not make "三防虚假招聘" look like the type a round-up leads with."""
    decisive = [span[0] for span in spans if span[2].weight >= category.threshold]
    return min(decisive) if decisive else _first_start(spans)


def _evidence(spans: list[Span], distinct: bool, origin: Sequence[int]
              ) -> tuple[Evidence, ...]:
    """De-duplicated evidence in text order, offsets mapped back to the original text.
    `distinct` spans (sorted by start, no two alike) need no de-duplicating."""
    if distinct:
        return tuple([Evidence(term.text, origin[start], origin[end - 1] + 1)
                      for start, end, term in spans])
    unique = sorted({(start, end, term.text) for start, end, term in spans})
    return tuple([Evidence(text, origin[start], origin[end - 1] + 1)
                  for start, end, text in unique])
