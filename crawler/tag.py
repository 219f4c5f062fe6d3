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

import ahocorasick_rs

from crawler.records import Evidence, Tags
from crawler.taxonomy import Category, Combo, Scoring, Taxonomy, Term
from crawler.textnorm import normalize_with_origin

# A hit in normalised coordinates: (term key index, start, end).
Hit = tuple[int, int, int]
Finder = Callable[[str], Sequence[Hit]]

_KEYWORD, _NEGATIVE, _EXCLUDE, _COMBO = range(4)      # also indexes into KindHits


@dataclass(frozen=True, slots=True)
class _Role:
    """What a matched key means for one category."""

    category: int
    kind: int
    term: Term
    combo: int = -1                     # index into the category's combos (kind _COMBO)
    group: int = -1                     # index into that combo's groups


# A hit for one category: (role, start, end); a kept span: (start, end, term). Normalised
# coordinates; tuples rather than records because a long notice has hundreds of them.
RoleHit = tuple[_Role, int, int]
Span = tuple[int, int, Term]
KindHits = tuple[list[RoleHit], list[RoleHit], list[RoleHit], list[RoleHit]]


class Tagger:
    """A taxonomy compiled into one automaton. Immutable; tag() is thread-safe."""

    __slots__ = ("_find", "_roles", "taxonomy")

    def __init__(self, taxonomy: Taxonomy, find: Finder,
                 roles: tuple[tuple[_Role, ...], ...]) -> None:
        self.taxonomy = taxonomy
        self._find = find               # normalised text -> (key index, start, end) hits
        self._roles = roles             # key index -> what that key means per category

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
        """One automaton pass; fan each hit out to the categories whose term it is, by kind.

        Categories with only negative or exclude hits are left out: they cannot score."""
        found: dict[int, KindHits] = {}
        for key_index, start, end in self._find(normalised):
            for role in self._roles[key_index]:
                by_kind = found.get(role.category)
                if by_kind is None:
                    by_kind = found[role.category] = ([], [], [], [])
                by_kind[role.kind].append((role, start, end))
        return {c: by_kind for c, by_kind in found.items()
                if by_kind[_KEYWORD] or by_kind[_COMBO]}


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
    roles = [_Role(index, _KEYWORD, t) for t in category.keywords]
    roles += [_Role(index, _NEGATIVE, t) for t in category.negatives]
    roles += [_Role(index, _EXCLUDE, t) for t in category.excludes]
    for c, combo in enumerate(category.combos):
        for g, group in enumerate(combo.groups):
            roles += [_Role(index, _COMBO, t, c, g) for t in group]
    return roles


def _compile(keys: tuple[str, ...]) -> Finder:
    """An overlapping-match finder over `keys` (character offsets).

    ahocorasick-rs (Rust) scanned ~3x faster than pyahocorasick on Chinese text (104 vs
    33 MB/s in benchmarks/bench_tag.py, same hits), so it is the one matcher we ship.
    """
    automaton = ahocorasick_rs.AhoCorasick(keys, matchkind=ahocorasick_rs.MatchKind.Standard)
    return lambda text: automaton.find_matches_as_indexes(text, overlapping=True)


# -- scoring -----------------------------------------------------------------------------------

def _score(category: Category, by_kind: KindHits, title_end: int, body_length: int,
           scoring: Scoring) -> tuple[float, list[Span]]:
    """The category's score and the spans that earned it."""
    keywords, negatives, excludes, combos = by_kind
    if excludes:
        excluded = [(start, end) for _, start, end in excludes]
        keywords, combos, negatives = (_not_excluded(h, excluded)
                                       for h in (keywords, combos, negatives))
    spans = _outermost(keywords)
    total = _terms_score(spans, title_end, scoring.repeat_gain, scoring.title_bonus)
    if combos:
        bonus, fired = _combos_score(category.combos, combos, spans)
        total += bonus
        spans += fired
    if negatives:
        negative_spans = [(s, e, r.term) for r, s, e in negatives]
        total -= _terms_score(negative_spans, title_end, scoring.repeat_gain, 0.0)
    if total <= 0 or not spans:
        return 0.0, []
    return total / _length_damping(body_length, scoring), spans


def _not_excluded(hits: list[RoleHit], excluded: list[tuple[int, int]]) -> list[RoleHit]:
    """Hits not lying inside an occurrence of one of the category's exclude contexts."""
    return [h for h in hits if not any(s <= h[1] and h[2] <= e for s, e in excluded)]


def _outermost(hits: list[RoleHit]) -> list[Span]:
    """Non-overlapping hits, heaviest (then longest) first: 兼职刷单 swallows its 刷单, and
    网络婚恋交友 counts once, not as 网络婚恋 + 婚恋交友 (one phrase is one piece of evidence)."""
    kept: list[Span] = []                            # sorted by start
    ranked = sorted(hits, key=lambda h: (-h[0].term.weight, h[1] - h[2], h[1]))
    for role, start, end in ranked:
        at = bisect.bisect_left(kept, start, key=lambda k: k[0])
        overlaps_left = at > 0 and kept[at - 1][1] > start
        overlaps_right = at < len(kept) and kept[at][0] < end
        if not (overlaps_left or overlaps_right):
            kept.insert(at, (start, end, role.term))
    return kept


def _terms_score(spans: list[Span], title_end: int, repeat_gain: float,
                 title_bonus: float) -> float:
    """Sum of weight * saturating count per distinct term, plus the title bonus."""
    counts: dict[str, int] = defaultdict(int)       # keyed by the term's str: cheap hashing
    weights: dict[str, float] = {}
    in_title: set[str] = set()
    for start, _, term in spans:
        counts[term.key] += 1
        weights[term.key] = term.weight
        if start < title_end:
            in_title.add(term.key)
    return sum(weights[key] * (1 + repeat_gain * math.log(n) + title_bonus * (key in in_title))
               for key, n in counts.items())


def _combos_score(combos: tuple[Combo, ...], hits: list[RoleHit], keyword_spans: list[Span]
                  ) -> tuple[float, list[Span]]:
    """Total weight of the combos that fire, and the spans that made them fire."""
    by_combo: dict[int, list[list[Span]]] = {}
    for role, start, end in hits:
        groups = by_combo.get(role.combo)
        if groups is None:
            groups = by_combo[role.combo] = [[] for _ in combos[role.combo].groups]
        groups[role.group].append((start, end, role.term))
    total, spans = 0.0, []
    for index, groups in by_combo.items():
        fired = _combo_spans(combos[index].window, groups)
        if fired and not _inside_one_keyword(fired, keyword_spans):
            total += combos[index].weight
            spans += fired
    return total, spans


def _inside_one_keyword(fired: list[Span], keyword_spans: list[Span]) -> bool:
    """True when one keyword hit already covers every span of a combo: 冒充 + 公检法 inside
    the keyword 冒充公检法 are one phrase, counted once by the keyword."""
    start, end = min(span[0] for span in fired), max(span[1] for span in fired)
    return any(s <= start and end <= e for s, e, _ in keyword_spans)


def _combo_spans(window: int, groups: list[list[Span]]) -> list[Span]:
    """One span per group, all within `window` of the first group's span; [] if impossible."""
    if not all(groups):
        return []
    if window == 0:
        return [group[0] for group in groups]
    for anchor in groups[0]:
        chosen = [anchor]
        for group in groups[1:]:
            nearest = min(group, key=lambda span: abs(span[0] - anchor[0]))
            if abs(nearest[0] - anchor[0]) > window:
                break
            chosen.append(nearest)
        else:
            return chosen
    return []


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
    return min(span[0] for span in spans)


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
