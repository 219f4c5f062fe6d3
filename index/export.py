"""Export the tagged corpus as training data: `export_corpus(store, options, out, ...)`.

    pass 1  store.iter_articles() --> facts per document + DuplicateFinder (dedup.py)
    plan    groups --> one representative per group (dedup) --> assign_splits (splits.py)
    pass 2  store.iter_articles() --> rows (doc or paragraph) --> writers (formats.py)
    card    README.md beside a file export (card.py)

Two passes instead of holding the corpus in memory: 100k notices of 1,500 characters are
~300 MB of str on top of pass 1's signatures and LSH tables (peak ~840 MB RSS at 100k,
benchmarks/bench_export.py), which are freed before pass 2. A document changed or added by a
crawl between the passes is skipped (counted in `ExportSummary.changed_during_export`);
re-run the export for a consistent snapshot.

Groups and splits are computed over the whole corpus, before filters: a document's split is a
property of the corpus, so exports with different --category/--source filters never put a
document in train in one and in test in the other. Filters then pick the rows, and the
representative of each group is chosen among the documents that pass them.

Output: a path is written atomically (temp file + os.replace); a stream (stdout) is written
as rows come. Paths are checked (and a foreign README.md refused) before any row is written.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from crawler.digest import text_hash
from crawler.errors import CorpusError
from crawler.records import Evidence, StoredArticle
from crawler.store import CorpusStore
from index.card import CardInfo, Tally, check_card_writable, write_card
from index.dedup import DedupConfig, DuplicateFinder
from index.errors import ExportError
from index.export_options import (
    MIN_PARAGRAPH_CHARS,
    ExportOptions,
    ExportProgress,
    ExportSummary,
    parse_split_ratios,
)
from index.formats import (
    Row,
    atomic_file,
    split_file_name,
    write_split_files,
    write_stream,
)
from index.splits import SPLIT_NAMES, SplitConfig, SplitUnit, assign_splits

if TYPE_CHECKING:
    from crawler.tag import Tagger

__all__ = ["ExportOptions", "ExportProgress", "ExportSummary", "export_corpus",
           "parse_split_ratios"]

logger = logging.getLogger(__name__)

DOC_COLUMNS = ("id", "url", "title", "published", "source", "kind", "text", "categories",
               "primary", "evidence", "lang", "content_hash", "dup_group", "split")
PARAGRAPH_COLUMNS = ("id", "paragraph", *DOC_COLUMNS[1:])
PROGRESS_EVERY = 1000           # documents between on_progress calls


@dataclass(frozen=True, slots=True)
class _DocFacts:
    """What pass 1 keeps of a document."""

    seq: int
    published: str | None
    length: int
    primary: str | None
    selected: bool                      # passes the filters


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which documents to write, and each one's group and split."""

    keep: Mapping[str, int]             # id -> seq read in pass 1
    group_of: Mapping[str, str]         # id -> dup_group
    split_of: Mapping[str, str]         # dup_group -> split
    duplicates_removed: int


@dataclass(slots=True)
class _WriteLog:
    """What pass 2 did besides yielding rows; filled in while the rows stream out."""

    documents: set[str] = field(default_factory=set)
    paragraph_hashes: set[str] = field(default_factory=set)
    repeated_paragraphs: int = 0


ProgressCallback = Callable[[ExportProgress], None]


def export_corpus(store: CorpusStore, options: ExportOptions = ExportOptions(),
                  out: BinaryIO | Path | None = None, tagger: Tagger | None = None,
                  taxonomy_version: str | int | None = None,
                  on_progress: ProgressCallback | None = None) -> ExportSummary:
    """Export the corpus; `out` is a file path (atomic; a folder with split_files), a binary
    stream, or None / Path("-") for stdout. Paragraph units need `tagger`. Idempotent for one
    corpus (the card's date aside)."""
    started = time.monotonic()
    if isinstance(out, Path) and str(out) == "-":
        out = None
    _check_target(options, out, tagger)
    if not store.count_articles():
        raise CorpusError(store.path, "no articles in the corpus yet; run `fraudkb crawl` or "
                          "`fraudkb demo` first")
    plan = _plan(store, options, on_progress)
    tally, log = Tally(), _WriteLog()
    files = _write(_tallied(_rows(store, plan, options, tagger, on_progress, log), tally),
                   options, out)
    logger.info("export: %d rows from %d documents, %d duplicates removed", tally.rows,
                len(tally.documents), plan.duplicates_removed)
    card = None
    if isinstance(out, Path):
        info = _card_info(options, plan, log, files, _folder(options, out), tagger,
                          taxonomy_version)
        card = write_card(_folder(options, out), info, tally)
    return ExportSummary(rows=tally.rows, documents=len(tally.documents),
                         duplicates_removed=plan.duplicates_removed,
                         repeated_paragraphs=log.repeated_paragraphs,
                         splits={s: tally.splits[s] for s in SPLIT_NAMES}, files=files,
                         card=card, changed_during_export=len(plan.keep) - len(log.documents),
                         seconds=time.monotonic() - started)


