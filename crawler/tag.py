"""Tag text with scam categories by weighted keyword rules, explaining every decision.

    text --normalize_with_origin--> normalised text (+ map back to the original)
         --one Aho-Corasick pass--> hits of every term of every category
         --per category--> drop excluded and overlapped hits, score, compare to threshold
         --> Tags(categories, primary, scores, evidence with ORIGINAL offsets)

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
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

import ahocorasick_rs

from crawler.records import Evidence, Tags
from crawler.taxonomy import Category, Combo, Scoring, Taxonomy, Term
from crawler.textnorm import normalize_with_origin

# A hit in normalised coordinates: (term key index, start, end).
Hit = tuple[int, int, int]
Finder = Callable[[str], Sequence[Hit]]

_KEYWORD, _NEGATIVE, _EXCLUDE, _COMBO = range(4)      # also indexes into KindHits
_KINDS = 4


@dataclass(frozen=True, slots=True)
class _Role:
    """What a matched key means for one category."""

    category: int
    kind: int
    term: Term
    combo: int = -1                     # index into the category's combos (kind _COMBO)
    group: int = -1                     # index into that combo's groups
    length: int = 0                     # len(term.key): a hit's end is its start + length
    bit: int = 0                        # 1 << group: which group of its combo it fills


# Every hit of one key, routed once per role rather than once per hit: (role, starts in text
# order). A span: (start, end, term). Normalised coordinates; tuples rather than records
# because a long notice has hundreds of them.
KeyHits = tuple[_Role, list[int]]
Span = tuple[int, int, Term]
KindHits = tuple[list[KeyHits], list[KeyHits], list[KeyHits], list[KeyHits]]

_START = itemgetter(0)


class Tagger:
    """A taxonomy compiled into one automaton. Immutable; tag() is thread-safe."""

    __slots__ = ("_find", "_routes", "taxonomy")

    def __init__(self, taxonomy: Taxonomy, find: Finder,
                 roles: tuple[tuple[_Role, ...], ...]) -> None:
        self.taxonomy = taxonomy
        self._find = find               # normalised text -> (key index, start, end) hits
        # key index -> (slot, role) per category the key means something to; the slot
        # (category * 4 + kind) indexes a flat list, cheaper than a dict per category.
        self._routes = tuple(tuple((role.category * _KINDS + role.kind, role) for role in rs)
                             for rs in roles)

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
        scored = []
        for index, by_kind in sorted(self._hits_by_category(normalised).items()):
            category = self.taxonomy.categories[index]
            score, spans = _score(category, by_kind, title_end, body_length, scoring)
            scored.append((category, score, spans))
        return _to_tags(scored, origin, scoring.primary_margin)

    def _hits_by_category(self, normalised: str) -> dict[int, KindHits]:
        """One automaton pass; collect the starts of each key, then fan each key (not each
        hit) out to the categories whose term it is, by kind. Keys keep the order of their
        first hit, so scores add up in the same order as hit by hit.

        Categories with only negative or exclude hits are left out: they cannot score."""
        starts_by_key: dict[int, list[int]] = {}
        for key_index, start, _ in self._find(normalised):
            starts = starts_by_key.get(key_index)
            if starts is None:
                starts_by_key[key_index] = [start]
            else:
                starts.append(start)
        slots: list[list[KeyHits] | None] = [None] * (len(self.taxonomy.categories) * _KINDS)
        routes = self._routes
        for key_index, starts in starts_by_key.items():
            for slot, role in routes[key_index]:
                hits = slots[slot]
                if hits is None:
                    slots[slot] = [(role, starts)]
                else:
                    hits.append((role, starts))
        found: dict[int, KindHits] = {}
        for category, at in enumerate(range(0, len(slots), _KINDS)):
            keywords, negatives, excludes, combos = slots[at:at + _KINDS]
            if keywords or combos:
                found[category] = (keywords or [], negatives or [], excludes or [], combos or [])
        return found


def build_matcher(taxonomy: Taxonomy) -> Tagger:
    """Compile every normalised term of `taxonomy` into one automaton, once."""
    roles: dict[str, list[_Role]] = defaultdict(list)
    for index, category in enumerate(taxonomy.categories):
        for role in _category_roles(index, category):
            roles[role.term.key].append(role)
    keys = tuple(roles)
    return Tagger(taxonomy, _compile(keys), tuple(tuple(roles[k]) for k in keys))


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

def _category_roles(index: int, category: Category) -> list[_Role]:
    roles = [_Role(index, _KEYWORD, t, length=len(t.key)) for t in category.keywords]
    roles += [_Role(index, _NEGATIVE, t, length=len(t.key)) for t in category.negatives]
    roles += [_Role(index, _EXCLUDE, t, length=len(t.key)) for t in category.excludes]
    for c, combo in enumerate(category.combos):
        for g, group in enumerate(combo.groups):
            roles += [_Role(index, _COMBO, t, c, g, len(t.key), 1 << g) for t in group]
    return roles


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


# -- scoring -----------------------------------------------------------------------------------

def _score(category: Category, by_kind: KindHits, title_end: int, body_length: int,
           scoring: Scoring) -> tuple[float, list[Span]]:
    """The category's score and the spans that earned it."""
    keywords, negatives, excludes, combos = by_kind
    excluded = [(start, end) for start, end, _ in _spans(excludes)] if excludes else []
    spans = _outermost(_not_excluded(_spans(keywords), excluded))
    total = _terms_score(spans, title_end, scoring.repeat_gain, scoring.title_bonus)
    if combos:
        bonus, fired = _combos_score(category.combos, combos, spans, excluded)
        total += bonus
        spans += fired
    if negatives:
        negative_spans = _not_excluded(_spans(negatives), excluded)
        total -= _terms_score(negative_spans, title_end, scoring.repeat_gain, 0.0)
    if total <= 0 or not spans:
        return 0.0, []
    return total / _length_damping(body_length, scoring), spans


