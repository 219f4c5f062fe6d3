"""The dataset card: README.md beside the export, in the Hugging Face layout.

The folder is the dataset: YAML front matter (language, task, size, `configs` naming the
data files per split) so `datasets.load_dataset(FOLDER)` finds the files, then a body with
counts per category and split and how the data was made.

A card we wrote carries CARD_MARKER; a README.md without it is someone else's and is never
overwritten (ExportError, the CLI exits 2).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.errors import ExportError
from index.formats import atomic_file
from index.splits import SPLIT_NAMES

CARD_FILE = "README.md"
CARD_MARKER = "<!-- fraudkb:dataset-card -->"
NO_CATEGORY = "(none)"
# Hugging Face's size_categories buckets (upper bounds, exclusive).
_SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                 (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"))


@dataclass(frozen=True, slots=True)
class CardInfo:
    """How the export was made: everything the card says that is not a count."""

    data_files: Mapping[str, str] | str     # split -> relative path, or the one file
    fmt: str
    unit: str
    dedup: bool
    threshold: float
    shingle_chars: int
    min_shingles: int
    duplicates_removed: int
    repeated_paragraphs: int
    split_ratios: tuple[float, float, float]
    split_by: str
    filters: Mapping[str, Any] = field(default_factory=dict)
    taxonomy_version: str | None = None
    category_names: Mapping[str, str] = field(default_factory=dict)


class Tally:
    """Counts gathered while rows are written (rows, splits, labels, sources, dates)."""

    def __init__(self) -> None:
        self.rows = 0
        self.documents: set[str] = set()
        self.splits: Counter[str] = Counter()
        self.labels: Counter[tuple[str, str]] = Counter()
        self.sources: Counter[str] = Counter()
        self.dates: list[str] = []       # [earliest, latest]

    def add(self, row: Mapping[str, Any]) -> None:
        """Count one written row."""
        self.rows += 1
        self.splits[row["split"]] += 1
        for category in row["categories"] or [NO_CATEGORY]:
            self.labels[category, row["split"]] += 1
        if row["id"] not in self.documents:
            self.documents.add(row["id"])
            self.sources[row["source"]] += 1
            self._add_date(row["published"])

    def _add_date(self, published: str | None) -> None:
        if published:
            self.dates = [min(self.dates[0], published), max(self.dates[1], published)] \
                if self.dates else [published, published]


def check_card_writable(folder: Path) -> None:
    """Raise ExportError when folder/README.md exists and fraudkb did not write it."""
    card = folder / CARD_FILE
    try:
        ours = CARD_MARKER in card.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ExportError(card, f"cannot read the existing README.md: {exc}") from exc
    if not ours:
        raise ExportError(card, "this README.md was not written by fraudkb and will not be "
                          "overwritten; export into a fresh folder (e.g. --out "
                          "exports/fraud-v1/data.jsonl)")


def write_card(folder: Path, info: CardInfo, tally: Tally) -> Path:
    """Write folder/README.md atomically (after check_card_writable) and return its path."""
    path = folder / CARD_FILE
    with atomic_file(path) as stream:
        stream.write(render_card(info, tally).encode("utf-8"))
    return path


def render_card(info: CardInfo, tally: Tally) -> str:
    """The whole card: YAML front matter, marker, body."""
    return "\n".join([*_front_matter(info, tally), CARD_MARKER, *_body(info, tally), ""])


def _front_matter(info: CardInfo, tally: Tally) -> list[str]:
    lines = ["---", "language:", "- zh", "license: unknown",
             'pretty_name: "fraudkb: Chinese anti-fraud notices"',
             "task_categories:", "- text-classification",
             "task_ids:", "- multi-label-classification",
             "annotations_creators:", "- machine-generated",
             "language_creators:", "- found", "multilinguality:", "- monolingual",
             "source_datasets:", "- original",
             "size_categories:", f"- {size_category(tally.rows)}",
             "configs:", "- config_name: default"]
    if isinstance(info.data_files, str):
        lines.append(f"  data_files: {json.dumps(info.data_files)}")
    else:
        lines.append("  data_files:")
        for split, path in info.data_files.items():
            lines += [f"  - split: {split}", f"    path: {json.dumps(path)}"]
    return [*lines, "---"]


def size_category(rows: int) -> str:
    """Hugging Face's size bucket for `rows` records."""
    return next((name for bound, name in _SIZE_BUCKETS if rows < bound), "n>10M")


def _body(info: CardInfo, tally: Tally) -> list[str]:
    first, last = tally.dates or ["unknown", "unknown"]
    return [
        "", "# fraudkb: Chinese anti-fraud notices, labelled by scam type", "",
        f"Exported by `fraudkb export` on {dt.date.today().isoformat()}: "
        + (f"{tally.rows} paragraphs of " if info.unit == "paragraph" else "")
        + f"{len(tally.documents)} documents, published {first} to {last}. "
        f"Taxonomy: seeds/categories.toml version {info.taxonomy_version or 'unknown'}.",
        "", *_files_section(info), "", *_label_table(info, tally), "",
        *_method_section(info), "", *_sources_section(tally), "", *_fields_section(info),
        "", *_caveats(),
    ]


