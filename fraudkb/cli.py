"""fraudkb command line: parse arguments, build config, call one library function, print.

The only module that imports both `crawler` and `index`. Heavy libraries (trafilatura, httpx,
whoosh, jieba) are imported inside the commands that need them, so `fraudkb tag` starts fast.
Exit codes (SPEC): 0 ok, 1 failure, 2 bad usage or bad config file, 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from crawler.errors import ConfigError, FraudkbError
from fraudkb import render
from index.errors import ExportError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
logger = logging.getLogger("fraudkb")


class _Context:
    """Global options, shared by every command."""

    def __init__(self, data: Path, categories: Path | None) -> None:
        self.data = data
        self.categories = categories

    def tagger(self):
        from crawler.tag import build_matcher
        from crawler.taxonomy import default_categories_path, load_taxonomy

        return build_matcher(load_taxonomy(self.categories or default_categories_path()))

    def open_store(self, *, create: bool):
        from crawler.store import CorpusStore

        return CorpusStore(self.data, create=create)

    @property
    def index_dir(self) -> Path:
        return self.data / "index"


pass_context = click.make_pass_decorator(_Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", type=click.Path(file_okay=False, path_type=Path),
              default=lambda: os.environ.get("FRAUDKB_DATA", "data"),
              show_default="$FRAUDKB_DATA or ./data",
              help="Data directory holding corpus.sqlite and index/.")
@click.option("--categories", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Scam taxonomy file [default: $FRAUDKB_CATEGORIES or seeds/categories.toml].")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv: debug).")
@click.version_option(package_name="fraudkb")
@click.pass_context
def cli(ctx: click.Context, data: Path, categories: Path | None, verbose: int) -> None:
    """Crawl, tag, search and export Chinese anti-fraud notices (反诈预警, 防骗指南)."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    ctx.obj = _Context(Path(data), categories)


# -- crawl ---------------------------------------------------------------------------------
@cli.command()
@click.option("--sources", "sources_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Sources file [default: seeds/sources.toml].")
@click.option("--source", "source_names", multiple=True, metavar="NAME",
              help="Crawl only this source (repeatable).")
@click.option("--max-pages", type=click.IntRange(min=0), default=None,
              help="Pages per source in this crawl (overrides sources.toml).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes for extraction and tagging; use the core count for big crawls.")
@pass_context
def crawl(ctx: _Context, sources_file: Path | None, source_names: tuple[str, ...],
          max_pages: int | None, workers: int) -> int:
    """Fetch new and changed pages, extract, tag, store, then update the index."""
    from crawler.config import CrawlConfig, apply_overrides, load_sources

    path = sources_file or _default_sources_path()
    config = apply_overrides(CrawlConfig(sources=load_sources(path), workers=workers),
                             source_names=source_names, max_pages=max_pages)
    return _run_crawl(ctx, config)


def _default_sources_path() -> Path:
    local = Path("seeds/sources.toml")
    return local if local.exists() else Path(__file__).resolve().parents[1] / local


def _run_crawl(ctx: _Context, config) -> int:
    from crawler.pipeline import crawl as run_crawl

    tagger = ctx.tagger()
    with ctx.open_store(create=True) as store, render.CrawlProgress() as progress:
        stats = run_crawl(config, store, tagger, on_progress=progress.show)
    render.print_crawl_summary(stats)
    if stats.interrupted:
        click.echo("Interrupted: finished pages are saved; run the same crawl again to "
                   "resume.", err=True)
        return EXIT_INTERRUPTED
    _update_index(ctx)
    return 0


def _update_index(ctx: _Context) -> None:
    from index.build import update_index

    with ctx.open_store(create=False) as store:
        result = update_index(store, ctx.index_dir)
    click.echo(f"index: {result.added} added, {result.updated} updated, "
               f"{result.deleted} deleted in {result.seconds:.1f} s", err=True)


# -- stats ---------------------------------------------------------------------------------
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def stats(ctx: _Context, as_json: bool) -> int:
    """Documents by source, by category, by month; the last crawl."""
    with ctx.open_store(create=False) as store:
        report = store.stats()
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    render.print_stats(report)
    return 0


# -- search --------------------------------------------------------------------------------
@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("terms", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--category", "categories", multiple=True, metavar="ID",
              help="Only notices tagged with this category (repeatable; any of them).")
