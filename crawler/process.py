"""The CPU stage of a crawl: FetchResult -> ProcessedPage (decode, links, classify, extract,
tag, and the article's hash, lang and serialised tags for the store). Pure functions of
their inputs, so they can run in a worker thread or process. process_page does one page;
prepare_page and finish_page are its two halves, so that a worker can tag the articles of
a batch of pages together (Tagger.tag_many) in between.

The page is parsed once: link discovery reads the tree first, then extraction prunes the
same tree in place (each parse costs about as much as finding the links).
"""

from __future__ import annotations

import dataclasses

from crawler.config import SourceConfig
from crawler.decode import decode
from crawler.digest import detect_lang, tag_columns, text_hash
from crawler.extract import extract_article, is_article_page
from crawler.htmltree import parse_html
from crawler.links import find_links
from crawler.records import FetchResult, PageLinks, ProcessedPage, Tags
from crawler.tag import Tagger
from crawler.urls import normalize_url


def process_page(result: FetchResult, source: SourceConfig, tagger: Tagger,
                 min_article_chars: int = 40) -> ProcessedPage:
    """Decode the body, find its in-scope links, and extract, tag and fingerprint it when it
    is an article."""
    page = prepare_page(result, source, min_article_chars)
    article = page.article
    return finish_page(page, tagger.tag(article.text, title=article.title) if article else None)


def prepare_page(result: FetchResult, source: SourceConfig, min_article_chars: int = 40
                 ) -> ProcessedPage:
    """Everything but the tagging: decode, links, and the article if the page is one. Its
    `tags` are None until finish_page (a worker tags a batch of pages at once)."""
    page = decode(result)
    tree = parse_html(page.html)
    found = find_links(page, tree)
    # Only links the source may follow travel back to the crawl loop (most pages link to
    # other sites in their footers): less to pickle, and nothing for the loop to filter.
    links = PageLinks(canonical=found.canonical,
                      links=tuple(link for link in found.links if source.is_allowed(link.url)))
    url = normalize_url(page.url)
    decided = source.is_article_url(url)
    is_article = decided if decided is not None else is_article_page(page)
    article = extract_article(page, tree) if is_article else None
    if article is not None and len(article.text) < min_article_chars:
        article = None
    if article is not None:
        canonical = links.canonical
        article_url = canonical if canonical and source.is_allowed(canonical) else url
        article = dataclasses.replace(article, url=article_url)
    return ProcessedPage(url=url, encoding=page.encoding, links=links, is_article=is_article,
                         article=article, tags=None)


def finish_page(page: ProcessedPage, tags: Tags | None) -> ProcessedPage:
    """`page` (from prepare_page) with its article's tags, hash, script and stored tag
    columns; `tags` is None exactly when the page holds no article."""
    if page.article is None:
        return page
    if tags is None:
        raise ValueError(f"{page.url}: an article needs its tags")
    text = page.article.text
    return dataclasses.replace(page, tags=tags, content_hash=text_hash(text),
                               lang=detect_lang(text), tag_columns=tag_columns(tags))