def _spans(key_hits: list[KeyHits]) -> list[Span]:
    """One span per hit, key by key (keys in the order of their first hit)."""
    return [(start, start + role.length, role.term)
            for role, starts in key_hits for start in starts]


def _not_excluded(spans: list[Span], excluded: list[tuple[int, int]]) -> list[Span]:
    """Spans not lying inside an occurrence of one of the category's exclude contexts."""
    if not excluded:
        return spans
    return [h for h in spans if not any(s <= h[0] and h[1] <= e for s, e in excluded)]


def _outermost(spans: list[Span]) -> list[Span]:
    """Non-overlapping hits, heaviest (then longest) first: 兼职刷单 swallows its 刷单, and
    网络婚恋交友 counts once, not as 网络婚恋 + 婚恋交友 (one phrase is one piece of evidence).
    Sorted by start. Most texts have no overlap at all: then every hit is kept as it is."""
    ordered = sorted(spans)             # (start, end): one key never has two equal hits
    reach = -1
    for start, end, _ in ordered:
        if start < reach:
            break
        reach = end
    else:
        return ordered
    kept: list[Span] = []                            # sorted by start
    for span in sorted(spans, key=lambda h: (-h[2].weight, h[0] - h[1], h[0])):
        start, end = span[0], span[1]
        at = bisect.bisect_left(kept, start, key=_START)
        overlaps_left = at > 0 and kept[at - 1][1] > start
        overlaps_right = at < len(kept) and kept[at][0] < end
        if not (overlaps_left or overlaps_right):
            kept.insert(at, span)
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


def _combos_score(combos: tuple[Combo, ...], hits: list[KeyHits], keyword_spans: list[Span],
                  excluded: list[tuple[int, int]]) -> tuple[float, list[Span]]:
    """Total weight of the combos that fire, and the spans that made them fire.

    Works on each key's sorted starts, so a dense notice costs a bisection per key rather
    than a tuple per hit. Hit order (the automaton's) is by end, then start; fired combos add
    up in the order of their first hits, as they would hit by hit."""
    filled: dict[int, int] = {}         # combo -> bit mask of the groups with a hit
    by_combo: dict[int, list[KeyHits]] = {}
    for hit in hits:
        index = hit[0].combo
        mask = filled.get(index)
        if mask is None:
            filled[index] = hit[0].bit
            by_combo[index] = [hit]
        else:
            filled[index] = mask | hit[0].bit
            by_combo[index].append(hit)
    fired = []
    for index, mask in filled.items():
        combo = combos[index]
        if mask != (1 << len(combo.groups)) - 1:
            continue                    # some group has no hit: the combo cannot fire
        groups: list[list[KeyHits]] = [[] for _ in combo.groups]
        for hit in by_combo[index]:
            groups[hit[0].group].append(hit)
        if excluded:
            groups = [_not_excluded_starts(group, excluded) for group in groups]
            if not all(groups):
                continue
        chosen = _combo_spans(combo.window, groups)
        if chosen and not _inside_one_keyword(chosen, keyword_spans):
            fired.append((index, groups, chosen))
    if len(fired) > 1:
        fired.sort(key=_first_combo_hit)
    total, spans = 0.0, []
    for index, _, chosen in fired:
        total += combos[index].weight
        spans += chosen
    return total, spans


