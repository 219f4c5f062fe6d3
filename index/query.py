"""The search query language, and its translation into a Whoosh query over our index.

Terms given as separate argv pieces or as one string, or both:
    兼职 客服           both terms (AND is the default; a literal `AND` is accepted)
    客服 OR 刷单        either; OR binds tighter than the implicit AND: 兼职 客服 OR 刷单 is
                        兼职 AND (客服 OR 刷单)
    -客服, NOT 客服     exclude
    "屏幕 共享"         a phrase: the words adjacent, with or without the space in the text
    兼职客服            a word jieba cuts in several is searched as that phrase
Anything malformed (`兼职:客服 (AND`, an unclosed quote, a lone `-`, `OR OR`) never raises:
punctuation splits plain terms, stray operators and quotes are ignored. An empty query
matches every document (useful with filters).

Words are normalised like the indexed text (traditional -> simplified, full-width ->
half-width), so 詐騙 finds 诈骗 and back. jieba (~0.5 s to load) is only loaded when a query
word is not itself a word of the index: one-word terms the index knows skip it entirely.
A domain compound (a 4+ character term of the user dictionary) also matches the phrase of
its indexed parts, since text cut differently in context holds it (兼职刷单 | 返利 holds
刷单返利).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from whoosh import query as wq
from whoosh.reading import IndexReader

from crawler.textnorm import normalize_text
from index.analysis import is_compound, query_words

TEXT_FIELDS = ("title", "text")

# Brackets separate lexemes but mean nothing: grouping is not part of the language.
_LEXEME = re.compile(r'(-?)(?:"([^"]*)"|“([^”]*)”|「([^」]*)」|([^\s()]+))')
_OPERATORS = {"OR": "or", "|": "or", "||": "or", "AND": "and", "&&": "and", "+": "and",
              "NOT": "not"}
_NON_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True)
class QueryItem:
    """One operand: plain words (each required) or a phrase (the words adjacent)."""

    words: tuple[str, ...]
    phrase: bool = False
    negated: bool = False


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """Groups ANDed together; the items of one group are ORed."""

    groups: tuple[tuple[QueryItem, ...], ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """The query as understood, in the query language (shown to the user)."""
        parts = []
        for group in self.groups:
            texts = [_describe_item(item) for item in group]
            parts.append(texts[0] if len(texts) == 1 else "(" + " OR ".join(texts) + ")")
        return " ".join(parts)


def _describe_item(item: QueryItem) -> str:
    text = '"' + " ".join(item.words) + '"' if item.phrase else " ".join(item.words)
    return "-" + text if item.negated else text


def parse_query(query: str | Sequence[str]) -> ParsedQuery:
    """Parse the query language; total: any input gives a (possibly empty) query. A query of
    nothing but operators (`OR OR`) searches for them as plain words."""
    pieces = [query] if isinstance(query, str) else list(query)
    lexemes = [lx for piece in pieces for lx in _lex(piece)]
    groups = _group(lexemes)
    if not groups:
        groups = [[item] for text, _, _ in lexemes if (item := _item(text, False, False))]
    return ParsedQuery(tuple(tuple(group) for group in groups))


def _group(lexemes: list[tuple[str, bool, bool]]) -> list[list[QueryItem]]:
    """Apply the operators: OR joins neighbours, NOT negates the next item, AND is a no-op."""
    groups: list[list[QueryItem]] = []
    join_next = negate_next = False
    for text, negated, quoted in lexemes:
        operator = None if quoted or negated else _OPERATORS.get(text)
        if operator is not None:
            join_next = operator == "or" and bool(groups)
            negate_next = operator == "not"
            continue
        item = _item(text, quoted, negated or negate_next)
        negate_next = False
        if item is None:
            continue
        if join_next:
            groups[-1].append(item)
        else:
            groups.append([item])
        join_next = False
    return groups


def _lex(piece: str) -> Iterator[tuple[str, bool, bool]]:
    """(text, negated, quoted) for each lexeme of one query string."""
    # NFKC only (full-width quotes and minus become ASCII); operators are case-sensitive,
    # so the words are lower-cased later, in _item.
    for match in _LEXEME.finditer(unicodedata.normalize("NFKC", piece)):
        minus, *quoted, plain = match.groups()
        phrase = next((q for q in quoted if q is not None), None)
        if phrase is not None:
            yield phrase, bool(minus), True
        else:
            yield plain, bool(minus), False


def _item(text: str, quoted: bool, negated: bool) -> QueryItem | None:
    words = tuple(w for w in _NON_WORD.split(normalize_text(text)) if w)
    if not words:
        return None       # a lone "-", a stray quote or bracket: nothing to search
    return QueryItem(words, phrase=quoted and len(words) > 1, negated=negated)


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """A parsed query as a Whoosh query, plus the words whose hits a snippet marks."""

    query: wq.Query
    highlight: frozenset[str]


def compile_query(parsed: ParsedQuery, reader: IndexReader, user_terms: tuple[str, ...]
                  ) -> CompiledQuery:
    """Turn the parsed query into a Whoosh query over title and body."""
    clauses: list[wq.Query] = []
    highlight: set[str] = set()
    for group in parsed.groups:
        options = []
        for item in group:
            matcher, words = _item_query(item, reader, user_terms)
            options.append(wq.Not(matcher) if item.negated else matcher)
            if not item.negated:
                highlight |= words
        clauses.append(options[0] if len(options) == 1 else wq.Or(options))
    # Exclusions as Whoosh's AndNot: an And with a Not inside scores each match 1.0 higher.
    required = [c for c in clauses if not isinstance(c, wq.Not)]
    excluded = [c.query for c in clauses if isinstance(c, wq.Not)]
    query = wq.Every() if not required else (
        required[0] if len(required) == 1 else wq.And(required))
    if excluded:
        query = wq.AndNot(query, excluded[0] if len(excluded) == 1 else wq.Or(excluded))
    return CompiledQuery(query, frozenset(highlight))


def _item_query(item: QueryItem, reader: IndexReader, user_terms: tuple[str, ...]
                ) -> tuple[wq.Query, set[str]]:
    """One item as a query, and the index words it looks for. Plain words are each
    required; a phrase matches its joined words or the words cut one by one (屏幕共享 is one
    indexed word, 屏幕 共享 with a space in the text is two)."""
    if item.phrase:
        ways = _word_ways("".join(item.words), reader, user_terms)
        separate = tuple(t for w in item.words for t in _word_tokens(w, reader, user_terms))
        ways += [] if separate in ways else [separate]
        return _one_of(ways), {t for way in ways for t in way}
    per_word = [_word_ways(word, reader, user_terms) for word in item.words]
    queries = [_one_of(ways) for ways in per_word]
    words = {t for ways in per_word for way in ways for t in way}
    return (queries[0] if len(queries) == 1 else wq.And(queries)), words


def _word_ways(word: str, reader: IndexReader, user_terms: tuple[str, ...]
               ) -> list[tuple[str, ...]]:
    """The token sequences one query word may be indexed as: its own cut, and for a domain
    compound also the phrase of its parts, as text cut differently in context holds it
    (兼职刷单 | 返利 holds 刷单返利). Only user-dictionary terms get this: their overlaps
    (兼职刷单, 刷单返利, 网络刷单) are where cuts conflict, and a phrase over common words
    (代表 大会) costs up to 50 ms at 5,000 documents."""
    tokens = _word_tokens(word, reader, user_terms)
    parts = _parts(word, reader) if (
        tokens == (word,) and is_compound(word) and word in user_terms) else None
    return [tokens, parts] if parts else [tokens]


def _word_tokens(word: str, reader: IndexReader, user_terms: tuple[str, ...]
                 ) -> tuple[str, ...]:
    """The index words of one normalised query word: itself when the index has it as a word
    (no jieba needed), else jieba's cut of it."""
    if _is_indexed(word, reader):
        return (word,)
    return tuple(query_words(word, user_terms)) or (word,)


def _parts(word: str, reader: IndexReader) -> tuple[str, ...] | None:
    """The fewest indexed words of 2+ characters, each shorter than `word`, spelling it."""
    best: list[tuple[str, ...] | None] = [(), *[None] * len(word)]   # best[i]: word[:i]
    for end in range(2, len(word) + 1):
        for start in range(end - 1):
            prefix, current = best[start], best[end]
            if prefix is None or end - start == len(word):
                continue
            if (current is None or len(prefix) + 1 < len(current)) and _is_indexed(
                    word[start:end], reader):
                best[end] = (*prefix, word[start:end])
    return best[len(word)]


def _is_indexed(word: str, reader: IndexReader) -> bool:
    return any((name, word) in reader for name in TEXT_FIELDS)


def _one_of(ways: list[tuple[str, ...]]) -> wq.Query:
    queries = [_any_field(tokens) for tokens in ways]
    return queries[0] if len(queries) == 1 else wq.Or(queries)


def _any_field(tokens: tuple[str, ...]) -> wq.Query:
    if len(tokens) == 1:
        return wq.Or([wq.Term(name, tokens[0]) for name in TEXT_FIELDS])
    return wq.Or([wq.Phrase(name, list(tokens)) for name in TEXT_FIELDS])
