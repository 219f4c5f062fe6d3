"""Load and validate seeds/categories.toml into frozen records (the scam taxonomy).

The file format is documented in the comment header of seeds/categories.toml. Validation is
strict: anything the tagger would silently misread (an unknown key, a weight of "3", a
duplicate id) raises ConfigError naming the file, the line and the problem.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.errors import ConfigError
from crawler.textnorm import normalize_text

# The stable category ids of SPEC.md; `tag`, `search --category` and `export` rely on them.
KNOWN_CATEGORY_IDS = (
    "brushing_rebate", "fake_investment", "fake_loan", "fake_customer_service",
    "impersonate_authority", "fake_credit", "game_trading", "romance_scam",
    "impersonate_acquaintance", "fake_shopping", "online_gambling", "sextortion",
    "money_mule", "fake_job",
)
MAX_WEIGHT = 10.0               # one term deciding alone needs ~threshold; 10 is far past it
MAX_TERM_CHARS = 40             # a "term" longer than this is a sentence, not a keyword
_TOP_KEYS = {"version", "scoring", "category"}
_CATEGORY_KEYS = {"id", "name", "description", "threshold", "exclude", "keywords",
                  "negative", "combo"}
_COMBO_KEYS = {"all", "weight", "window"}
_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


@dataclass(frozen=True, slots=True)
class Term:
    """A term as written in the file (shown as evidence) and as matched (normalised)."""

    text: str
    key: str
    weight: float = 0.0


@dataclass(frozen=True, slots=True)
class Combo:
    """A co-occurrence rule: `weight` once when every group has a hit within `window`."""

    groups: tuple[tuple[Term, ...], ...]
    weight: float
    window: int = 0                     # characters; 0 = anywhere in the text


@dataclass(frozen=True, slots=True)
class Category:
    """One scam type with its weighted rules."""

    id: str
    name: str
    description: str
    threshold: float
    keywords: tuple[Term, ...]
    negatives: tuple[Term, ...] = ()
    excludes: tuple[Term, ...] = ()
    combos: tuple[Combo, ...] = ()


@dataclass(frozen=True, slots=True)
class Scoring:
    """Global scoring knobs; defaults here, overridden by the file's [scoring] table."""

    title_bonus: float = 1.0            # a title hit adds title_bonus x the term's weight
    repeat_gain: float = 0.5            # n hits of a term count 1 + repeat_gain * ln(n)
    length_reference: int = 800         # chars; a typical single-case notice is shorter
    length_damping: float = 0.4         # score /= 1 + damping * ln(len / reference)
    default_threshold: float = 3.0
    primary_margin: float = 0.7         # near-best categories compete for primary by position
    secondary_ratio: float = 0.0        # other categories need >= ratio x the best score


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """The whole taxonomy, categories in file order."""

    version: int
    categories: tuple[Category, ...]
    scoring: Scoring = Scoring()
    path: str = ""


def default_categories_path() -> Path:
    """$FRAUDKB_CATEGORIES, else ./seeds/categories.toml if present, else the repo copy."""
    override = os.environ.get("FRAUDKB_CATEGORIES")
    if override:
        return Path(override)
    local = Path("seeds") / "categories.toml"
    if local.is_file():
        return local
    return Path(__file__).resolve().parents[1] / "seeds" / "categories.toml"


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Read and validate a categories.toml; raise ConfigError(path, problem, line)."""
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read the file: {exc}") from exc
    return parse_taxonomy(source, path)


def parse_taxonomy(source: str, path: str | Path = "<string>") -> Taxonomy:
    """Validate TOML text as a taxonomy; `path` is only used in error messages."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION.search(str(exc))
        problem = _TOML_POSITION.sub("", str(exc)).strip()
        raise ConfigError(path, f"TOML syntax error: {problem}",
                          int(found.group(1)) if found else None) from exc
    return _Validator(source, str(path)).taxonomy(data)


def _mentions_key(line: str, key: str) -> bool:
    """Does this line define `key` (bare or quoted) or open a [category.key] table?"""
    quoted = re.escape(key)
    return bool(re.match(rf"""\s*(["']{quoted}["']|{quoted})\s*=""", line)
                or re.match(rf"\s*\[+\s*category\.{quoted}\s*\]", line))


