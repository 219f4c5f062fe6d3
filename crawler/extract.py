"""Page -> Article | None: title, publish date and clean body text of one article page.

Pipeline of one call (a pure function of the Page; nothing is fetched or cached per site):

    parse the str once with lxml (or take the crawl's parse, shared with link discovery)
    -> drop   scripts, styles, comments
    -> title, date (crawler.meta)
    -> prune  boilerplate nodes (print/close, font size, share bar, prev/next, footer, counters)
    -> body   trafilatura on the pruned tree; the CMS content container when it finds nothing
    -> clean  lines: whitespace, boilerplate lines, the title and the date line repeated

`is_article_page` tells article pages from list/index pages when a source gives no
`article` regexes; its thresholds are documented next to the constants below.
"""

from __future__ import annotations

import functools
import logging
import re
from urllib.parse import urlsplit

import lxml.html
import trafilatura
from lxml import etree
from trafilatura.settings import Extractor, use_config

from crawler.htmltree import (
    BLOCK_TAGS,
    block_text,
    drop_non_content,
    normalise_space,
    parse_html,
    remove_node,
    text_len,
)
from crawler.meta import (  # noqa: F401  (clean_title, parse_date, date_from_url: re-exported)
    clean_title,
    date_from_url,
    extract_date,
    extract_title,
    parse_date,
)
from crawler.records import Article, Page

logger = logging.getLogger(__name__)

# A body shorter than this (after cleanup) is not an article: "请点击查看" stubs, empty shells.
MIN_BODY_CHARS = 20
# trafilatura's 250-char default assumes English; a 60-char Chinese warning is a full notice.
# Below this many chars trafilatura tries its fallback extractors before giving up.
TRAFILATURA_MIN_EXTRACTED_CHARS = 60
# Boilerplate is short; a longer node that mentions 版权所有 is content quoting it.
MAX_BOILERPLATE_NODE_CHARS = 160
MAX_BOILERPLATE_LINE_CHARS = 100
TITLE_SEARCH_LINES = 3  # the body's first lines that may repeat the title
# A short block whose text is mostly links is navigation ("首页 | 通知公告"), not prose.
MAX_LINK_BLOCK_CHARS = 200
MIN_LINK_BLOCK_DENSITY = 0.6
# A table with a cell this long is page layout (2000s CMSs), not a data table: flatten it
# so trafilatura reads its cells as paragraphs instead of "| cell |" rows.
MIN_LAYOUT_CELL_CHARS = 80

# Markers of page furniture in Chinese CMSs. Markers that also occur in notice prose
# (技术支持, 主办单位, 分享到, 责任编辑) only count with the label punctuation
# they carry as furniture.
BOILERPLATE_RE = re.compile(
    r"打印本页|关闭窗口|打印此页|【\s*打印\s*】|【\s*关闭\s*】|收藏本页|"
    r"字体\s*[:：]?\s*[【\[]?\s*大\s*[】\]]?\s*[【\[]?\s*中|字号\s*[:：]\s*[【\[]?\s*大|"
    r"分享到\s*[:：]|^\s*分享到\s*\S{0,20}$|"
    r"^\s*(?:上一篇|下一篇|上一条|下一条)|(?:上一篇|下一篇|上一条|下一条)\s*[:：]|"
    r"[（(\[【]?\s*责任编辑\s*[:：]|"
    r"(?:浏览次数|浏览量|点击数|点击量|阅读次数|访问次数|阅读量)\s*[:：]|"
    r"主办单位\s*[:：]|承办单位\s*[:：]|技术支持\s*[:：]|版权所有|Copyright|©|"
    r"ICP\s*备|公网安备|网站标识码|网站地图\s*\||"
    r"^\s*(?:您现在的位置|您的位置|当前位置|所在位置)\s*[:：]",
    re.IGNORECASE | re.MULTILINE,
)
# Every alternative of BOILERPLATE_RE contains one of these characters ("p" for Copyright
# and ICP): text without any, most prose, is cleared by one character scan, ~3x cheaper
# than the full pattern. _has_furniture_marker applies all three; tests keep them in step.
BOILERPLATE_HINT_RE = re.compile("[印闭藏体号享篇条辑浏击阅访办技权©备站置p]", re.IGNORECASE)
# ... and every match holds one of these in the lower-cased text: a third of prose lines
# pass the character scan (号, 条, 办 and 站 are common words), few hold a keyword. "copyr"
# and "cp", not "copyright" and "icp": IGNORECASE lets "i" match "ı" and "İ", lower() not.
FURNITURE_KEYWORDS = (
    "打印", "关闭", "收藏", "字体", "字号", "分享到", "上一篇", "下一篇", "上一条", "下一条",
    "责任编辑", "浏览次数", "浏览量", "点击数", "点击量", "阅读次数", "访问次数", "阅读量",
    "主办单位", "承办单位", "技术支持", "版权所有", "copyr", "©", "cp", "公网安备", "网站标识码",
    "网站地图", "位置")