def _files_section(info: CardInfo) -> list[str]:
    if isinstance(info.data_files, str):
        return ["## Files", "", f"`{info.data_files}` ({info.fmt}) holds every split; the "
                "`split` column says which (train/dev/test)."]
    files = ", ".join(f"`{path}` ({split})" for split, path in info.data_files.items())
    return ["## Files", "", f"One {info.fmt} file per split: {files}."]


def _label_table(info: CardInfo, tally: Tally) -> list[str]:
    header = ["| category | name | " + " | ".join(SPLIT_NAMES) + " | total |",
              "|---|---|" + "---:|" * (len(SPLIT_NAMES) + 1)]
    categories = sorted({c for c, _ in tally.labels}, key=lambda c: (c == NO_CATEGORY, c))
    rows = [_label_row(c, info.category_names.get(c, ""), tally) for c in categories]
    totals = " | ".join(str(tally.splits[s]) for s in SPLIT_NAMES)
    return ["## Labels per split", "",
            "Rows per category (multi-label: a row counts once under each of its categories; "
            f"{NO_CATEGORY} = no specific scam type).", "", *header, *rows,
            f"| **rows** | | {totals} | {tally.rows} |"]


def _label_row(category: str, name: str, tally: Tally) -> str:
    counts = [tally.labels[category, s] for s in SPLIT_NAMES]
    return f"| {category} | {name} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |"


def _method_section(info: CardInfo) -> list[str]:
    ratios = "/".join(f"{r:g}" for r in info.split_ratios)
    dedup = (f"One document per group kept (earliest published, then longest, then smallest "
             f"id); {info.duplicates_removed} duplicates removed" if info.dedup else
             "All documents kept (`--no-dedup`); reposts share `dup_group`")
    if info.unit == "paragraph" and info.dedup:
        dedup += (f"; {info.repeated_paragraphs} paragraphs dropped as exact repeats of one "
                  "already written (boilerplate tips)")
    split = ("by hash of `dup_group`, stratified by `primary` (each split within ±1 document "
             "of its share per primary category where group sizes allow)"
             if info.split_by == "hash" else "by time: the newest documents are the test "
             "split, the next-newest dev (one cutoff for all categories)")
    filters = ", ".join(f"{k}={v}" for k, v in info.filters.items() if v) or "none"
    return ["## How it was made", "",
            "- Crawled from public police, campus, government and news pages; text extracted "
            "from HTML; labels from a weighted keyword tagger (seeds/categories.toml).",
            f"- Near-duplicates (reposts): exact match of the normalised text (NFKC, "
            f"traditional->simplified, whitespace and punctuation removed), or MinHash + LSH "
            f"over {info.shingle_chars}-character shingles with estimated Jaccard >= "
            f"{info.threshold:g}; texts with fewer than {info.min_shingles} distinct shingles "
            f"are grouped by exact match only. {dedup}.",
            f"- Splits train/dev/test {ratios}, {split}; a `dup_group` never spans two splits.",
            f"- Unit: {info.unit}. Filters: {filters}."]


def _sources_section(tally: Tally) -> list[str]:
    lines = ["## Sources", "", "| source | documents |", "|---|---:|"]
    return lines + [f"| {name} | {count} |" for name, count in sorted(tally.sources.items())]


def _fields_section(info: CardInfo) -> list[str]:
    where = ("the paragraph's `text`" if info.unit == "paragraph" else
             '`title + "\\n" + text` (just `text` when the title is empty), the string the '
             "tagger saw: a body offset is `len(title) + 1` larger than in `text`, and a hit "
             "with end <= len(title) is in the title")
    return ["## Fields", "",
            "`id, " + ("paragraph, " if info.unit == "paragraph" else "") +
            "url, title, published (YYYY-MM-DD or null), source, kind, text, categories "
            "(best first), primary, evidence, lang, content_hash, dup_group, split`.",
            "",
            f"`evidence` is `{{category: [{{term, start, end}}]}}`: `term` is the taxonomy "
            f"keyword (simplified); `start`/`end` index {where}, so the slice shows the "
            "notice's own wording (traditional or full-width forms included). "
            "In csv, `categories` and `evidence` are JSON strings and null is an empty cell; "
            "in parquet `categories` is list<string> and `evidence` a JSON string."
            + " `datasets.load_dataset` reads the JSON lines as they are, but pyarrow infers "
            "`published` as a timestamp there, and `evidence` (its keys vary) as a Json "
            "feature in datasets >= 5; pass `features=` to pin other types."
            + (" `paragraph` is the line number within the document text; `content_hash` "
               "is the paragraph's own." if info.unit == "paragraph" else "")]


def _caveats() -> Sequence[str]:
    return ["## Caveats", "",
            "- Labels are machine-generated by keyword rules, not annotated by people: "
            "expect misses on unusual wording and false hits on notices that merely mention "
            "a term. Evaluate on a hand-checked sample before trusting per-class scores.",
            "- Sources are Chinese public notices; their coverage of scam types follows what "
            "the sources publish, not how often each scam occurs.",
            "- Duplicate detection is approximate (MinHash estimates); rare reposts may remain "
            "separate, and near-identical template notices about different cases may merge."]