class _Validator:
    """Turns parsed TOML into records; knows where each category starts for line numbers."""

    def __init__(self, source: str, path: str) -> None:
        self.path = path
        self.lines = source.splitlines()
        self.starts = [n for n, line in enumerate(self.lines, 1)
                       if re.match(r"\s*\[\[\s*category\s*\]\]", line)]

    # -- errors and line lookup ------------------------------------------------------------
    def fail(self, problem: str, index: int | None = None, key: str | None = None) -> ConfigError:
        """A ConfigError at the line of `key` inside category `index` (or the file top)."""
        return ConfigError(self.path, problem, self.line_of(index, key))

    def line_of(self, index: int | None, key: str | None) -> int | None:
        """Best-effort line of `key` in category block `index`; the block start otherwise."""
        if index is None:
            first, last = 1, (self.starts[0] - 1 if self.starts else len(self.lines))
        elif index < len(self.starts):
            first = self.starts[index]
            last = self.starts[index + 1] - 1 if index + 1 < len(self.starts) else len(self.lines)
        else:
            return None
        if key is not None:
            for number in range(first, last + 1):
                if _mentions_key(self.lines[number - 1], key):
                    return number
        return first if index is not None else None

    # -- top level --------------------------------------------------------------------------
    def taxonomy(self, data: dict[str, Any]) -> Taxonomy:
        """Validate the whole document."""
        self.check_keys(data, _TOP_KEYS, None, "top level")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise self.fail("`version` must be a positive integer at the top of the file",
                            None, "version")
        scoring = self.scoring(data.get("scoring", {}))
        raw = data.get("category")
        if not isinstance(raw, list) or not raw:
            raise self.fail("no [[category]] tables: the taxonomy needs at least one")
        categories = tuple(self.category(entry, i, scoring) for i, entry in enumerate(raw))
        self.check_unique_ids(categories)
        return Taxonomy(version=version, categories=categories, scoring=scoring, path=self.path)

    def scoring(self, table: Any) -> Scoring:
        """Validate [scoring]; missing keys keep the defaults of Scoring."""
        defaults = Scoring()
        if not isinstance(table, dict):
            raise self.fail("[scoring] must be a table", None, "scoring")
        self.check_keys(table, set(Scoring.__slots__), None, "[scoring]")
        values = {}
        for name in Scoring.__slots__:
            if name in table:
                values[name] = self.number(table[name], f"[scoring] {name}", None, name,
                                           allow_zero=name in {"title_bonus", "repeat_gain",
                                                               "length_damping",
                                                               "secondary_ratio"})
        if "length_reference" in values:
            values["length_reference"] = int(values["length_reference"])
        return Scoring(**{**{n: getattr(defaults, n) for n in Scoring.__slots__}, **values})

    def check_unique_ids(self, categories: tuple[Category, ...]) -> None:
        seen: set[str] = set()
        for index, category in enumerate(categories):
            if category.id in seen:
                raise self.fail(f"duplicate category id {category.id!r}", index, "id")
            seen.add(category.id)

    # -- one category -----------------------------------------------------------------------
    def category(self, entry: Any, index: int, scoring: Scoring) -> Category:
        """Validate one [[category]] table."""
        if not isinstance(entry, dict):
            raise self.fail("each [[category]] must be a table", index)
        self.check_keys(entry, _CATEGORY_KEYS, index, "[[category]]")
        for field in ("id", "name", "description", "keywords"):
            if field not in entry:
                raise self.fail(f"category is missing the required field `{field}`", index)
        cid = self.text(entry["id"], "id", index)
        if cid not in KNOWN_CATEGORY_IDS:
            raise self.fail(f"unknown category id {cid!r}; known ids: "
                            + ", ".join(KNOWN_CATEGORY_IDS), index, "id")
        threshold = scoring.default_threshold
        if "threshold" in entry:
            threshold = self.number(entry["threshold"], f"{cid}: threshold", index, "threshold")
        return Category(
            id=cid,
            name=self.text(entry["name"], "name", index),
            description=self.text(entry["description"], "description", index),
            threshold=threshold,
            keywords=self.weighted_terms(entry["keywords"], f"{cid}: [category.keywords]",
                                         index, "keywords", required=True),
            negatives=self.weighted_terms(entry.get("negative", {}),
                                          f"{cid}: [category.negative]", index, "negative"),
            excludes=self.term_list(entry.get("exclude", []), f"{cid}: exclude", index,
                                    "exclude"),
            combos=tuple(self.combo(c, cid, index) for c in self.combo_list(entry, cid, index)),
        )

    def combo_list(self, entry: dict[str, Any], cid: str, index: int) -> list[Any]:
        combos = entry.get("combo", [])
        if not isinstance(combos, list):
            raise self.fail(f"{cid}: `combo` must be written as [[category.combo]] tables",
                            index, "combo")
        return combos

    def combo(self, table: Any, cid: str, index: int) -> Combo:
        """Validate one [[category.combo]]: at least two groups of terms, a weight."""
        where = f"{cid}: [[category.combo]]"
        if not isinstance(table, dict):
            raise self.fail(f"{where} must be a table", index, "combo")
        self.check_keys(table, _COMBO_KEYS, index, where)
        if "all" not in table or "weight" not in table:
            raise self.fail(f"{where} needs both `all` and `weight`", index, "combo")
        groups = table["all"]
        if not isinstance(groups, list) or len(groups) < 2:
            raise self.fail(f"{where}: `all` must list at least two groups of terms", index,
                            "all")
        window = table.get("window", 0)
        if not isinstance(window, int) or isinstance(window, bool) or window < 0:
            raise self.fail(f"{where}: `window` must be a whole number of characters >= 0",
                            index, "window")
        return Combo(
            groups=tuple(self.term_list([g] if isinstance(g, str) else g, f"{where} all",
                                        index, "all") for g in groups),
            weight=self.number(table["weight"], f"{where} weight", index, "weight"),
            window=window,
        )

    # -- values -----------------------------------------------------------------------------
    def weighted_terms(self, table: Any, where: str, index: int, key: str,
                       required: bool = False) -> tuple[Term, ...]:
        """A {term: weight} table as Terms, refusing duplicates after normalisation."""
        if not isinstance(table, dict):
            raise self.fail(f"{where} must be a table of term = weight", index, key)
        if required and not table:
            raise self.fail(f"{where} is empty: a category needs at least one keyword",
                            index, key)
        terms = [Term(text, self.term_key(text, where, index),
                      self.number(weight, f"{where} {text!r}", index, text))
                 for text, weight in table.items()]
        self.check_unique_terms(terms, where, index)
        return tuple(terms)

    def term_list(self, items: Any, where: str, index: int, key: str) -> tuple[Term, ...]:
        """A non-empty list of strings as weightless Terms."""
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise self.fail(f"{where} must be a list of strings", index, key)
        if not items and key == "all":
            raise self.fail(f"{where}: an empty group can never match", index, key)
        terms = [Term(text, self.term_key(text, where, index, key)) for text in items]
        self.check_unique_terms(terms, where, index)
        return tuple(terms)

    def term_key(self, text: str, where: str, index: int, key: str | None = None) -> str:
        """The normalised matching key of a term, refusing blank or sentence-long ones."""
        normalised = normalize_text(text).strip()
        if not normalised:
            raise self.fail(f"{where}: empty term", index, key or text)
        if len(normalised) > MAX_TERM_CHARS:
            raise self.fail(f"{where}: term {text!r} is longer than {MAX_TERM_CHARS} "
                            "characters", index, key or text)
        return normalised

    def check_unique_terms(self, terms: list[Term], where: str, index: int) -> None:
        seen: dict[str, str] = {}
        for term in terms:
            if term.key in seen:
                raise self.fail(f"{where}: {term.text!r} and {seen[term.key]!r} are the same "
                                "term after normalisation", index, term.text)
            seen[term.key] = term.text

    def number(self, value: Any, where: str, index: int | None, key: str,
               allow_zero: bool = False) -> float:
        """A finite number in (0, MAX_WEIGHT] (or [0, ...] when allow_zero); not a bool."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{where} must be a number, not {value!r}", index, key)
        low_ok = value >= 0 if allow_zero else value > 0
        limit = math.inf if key == "length_reference" else MAX_WEIGHT
        if not math.isfinite(value) or not low_ok or value > limit:
            bound = "0 <=" if allow_zero else "0 <"
            hint = (" (write subtracting terms as positive weights under "
                    "[category.negative])" if value < 0 else "")
            raise self.fail(f"{where} must be {bound} value <= {limit:g}, not {value!r}{hint}",
                            index, key)
        return float(value)

    def text(self, value: Any, key: str, index: int) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"`{key}` must be a non-empty string", index, key)
        return value

    def check_keys(self, table: dict[str, Any], allowed: set[str], index: int | None,
                   where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(f"unknown key {unknown[0]!r} in {where}; allowed: "
                            + ", ".join(sorted(allowed)), index, unknown[0])