@click.option("--source", default=None, metavar="NAME", help="Only notices from this source.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Only notices published on or after YYYY-MM-DD.")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of results.")
@click.option("--sort", type=click.Choice(["relevance", "date"]), default="relevance",
              show_default=True, help="Rank by relevance (BM25F, title boosted) or newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of hits.")
@pass_context
def search(ctx: _Context, terms: tuple[str, ...], categories: tuple[str, ...],
           source: str | None, since, limit: int, sort: str, as_json: bool) -> int:
    """Search the knowledge base. Terms are ANDed; OR, -term and "phrase" work, as separate
    arguments or as one quoted query. Traditional and simplified forms find each other."""
    from index.search import search as run_search

    _check_categories(categories)
    if not (ctx.data / "corpus.sqlite").exists():
        ctx.open_store(create=False)  # raises the "run fraudkb crawl first" error
    result = run_search(ctx.index_dir, list(terms), categories=categories, source=source,
                        since=since.date() if since else None, limit=limit, sort=sort)
    if as_json:
        click.echo(json.dumps([render.hit_json(hit) for hit in result.hits], ensure_ascii=False,
                              indent=2))
        return 0
    render.print_hits(result)
    return 0


def _check_categories(categories: tuple[str, ...]) -> None:
    from crawler.taxonomy import KNOWN_CATEGORY_IDS

    unknown = [c for c in categories if c not in KNOWN_CATEGORY_IDS]
    if unknown:
        raise click.BadParameter(f"unknown category {', '.join(unknown)}; valid ids: "
                                 f"{', '.join(KNOWN_CATEGORY_IDS)}", param_hint="--category")


@cli.command()
@pass_context
def reindex(ctx: _Context) -> int:
    """Rebuild the search index from the corpus (searches keep working meanwhile)."""
    from index.build import rebuild_index

    with ctx.open_store(create=False) as store:
        result = rebuild_index(store, ctx.index_dir)
    click.echo(f"index rebuilt: {result.added} documents in {result.seconds:.1f} s")
    return 0


# -- export --------------------------------------------------------------------------------
@cli.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]),
              default="jsonl", show_default=True, help="File format (same rows and columns).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output file (a folder with --split-files); '-' or none: stdout. A dataset "
                   "card README.md is written beside a file.")
@click.option("--unit", type=click.Choice(["doc", "paragraph"]), default="doc",
              show_default=True, help="One record per document, or per paragraph.")
@click.option("--no-dedup", is_flag=True, help="Keep every near-duplicate (with its dup_group).")
@click.option("--threshold", type=click.FloatRange(0.1, 1.0), default=0.7, show_default=True,
              help="Near-duplicate Jaccard threshold (MinHash over 3-character shingles).")
@click.option("--split", "split", default="80/10/10", show_default=True,
              help="Shares of train/dev/test.")
@click.option("--split-by", type=click.Choice(["hash", "time"]), default="hash",
              show_default=True, help="hash: stable, stratified by primary category; time: "
                                      "newest documents in test.")
@click.option("--split-files", is_flag=True, help="One file per split in the --out folder.")
@click.option("--category", "categories", multiple=True, metavar="ID",
              help="Only documents with this category (repeatable).")
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Only documents from this source (repeatable).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Only documents published on or after YYYY-MM-DD.")
@click.option("--min-chars", type=click.IntRange(min=0), default=0, show_default=True,
              help="Only documents with at least this many characters of text.")
@pass_context
def export(ctx: _Context, fmt: str, out: Path | None, unit: str, no_dedup: bool,
           threshold: float, split: str, split_by: str, split_files: bool,
           categories: tuple[str, ...], sources: tuple[str, ...], since, min_chars: int) -> int:
    """Export the tagged corpus as training data, with near-duplicate groups and leak-free
    train/dev/test splits."""
    from index.export import ExportOptions, export_corpus, parse_split_ratios

    _check_categories(categories)
    options = ExportOptions(
        format=fmt, unit=unit, dedup=not no_dedup, threshold=threshold,
        split_ratios=parse_split_ratios(split), split_by=split_by, categories=categories,
        sources=sources, since=since.date().isoformat() if since else None,
        min_chars=min_chars, split_files=split_files)
    tagger = ctx.tagger()
    with ctx.open_store(create=False) as store, render.Status("exporting") as status:
        summary = export_corpus(store, options, out, tagger=tagger,
                                taxonomy_version=tagger.taxonomy.version,
                                on_progress=lambda p: status.update(
                                    f"exporting … {p.stage} {p.done}/{p.total}"))
    splits = ", ".join(f"{name} {count}" for name, count in summary.splits.items())
    click.echo(f"exported {summary.rows} rows from {summary.documents} documents "
               f"({summary.duplicates_removed} duplicates removed; {splits}) in "
               f"{summary.seconds:.1f} s" + (f"; card: {summary.card}" if summary.card else ""),
               err=True)
    return 0


