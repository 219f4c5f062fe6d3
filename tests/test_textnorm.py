"""crawler.textnorm's fast NFKC and the digests built on it: the content hash must stay
byte-for-byte what it was (corpora compare stored hashes to find changed articles)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.digest import detect_lang, text_hash
from crawler.textnorm import _lower_ascii, _to_simplified, count_traditional, nfkc

DATA = Path(__file__).parent / "data"

# Characters whose NFKC depends on their neighbours or changes length: combining marks,
# Hangul jamo that compose, half-width katakana with voiced marks, ligatures, full-width
# and astral letters, plus plain Chinese around them.
TRICKY = ("e\u0301\u0327\u0308\u0323\u1100\u1161\u11a8가ﾊﾟｶﾞｳﾞ…①ﬁ㍿㈱ǅÅΩK"
          "ḱ̇ＡＢ，。！\U0001d400\U0001f100的我元刷單銀行 \n")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(TRICKY) | st.characters(), max_size=40))
def test_nfkc_equals_unicodedata(text: str) -> None:
    assert nfkc(text) == unicodedata.normalize("NFKC", text)


def _reference_hash(text: str) -> str:
    """The content hash as first defined: whole-string NFKC, OpenCC t2s, ASCII lower-cased,
    whitespace removed."""
    normalised = _lower_ascii(_to_simplified(unicodedata.normalize("NFKC", text)))
    return hashlib.sha1(re.sub(r"\s+", "", normalised).encode("utf-8")).hexdigest()


def test_text_hash_is_unchanged_on_written_texts() -> None:
    texts = [json.loads(line)["text"]
             for name in ("tag_dev.jsonl", "tag_holdout.jsonl")
             for line in (DATA / name).read_text(encoding="utf-8").splitlines()]
    texts += ["ＧＯＩＰ設備…①", "e\u0301 가\u11a8 ﾊﾟ", "乾燥的天氣"]
    assert [text_hash(t) for t in texts] == [_reference_hash(t) for t in texts]


def test_detect_lang_threshold_is_over_five_percent_of_cjk_characters() -> None:
    simplified = ("我们提醒广大市民注意安全" * 8)[:95]
    traditional = "銀帳戶網絡發"
    assert detect_lang(simplified) == "zh-Hans"
    assert detect_lang(traditional + simplified[:94]) == "zh-Hant"      # 6 of 100
    assert detect_lang(traditional[:5] + simplified) == "zh-Hans"       # 5 of 100: not over
    assert detect_lang("ASCII only, no CJK") == "zh-Hans"


def test_count_traditional_stops_at_enough() -> None:
    assert count_traditional("銀行帳戶網絡", 100) == 5
    assert count_traditional("銀行帳戶網絡", 2) == 2  # 行 is both
    assert count_traditional("银行账户网络", 100) == 0
