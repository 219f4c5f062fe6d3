"""Chinese segmentation for the index: the one module that knows the segmenter.

The segmenter is rjieba (jieba-rs): jieba's dictionary and algorithm in Rust. It loads in
~0.07 s where jieba takes ~0.5 s, which is what keeps a cold `fraudkb search` under 0.2 s,
and it cuts ~20x faster. Index and query time both use it, by construction (below).

Text is normalised with `crawler.textnorm.normalize_with_offsets` (NFKC, traditional ->
simplified, ASCII lower-case), then cut in jieba's precise mode with HMM off, with the
anti-fraud user dictionary added. Every word gets the next position (0, 1, 2, ...; spaces and
punctuation take none), and its character offsets point into the ORIGINAL text.

Words of `MIN_COMPOUND_CHARS` or more CJK characters (屏幕共享, 冒充电商客服) also index the
dictionary words inside them (like jieba's search mode) at the SAME position, so 客服 finds
冒充电商客服 without breaking phrase positions. Words of 2-3 characters are atomic: 马克
matches neither 马克思 nor the 马克 inside 马克思主义 (which indexes 马克思 and 主义).

`JiebaTokenizer` is pickled into the Whoosh schema together with its user terms, so index and
query time segment with the same dictionary by construction. The segmenter is built lazily,
once per process and set of user terms, by `segmenter()`.
"""

from __future__ import annotations

import functools
import logging
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whoosh.analysis import Token, Tokenizer

from crawler.textnorm import normalize_text, normalize_with_offsets

if TYPE_CHECKING:  # imported lazily: loading its dictionary costs ~0.07 s of a cold search
    import rjieba

logger = logging.getLogger(__name__)

CATEGORIES_FILE = Path(__file__).resolve().parents[1] / "seeds" / "categories.toml"
MIN_COMPOUND_CHARS = 4          # words this long also index their dictionary sub-words
USER_TERM_CHARS = (2, 8)        # CJK terms of this many characters go into the dictionary
# Enough weight that a domain term survives in context (转入安全账户 -> 转入 / 安全账户) yet
# cannot steal characters from common words (印刷单位 stays 印刷 / 单位); both tested. Terms
# that are already dictionary words keep their own frequency.
USER_TERM_FREQ = 2000

# Used when seeds/categories.toml is missing: the SPEC's typical signals that jieba splits.
FALLBACK_TERMS = (
    "刷单", "刷单返利", "兼职刷单", "刷信誉", "点赞关注", "做任务", "垫付", "返利",
    "投资理财", "内幕消息", "荐股", "导师带单", "虚拟币", "平台漏洞", "无抵押", "低息贷款",
    "解冻金", "工本费", "刷流水", "快递丢失", "订单异常", "屏幕共享", "百万保障", "公检法",
    "涉嫌洗钱", "通缉令", "安全账户", "资金清查", "注销校园贷", "校园贷", "修复征信",
    "影响征信", "游戏账号", "杀猪盘", "网恋", "优质对象", "冒充领导", "冒充熟人", "虚假网店",
    "付款后失联", "网络赌博", "赌博网站", "裸聊", "不雅视频", "两卡", "断卡", "跑分",
    "帮信罪", "高薪招聘", "入职费", "反诈", "国家反诈中心", "电信网络诈骗",
)

_CJK_TERM = re.compile(r"[\u3400-\u9fff]{{{},{}}}".format(*USER_TERM_CHARS))
_LABEL_SEPARATORS = re.compile(r"[()/|]+")
_WORD_CHAR = re.compile(r"\w")
_ALL_CJK = re.compile(r"[\u3400-\u9fff]+")
# Lone surrogates (from JSON "\\ud800" or surrogateescape) cannot cross into Rust: replace
# them one for one, so offsets stay put.
_SURROGATE = re.compile(r"[\ud800-\udfff]")

Word = tuple[str, int, int, int]   # (normalised text, position, start, end in the original)


def load_user_terms(path: Path | None = CATEGORIES_FILE) -> tuple[str, ...]:
    """Domain terms for the user dictionary: every 2-8 character CJK string (or bracketed or
    slash-separated part) anywhere under `[[category]]` in categories.toml, whatever its
    format; else `FALLBACK_TERMS`. Sorted, so equal files give equal analyzers."""
    if path is None or not path.is_file():
        return tuple(sorted(set(FALLBACK_TERMS)))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        logger.warning("cannot read %s (%s); using the built-in term list", path, exc)
        return tuple(sorted(set(FALLBACK_TERMS)))
    # Labels like 网络婚恋交友类（杀猪盘） or 帮信/两卡 hold several terms; sentences
    # (descriptions) are not split further, so they never become dictionary words.
    found = {piece for s in _strings(data.get("category", []))
             for piece in _LABEL_SEPARATORS.split(normalize_text(s))}
    terms = {t for t in found if _CJK_TERM.fullmatch(t)}
    return tuple(sorted(terms or set(FALLBACK_TERMS)))