# class/id fragments of furniture containers (share bars, footers, pagers between articles),
# matched against " class id " of every element that has either; and furniture tags.
BOILERPLATE_ATTR_RE = re.compile(
    r"(^|[\s_-])(footer|foot|share|bdshare|bshare|print|close|fontsize|font-size|"
    r"prevnext|prev-next|pre_next|nextprev|copyright|nav|navbar|menu|crumb|breadcrumb|"
    r"position|location|topbar|top|header|banner|logo|sidebar|related|friendlink)"
    r"([\s_-]|$)",
    re.IGNORECASE,
)
BOILERPLATE_TAGS = ("nav", "header", "footer", "aside")
# The article metadata line (发布时间 / 来源 / 作者) is not body text.
META_LINE_RE = re.compile(
    r"^(?:发布时间|发布日期|发表时间|更新时间|日期|时间|来源|作者|信息来源|文章来源|编辑)\s*[:：]"
)
# Containers that CMSs put the article body in, most specific first.
CONTENT_CONTAINER_XPATHS = (
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' TRS_Editor ')]",
    "//*[@id='zoom' or @id='Zoom' or @id='UCAP-CONTENT' or @id='vsb_content']",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' wp_articlecontent ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' v_news_content ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' article-content ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' article ')]",
    "//article",
)
# The same containers as sets, for _is_content_container.
CONTAINER_CLASS_TOKENS = frozenset(
    {"TRS_Editor", "wp_articlecontent", "v_news_content", "article-content", "article"})
CONTAINER_IDS = frozenset({"zoom", "Zoom", "UCAP-CONTENT", "vsb_content"})
_XML_SPACE_RE = re.compile(r"[ \t\r\n]+")   # what XPath's normalize-space() splits on
# XPaths are compiled once: pruning runs on every article page of a crawl.
# Every element that has a class or id, is a furniture tag or an <article>, in document
# order: the one scan that both the content-container test and the furniture test read
# (the class/id tests then run in Python; an EXSLT re:test would call back into Python
# anyway, and the containers' seven XPaths would scan the page seven times).
# A union of name tests: half the time of one scan with self:: tests in its predicate.
_NAMED_ELEMENTS = etree.XPath(
    " | ".join(["//*[@class or @id]", *(f"//{tag}" for tag in (*BOILERPLATE_TAGS, "article"))]))
_CONTENT_CONTAINERS = tuple(etree.XPath(xpath) for xpath in CONTENT_CONTAINER_XPATHS)
_LAYOUT_CELLS = etree.XPath("./tr/td | ./tbody/tr/td | ./tr/th | ./tbody/tr/th")
_LAYOUT_ROWS = etree.XPath("./tbody | ./tr | ./tbody/tr")

# is_article_page thresholds. Measured on the gold set and the demo site: after pruning,
# article main blocks hold 57-527 chars with no links, list pages' main blocks < 20 chars
# (their items are links, not paragraphs). Before pruning, article pages carry 0-4
# title-like links (prev/next); CMS columns list 15-20 per page (the demo's only 3-4).
ARTICLE_URL_RES = (
    re.compile(r"/t\d{8}_\d+(?:_\w+)?\.s?html?$"),
    re.compile(r"/c\d+a\d+/page\.htm$"),
    re.compile(r"/info/\d+/\d+\.htm$"),
    re.compile(r"/content_\d+\.s?html?$"),
    re.compile(r"/art/\d{4}/\d{1,2}/\d{1,2}/art_\d+_\d+\.html$"),
)
LIST_URL_RES = (
    re.compile(r"/(?:index|default|list)(?:_\d+)?\.s?html?$"),
    re.compile(r"/list\d*\.s?html?$"),
    re.compile(r"/\d{3,5}\.htm$"),            # VSB column pages: /1017.htm, /1017/2.htm
    re.compile(r"/\d{3,5}/\d+\.htm$"),
    re.compile(r"/$"),
)
ARTICLE_MIN_TEXT_CHARS = 50      # a two-sentence warning; list main blocks stay under 20
ARTICLE_MAX_LINK_DENSITY = 0.35  # above this share of link text the main block is a list
LIST_MIN_TITLE_LINKS = 10        # this many title-like links make a page a list ...
ARTICLE_LONG_TEXT_CHARS = 600    # ... unless its main block is longer than this
TITLE_LINK_MIN_CHARS = 8         # nav links are 2-6 chars, article titles longer