# -- tagging -------------------------------------------------------------------------------
@cli.command()
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--json", "as_json", is_flag=True, help="Print the SPEC JSON result.")
@click.option("--jsonl", "as_jsonl", is_flag=True,
              help="Input is JSON lines with a 'text' (and optional 'title') field; prints one "
                   "JSON result per line, in order.")
@pass_context
def tag(ctx: _Context, source, as_json: bool, as_jsonl: bool) -> int:
    """Tag a text (FILE or - for stdin) with the scam taxonomy, showing the evidence."""
    tagger = ctx.tagger()
    if as_jsonl:
        return _tag_jsonl(tagger, source)
    text = source.read()
    tags = tagger.tag(text)
    if as_json:
        click.echo(json.dumps(render.tags_json(tags), ensure_ascii=False))
        return 0
    render.print_tags(tagger, text, tags)
    return 0


def _tag_jsonl(tagger, lines) -> int:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            text, title = record["text"], record.get("title") or ""
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise click.UsageError(f"line {number}: expected a JSON object with a 'text' "
                                   "field") from None
        click.echo(json.dumps(render.tags_json(tagger.tag(text, title=title)), ensure_ascii=False))
    return 0


@cli.command("eval-tags")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
def eval_tags(ctx: _Context, path: Path) -> int:
    """Score the tagger on JSON lines of {text, categories}: per-category P/R/F1, micro and
    macro F1, primary accuracy."""
    from crawler.evaluate import evaluate, format_report, load_eval_records

    report = evaluate(load_eval_records(path), ctx.tagger())
    click.echo(format_report(report))
    return 0


@cli.command()
@pass_context
def retag(ctx: _Context) -> int:
    """Re-tag the whole corpus after categories.toml changed (no re-fetch)."""
    from crawler.retag import retag_corpus

    tagger = ctx.tagger()
    with ctx.open_store(create=False) as store, render.Status("re-tagging …") as status:
        result = retag_corpus(store, tagger, on_progress=lambda done, total: status.update(
            f"re-tagging … {done} / {total} documents"))
    click.echo(f"re-tagged {result.documents} documents: {result.changed} changed labels, "
               f"{result.rescored} changed scores or evidence only")
    _update_index(ctx)
    return 0


# -- demo ----------------------------------------------------------------------------------
@cli.command()
@pass_context
def demo(ctx: _Context) -> int:
    """Serve the bundled demo site on 127.0.0.1, crawl it, and search 兼职 客服."""
    from crawler.config import CrawlConfig
    from crawler.demo import demo_sources, serve_directory

    with serve_directory() as base_url:
        click.echo(f"demo site at {base_url}; crawling into {ctx.data}/", err=True)
        code = _run_crawl(ctx, CrawlConfig(sources=demo_sources(base_url)))
    if code:
        return code
    click.echo("")
    return _demo_finish(ctx)


def _demo_finish(ctx: _Context) -> int:
    click.echo("$ fraudkb search 兼职 客服")
    return click.get_current_context().invoke(search, terms=("兼职", "客服"))


# -- entry point ---------------------------------------------------------------------------
def main() -> None:
    """Console script: run the CLI and map errors to SPEC exit codes (no tracebacks)."""
    sys.exit(_run(cli.main, standalone_mode=False))


def _run(func: Callable[..., Any], **kwargs: Any) -> int:
    try:
        result = func(**kwargs)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (ConfigError, ExportError) as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_USAGE
    except FraudkbError as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_FAILURE
    except OSError as exc:  # the environment failed us (disk full, read-only, permissions)
        click.echo(f"Error: {exc}", err=True)
        return EXIT_FAILURE
    return result if isinstance(result, int) else 0