def _strings(value: object) -> Iterator[str]:
    """Every string in a TOML value, including table keys (a `keywords = {词 = 2.0}` table)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@functools.cache
def segmenter(user_terms: tuple[str, ...]) -> rjieba.Jieba:
    """jieba's dictionary plus `user_terms`; built once per process (a cached factory)."""
    import rjieba

    segmenter = rjieba.Jieba()
    for term in user_terms:
        if not segmenter.has_word(term):
            segmenter.add_word(term, USER_TERM_FREQ, None)
    return segmenter


def iter_words(text: str, user_terms: tuple[str, ...], *, subwords: bool = True
               ) -> Iterator[Word]:
    """Segment `text`: (normalised word, position, start, end) with offsets into `text`.

    Occurrences of one word never overlap or go backwards (哈哈 in 哈哈哈哈, two words from
    one NFKC-expanded character): Whoosh's offset encoding requires it, so those are dropped.
    """
    last_end: dict[str, int] = {}
    for word, position, start, end in _raw_words(text, user_terms, subwords):
        if start >= last_end.get(word, 0):
            last_end[word] = end
            yield word, position, start, end


def _raw_words(text: str, user_terms: tuple[str, ...], subwords: bool) -> Iterator[Word]:
    norm, origin = normalize_with_offsets(text)
    cutter = segmenter(user_terms)
    position = start = 0
    for piece in cutter.cut(_SURROGATE.sub("\ufffd", norm), False):
        end = start + len(piece)
        if _WORD_CHAR.search(piece):
            yield piece, position, origin[start], origin[end - 1] + 1
            if subwords and is_compound(piece):
                for i, size in _subwords(piece, cutter):
                    yield (piece[i:i + size], position, origin[start + i],
                           origin[start + i + size - 1] + 1)
            position += 1
        start = end


def is_compound(word: str) -> bool:
    """True for words that also index their dictionary sub-words (4+ CJK characters)."""
    return len(word) >= MIN_COMPOUND_CHARS and _ALL_CJK.fullmatch(word) is not None


def _subwords(word: str, cutter: rjieba.Jieba) -> list[tuple[int, int]]:
    """(offset, length) of the dictionary words inside a compound, longest first, except
    2-character ones inside a 3-character one: 3-character words are atomic, so 马克思主义
    gives 马克思 and 主义, never 马克; compounds nest (刷单返利类 gives 刷单返利, 刷单, 返利)."""
    found = [(i, n) for n in range(len(word) - 1, 1, -1) for i in range(len(word) - n + 1)
             if cutter.has_word(word[i:i + n])]
    atomic = {i + k for i, n in found if n == 3 for k in range(3)}
    return [(i, n) for i, n in found if n > 2 or not {i, i + 1} <= atomic]


def query_words(text: str, user_terms: tuple[str, ...]) -> list[str]:
    """The words of a query string, as the index would have cut it (no sub-words)."""
    return [word for word, *_ in iter_words(text, user_terms, subwords=False)]


class JiebaTokenizer(Tokenizer):
    """Whoosh tokenizer over `iter_words`: sequential positions, offsets into the original.

    Index mode adds compound sub-words; query mode (`mode="query"`) gives precise words only.
    Picklable (Whoosh stores it in the index): its only state is the user-term tuple.
    """

    def __init__(self, user_terms: tuple[str, ...] = ()) -> None:
        self.user_terms = tuple(user_terms)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.user_terms == self.user_terms

    def __hash__(self) -> int:
        return hash(self.user_terms)

    def __call__(self, value: str, positions: bool = False, chars: bool = False,
                 keeporiginal: bool = False, removestops: bool = True, start_pos: int = 0,
                 start_char: int = 0, tokenize: bool = True, mode: str = "",
                 **kwargs: Any) -> Iterator[Token]:
        """Yield one reused Token per word (Whoosh's protocol: consumers copy what they keep)."""
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        words: Iterator[Word] = (
            iter_words(value, self.user_terms, subwords=mode != "query") if tokenize
            else iter([(normalize_text(value), 0, 0, len(value))]))
        for text, position, start, end in words:
            token.text = text
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = value[start:end]
            if positions:
                token.pos = start_pos + position
            if chars:
                token.startchar, token.endchar = start_char + start, start_char + end
            yield token
