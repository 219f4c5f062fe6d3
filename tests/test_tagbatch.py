"""Tagger.tag_many (crawler.tagbatch) against tag(), the reference: the same Tags, and the
same unrounded scores to the bit, on every kind of text we have or can make up.

Always compared live: the taxonomy (seeds/categories.toml) changes under us, stored
outputs would not.
"""

from __future__ import annotations

import bisect
import importlib.util
import json
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.tag import Tagger, build_matcher
from crawler.tagbatch import score_batch, tag_batch
from crawler.tagbatchterms import outermost
from crawler.tagscore import _outermost, route, score_categories
from crawler.taxonomy import Term, load_taxonomy, parse_taxonomy
from crawler.textnorm import normalize_with_origin

ROOT = Path(__file__).resolve().parents[1]
LABELLED = [ROOT / "tests" / "data" / f"{name}.jsonl"
            for name in ("tag_dev", "tag_holdout", "tag_blind2")]

# Every rule the batch path re-implements, in a few terms: exclusions (of keywords,
# negatives and combo terms), negatives (one also a keyword), runs of 3+ overlapping hits
# (兼职刷单返利), a self-overlapping key (哈哈 in 哈哈哈), a key shared by two categories,
# windowed and window-0 combos of 2 and 3 groups, a nestable combo (兼职 + 刷单 inside
# 兼职刷单), several combos firing in one category with weights whose float sum depends
# on their order (0.1 + 0.2 + 0.4 is not 0.1 + 0.4 + 0.2), one key under two term texts
# (ＱＱ and QQ: evidence keeps both, sorted by text), a short length reference (damping), a
# secondary ratio, and a title bonus and repeat gain for which 1 + gain * ln(n) + bonus
# rounds differently when added in another order (n = 6, 8, 12, ...).
EDGE = """\
version = 1

[scoring]
title_bonus = 0.7
repeat_gain = 0.3
length_reference = 60
secondary_ratio = 0.4

[[category]]
id = "brushing_rebate"
name = "刷单返利类"
description = "test"
exclude = ["刷单返利骗局", "不是兼职"]

[category.keywords]
"刷单" = 3.0
"兼职刷单" = 4.0
"刷单返利" = 3.0
"返利" = 0.7
"兼职" = 1.1
"垫付" = 0.9
"哈哈" = 0.3
"做兼职垫付" = 0.5

[category.negative]
"打击刷单" = 2.0
"刷单违法" = 0.6
"返利" = 0.2

[[category.combo]]
all = [["做任务", "派单"], ["垫付", "充值"]]
weight = 0.7
window = 20

[[category.combo]]
all = [["兼职"], ["刷单"]]
weight = 0.1

[[category.combo]]
all = [["派单", "接单"], ["充值"], ["提现", "返现"]]
weight = 0.2
window = 10

[[category.combo]]
all = [["返利"], ["垫付", "充值"]]
weight = 0.3

[[category]]
id = "fake_investment"
name = "虚假投资理财类"
description = "test"
threshold = 2.5
exclude = ["招商投资", "投资理财课", "充值返现"]

[category.keywords]
"投资" = 1.0
"高收益" = 2.0
"导师带单" = 3.0
"刷单" = 0.5
"投资理财" = 2.0
"稳赚" = 1.3

[category.negative]
"同比增长" = 1.5
"理财" = 0.4

[[category.combo]]
all = [["导师", "老师"], ["带单", "喊单"]]
weight = 0.1
window = 5

[[category.combo]]
all = [["投资"], ["高收益"], ["稳赚"]]
weight = 0.2

[[category.combo]]
all = [["投资"], ["充值"]]
weight = 0.7
window = 30

[[category]]
id = "fake_customer_service"
name = "冒充客服类"
description = "test"
threshold = 2.0
exclude = ["加急办理"]

[category.keywords]
"客服" = 1.0
"退款" = 1.5
"理赔" = 2.0
"ＱＱ" = 0.6

[[category.combo]]
all = [["客服"], ["退款", "理赔"]]
weight = 0.3
window = 15

[[category.combo]]
all = [["客服"], ["QQ"]]
weight = 0.7
window = 3

[[category.combo]]
all = [["单"], ["派单充", "充"]]
weight = 0.2
window = 5

[[category.combo]]
all = [["办理"], ["流程"]]
weight = 0.4

[[category.combo]]
all = [["办理"], ["加急", "手续费"]]
weight = 0.2

[[category.combo]]
all = [["专员"], ["回电"]]
weight = 0.1
"""

# What the soups are made of besides terms: traditional and full-width forms, characters
# NFKC lengthens (…, ①, ﬁ, ㈱, 𝐀) or folds (Ａ, ，), capitals, whitespace, filler.
ODD = ["…", "ＱＱ", "GOIP", "QQ", "Usdt", "刷單", "兼職", "墊付", "導師帶單", "穩賺", "銀行",
       "發現", "，", "①", "㈱", "ﬁ", "Ａ", "\U0001d400", "著名", " ", "\n", "　"]
