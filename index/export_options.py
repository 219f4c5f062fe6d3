"""What an export is asked to do (`ExportOptions`, validated on creation) and what it
reports back (`ExportProgress`, `ExportSummary`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from index.errors import ExportError
from index.formats import FORMATS

MIN_PARAGRAPH_CHARS = 15        # shorter lines are bylines, dates, "来源：…" boilerplate


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What to export and how. Invalid values raise ExportError (the CLI exits 2)."""

    format: str = "jsonl"                       # jsonl | csv | parquet
    unit: str = "doc"                           # doc | paragraph
    dedup: bool = True                          # keep one document per duplicate group
    threshold: float = 0.7                      # near-duplicate Jaccard threshold
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)     # train, dev, test
    split_by: str = "hash"                      # hash (stratified) | time (newest = test)
    categories: tuple[str, ...] = ()            # keep documents with any of these
    sources: tuple[str, ...] = ()               # keep documents of these sources
    since: str | None = None                    # keep documents published on/after (ISO);
                                                # undated documents are left out
    min_chars: int = 0                          # keep documents with at least this much text
    split_files: bool = False                   # one file per split in the --out folder
    min_paragraph_chars: int = MIN_PARAGRAPH_CHARS
    shingle_chars: int = 3
    min_shingles: int = 30

    def __post_init__(self) -> None:
        problem = _option_problem(self)
        if problem:
            raise ExportError(None, problem)


def _option_problem(options: ExportOptions) -> str | None:
    """The first thing wrong with `options`, or None."""
    ratios = options.split_ratios
    checks = [
        (options.format in FORMATS, f"--format must be one of {', '.join(FORMATS)}"),
        (options.unit in ("doc", "paragraph"), "--unit must be doc or paragraph"),
        (options.split_by in ("hash", "time"), "--split-by must be hash or time"),
        (0.0 < options.threshold <= 1.0, "--threshold must be in (0, 1]"),
        (len(ratios) == 3 and min(ratios) >= 0 and abs(sum(ratios) - 1) < 1e-6,
         "split ratios must be three non-negative shares of train/dev/test summing to 1"),
        (options.min_chars >= 0, "--min-chars must be >= 0"),
        (options.shingle_chars in (2, 3, 4, 5), "shingle_chars must be 2 to 5"),
        (options.min_shingles >= 1, "min_shingles must be at least 1"),
        (options.since is None or _is_iso_date(options.since), "--since must be YYYY-MM-DD"),
    ]
    return next((message for ok, message in checks if not ok), None)


def parse_split_ratios(text: str) -> tuple[float, float, float]:
    """"80/10/10" or "0.8,0.1,0.1" -> (0.8, 0.1, 0.1): shares of train/dev/test, rescaled to
    sum to 1. For the CLI's --split option; raises ExportError on anything else."""
    parts = text.replace(",", "/").split("/")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3 or min(values) < 0 or sum(values) <= 0:
        raise ExportError(None, f"--split {text!r}: give three shares of train/dev/test, "
                          "e.g. 80/10/10")
    total = sum(values)
    return values[0] / total, values[1] / total, values[2] / total


def _is_iso_date(value: str) -> bool:
    try:
        return len(value) == 10 and bool(dt.date.fromisoformat(value))
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ExportProgress:
    """Handed to on_progress every PROGRESS_EVERY documents of each pass."""

    stage: str          # scan (grouping) | write
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote."""

    rows: int
    documents: int                      # distinct documents behind the rows
    duplicates_removed: int             # filtered documents dropped as another's repost
    splits: Mapping[str, int]           # rows per split
    repeated_paragraphs: int = 0        # paragraph unit with dedup: exact repeats dropped
    files: tuple[Path, ...] = ()        # data files written (empty for a stream)
    card: Path | None = None
    changed_during_export: int = 0      # skipped: a crawl changed them between the passes
    seconds: float = 0.0
