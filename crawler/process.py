"""The CPU stage of a crawl: FetchResult -> ProcessedPage (decode, links, classify, extract,
tag). A pure function of its inputs, so it can run in a worker thread or process."""

from __future__ import annotations

import dataclasses

from crawler.config import SourceConfig
from crawler.decode import decode
from crawler.extract import extract_article, is_article_page
from crawler.links import find_links
from crawler.records import FetchResult, ProcessedPage
from crawler.tag import Tagger
from crawler.urls import normalize_url


def process_page(result: FetchResult, source: SourceConfig, tagger: Tagger,
                 min_article_chars: int = 40) -> ProcessedPage:
    """Decode the body, find its links, and extract and tag it when it is an article."""
    page = decode(result)
    links = find_links(page)
    url = normalize_url(page.url)
    decided = source.is_article_url(url)
    is_article = decided if decided is not None else is_article_page(page)
    article = extract_article(page) if is_article else None
    if article is not None and len(article.text) < min_article_chars:
        article = None
    if article is not None:
        canonical = links.canonical
        article_url = canonical if canonical and source.is_allowed(canonical) else url
        article = dataclasses.replace(article, url=article_url)
    tags = tagger.tag(article.text, title=article.title) if article is not None else None
    return ProcessedPage(url=url, encoding=page.encoding, links=links, is_article=is_article,
                         article=article, tags=tags)
