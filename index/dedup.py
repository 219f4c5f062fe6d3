"""Near-duplicate groups of the corpus: reposts of one notice share a group key.

    text --normalise, drop whitespace/punctuation--> string of letters
         --exact hash--> union with every earlier text that is identical
         --character n-grams (3 by default)--> one-permutation MinHash signature
         --datasketch MinHashLSH candidates, verified by estimated Jaccard--> union
    groups(): {doc id: group key}, the key being the smallest member id

Why character n-grams: Chinese has no spaces, and a 3-character window is the shortest that
is rarely shared by unrelated notices (2-grams such as 诈骗/民警 are in all of them).

Why one-permutation hashing: datasketch's MinHash.update_batch costs ~2.8 ms for a 1,500-char
notice (128 permutations x ~1,500 shingles), 280 s per 100k documents. Hashing each shingle
once and keeping the minimum per bin (Li, Owen & Zhang 2012), with empty bins filled from a
fixed donor sequence ("optimal densification", Shrivastava 2017), gives an estimator of the
same Jaccard similarity in ~0.05 ms; datasketch's MinHashLSH indexes the signatures.

Short texts: a text with fewer than `min_shingles` distinct shingles is grouped only by exact
hash: a handful of shingles (most of them template words) would make unrelated short notices
look alike. Every LSH candidate pair is verified by its estimated Jaccard >= threshold.

The partition does not depend on insertion order (candidates are symmetric), and the group key
is the smallest member id, so a re-export of the same corpus yields the same keys.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
from datasketch import MinHashLSH

from crawler.textnorm import normalize_with_origin

_NOT_LETTER = re.compile(r"[\W_]+")     # whitespace and punctuation (CJK ideographs are \w)
_CODE_BITS = 21                          # every Unicode code point fits in 21 bits
_VALUE_BITS = 32                         # signature values are uint32: half the memory
_DONOR_ATTEMPTS = 64                     # P(bin still empty) <= 0.77**64 at min_shingles=30
_SPLITMIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


@dataclass(frozen=True, slots=True)
class DedupConfig:
    """How near-duplicates are found. Defaults calibrated on planted reposts (see tests)."""

    threshold: float = 0.7          # estimated Jaccard of shingle sets to call two texts reposts
    shingle_chars: int = 3          # n of the character n-grams (2 or 3 suit Chinese)
    num_perm: int = 128             # signature length (a power of two: bins of the hash)
    min_shingles: int = 30          # fewer distinct shingles: exact-hash grouping only
    seed: int = 1                   # donor sequence of empty bins; part of the signature


def letters_only(text: str) -> str:
    """The normalised text without whitespace and punctuation: what similarity compares."""
    normalised, _ = normalize_with_origin(text)   # skips OpenCC on simplified-only text
    return _NOT_LETTER.sub("", normalised)


def shingle_codes(letters: str, size: int) -> np.ndarray:
    """Every character n-gram of `letters` packed losslessly into one uint64 (with repeats)."""
    points = np.frombuffer(letters.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    count = len(points) - size + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    codes = np.zeros(count, dtype=np.uint64)
    for offset in range(size):
        codes = (codes << np.uint64(_CODE_BITS)) | points[offset:offset + count]
    return codes


def _mix(codes: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads packed n-grams uniformly over 64 bits (wrapping math)."""
    z = codes + np.uint64(_SPLITMIX[0])
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_SPLITMIX[1])
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_SPLITMIX[2])
    return z ^ (z >> np.uint64(31))


def _distinct_count(ordered: np.ndarray) -> int:
    """Distinct values of a sorted array."""
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1 if len(ordered) else 0


class _Sketch:
    """The two things MinHashLSH reads from a MinHash: hashvalues and len()."""

    __slots__ = ("hashvalues",)

    def __init__(self, hashvalues: np.ndarray) -> None:
        self.hashvalues = hashvalues

    def __len__(self) -> int:
        return len(self.hashvalues)


