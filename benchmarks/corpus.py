"""Synthetic Chinese notice text shared by the benchmarks: words drawn from jieba's dictionary
by frequency, with the taxonomy's anti-fraud terms mixed in (1 word in 40), so segmentation,
indexing and near-duplicate detection see realistic vocabulary. Deterministic for a seed."""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import accumulate
from pathlib import Path

from crawler.taxonomy import KNOWN_CATEGORY_IDS

CATEGORIES = KNOWN_CATEGORY_IDS
SOURCES = ("police-bj", "police-sh", "campus-pku", "gov-mps", "news-xinhua")
PUNCTUATION = "，，，。。、；！？"
FRAUD_TERM_SHARE = 0.025


class WordSampler:
    """Dictionary words by frequency, with the fraud terms mixed in."""

    def __init__(self, rng: random.Random, fraud_terms: Sequence[str]) -> None:
        import jieba  # the benchmarks' own dependency (pip install -e '.[bench]')

        words, weights = [], []
        for line in (Path(jieba.__file__).parent / "dict.txt").read_text("utf-8").splitlines():
            word, freq, *_ = line.split(" ")
            words.append(word)
            weights.append(int(freq))
        self.rng, self.words, self.fraud = rng, words, list(fraud_terms)
        self.cum = list(accumulate(weights))

    def words_for(self, count: int) -> list[str]:
        """`count` words, each a fraud term with probability FRAUD_TERM_SHARE."""
        picked = self.rng.choices(self.words, cum_weights=self.cum, k=count)
        return [self.rng.choice(self.fraud) if self.rng.random() < FRAUD_TERM_SHARE else w
                for w in picked]

    def sentence(self) -> str:
        """4-12 words and a punctuation mark."""
        return "".join(self.words_for(self.rng.randint(4, 12))) + self.rng.choice(PUNCTUATION)
