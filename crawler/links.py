"""Page -> candidate links, including Chinese CMS pagination.

Uses lxml (not a BeautifulSoup tree): only hrefs, anchor texts and a few scripts are needed.
Pagination is recognised three ways:
- anchor text of a pager (下一页, 尾页, 上一页, 首页, 末页, >, », numbered page links),
- URL shape of list series (`index_3.html`, `list2.htm`, `index_3.shtml`),
- TRS pagers that exist only as `createPageHTML(total, current, "index", "html")` script
  calls: their page URLs (`index.html`, `index_1.html` ... `index_{total-1}.html`) are
  synthesised relative to the page.
"""

from __future__ import annotations

import functools
import re

from lxml import etree

from crawler.htmltree import parse_html
from crawler.records import Link, Page, PageLinks
from crawler.urls import resolve_link

PAGER_TEXTS = frozenset({
    "下一页", "下页", "上一页", "上页", "首页", "尾页", "末页", "最后一页", "第一页",
    ">", ">>", "<", "<<", "»", "«", "›", "‹", "next", "prev", "previous", "last", "first",
})
# Links whose URL alone says "another page of this list".
PAGER_URL = re.compile(
    r"(?:/|^)(?:index|list|default|more)[_-]?\d+\.s?html?$"   # index_2.html, list2.htm
    r"|[?&](?:page|pageno|pagenum|pageindex|curpage)=\d+$",     # ?page=3
    re.IGNORECASE,
)
PAGE_NUMBER_TEXT = re.compile(r"\[?\d{1,4}\]?|第\d{1,4}页")     # 2, [3], 第4页
CREATE_PAGE_CALL = re.compile(
    r"createPageHTML\(\s*([\w.]+)\s*,\s*([\w.]+)\s*,\s*['\"]([\w-]+)['\"]\s*,\s*['\"](\w+)['\"]")
META_REFRESH_URL = re.compile(r"url\s*=\s*(.+)$", re.IGNORECASE)
JS_LOCATION = re.compile(
    r"(?:window\.|top\.|self\.|document\.)?location(?:\.href)?\s*=\s*['\"]([^'\"]+)['\"]"
    r"|location\.replace\(\s*['\"]([^'\"]+)['\"]")
JS_NUMBER_VAR = r"(?:var|let|const)?\s*{name}\s*=\s*['\"]?(\d+)"
MAX_SYNTHESISED_PAGES = 1000  # a TRS total beyond this is a broken page, not a list


def find_links(page: Page, tree: etree._Element | None = None) -> PageLinks:
    """All http(s) links of `page` (absolute, normalised, deduplicated, in page order).

    `tree`, when given, is `parse_html(page.html)` as yet unpruned (scripts and <noscript>
    hold links and pagers); it is only read. The crawl shares one parse with extraction."""
    if tree is None:
        tree = parse_html(page.html)
    if tree is None:
        return PageLinks(canonical=None, links=())
    base = _base_url(tree, page.url)
    own_url = resolve_link(page.url, page.url)
    found: dict[str, Link] = {}
    for anchor in tree.iter("a", "area"):
        href = anchor.get("href")
        url = resolve_link(base, href) if href else None
        if url is None or url == own_url:
            continue
        text = " ".join(anchor.text_content().split()) if anchor.tag == "a" else ""
        # (200 characters are more than any pager text: cutting changes no verdict.)
        link = _anchor_link(url, text[:200])
        previous = found.get(url)
        if previous is None or (link.is_pagination and not previous.is_pagination):
            found[url] = link
    for url in synthesise_trs_pages(page.html, base):
        if url != own_url:
            found.setdefault(url, Link(url=url, text="", is_pagination=True))
    for url in _redirect_targets(tree, page.html, base):
        if url != own_url:
            found[url] = Link(url=url, text="", is_redirect=True)
    return PageLinks(canonical=_canonical(tree, base), links=tuple(found.values()))


def synthesise_trs_pages(html: str, base: str) -> list[str]:
    """URLs of the pages named by a TRS `createPageHTML(total, current, name, ext)` call."""
    urls: list[str] = []
    for match in CREATE_PAGE_CALL.finditer(html):
        total = _js_int(match.group(1), html)
        name, ext = match.group(3), match.group(4)
        if total is None or total < 1:
            continue
        for number in range(min(total, MAX_SYNTHESISED_PAGES)):
            filename = f"{name}.{ext}" if number == 0 else f"{name}_{number}.{ext}"
            url = resolve_link(base, filename)
            if url:
                urls.append(url)
    return urls


def _redirect_targets(tree: etree._Element, html: str, base: str) -> list[str]:
    """Where the page sends a browser: <meta http-equiv="refresh" content="0; url=...">
    and `location.href = "..."` / `location.replace("...")` scripts, which Chinese
    government portals often use instead of an HTTP redirect on their index pages."""
    targets = []
    for meta in tree.iter("meta"):
        if (meta.get("http-equiv") or "").strip().lower() == "refresh":
            match = META_REFRESH_URL.search(meta.get("content") or "")
            if match:
                targets.append(match.group(1).strip("'\" "))
    if "location" in html:  # every match holds it; the pattern itself has no literal prefix
        targets += [m.group(1) or m.group(2) for m in JS_LOCATION.finditer(html)]
    return [url for url in (resolve_link(base, t) for t in targets) if url]


def _js_int(token: str, html: str) -> int | None:
    """A literal int, or the value of `var token = N` elsewhere in the page's scripts."""
    if token.isdigit():
        return int(token)
    match = re.search(JS_NUMBER_VAR.format(name=re.escape(token)), html)
    return int(match.group(1)) if match else None


@functools.lru_cache(maxsize=16384)
def _anchor_link(url: str, text: str) -> Link:
    """The Link of an anchor. Memoised (a Link is immutable): navigation and footer links
    repeat on every page of a site, and each costs a pager test and a record."""
    return Link(url=url, text=text, is_pagination=_is_pager(text, url))


def _is_pager(text: str, url: str) -> bool:
    compact = text.replace(" ", "").lower()
    if compact in PAGER_TEXTS or PAGE_NUMBER_TEXT.fullmatch(compact):
        return True
    return bool(PAGER_URL.search(url))


def _base_url(tree: etree._Element, page_url: str) -> str:
    for base in tree.iter("base"):
        href = base.get("href")
        resolved = resolve_link(page_url, href) if href else None
        if resolved:
            return resolved
    return page_url


def _canonical(tree: etree._Element, base: str) -> str | None:
    for link in tree.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        href = link.get("href")
        if "canonical" in rel and href:
            return resolve_link(base, href)
    return None