def extract_article(page: Page, tree: lxml.html.HtmlElement | None = None) -> Article | None:
    """Extract title, ISO publish date and clean body text; None when there is no body.

    `tree`, when given, must be `parse_html(page.html)`; it is consumed (pruned in place).
    The crawl passes the tree it already parsed for link discovery."""
    if tree is None:
        tree = parse_html(page.html)
    if tree is None:
        return None
    drop_non_content(tree)
    title = extract_title(tree)
    published = extract_date(tree, page.url)
    named = _NAMED_ELEMENTS(tree)
    containers = _content_containers(named)
    _prune_boilerplate(tree, named, containers)
    _flatten_layout_tables(tree)
    _point_trafilatura_at_the_container(containers)
    text = _clean_body(_extract_body(tree, page.url), title)
    if len(text) < MIN_BODY_CHARS:
        logger.debug("no article body: %s", page.url)
        return None
    return Article(url=page.url, title=title, published=published, text=text)

def is_article_page(page: Page) -> bool:
    """Guess whether a page is an article (True) or a list/index page (False).

    A known article URL shape (TRS t20240315_1.html, WebPlus c2052a102531/page.htm, VSB
    /info/1017/3302.htm, content_1.html, /art/2024/3/15/art_1_2.html) decides alone.
    Otherwise, after pruning furniture, the page must carry a publish date and its main
    block (CMS container, else the block with most paragraph text) must hold at least
    ARTICLE_MIN_TEXT_CHARS with a link density of at most ARTICLE_MAX_LINK_DENSITY; a page
    with LIST_MIN_TITLE_LINKS title-like links needs ARTICLE_LONG_TEXT_CHARS; a list-shaped
    URL (index_2.html, list2.htm, /1017.htm, a trailing /) doubles the text bar.
    """
    path = urlsplit(page.url).path
    if any(rx.search(path) for rx in ARTICLE_URL_RES):
        return True
    tree = parse_html(page.html)
    if tree is None:
        return False
    drop_non_content(tree)
    if extract_date(tree, page.url) is None:
        return False
    title_links = _title_link_count(tree)  # before pruning, which drops link lists
    named = _NAMED_ELEMENTS(tree)
    _prune_boilerplate(tree, named, _content_containers(named))
    text_chars, link_chars, _ = _link_stats(_main_block(tree))
    if not text_chars or link_chars / text_chars > ARTICLE_MAX_LINK_DENSITY:
        return False
    min_chars = ARTICLE_MIN_TEXT_CHARS
    if title_links >= LIST_MIN_TITLE_LINKS:
        min_chars = ARTICLE_LONG_TEXT_CHARS
    if any(rx.search(path) for rx in LIST_URL_RES):
        min_chars *= 2  # some sites do publish a single notice as /xxx/index.html
    return text_chars >= min_chars


def _prune_boilerplate(tree: lxml.html.HtmlElement, named: list[etree._Element],
                       containers: list[etree._Element]) -> None:
    """Remove furniture nodes: by class/id, link blocks, and the block around each marker.

    `named` is _NAMED_ELEMENTS(tree). The CMS content `containers` (see
    _content_containers) and their ancestors are never removed, whatever their names.
    """
    keep = set(containers)
    for container in containers:
        keep.update(container.iterancestors())
    for element in named:
        if element.tag not in BOILERPLATE_TAGS and not BOILERPLATE_ATTR_RE.search(
                f" {element.get('class') or ''} {element.get('id') or ''} "):
            continue
        # The length cap is a second guard for bodies in wrappers named like "top-news".
        if element not in keep and text_len(element) <= MAX_BOILERPLATE_NODE_CHARS * 4:
            remove_node(element)
    for element in list(tree.iter("div", "ul", "ol", "p", "td", "span", "table")):
        if element not in keep and _is_link_block(element):
            remove_node(element)
    for element in list(tree.iter()):
        if not isinstance(element.tag, str) or element.tag in ("html", "head", "body"):
            continue
        own = normalise_space("".join(_own_text(element)))
        if own and _has_furniture_marker(own):
            block = _furniture_block(element)
            if block is not None and block not in keep:
                remove_node(block)


