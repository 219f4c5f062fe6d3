"""The Whoosh schema of the fraudkb index, and the version stamp that detects a stale index.

Layout of the index directory (`<data>/index/`):

    CURRENT.json        {"generation": "gen-<n>"}: replaced atomically by a rebuild
    gen-<n>/            one Whoosh index; a rebuild writes a new generation beside it
    gen-<n>/fraudkb-index.json   {"version", "seq", "user_terms_sha1", ...} (`IndexMeta`)
    write.lock          held by the one index writer (update or rebuild)

Bump `INDEX_VERSION` whenever fields or analysis change: older indexes then read as stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from whoosh.columns import NumericColumn
from whoosh.fields import DATETIME, ID, KEYWORD, STORED, TEXT, Schema
from whoosh.filedb.filestore import FileStorage
from whoosh.index import Index

from index.analysis import JiebaTokenizer

INDEX_VERSION = 1
ANALYZER_NAME = "rjieba-precise-nohmm+subwords/textnorm"
# A title word counts about as much as three body words: a notice titled 杀猪盘 should beat
# one that mentions it in passing. A chosen default, not calibrated on judged queries.
TITLE_BOOST = 3.0
CURRENT_FILE = "CURRENT.json"
META_FILE = "fraudkb-index.json"
LOCK_FILE = "write.lock"


@dataclass(frozen=True, slots=True)
class IndexMeta:
    """What one index generation was built with, and how far into the corpus it is."""

    version: int
    analyzer: str
    seq: int                    # every corpus change up to this number is indexed
    user_terms_sha1: str


def build_schema(user_terms: tuple[str, ...]) -> Schema:
    """The fields: title/text analysed by jieba (text keeps character offsets for snippets)."""
    analyzer = JiebaTokenizer(user_terms)
    return Schema(
        id=ID(unique=True, stored=True),
        url=ID(stored=True),
        title=TEXT(analyzer=analyzer, stored=True, field_boost=TITLE_BOOST),
        text=TEXT(analyzer=analyzer, stored=True, chars=True),
        published=_published_field(),
        source=ID(stored=True),
        kind=ID(stored=True),
        categories=KEYWORD(commas=True, stored=True, scorable=False),
        primary=STORED(),
    )


def _published_field() -> DATETIME:
    """A sortable date whose column puts unknown dates first (oldest), not Whoosh's default
    of last: a newest-first sort must not open with undated notices."""
    published = DATETIME(stored=True)
    published.set_sortable(NumericColumn(published.sortable_typecode, default=0))
    return published


def schema_user_terms(schema: Schema) -> tuple[str, ...]:
    """The user dictionary an existing index was built with (pickled with its analyzer)."""
    analyzer = schema["text"].analyzer
    return tuple(getattr(analyzer, "user_terms", ()))


def terms_digest(user_terms: tuple[str, ...]) -> str:
    return hashlib.sha1("\n".join(user_terms).encode("utf-8")).hexdigest()


def new_meta(user_terms: tuple[str, ...], seq: int) -> IndexMeta:
    return IndexMeta(INDEX_VERSION, ANALYZER_NAME, seq, terms_digest(user_terms))


def is_current(meta: IndexMeta) -> bool:
    """True when an index with this stamp can be read and updated by this code."""
    return meta.version == INDEX_VERSION and meta.analyzer == ANALYZER_NAME


def read_meta(gen_dir: Path) -> IndexMeta | None:
    """The stamp of one generation; None when absent or unreadable (treated as stale)."""
    try:
        raw = json.loads((gen_dir / META_FILE).read_text(encoding="utf-8"))
        return IndexMeta(int(raw["version"]), str(raw["analyzer"]), int(raw["seq"]),
                         str(raw["user_terms_sha1"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_meta(gen_dir: Path, meta: IndexMeta) -> None:
    """Write the stamp atomically (write + rename), so a reader never sees half a file."""
    write_json_atomic(gen_dir / META_FILE, asdict(meta))


def open_generation(gen_dir: Path, *, readonly: bool = True) -> Index:
    """Open one generation's Whoosh index. Not memory-mapped: whoosh-ng copies each mapped
    segment file into a BytesIO on open (0.25 s and 330 MB at 20k documents, growing with
    the index); plain file reads cost a little per posting block instead."""
    return FileStorage(str(gen_dir), supports_mmap=False, readonly=readonly).open_index()


def current_generation(index_dir: Path) -> Path | None:
    """The generation directory searches should read, or None when there is no index."""
    try:
        raw = json.loads((index_dir / CURRENT_FILE).read_text(encoding="utf-8"))
        name = str(raw["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    gen_dir = index_dir / name
    return gen_dir if gen_dir.is_dir() else None


def set_current_generation(index_dir: Path, gen_dir: Path) -> None:
    """Point searches at `gen_dir`: one atomic rename, so readers see the old or the new."""
    write_json_atomic(index_dir / CURRENT_FILE, {"generation": gen_dir.name})


def write_json_atomic(path: Path, value: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(value, handle, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