class _DisjointSets:
    """Union-find over document ids, with path halving."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def add(self, item: str) -> None:
        self._parent.setdefault(item, item)

    def find(self, item: str) -> str:
        parent = self._parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: str, b: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self._parent[max(root_a, root_b)] = min(root_a, root_b)

    def items(self) -> list[str]:
        return list(self._parent)


class DuplicateFinder:
    """Collects documents one at a time; groups() partitions them into near-duplicate groups.

    Memory: texts are not kept; a signature is 512 bytes (uint32 x 128), but datasketch's
    in-memory LSH tables (a set per band bucket) bring it to ~7 KB per document: ~0.7 GB
    per 100k (benchmarks/bench_export.py). Freed with the finder."""

    def __init__(self, config: DedupConfig = DedupConfig()) -> None:
        if config.num_perm & (config.num_perm - 1) or not 8 <= config.num_perm <= 1024:
            raise ValueError("num_perm must be a power of two between 8 and 1024")
        if not 0.0 < config.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        if config.min_shingles < 1 or config.shingle_chars < 1:
            raise ValueError("min_shingles and shingle_chars must be at least 1")
        self.config = config
        # Candidates are verified afterwards, so weigh missed pairs over extra candidates.
        self._lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm,
                               weights=(0.3, 0.7))
        self._sets = _DisjointSets()
        self._by_hash: dict[bytes, str] = {}
        self._signatures: dict[str, np.ndarray] = {}
        self._bin_shift = np.uint64(64 - (config.num_perm.bit_length() - 1))
        rng = np.random.default_rng(config.seed)
        self._donors = rng.integers(0, config.num_perm, (_DONOR_ATTEMPTS, config.num_perm))
        self.near_pairs = 0          # verified LSH pairs (diagnostics for the card)

    def add(self, doc_id: str, text: str) -> None:
        """Add one document; ids must be unique."""
        self._sets.add(doc_id)
        letters = letters_only(text)
        if letters:
            digest = hashlib.sha1(letters.encode("utf-8")).digest()
            twin = self._by_hash.setdefault(digest, doc_id)
            if twin != doc_id:
                self._sets.union(doc_id, twin)
                return                      # the twin already stands for this text in the LSH
        hashed = np.sort(_mix(shingle_codes(letters, self.config.shingle_chars)))
        if _distinct_count(hashed) >= self.config.min_shingles:
            self._add_near(doc_id, self.signature(hashed))

    def _add_near(self, doc_id: str, signature: np.ndarray) -> None:
        sketch = _Sketch(signature)
        for other in self._lsh.query(sketch):
            if self.similarity(signature, self._signatures[other]) >= self.config.threshold:
                self.near_pairs += 1
                self._sets.union(doc_id, other)
        self._lsh.insert(doc_id, sketch, check_duplication=False)
        self._signatures[doc_id] = signature

    def signature(self, hashed: np.ndarray) -> np.ndarray:
        """One-permutation MinHash of sorted, mixed shingle codes, empty bins densified."""
        bins = (hashed >> self._bin_shift).astype(np.intp)
        first = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
        values = (hashed >> (self._bin_shift - np.uint64(_VALUE_BITS))).astype(np.uint32)
        signature = np.zeros(self.config.num_perm, dtype=np.uint32)
        filled = np.zeros(self.config.num_perm, dtype=bool)
        signature[bins[first]] = values[first]
        filled[bins[first]] = True
        return self._densify(signature, filled)

    def _densify(self, signature: np.ndarray, filled: np.ndarray) -> np.ndarray:
        """Each empty bin copies the first filled bin of its own fixed donor sequence, so two
        texts with the same filled bins fill their empty ones alike (an unbiased estimate)."""
        empty = np.flatnonzero(~filled)
        for attempt in range(_DONOR_ATTEMPTS):
            if not len(empty):
                break
            donors = self._donors[attempt, empty]
            found = filled[donors]
            signature[empty[found]] = signature[donors[found]]
            empty = empty[~found]
        signature[empty] = signature[np.argmax(filled)]     # practically never reached
        return signature

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> float:
        """Estimated Jaccard similarity of the two shingle sets behind two signatures."""
        return float(np.count_nonzero(a == b)) / len(a)

    def groups(self) -> dict[str, str]:
        """{doc id: group key}; the key is the group's smallest id (stable across runs)."""
        return {item: self._sets.find(item) for item in self._sets.items()}