def _point_trafilatura_at_the_container(containers: list[etree._Element]) -> None:
    """Mark the first CMS content container (TRS_Editor, v_news_content, #zoom ...) as the
    page's articleBody, which trafilatura's first body XPath selects. It knows none of these
    Chinese CMS names, so without the mark it finds no body and gathers "wild" paragraphs
    from the whole tree instead, half of its time on a notice."""
    for element in containers:
        if element.get("itemprop") is None:
            element.set("itemprop", "articleBody")
            return


def _content_containers(named: list[etree._Element]) -> list[etree._Element]:
    """The CMS content containers among `named` (_NAMED_ELEMENTS of a tree), in document
    order. Pruning keeps them and their ancestors, so the list stays valid after it."""
    return [element for element in named if _is_content_container(element)]


def _is_content_container(element: etree._Element) -> bool:
    """Whether one of CONTENT_CONTAINER_XPATHS selects `element`."""
    if element.tag == "article" or element.get("id") in CONTAINER_IDS:
        return True
    classes = _XML_SPACE_RE.split(element.get("class") or "")
    return not CONTAINER_CLASS_TOKENS.isdisjoint(classes)


def _is_link_block(element: etree._Element) -> bool:
    # Count the anchors first: most blocks hold fewer than two, and then no text is needed.
    anchors = [a for a in element.iter("a") if a.get("href")]
    if len(anchors) < 2:
        return False
    text_chars = _non_space_len(element.text_content())
    if not 0 < text_chars <= MAX_LINK_BLOCK_CHARS:
        return False
    link_chars = sum(_non_space_len(a.text_content()) for a in anchors)
    return link_chars / text_chars >= MIN_LINK_BLOCK_DENSITY


def _flatten_layout_tables(tree: lxml.html.HtmlElement) -> None:
    """Turn layout tables (a cell holding prose) into divs; data tables stay tables."""
    for table in list(tree.iter("table")):
        cells = _LAYOUT_CELLS(table)
        if any(text_len(cell) >= MIN_LAYOUT_CELL_CHARS for cell in cells):
            for node in [table, *_LAYOUT_ROWS(table), *cells]:
                node.tag = "div"


def _own_text(element: etree._Element) -> list[str]:
    """Text directly inside `element` (not in children), plus inline children's text."""
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str) and child.tag not in BLOCK_TAGS:
            parts.append(child.text_content())
        parts.append(child.tail or "")
    return parts


def _furniture_block(element: etree._Element) -> etree._Element | None:
    """The block to drop for a furniture marker: its short block, grown over wrappers that
    hold nothing else; None when the marker sits inside a long block of prose."""
    block = element
    while block.tag not in BLOCK_TAGS and block.getparent() is not None:
        block = block.getparent()
    if text_len(block) > MAX_BOILERPLATE_NODE_CHARS:
        short_inline = element.tag not in BLOCK_TAGS and text_len(element) <= 40
        return element if short_inline else None
    parent = block.getparent()
    if block.tag in ("body", "html"):
        return None
    while (
        parent is not None
        and parent.tag not in ("body", "html")
        and text_len(parent) - text_len(block) <= 4  # separators like " | "
    ):
        block, parent = parent, parent.getparent()
    return block


@functools.cache
def _trafilatura_options() -> Extractor:
    # Built once and never changed after (trafilatura copies options it would alter): a
    # lazily created constant, not shared state. Building it per call re-reads the config,
    # ~8 % of trafilatura's time on a notice. No url: it only feeds link and image
    # resolution, which are off, and log lines.
    config = use_config()
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", str(TRAFILATURA_MIN_EXTRACTED_CHARS))
    config.set("DEFAULT", "MIN_OUTPUT_SIZE", str(MIN_BODY_CHARS))
    config.set("DEFAULT", "EXTENSIVE_DATE_SEARCH", "off")
    # fast: no readability/jusText comparison. On the gold set and the demo site it changes
    # no text (the pruned tree leaves no rival candidates) and it halves trafilatura's cost.
    return Extractor(config=config, output_format="txt", fast=True, comments=False,
                     tables=True, links=False, dedup=False)


