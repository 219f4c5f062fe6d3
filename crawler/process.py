"""The CPU stage of a crawl: FetchResult -> ProcessedPage (decode, links, classify, extract,
tag, and the article's hash, lang and serialised tags for the store). A pure function of
its inputs, so it can run in a worker thread or process.

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
from crawler.records import FetchResult, PageLinks, ProcessedPage
from crawler.tag import Tagger
from crawler.urls import normalize_url


def process_page(result: FetchResult, source: SourceConfig, tagger: Tagger,
                 min_article_chars: int = 40) -> ProcessedPage:
    """Decode the body, find its in-scope links, and extract, tag and fingerprint it when it
    is an article."""
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
    if article is None:
        return ProcessedPage(url=url, encoding=page.encoding, links=links,
                             is_article=is_article, article=None, tags=None)
    canonical = links.canonical
    article_url = canonical if canonical and source.is_allowed(canonical) else url
    article = dataclasses.replace(article, url=article_url)
    tags = tagger.tag(article.text, title=article.title)
    return ProcessedPage(url=url, encoding=page.encoding, links=links, is_article=is_article,
                         article=article, tags=tags, content_hash=text_hash(article.text),
                         lang=detect_lang(article.text), tag_columns=tag_columns(tags))