def _first_combo_hit(fired: tuple[int, list[list[KeyHits]], list[Span]]) -> tuple[int, int]:
    """(end, start) of a fired combo's first hit: fired combos add up in that order."""
    return min((starts[0] + role.length, starts[0]) for group in fired[1]
               for role, starts in group)


def _not_excluded_starts(group: list[KeyHits], excluded: list[tuple[int, int]]
                         ) -> list[KeyHits]:
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
    for end, position, term in _in_hit_order(groups[0]):
        chosen = [(position, end, term)]
        for group in groups[1:]:
            distance, near_end, near_start, near_term = _nearest(group, position)
            if distance > window:
                break
            chosen.append((near_start, near_end, near_term))
        else:
            return chosen
    return []


def _first_hit(group: list[KeyHits]) -> Span:
    """The group's first hit in hit order (no two keys share an end and a start)."""
    end, start, term = min((starts[0] + role.length, starts[0], role.term)
                           for role, starts in group)
    return start, end, term


def _in_hit_order(group: list[KeyHits]) -> list[tuple[int, int, Term]]:
    """(end, start, term) of every hit of the group, in hit order."""
    if len(group) == 1:
        role, starts = group[0]
        return [(start + role.length, start, role.term) for start in starts]
    return sorted((start + role.length, start, role.term)
                  for role, starts in group for start in starts)


def _nearest(group: list[KeyHits], position: int) -> tuple[int, int, int, Term]:
    """(distance, end, start, term) of the group's hit starting nearest `position`; the
    tuple order makes the first in hit order win a tie."""
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
    return best


def _length_damping(body_length: int, scoring: Scoring) -> float:
    """>= 1: long round-ups collect weak hits by sheer length, so their scores shrink."""
    if body_length <= scoring.length_reference:
        return 1.0
    return 1 + scoring.length_damping * math.log(body_length / scoring.length_reference)


# -- result ------------------------------------------------------------------------------------

def _to_tags(scored: list[tuple[Category, float, list[Span]]], origin: Sequence[int],
             primary_margin: float) -> Tags:
    """Passing categories, primary first then by score, with original offsets."""
    passing = [(c, s, spans) for c, s, spans in scored if s >= c.threshold and spans]
    passing.sort(key=lambda item: (-item[1], _first_start(item[2])))
    if passing:
        # Near-ties for primary go to the type the text names first (see Scoring).
        contenders = [p for p in passing if p[1] >= primary_margin * passing[0][1]]
        primary = min(contenders, key=lambda item: _lead_position(item[0], item[2]))
        passing.remove(primary)
        passing.insert(0, primary)
    evidence = {c.id: _evidence(spans, origin) for c, _, spans in passing}
    ids = tuple(c.id for c, _, _ in passing)
    scores = {c.id: round(s, 3) for c, s, _ in sorted(scored, key=lambda i: -i[1]) if s > 0}
    return Tags(categories=ids, primary=ids[0] if ids else None, scores=scores,
                evidence=evidence)


def _first_start(spans: list[Span]) -> int:
    return min(map(_START, spans))


def _lead_position(category: Category, spans: list[Span]) -> int:
    """Where the text names the category: its first decisive hit (a term weighing at least
    the threshold, such as a type name), else its first hit of any weight. A weak 兼职 near
    the top must not make "三防虚假招聘" look like the type a round-up leads with."""
    decisive = [span[0] for span in spans if span[2].weight >= category.threshold]
    return min(decisive) if decisive else _first_start(spans)


def _evidence(spans: list[Span], origin: Sequence[int]) -> tuple[Evidence, ...]:
    """De-duplicated evidence in text order, offsets mapped back to the original text."""
    unique = sorted({(start, end, term.text) for start, end, term in spans})
    return tuple(Evidence(term, origin[start], origin[end - 1] + 1)
                 for start, end, term in unique)