def _extract_body(tree: lxml.html.HtmlElement, url: str) -> str:
    """trafilatura on the pruned tree; the CMS content container when that finds nothing.

    trafilatura copies a tree it is given: the fallback below reads ours afterwards (a test
    guards this)."""
    text = trafilatura.extract(tree, options=_trafilatura_options()) or ""
    if len(normalise_space(text)) >= MIN_BODY_CHARS:
        return text
    logger.debug("trafilatura found no body, using the content container: %s", url)
    container = _content_container(tree)
    return block_text(container) if container is not None else text


def _content_container(tree: lxml.html.HtmlElement) -> etree._Element | None:
    for xpath in _CONTENT_CONTAINERS:
        for element in xpath(tree):
            if len(normalise_space(element.text_content())) >= MIN_BODY_CHARS:
                return element
    return _largest_text_block(tree)


def _largest_text_block(tree: lxml.html.HtmlElement) -> etree._Element | None:
    """The element holding the most text directly or in its <p>/<br> lines."""
    best, best_len = None, 0
    for element in tree.iter("div", "td", "section", "article", "body"):
        length = sum(len(normalise_space(part)) for part in _paragraph_texts(element))
        if length > best_len:
            best, best_len = element, length
    return best


def _paragraph_texts(element: etree._Element) -> list[str]:
    parts = [element.text or ""]
    for child in element:
        if child.tag in ("p", "span", "font", "strong", "b"):
            parts.append(child.text_content())
        parts.append(child.tail or "")
    return parts


def _clean_body(text: str, title: str) -> str:
    """Normalise whitespace, drop empty, furniture, metadata and repeated-title lines."""
    lines = [normalise_space(_table_row_text(line)) for line in text.splitlines()]
    kept = [line for line in lines if line and not _is_furniture_line(line)]
    # The heading repeated at the top of the body is the title, not a paragraph.
    head = [line for line in kept[:TITLE_SEARCH_LINES] if line != title]
    return "\n".join(head + kept[TITLE_SEARCH_LINES:])


def _table_row_text(line: str) -> str:
    """trafilatura renders table rows as "| a | b |"; keep the cells' text."""
    stripped = line.strip()
    if len(stripped) > 1 and stripped.startswith("|") and stripped.endswith("|"):
        return " ".join(cell.strip() for cell in stripped[1:-1].split(" | "))
    return line


def _is_furniture_line(line: str) -> bool:
    if len(line) > MAX_BOILERPLATE_LINE_CHARS:
        return False
    return _has_furniture_marker(line) or META_LINE_RE.match(line) is not None


def _has_furniture_marker(text: str) -> bool:
    """BOILERPLATE_RE.search(text), with the cheap tests first: the character scan, then
    the keywords (the pattern's ~30 alternatives cost ~10 µs on a line of prose)."""
    if BOILERPLATE_HINT_RE.search(text) is None:
        return False
    lowered = text.lower()
    for keyword in FURNITURE_KEYWORDS:
        if keyword in lowered:
            return BOILERPLATE_RE.search(text) is not None
    return False


def _main_block(tree: lxml.html.HtmlElement) -> etree._Element:
    container = _content_container(tree)
    return container if container is not None else tree


def _title_link_count(tree: lxml.html.HtmlElement) -> int:
    return sum(
        len(normalise_space(a.text_content())) >= TITLE_LINK_MIN_CHARS
        for a in tree.iter("a")
        if a.get("href")
    )


def _link_stats(block: etree._Element) -> tuple[int, int, int]:
    """(text chars, link text chars, link count) of a block, whitespace ignored."""
    text_chars = _non_space_len(block.text_content())
    anchors = [a for a in block.iter("a") if a.get("href")]
    link_chars = sum(_non_space_len(a.text_content()) for a in anchors)
    return text_chars, link_chars, len(anchors)


def _non_space_len(text: str) -> int:
    """Characters that are not whitespace (what re.sub(r"\\s", "", text) would keep)."""
    return sum(map(len, text.split()))
