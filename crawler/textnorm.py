"""The one place text is normalised for matching (tagging) and search (index).

Normalisation = NFKC (full-width ASCII and punctuation -> half-width, compatibility forms)
followed by traditional -> simplified (OpenCC t2s). The offsets variant maps every character
of the normalised text back to its position in the original, so evidence and highlights
point at what the user actually wrote.

Speed (the tagger normalises every crawled page): the offsets variant does no per-character
Python work for the common cases. Characters that NFKC changes one-for-one (full-width
punctuation such as "，" -> ",") are replaced with str.replace, keeping the identity mapping;
only characters whose NFKC form has another length ("…" -> "...") take the slow path.
OpenCC runs only when the text holds a character that t2s changes on its own.
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
_ASTRAL_CHAR = re.compile("[\U00010000-\U0010ffff]")

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
    return _lower_ascii(_to_simplified(unicodedata.normalize("NFKC", text)))


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
    says whether the result holds an ASCII capital: the one scan that finds the characters
    NFKC changes finds A-Z too, so lower-casing needs no scan of its own."""
    found = set(_nfkc_scan_re(_BMP_SCAN_RANGES).findall(text))
    if _ASTRAL_CHAR.search(text):
        found.update(_nfkc_scan_re(_ASTRAL_SCAN_RANGES).findall(text))
    unstable = found - _ASCII_CAPITALS
    has_upper = len(unstable) != len(found) or any(
        not _ASCII_CAPITALS.isdisjoint(_nfkc_char(c)) for c in unstable)
    if not unstable:
        return text, range(len(text)), has_upper
    growing = {c for c in unstable if len(_nfkc_char(c)) != 1}
    for char in unstable - growing:
        text = text.replace(char, _nfkc_char(char))     # 1:1, so offsets are unchanged
    if not growing:
        return text, range(len(text)), has_upper
    return (*_expand_with_origin(text, growing), has_upper)


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
def _nfkc_scan_re(ranges: tuple[tuple[int, int], ...]) -> re.Pattern[str]:
    """The characters of `ranges` that NFKC changes, plus ASCII A-Z (see _nfkc_with_origin).
    Built once on first use (~30 ms), so importing this module stays cheap."""
    codes = [c for lo, hi in ranges for c in range(lo, hi)
             if not unicodedata.is_normalized("NFKC", chr(c))]
    return re.compile(_char_class(sorted({*codes, *map(ord, _ASCII_CAPITALS)})))


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


def _to_simplified(text: str) -> str:
    return _t2s().convert(text)