FILLER = ["的", "了", "我们", "今天", "元", "。", "对方", "要求", "后", "再", "，"]
BATCH_SIZES = [0, 1, 2, 5, 17, 64, 150]


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return build_matcher(load_taxonomy(ROOT / "seeds" / "categories.toml"))


@pytest.fixture(scope="module")
def edge() -> Tagger:
    return build_matcher(parse_taxonomy(EDGE))


def _reference_scores(tagger: Tagger, text: str, title: str) -> dict[str, float]:
    """tag()'s scores before rounding: its own steps up to score_categories."""
    normalised, origin = normalize_with_origin(f"{title}\n{text}" if title else text)
    title_end = bisect.bisect_left(origin, len(title)) if title else 0
    plan = tagger._plan
    scored = score_categories(plan, route(plan, tagger._find(normalised)), title_end,
                              len(normalised) - title_end, tagger.taxonomy.scoring)
    return {category.id: score for category, score, _, _ in scored}


def _assert_batch_is_tag(tagger: Tagger, texts: Sequence[str],
                         titles: Sequence[str] | None = None) -> None:
    """tag_batch == tag() per text: Tags equal, key orders equal, float types, and the
    unrounded scores bit for bit."""
    pairs = list(zip(texts, titles or [""] * len(texts), strict=True))
    got = tag_batch(tagger, texts, titles)
    assert len(got) == len(texts)
    for (text, title), tags in zip(pairs, got, strict=True):
        want = tagger.tag(text, title)
        assert tags == want, (text, title)
        assert list(tags.scores) == list(want.scores), (text, title)
        assert list(tags.evidence) == list(want.evidence), (text, title)
        assert all(type(score) is float for score in tags.scores.values())
    raw = score_batch(tagger, texts, titles)
    for (text, title), scores in zip(pairs, raw, strict=True):
        assert scores == _reference_scores(tagger, text, title), (text, title)


def _in_batches(tagger: Tagger, texts: list[str], titles: list[str], seed: int) -> None:
    """Compare in batches of mixed sizes, empty ones included."""
    rng = random.Random(seed)
    at = 0
    while at < len(texts):
        size = rng.choice(BATCH_SIZES)
        _assert_batch_is_tag(tagger, texts[at:at + size], titles[at:at + size])
        at += size


def _terms(tagger: Tagger) -> list[str]:
    """Every term text of the taxonomy: keywords, negatives, excludes and combo terms."""
    return sorted({term.text for category in tagger.taxonomy.categories
                   for term in (*category.keywords, *category.negatives, *category.excludes,
                                *(term for combo in category.combos
                                  for group in combo.groups for term in group))})


def _soups(tagger: Tagger, count: int, seed: int) -> tuple[list[str], list[str]]:
    """Dense texts of terms, odd characters and filler, with and without titles."""
    rng = random.Random(seed)
    terms = _terms(tagger)
    texts, titles = [], []
    for _ in range(count):
        pieces = [rng.choice(terms) if roll < 0.5 else rng.choice(ODD) if roll < 0.7
                  else rng.choice(FILLER)
                  for roll in (rng.random() for _ in range(rng.choice([0, 1, 3, 10, 40, 200])))]
        text = "".join(pieces)
        texts.append(text)
        titles.append(rng.choice(["", "", text[:rng.randint(1, 30)], rng.choice(terms),
                                  "ＱＱ群…刷單"]))
    return texts, titles


