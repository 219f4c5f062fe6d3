"""What the CLI prints: status lines, crawl summaries, search hits, tags, stats.

The SPEC JSON shapes of hits and tags live here too, beside their human forms.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click


class Status:
    """A live status line on stderr when it is a terminal; silent otherwise."""

    def __init__(self, text: str) -> None:
        from rich.console import Console

        console = Console(stderr=True)
        self.status = console.status(text) if console.is_terminal else None

    def __enter__(self) -> Status:
        if self.status is not None:
            self.status.start()
        return self

    def update(self, text: str) -> None:
        if self.status is not None:
            self.status.update(text)

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()


class CrawlProgress(Status):
    """The crawl's live status line on a terminal; a line every 10 s otherwise (logs, CI)."""

    def __init__(self) -> None:
        super().__init__("crawling …")
        self.last_line = time.monotonic()

    def show(self, stats) -> None:
        line = (f"fetched {stats.fetched} · new {stats.new} · changed {stats.changed} · "
                f"unchanged {stats.unchanged} · failed {stats.failed}")
        if self.status is not None:
            self.update(f"crawling … {line}")
        elif time.monotonic() - self.last_line >= 10:
            self.last_line = time.monotonic()
            click.echo(f"progress: {line}", err=True)


def print_crawl_summary(stats) -> None:
    state = "interrupted" if stats.interrupted else "finished"
    resumed = " (resumed)" if stats.resumed else ""
    click.echo(f"crawl {state}{resumed} in {stats.elapsed:.1f} s: fetched {stats.fetched}, "
               f"new {stats.new}, changed {stats.changed}, unchanged {stats.unchanged}, "
               f"failed {stats.failed}, skipped by robots {stats.robots}")
    extra = {"duplicates": stats.duplicates, "list pages": stats.lists,
             "out of scope": stats.out_of_scope, "too large": stats.too_large,
             "not html": stats.not_html, "no content": stats.no_content}
    click.echo("  " + ", ".join(f"{k} {v}" for k, v in extra.items()))


def hit_json(hit) -> dict[str, Any]:
    return {"url": hit.url, "title": hit.title, "published": hit.published,
            "source": hit.source, "kind": hit.kind, "categories": list(hit.categories),
            "score": round(hit.score, 4), "snippet": hit.snippet, "id": hit.id}


def print_hits(result) -> None:
    color = sys.stdout.isatty()
    facets = ", ".join(f"{cat} {n}" for cat, n in result.facets.items())
    if not result.hits:
        click.echo(f"no notices match {result.query_used}")
        if facets:      # there are matches: the --category filter left none of them
            click.echo(f"in other categories: {facets}")
        return
    noun = "notice matches" if result.total == 1 else "notices match"
    click.echo(f"{result.total} {noun} {result.query_used}\n")
    for rank, hit in enumerate(result.hits, start=1):
        title = click.style(hit.title, bold=True) if color else hit.title
        click.echo(f"{rank}. {title}")
        click.echo(f"   {hit.published or 'date unknown'} · {hit.source} · "
                   f"{', '.join(hit.categories) or 'no category'}")
        click.echo(f"   {hit.url}")
        click.echo(f"   {marked_snippet(hit, color)}\n")
    if facets:
        click.echo(f"by category: {facets}")


def marked_snippet(hit, color: bool) -> str:
    """The snippet with hits in bold red on a terminal, in [brackets] otherwise."""
    if not color:
        return hit.snippet
    pieces, position = [], 0
    for start, end in hit.snippet_spans:
        pieces.append(hit.snippet[position:start])
        pieces.append(click.style(hit.snippet[start + 1:end - 1], fg="red", bold=True))
        position = end
    pieces.append(hit.snippet[position:])
    return "".join(pieces)


def tags_json(tags) -> dict[str, Any]:
    return {"categories": list(tags.categories), "primary": tags.primary,
            "evidence": {cat: [{"term": e.term, "start": e.start, "end": e.end} for e in items]
                         for cat, items in tags.evidence.items()},
            "scores": {cat: round(score, 4) for cat, score in tags.scores.items()}}


def print_tags(tagger, text: str, tags) -> None:
    from crawler.tag import render_evidence

    names = {c.id: c.name for c in tagger.taxonomy.categories}
    if not tags.categories:
        click.echo("no scam category found")
    for cat in tags.categories:
        star = "*" if cat == tags.primary else " "
        terms = "、".join(dict.fromkeys(e.term for e in tags.evidence.get(cat, ())))
        click.echo(f"{star} {cat:<26} {names.get(cat, ''):<16} {tags.scores[cat]:6.2f}  {terms}")
    if tags.categories:
        color = sys.stdout.isatty()
        marked = render_evidence(text, tags, mark=(lambda s: click.style(s, fg="red", bold=True))
                                 if color else (lambda s: f"[{s}]"))
        click.echo("\n" + marked.strip())


def print_stats(report: dict[str, Any]) -> None:
    click.echo(f"{report['articles']} articles from {report['pages']} fetched pages")
    for title, key in (("by source", "by_source"), ("by category", "by_category"),
                       ("by month", "by_month")):
        click.echo(f"\n{title}:")
        for name, count in report[key].items():
            click.echo(f"  {name:<28} {count:>6}")
    last = report["last_crawl"]
    if last:
        click.echo(f"\nlast crawl: {last['started_at']} ({last['state']})")