def _check_target(options: ExportOptions, out: BinaryIO | Path | None,
                  tagger: Tagger | None) -> None:
    """Refuse impossible combinations before reading anything."""
    if options.unit == "paragraph" and tagger is None:
        raise ExportError(None, "--unit paragraph needs the taxonomy to tag paragraphs")
    if not isinstance(out, Path):
        if options.split_files:
            raise ExportError(None, "--split-files writes several files: give --out a folder")
        return
    if options.split_files and out.is_file():
        raise ExportError(out, "--split-files needs a folder, and this is a file")
    if not options.split_files and out.is_dir():
        raise ExportError(out, "is a folder: name the file to write (e.g. "
                          f"{out / ('data.' + options.format)}) or add --split-files")
    check_card_writable(_folder(options, out))


def _folder(options: ExportOptions, out: Path) -> Path:
    return out if options.split_files else out.parent


# -- pass 1 and the plan -----------------------------------------------------------------

def _plan(store: CorpusStore, options: ExportOptions,
          on_progress: ProgressCallback | None) -> _Plan:
    """Scan the corpus once: duplicate groups, representatives, splits."""
    finder = DuplicateFinder(DedupConfig(threshold=options.threshold,
                                         shingle_chars=options.shingle_chars,
                                         min_shingles=options.min_shingles))
    facts: dict[str, _DocFacts] = {}
    for article in _progress(store.iter_articles(), "scan", store, on_progress):
        finder.add(article.id, article.text)
        facts[article.id] = _DocFacts(article.seq, article.published, len(article.text),
                                      article.primary, _is_selected(article, options))
    group_of = finder.groups()
    members: dict[str, list[str]] = {}
    for doc_id, group in group_of.items():
        members.setdefault(group, []).append(doc_id)
    units = [_split_unit(group, ids, facts, options.dedup) for group, ids in members.items()]
    split_of = assign_splits(units, SplitConfig(ratios=options.split_ratios,
                                                by=options.split_by))
    keep = _keep(members, facts, options.dedup)
    selected = sum(f.selected for f in facts.values())
    return _Plan(keep=keep, group_of=group_of, split_of=split_of,
                 duplicates_removed=selected - len(keep))


def _is_selected(article: StoredArticle, options: ExportOptions) -> bool:
    """Does the document pass --category/--source/--since/--min-chars?"""
    return ((not options.categories or any(c in options.categories
                                           for c in article.categories))
            and (not options.sources or article.source in options.sources)
            and (options.since is None or (article.published or "") >= options.since)
            and len(article.text) >= options.min_chars)


def _representative(ids: list[str], facts: Mapping[str, _DocFacts]) -> str:
    """Earliest published (undated last), then longest text, then smallest id."""
    return min(ids, key=lambda i: (facts[i].published is None, facts[i].published or "",
                                   -facts[i].length, i))


def _split_unit(group: str, ids: list[str], facts: Mapping[str, _DocFacts],
                dedup: bool) -> SplitUnit:
    # Stratum and date come from the corpus-wide representative, so they ignore filters.
    first = facts[_representative(ids, facts)]
    return SplitUnit(key=group, stratum=first.primary, weight=1 if dedup else len(ids),
                     published=first.published)


def _keep(members: Mapping[str, list[str]], facts: Mapping[str, _DocFacts],
          dedup: bool) -> dict[str, int]:
    """id -> seq of every document to write: selected ones, one per group with dedup."""
    keep: dict[str, int] = {}
    for ids in members.values():
        chosen = [i for i in ids if facts[i].selected]
        if dedup and chosen:
            chosen = [_representative(chosen, facts)]
        keep.update((i, facts[i].seq) for i in chosen)
    return keep


def _progress(articles: Iterator[StoredArticle], stage: str, store: CorpusStore,
              on_progress: ProgressCallback | None) -> Iterator[StoredArticle]:
    """Pass articles through, reporting every PROGRESS_EVERY of them."""
    if on_progress is None:
        yield from articles
        return
    total = store.count_articles()
    done = 0
    for done, article in enumerate(articles, start=1):
        if done % PROGRESS_EVERY == 0:
            on_progress(ExportProgress(stage, done, total))
        yield article
    on_progress(ExportProgress(stage, done, total))


# -- pass 2: rows ------------------------------------------------------------------------