def _bench_tag():
    """benchmarks/bench_tag.py as a module (benchmarks/ is not an installed package)."""
    spec = importlib.util.spec_from_file_location("bench_tag", ROOT / "benchmarks" /
                                                  "bench_tag.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the live taxonomy -------------------------------------------------------------------------

def test_batch_tags_every_labelled_text_as_tag_does(tagger: Tagger):
    texts = [json.loads(line)["text"] for path in LABELLED
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(texts) > 600
    _in_batches(tagger, texts, [""] * len(texts), seed=1)
    titles = [text[:(index % 23) + 2] if index % 3 else "" for index, text in enumerate(texts)]
    _in_batches(tagger, texts, titles, seed=2)


def test_batch_tags_benchmark_notices_as_tag_does(tagger: Tagger):
    bench = _bench_tag()
    notices = (bench.generate_notices(tagger.taxonomy, 0.15, 5)
               + bench.written_notices(0.1, 5))
    titles = ["" if index % 2 else "警惕刷单返利" for index in range(len(notices))]
    for at in range(0, len(notices), 64):
        _assert_batch_is_tag(tagger, notices[at:at + 64], titles[at:at + 64])


def test_batch_tags_dense_term_soups_as_tag_does(tagger: Tagger):
    texts, titles = _soups(tagger, 3000, seed=3)
    _in_batches(tagger, texts, titles, seed=4)


def test_empty_texts_titles_only_and_empty_batches(tagger: Tagger):
    assert tag_batch(tagger, []) == [] == tagger.tag_many([])
    _assert_batch_is_tag(tagger, [""])
    _assert_batch_is_tag(tagger, ["", "", "兼职刷单"], ["", "刷单返利", ""])
    _assert_batch_is_tag(tagger, ["", "。"], ["冒充公检法", "ＱＱ…"])
    _assert_batch_is_tag(tagger, ["今天天气很好", "没有任何关键词"])


def test_tag_many_is_tag_for_small_and_big_batches(tagger: Tagger):
    texts, titles = _soups(tagger, 40, seed=5)
    for size in (1, 3, 40):                         # text by text, then batched
        assert tagger.tag_many(texts[:size], titles[:size]) == [
            tagger.tag(text, title) for text, title in zip(texts[:size], titles[:size],
                                                           strict=True)]
    assert tagger.tag_many(texts) == [tagger.tag(text) for text in texts]


def test_titles_must_pair_with_texts(tagger: Tagger):
    with pytest.raises(ValueError, match="2 texts but 1 titles"):
        tagger.tag_many(["刷单", "投资"], ["标题"])
    with pytest.raises(ValueError, match="2 texts but 1 titles"):
        tag_batch(tagger, ["刷单", "投资"], ["标题"])


# -- the edge taxonomy -------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "兼职刷单返利",                         # a run of five overlapping hits
    "做兼职垫付",                           # three: the first-ranked keeps a disjoint one
    "兼职垫付",                             # three: the middle one is the longest
    "刷单返利骗局刷单，不是兼职刷单",       # exclusions void keywords and combo terms
    "哈哈哈哈哈",                           # hits of one key overlapping each other
    "派单后要求充值再提现",                 # three groups within the window
    "派单" + "。" * 12 + "充值提现",        # ... and out of it
    "充值。派单。充值",                     # two partners equally near: the first
    "导师带单高收益投资稳赚",               # window-0 combo of three groups
    "兼职刷单",                             # nestable combo inside its keyword: void
    "兼职，刷单",                           # ... and outside: fires
    "客服QQ退款ＱＱ",                       # one key, two term texts in the evidence
    "投资充值高收益稳赚派单垫付返利接单提现",  # many combos of two categories fire
    "打击刷单，刷单违法，返利返利",         # negatives, one also a keyword
    "招商投资高收益，投资理财课，稳赚",     # exclusions of a second category
    "老师喊单，充值返现。投资高收益稳赚充值",  # equal first hits after exclusion ...
    "专员回电，加急办理。办理流程手续费",   # ... the first before it orders the sum:
                                            # 0.1 + 0.2 + 0.4, not 0.1 + 0.4 + 0.2
    "派单充",                               # equidistant partners ending together
    "刷单，" * 7,                           # 8 hits with the title's: 1 + 0.3 ln 8 + 0.7
])
def test_edge_rules_batch_as_tag_does(edge: Tagger, text: str):
    _assert_batch_is_tag(edge, [text, text + "。" * 70], [text[:3], ""])


def test_edge_soups_batch_as_tag_does(edge: Tagger):
    texts, titles = _soups(edge, 3000, seed=6)
    _in_batches(edge, texts, titles, seed=7)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(
    ["兼职", "刷单", "返利", "垫付", "充值", "派单", "提现", "投资", "高收益", "稳赚", "导师",
     "带单", "客服", "QQ", "ＱＱ", "退款", "招商", "骗局", "打击", "哈", "…", "①", "，", "。"]),
    max_size=30).map("".join), max_size=6))
def test_any_batch_of_edge_texts_is_tagged_as_tag_does(texts: list[str]):
    _assert_batch_is_tag(build_matcher(parse_taxonomy(EDGE)), texts,
                         [text[:4] for text in texts])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 8),
                          st.sampled_from([0.5, 1.0, 2.0, 3.0])),
                max_size=30, unique_by=lambda hit: hit[:2]))
def test_overlapping_hits_settle_as_tagscore_settles_them(hits: list[tuple[int, int, float]]):
    # Runs of every shape (pairs, threes around any hub, longer chains) on one category.
    spans = sorted((start, start + length, Term("t", "t", weight))
                   for start, length, weight in hits)
    start = np.array([span[0] for span in spans], np.int64)
    end = np.array([span[1] for span in spans], np.int64)
    weight = np.array([span[2].weight for span in spans])
    kept = outermost(start, end, weight, start, end) if spans else None
    got = spans if kept is None else [span for span, keep in zip(spans, kept, strict=True)
                                      if keep]
    assert got == (_outermost(spans) if spans else [])


def test_batches_are_joined_by_a_character_no_key_contains():
    # A key holding the first separator candidate: the batch picks another one, and a
    # text ending in half that key does not match it with the next text's start.
    odd = EDGE.replace('"哈哈" = 0.3', '"哈\\u0000哈" = 2.9')
    tagger = build_matcher(parse_taxonomy(odd))
    assert tagger._batch_plan().separator not in ("\x00", None)
    _assert_batch_is_tag(tagger, ["哈", "哈", "刷单哈\x00哈", "\x00哈"])


def test_importing_and_tagging_one_text_does_not_load_numpy():
    code = ("import sys\nfrom crawler.tag import build_matcher\n"
            "from crawler.taxonomy import parse_taxonomy\n"
            f"build_matcher(parse_taxonomy({EDGE!r})).tag('兼职刷单')\n"
            "print('numpy' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                            capture_output=True, text=True)
    assert result.stdout.strip() == "False"
