"""The one place text is normalised for matching (tagging) and search (index).

Normalisation = NFKC (full-width ASCII and punctuation -> half-width, compatibility forms)
followed by traditional -> simplified (OpenCC t2s). The offsets variant maps every character
of the normalised text back to its position in the original, so evidence and highlights
point at what the user actually wrote.

Speed (the tagger normalises every crawled page): the offsets variant does no per-character
Python work for the common cases. Each distinct character that NFKC changes one-for-one
(full-width punctuation such as "，" -> ",") costs one regex search and one str.replace,
keeping the identity mapping; only characters whose NFKC form has another length
("…" -> "...") take the slow path. OpenCC runs only when the text holds a character that
t2s changes on its own.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

import opencc

# Only ASCII is lower-cased: str.lower() can change lengths (İ -> i̇) and break offsets.
_ASCII_UPPER_RUN = re.compile("[A-Z]+")
_ASCII_CAPITALS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")

# Code point ranges scanned for NFKC-unstable characters: the BMP, and the astral blocks
# that hold compatibility characters (math alphanumerics, enclosed alphanumerics,
# CJK compatibility ideographs supplement). Everything else is NFKC-stable on its own.
# They get separate regexes: a class mixing BMP and astral ranges makes `re` test ranges
# one by one (~60 MB/s) instead of using its BMP bitmap (~400 MB/s).
_BMP_SCAN_RANGES = ((0x80, 0x10000),)
_ASTRAL_SCAN_RANGES = ((0x1D400, 0x1D800), (0x1F100, 0x1F200), (0x2F800, 0x2FA20))
# CJK blocks scanned for characters that t2s changes on their own.
_CJK_SCAN_RANGES = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))


@functools.cache
def _t2s() -> opencc.OpenCC:
    # A converter is immutable once built; caching it is a lazily created constant.
    return opencc.OpenCC("t2s")


def normalize_text(text: str) -> str:
    """NFKC + traditional->simplified. Lower-cases ASCII so 'GOIP' matches 'goip'."""
    return _lower_ascii(_to_simplified(nfkc(text)))


def nfkc(text: str) -> str:
    """unicodedata.normalize("NFKC", text), exactly, ~10x faster on Chinese text.

    CPython's normalize takes its slow path for a whole string as soon as one character
    fails the quick check, and full-width punctuation does in every notice (~100 ns a
    character). Folding each character on its own (as normalize_with_origin does) gives a
    string with the same full decomposition, hence the same NFKC; when that string is
    already normalised (no composition or reordering across characters: true of CJK text),
    it IS the NFKC. Otherwise, the slow path decides.
    """
    folded, growing, _ = _fold_scanned(text, True)    # True: no stops for capitals
    for char in growing:
        folded = folded.replace(char, _nfkc_char(char))
    if unicodedata.is_normalized("NFKC", folded):
        return folded
    return unicodedata.normalize("NFKC", text)


def count_traditional(text: str, enough: int) -> int:
    """How many characters of `text` traditional->simplified changes on their own (phrase
    rules such as 乾燥 -> 干燥 are not counted), counting no further than `enough`: a text
    in simplified script usually holds none, one in traditional script a run of them early.
    """
    count = 0
    for _ in _traditional_re().finditer(text):
        count += 1
        if count >= enough:
            break
    return count


def _lower_ascii(text: str) -> str:
    # str.translate with a table walks every character in Python-level lookups (~90 µs for
    # a notice); capitals are rare in Chinese text, so substituting their runs is faster.
    return _ASCII_UPPER_RUN.sub(lambda m: m.group().lower(), text)


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """Normalise `text` and return (normalised, origin) where origin[i] is the index in
    `text` of the character that produced normalised character i. len(origin) == len(norm)."""
    normalised, origin = normalize_with_origin(text)
    return normalised, list(origin)


def normalize_with_origin(text: str) -> tuple[str, Sequence[int]]:
    """Like normalize_with_offsets, but origin is a cheap range() when the mapping is 1:1."""
    nfkc, origin, has_upper = _nfkc_with_origin(text)
    simplified = _simplify_same_length(nfkc)
    if has_upper:                       # t2s never makes or removes ASCII letters
        simplified = _lower_ascii(simplified)
    return simplified, origin


def _nfkc_with_origin(text: str) -> tuple[str, Sequence[int], bool]:
    """Per-character NFKC with an origin map; identity origin when no length changes. Also
    says whether the result holds an ASCII capital: the scan that finds the characters NFKC
    changes finds A-Z too, so lower-casing needs no scan of its own."""
    text, growing, has_upper = _fold_scanned(text, False)
    if not growing:
        return text, range(len(text)), has_upper
    return (*_expand_with_origin(text, growing), has_upper)


def _fold_scanned(text: str, has_upper: bool) -> tuple[str, set[str], bool]:
    """_fold_one_for_one over the BMP, then over the astral blocks when the text has any
    astral character."""
    text, growing, has_upper = _fold_one_for_one(text, _BMP_SCAN_RANGES, has_upper)
    if _has_astral(text):
        text, more, has_upper = _fold_one_for_one(text, _ASTRAL_SCAN_RANGES, has_upper)
        growing |= more
    return text, growing, has_upper


def _fold_one_for_one(text: str, ranges: tuple[tuple[int, int], ...], has_upper: bool
                      ) -> tuple[str, set[str], bool]:
    """`text` with every character of `ranges` that NFKC maps to one character replaced
    (offsets unchanged), the characters NFKC maps to several, and whether an ASCII capital
    is in the result (known to be, if `has_upper`).

    A notice holds a handful of distinct unstable characters (full-width punctuation) many
    times over, so each distinct one is found by one search and replaced everywhere at once;
    the next search resumes where the last one stopped. Folds are NFKC-stable, so nothing a
    replacement writes is found again. Capitals stop the search only until the first one."""
    scan = _nfkc_scan_re(ranges, not has_upper).search
    growing: set[str] = set()
    position = 0
    while (found := scan(text, position)) is not None:
        char = found.group()
        position = found.start()
        if char in _ASCII_CAPITALS:
            has_upper = True
            scan = _nfkc_scan_re(ranges, False).search
            continue
        folded = _nfkc_char(char)
        if len(folded) == 1:
            text = text.replace(char, folded)
            if folded in _ASCII_CAPITALS and not has_upper:     # Ａ -> A
                has_upper = True
                scan = _nfkc_scan_re(ranges, False).search
        else:
            growing.add(char)
            has_upper = has_upper or not _ASCII_CAPITALS.isdisjoint(folded)
            position += 1
    return text, growing, has_upper


def _has_astral(text: str) -> bool:
    # A str holding no astral character encodes to exactly two UTF-16 bytes a character;
    # the encoder copies such a string ~2x faster than `re` scans it for one.
    return len(text.encode("utf-16-le", "surrogatepass")) != 2 * len(text)


def _expand_with_origin(text: str, growing: set[str]) -> tuple[str, list[int]]:
    """Replace each char in `growing` by its NFKC form, repeating its index in origin."""
    pattern = re.compile("|".join(map(re.escape, growing)))
    pieces: list[str] = []
    origin: list[int] = []
    last = 0
    for match in pattern.finditer(text):
        start = match.start()
        pieces.append(text[last:start])
        origin.extend(range(last, start))
        folded = _nfkc_char(match.group())
        pieces.append(folded)
        origin.extend([start] * len(folded))
        last = start + 1
    pieces.append(text[last:])
    origin.extend(range(last, len(text)))
    return "".join(pieces), origin


def _simplify_same_length(text: str) -> str:
    """t2s with phrase rules when they keep the length, else char by char (1:1)."""
    if not _traditional_re().search(text):
        return text
    simplified = _to_simplified(text)
    if len(simplified) != len(text):
        # OpenCC phrase rules changed the length somewhere: convert char by char instead,
        # which keeps a 1:1 mapping at the cost of phrase-level accuracy.
        simplified = text.translate(_t2s_char_table())
    return simplified


@functools.cache
def _nfkc_char(char: str) -> str:
    return unicodedata.normalize("NFKC", char)


@functools.cache
def _nfkc_scan_re(ranges: tuple[tuple[int, int], ...], capitals: bool) -> re.Pattern[str]:
    """The characters of `ranges` that NFKC changes, plus ASCII A-Z if `capitals` (see
    _fold_one_for_one). Built on first use, so importing this module stays cheap."""
    codes = _nfkc_unstable(ranges)
    if capitals:
        codes = tuple(sorted({*codes, *map(ord, _ASCII_CAPITALS)}))
    return re.compile(_char_class(list(codes)))


@functools.cache
def _nfkc_unstable(ranges: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    # ~5 ms for the BMP; shared by both scan patterns.
    return tuple(c for lo, hi in ranges for c in range(lo, hi)
                 if not unicodedata.is_normalized("NFKC", chr(c)))


@functools.cache
def _t2s_char_table() -> dict[int, str]:
    # One OpenCC call over all CJK characters, newline-separated so no phrase rule applies.
    chars = [chr(c) for lo, hi in _CJK_SCAN_RANGES for c in range(lo, hi)]
    converted = _to_simplified("\n".join(chars)).split("\n")
    return {ord(a): b for a, b in zip(chars, converted, strict=True) if a != b and len(b) == 1}


@functools.cache
def _traditional_re() -> re.Pattern[str]:
    return re.compile(_char_class(sorted(_t2s_char_table())))


def _char_class(codes: list[int]) -> str:
    """A regex character class for sorted code points, with runs folded into ranges."""
    parts: list[str] = []
    index = 0
    while index < len(codes):
        end = index
        while end + 1 < len(codes) and codes[end + 1] == codes[end] + 1:
            end += 1
        lo, hi = chr(codes[index]), chr(codes[end])
        parts.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")
        index = end + 1
    return "[" + "".join(parts) + "]" if parts else "[^\\s\\S]"


# A crawl worker converts each article twice, for its tags (normalize_with_origin) and for
# its hash (normalize_text), a batch of up to 16 articles apart: the second is a lookup.
# Only texts up to MEMO_MAX_CHARS are kept, so the memo stays under ~10 MB.
MEMO_MAX_CHARS = 20_000


def _to_simplified(text: str) -> str:
    if len(text) > MEMO_MAX_CHARS:
        return _t2s().convert(text)
    return _to_simplified_memo(text)


@functools.lru_cache(maxsize=64)
def _to_simplified_memo(text: str) -> str:
    return _t2s().convert(text)