def _rows(store: CorpusStore, plan: _Plan, options: ExportOptions, tagger: Tagger | None,
          on_progress: ProgressCallback | None, log: _WriteLog) -> Iterator[Row]:
    """The records to write, in corpus change order."""
    for article in _progress(store.iter_articles(), "write", store, on_progress):
        if plan.keep.get(article.id) != article.seq:
            continue                    # filtered out, a removed duplicate, or changed since
        log.documents.add(article.id)
        group = plan.group_of[article.id]
        split = plan.split_of[group]
        if tagger is None or options.unit == "doc":
            yield doc_row(article, group, split)
            continue
        for row in paragraph_rows(article, group, split, tagger, options.min_paragraph_chars):
            if options.dedup and _is_repeat(row, log):
                continue
            yield row


def _is_repeat(row: Row, log: _WriteLog) -> bool:
    """Was this paragraph's text written already? Boilerplate tips ("警方提醒：…") recur in
    many notices; one copy keeps the same text out of train and test at once."""
    if row["content_hash"] in log.paragraph_hashes:
        log.repeated_paragraphs += 1
        return True
    log.paragraph_hashes.add(row["content_hash"])
    return False


def doc_row(article: StoredArticle, group: str, split: str) -> Row:
    """One document as an export record (DOC_COLUMNS order)."""
    return {"id": article.id, "url": article.url, "title": article.title,
            "published": article.published, "source": article.source, "kind": article.kind,
            "text": article.text, "categories": list(article.categories),
            "primary": article.primary, "evidence": evidence_json(article.evidence),
            "lang": article.lang, "content_hash": article.content_hash, "dup_group": group,
            "split": split}


def paragraph_rows(article: StoredArticle, group: str, split: str, tagger: Tagger,
                   min_chars: int = MIN_PARAGRAPH_CHARS) -> Iterator[Row]:
    """One record per paragraph of at least `min_chars`, tagged on its own (offsets index
    the stripped paragraph), carrying the document's id, group and split."""
    for number, line in enumerate(article.text.split("\n")):
        text = line.strip()
        if len(text) < min_chars:
            continue
        tags = tagger.tag(text)
        yield {"id": article.id, "paragraph": number, **doc_row(article, group, split),
               "text": text, "categories": list(tags.categories), "primary": tags.primary,
               "evidence": evidence_json(tags.evidence), "content_hash": text_hash(text)}


def evidence_json(evidence: Mapping[str, tuple[Evidence, ...]]) -> dict[str, list[dict]]:
    """{category: [{"term", "start", "end"}]}, as in `fraudkb tag --json`."""
    return {category: [{"term": e.term, "start": e.start, "end": e.end} for e in items]
            for category, items in evidence.items()}


def _tallied(rows: Iterator[Row], tally: Tally) -> Iterator[Row]:
    for row in rows:
        tally.add(row)
        yield row


# -- writing -----------------------------------------------------------------------------

def _write(rows: Iterator[Row], options: ExportOptions,
           out: BinaryIO | Path | None) -> tuple[Path, ...]:
    """Write every row to `out`; returns the files written."""
    columns = PARAGRAPH_COLUMNS if options.unit == "paragraph" else DOC_COLUMNS
    if not isinstance(out, Path):
        write_stream(rows, options.format, columns, out or sys.stdout.buffer)
        return ()
    if not options.split_files:
        with atomic_file(out) as stream:
            write_stream(rows, options.format, columns, stream)
        return (out,)
    return write_split_files(rows, options.format, columns, out, SPLIT_NAMES)


def _card_info(options: ExportOptions, plan: _Plan, log: _WriteLog, files: tuple[Path, ...],
               folder: Path, tagger: Tagger | None, taxonomy_version: str | int | None
               ) -> CardInfo:
    if options.split_files:
        data_files: Mapping[str, str] | str = {
            split: split_file_name(split, options.format) for split in SPLIT_NAMES
            if folder / split_file_name(split, options.format) in files}
    else:
        data_files = files[0].name
    names = {c.id: c.name for c in tagger.taxonomy.categories} if tagger else {}
    return CardInfo(
        data_files=data_files, fmt=options.format, unit=options.unit, dedup=options.dedup,
        threshold=options.threshold, shingle_chars=options.shingle_chars,
        min_shingles=options.min_shingles, duplicates_removed=plan.duplicates_removed,
        repeated_paragraphs=log.repeated_paragraphs,
        split_ratios=options.split_ratios, split_by=options.split_by,
        filters=_filters(options), category_names=names,
        taxonomy_version=None if taxonomy_version is None else str(taxonomy_version))


def _filters(options: ExportOptions) -> dict[str, object]:
    return {"category": ",".join(options.categories), "source": ",".join(options.sources),
            "since": options.since, "min_chars": options.min_chars}


__all__ = ["DOC_COLUMNS", "PARAGRAPH_COLUMNS", "ExportOptions", "ExportProgress",
           "ExportSummary", "doc_row", "evidence_json", "export_corpus", "paragraph_rows",
           "parse_split_ratios"]
