"""Page -> Article | None: title, publish date and clean body text of one article page.

Pipeline of one call (a pure function of the Page; nothing is fetched or cached per site):

    parse the str once with lxml
    -> title  (meta ArticleTitle > og:title > h1 > <title>, site name removed)
    -> date   (meta PubDate & co > 发布时间-style lines > date in the URL > first date in text)
    -> prune  boilerplate nodes (print/close, font size, share bar, prev/next, footer, counters)
    -> body   trafilatura on the pruned tree; the CMS content container when it finds nothing
    -> clean  lines: whitespace, boilerplate lines, the title and the date line repeated

`is_article_page` tells article pages from list/index pages when a source gives no
`article` regexes; its thresholds are documented next to the constants below.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import logging
import re
from configparser import ConfigParser
from urllib.parse import urlsplit

import lxml.html
import trafilatura
from lxml import etree
from trafilatura.settings import use_config

from crawler.records import Article, Page

logger = logging.getLogger(__name__)

# A body shorter than this (after cleanup) is not an article: "请点击查看" stubs, empty shells.
MIN_BODY_CHARS = 20
# trafilatura's 250-char default assumes English; a 60-char Chinese warning is a full notice.
# Below this many chars trafilatura tries its fallback extractors before giving up.
TRAFILATURA_MIN_EXTRACTED_CHARS = 60
# Oldest plausible publish year: Chinese government sites go back to the late 1990s.
MIN_PUBLISH_YEAR = 1990
# Boilerplate is short; a longer node that mentions 版权所有 is content quoting it.
MAX_BOILERPLATE_NODE_CHARS = 160
MAX_BOILERPLATE_LINE_CHARS = 100
MAX_TITLE_CHARS = 120
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
# class/id fragments of furniture containers (share bars, footers, pagers between articles).
BOILERPLATE_ATTR_XPATH = (
    "//*[@class or @id][re:test(concat(' ', @class, ' ', @id, ' '), "
    r"'(^|[\s_-])(footer|foot|share|bdshare|bshare|print|close|fontsize|font-size|"
    r"prevnext|prev-next|pre_next|nextprev|copyright|nav|navbar|menu|crumb|breadcrumb|"
    r"position|location|topbar|top|header|banner|logo|sidebar|related|friendlink)"
    r"([\s_-]|$)', 'i')]"
    " | //nav | //header | //footer | //aside"
)
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
_RE_NS = {"re": "http://exslt.org/regular-expressions"}
BLOCK_TAGS = frozenset(
    {"p", "div", "li", "tr", "td", "h1", "h2", "h3", "h4", "h5", "h6", "section",
     "article", "blockquote", "table", "ul", "ol", "dd", "dt", "pre"}
)
CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
DROP_TAGS = ("script", "style", "noscript", "template", "iframe")

# "_" "|" and spaced dashes always separate title parts; an unspaced dash only cuts off a
# site-like head or tail ("——" is Chinese punctuation inside titles, never a separator).
STRONG_TITLE_SPLIT_RE = re.compile(r"\s*[_|｜]\s*|\s+[-–—－]+\s+")
TITLE_SEPARATORS = " _|｜-–—－"
TITLE_TAIL_RE = re.compile(r"(?P<keep>.+?)(?<!—)[-–—－](?!—)(?P<site>[^-–—－]+)")
TITLE_HEAD_RE = re.compile(r"(?P<site>[^-–—－]+)(?<!—)[-–—－](?!—)(?P<keep>.+)")
MAX_SITE_NAME_CHARS = 20
# Title words that end like a site name (骗局 ends in 局) and punctuation no site name has.
NOT_SITE_NAME_RE = re.compile(
    r"(?:骗局|赌局|设局|布局|结局|困局|好处|坏处|害处|用处|上网|法网|落网|触网|内部|全部|"
    r"怎么办)$|[“”‘’？！，、：；（）《》?!,:;()\"]"
)
SITE_NAME_RE = re.compile(
    r"(?:网|局|厅|中心|处|部|办|大学|学院|学校|政府|官网|门户|平台|频道|在线|日报|晚报|新闻|"
    r"公安|派出所|委员会|保卫处|首页|网站)$"
)

META_DATE_NAMES = (
    "pubdate", "publishdate", "publish_date", "article:published_time", "og:published_time",
    "og:release_date", "firstpublishedtime", "publishtime", "dc.date.issued", "dc.date",
    "dcterms.created", "date", "weibo:article:create_at",
)
PUBLISH_LABEL_RE = re.compile(
    r"(?:发布时间|发布日期|发表时间|发表日期|发稿时间|发文日期|成文日期|发布于|更新时间)"
    r"\s*[:：]?\s*(?P<d>[^\n]{6,24})"
)
# A bare label only when it starts a phrase: not 案发时间, 作案时间.
DATE_LABEL_RE = re.compile(r"(?<![\u4e00-\u9fff])(?:日期|时间)\s*[:：]\s*(?P<d>[^\n]{6,24})")
DATE_RES = (
    re.compile(r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日"),
    re.compile(r"(?<!\d)(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?!\d)"),
)
COMPACT_DATE_RE = r"^\s*(\d{4})(\d{2})(\d{2})"
URL_DATE_RES = (
    re.compile(r"/t(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})_\d+"),                  # TRS
    re.compile(r"/(?P<y>\d{4})/(?P<m>\d{2})(?P<d>\d{2})/c\d+a\d+/"),              # WebPlus
    re.compile(r"/art/(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})/art_"),          # 大汉 JCMS
    re.compile(r"/(?P<y>\d{4})-?(?P<m>\d{2})-?(?P<d>\d{2})/"),                   # /20240315/
    re.compile(r"/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"),                       # /2024/03/15/
)

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


def extract_article(page: Page) -> Article | None:
    """Extract title, ISO publish date and clean body text; None when there is no body."""
    tree = _parse(page.html)
    if tree is None:
        return None
    title = extract_title(tree)
    published = extract_date(tree, page.url)
    _prune_boilerplate(tree)
    _flatten_layout_tables(tree)
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
    tree = _parse(page.html)
    if tree is None or extract_date(tree, page.url) is None:
        return False
    title_links = _title_link_count(tree)  # before pruning, which drops link lists
    _prune_boilerplate(tree)
    text_chars, link_chars, _ = _link_stats(_main_block(tree))
    if not text_chars or link_chars / text_chars > ARTICLE_MAX_LINK_DENSITY:
        return False
    min_chars = ARTICLE_MIN_TEXT_CHARS
    if title_links >= LIST_MIN_TITLE_LINKS:
        min_chars = ARTICLE_LONG_TEXT_CHARS
    if any(rx.search(path) for rx in LIST_URL_RES):
        min_chars *= 2  # some sites do publish a single notice as /xxx/index.html
    return text_chars >= min_chars


def extract_title(tree: lxml.html.HtmlElement) -> str:
    """Best title of a parsed page: CMS meta, og:title, <h1>, then <title> without site name."""
    site = _meta(tree, "og:site_name") or _meta(tree, "sitename")
    candidates = (
        _meta(tree, "articletitle"),
        _meta(tree, "og:title"),
        _first_text(tree, "//h1"),
        _first_text(tree, "//title"),
    )
    titles = [clean_title(c, site) if c else "" for c in candidates]
    # The meta titles are the CMS's own; an <h1> may be the site logo ("青禾市公安局").
    trusted = [t for i, t in enumerate(titles) if t and (i < 2 or not _looks_like_site_name(t))]
    return next(iter(trusted), next((t for t in titles if t), ""))


def clean_title(raw: str, site_name: str | None = None) -> str:
    """Drop the site name a CMS adds to a title ("标题_某市公安局"), keeping the title."""
    title = _strip_site_name(_normalise_space(raw), (site_name or "").strip())
    parts = [part.strip() for part in STRONG_TITLE_SPLIT_RE.split(title) if part.strip()]
    if len(parts) > 1:
        kept = [part for part in parts if not _looks_like_site_name(part)] or parts
        title = max(kept, key=len)
    for rx in (TITLE_TAIL_RE, TITLE_HEAD_RE):
        if (match := rx.fullmatch(title)) and _looks_like_site_name(match["site"].strip()):
            title = match["keep"].strip(TITLE_SEPARATORS)
    return title[:MAX_TITLE_CHARS]


def _strip_site_name(title: str, site: str) -> str:
    if not site or title == site:
        return title
    if title.endswith(site):
        title = title[: -len(site)].rstrip(TITLE_SEPARATORS)
    if title.startswith(site):
        title = title[len(site):].lstrip(TITLE_SEPARATORS)
    return title


def extract_date(tree: lxml.html.HtmlElement, url: str) -> str | None:
    """Publish date as ISO YYYY-MM-DD from meta, labelled lines, the URL or the text."""
    for name in META_DATE_NAMES:
        value = _meta(tree, name) or ""
        # Some CMSs write PubDate compactly ("20240315"); only trusted in a meta value.
        if found := parse_date(value) or parse_date(re.sub(COMPACT_DATE_RE, r"\1-\2-\3", value)):
            return found
    text = _visible_text(tree)
    # A bare "时间：" label may be a case's 案发时间 in the body: the URL date is surer.
    return (
        _labelled_date(text, PUBLISH_LABEL_RE)
        or date_from_url(url)
        or _labelled_date(text, DATE_LABEL_RE)
        or parse_date(text)
    )


def _labelled_date(text: str, label: re.Pattern[str]) -> str | None:
    for match in label.finditer(text):
        if found := parse_date(match.group("d")):
            return found
    return None


def parse_date(text: str) -> str | None:
    """First plausible date in `text` (2024年3月15日, 2024-03-15, 2024/3/15, 2024.03.15)."""
    found = [
        (match.start(), iso)
        for rx in DATE_RES
        for match in rx.finditer(text)
        if (iso := _valid_iso(match.group("y"), match.group("m"), match.group("d")))
    ]
    return min(found)[1] if found else None


def date_from_url(url: str) -> str | None:
    """Date encoded in a CMS article URL (TRS t20240315_1, WebPlus /2024/0828/c1a2/), if any."""
    path = urlsplit(url).path
    for rx in URL_DATE_RES:
        if (match := rx.search(path)) and (
            found := _valid_iso(match.group("y"), match.group("m"), match.group("d"))
        ):
            return found
    return None


def _valid_iso(year: str, month: str, day: str) -> str | None:
    try:
        date = dt.date(int(year), int(month), int(day))
    except ValueError:
        return None
    if date.year < MIN_PUBLISH_YEAR or date > dt.date.today():
        return None
    return date.isoformat()


def _parse(html: str) -> lxml.html.HtmlElement | None:
    # lxml refuses str with an XML encoding declaration (the text is decoded already) and
    # text nodes with C0 control characters, which some old CMS pages contain.
    html = CONTROL_CHARS_RE.sub("", re.sub(r"^\s*<\?xml[^>]*\?>", "", html))
    if not html.strip():
        return None
    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return None
    for element in tree.xpath("//" + " | //".join(DROP_TAGS)):
        _remove(element)
    for comment in tree.xpath("//comment()"):
        _remove(comment)
    return tree


def _remove(element: etree._Element) -> None:
    """Remove a node but keep its tail text (which belongs to the parent)."""
    parent = element.getparent()
    if parent is None:
        return
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _meta(tree: lxml.html.HtmlElement, name: str) -> str | None:
    lowered = name.lower()
    for meta in tree.iter("meta"):
        key = (meta.get("name") or meta.get("property") or meta.get("itemprop") or "").lower()
        if key == lowered and (content := (meta.get("content") or "").strip()):
            return content
    return None


def _first_text(tree: lxml.html.HtmlElement, xpath: str) -> str | None:
    for element in tree.xpath(xpath):
        if text := _normalise_space(element.text_content()):
            return text
    return None


def _looks_like_site_name(part: str) -> bool:
    return (
        len(part) <= MAX_SITE_NAME_CHARS
        and bool(SITE_NAME_RE.search(part))
        and not NOT_SITE_NAME_RE.search(part)
    )


def _visible_text(tree: lxml.html.HtmlElement) -> str:
    body = tree.find("body")
    return _block_text(body if body is not None else tree)


def _prune_boilerplate(tree: lxml.html.HtmlElement) -> None:
    """Remove furniture nodes: by class/id, link blocks, and the block around each marker.

    The CMS content container and its ancestors are never removed, whatever their names.
    """
    keep = _content_and_ancestors(tree)
    for element in tree.xpath(BOILERPLATE_ATTR_XPATH, namespaces=_RE_NS):
        # The length cap is a second guard for bodies in wrappers named like "top-news".
        if element not in keep and _text_len(element) <= MAX_BOILERPLATE_NODE_CHARS * 4:
            _remove(element)
    for element in list(tree.iter("div", "ul", "ol", "p", "td", "span", "table")):
        if element not in keep and _is_link_block(element):
            _remove(element)
    for element in list(tree.iter()):
        if not isinstance(element.tag, str) or element.tag in ("html", "head", "body"):
            continue
        own = _normalise_space("".join(_own_text(element)))
        if own and BOILERPLATE_RE.search(own):
            block = _furniture_block(element)
            if block is not None and block not in keep:
                _remove(block)


def _content_and_ancestors(tree: lxml.html.HtmlElement) -> set[etree._Element]:
    keep: set[etree._Element] = set()
    for xpath in CONTENT_CONTAINER_XPATHS:
        for element in tree.xpath(xpath):
            keep.add(element)
            keep.update(element.iterancestors())
    return keep


def _is_link_block(element: etree._Element) -> bool:
    text_chars, link_chars, links = _link_stats(element)
    return (
        links >= 2
        and 0 < text_chars <= MAX_LINK_BLOCK_CHARS
        and link_chars / text_chars >= MIN_LINK_BLOCK_DENSITY
    )


def _flatten_layout_tables(tree: lxml.html.HtmlElement) -> None:
    """Turn layout tables (a cell holding prose) into divs; data tables stay tables."""
    for table in list(tree.iter("table")):
        cells = table.xpath("./tr/td | ./tbody/tr/td | ./tr/th | ./tbody/tr/th")
        if any(_text_len(cell) >= MIN_LAYOUT_CELL_CHARS for cell in cells):
            for node in [table, *table.xpath("./tbody | ./tr | ./tbody/tr"), *cells]:
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
    if _text_len(block) > MAX_BOILERPLATE_NODE_CHARS:
        short_inline = element.tag not in BLOCK_TAGS and _text_len(element) <= 40
        return element if short_inline else None
    parent = block.getparent()
    if block.tag in ("body", "html"):
        return None
    while (
        parent is not None
        and parent.tag not in ("body", "html")
        and _text_len(parent) - _text_len(block) <= 4  # separators like " | "
    ):
        block, parent = parent, parent.getparent()
    return block


def _text_len(element: etree._Element) -> int:
    return len(_normalise_space(element.text_content()))


@functools.cache
def _trafilatura_config() -> ConfigParser:
    # Built once and never changed after: a lazily created constant, not shared state.
    config = use_config()
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", str(TRAFILATURA_MIN_EXTRACTED_CHARS))
    config.set("DEFAULT", "MIN_OUTPUT_SIZE", str(MIN_BODY_CHARS))
    config.set("DEFAULT", "EXTENSIVE_DATE_SEARCH", "off")
    return config


def _extract_body(tree: lxml.html.HtmlElement, url: str) -> str:
    """trafilatura on the pruned tree; the CMS content container when that finds nothing."""
    text = trafilatura.extract(
        copy.deepcopy(tree), url=url, output_format="txt", include_comments=False,
        include_tables=True, include_links=False, deduplicate=False,
        config=_trafilatura_config(),
    ) or ""
    if len(_normalise_space(text)) >= MIN_BODY_CHARS:
        return text
    container = _content_container(tree)
    return _block_text(container) if container is not None else text


def _content_container(tree: lxml.html.HtmlElement) -> etree._Element | None:
    for xpath in CONTENT_CONTAINER_XPATHS:
        for element in tree.xpath(xpath):
            if len(_normalise_space(element.text_content())) >= MIN_BODY_CHARS:
                return element
    return _largest_text_block(tree)


def _largest_text_block(tree: lxml.html.HtmlElement) -> etree._Element | None:
    """The element holding the most text directly or in its <p>/<br> lines."""
    best, best_len = None, 0
    for element in tree.iter("div", "td", "section", "article", "body"):
        length = sum(len(_normalise_space(part)) for part in _paragraph_texts(element))
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


def _block_text(element: etree._Element) -> str:
    """Text of an element with a line break at every block boundary and <br>."""
    element = copy.deepcopy(element)
    for node in element.iter():
        if node.tag == "br" or node.tag in BLOCK_TAGS:
            node.tail = "\n" + (node.tail or "")
        if node.tag in BLOCK_TAGS:
            node.text = "\n" + (node.text or "")
    return element.text_content()


def _clean_body(text: str, title: str) -> str:
    """Normalise whitespace, drop empty, furniture, metadata and repeated-title lines."""
    lines = [_normalise_space(_table_row_text(line)) for line in text.splitlines()]
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
    return bool(BOILERPLATE_RE.search(line) or META_LINE_RE.match(line))


def _normalise_space(text: str) -> str:
    # &nbsp; (U+00A0), full-width spaces (U+3000) and zero-width ones indent Chinese paragraphs.
    text = re.sub(r"[\u200b\u200c\u200d\ufeff]", "", text)
    return re.sub(r"[\s\u00a0\u3000]+", " ", text).strip()


def _main_block(tree: lxml.html.HtmlElement) -> etree._Element:
    container = _content_container(tree)
    return container if container is not None else tree


def _title_link_count(tree: lxml.html.HtmlElement) -> int:
    return sum(
        len(_normalise_space(a.text_content())) >= TITLE_LINK_MIN_CHARS
        for a in tree.iter("a")
        if a.get("href")
    )


def _link_stats(block: etree._Element) -> tuple[int, int, int]:
    """(text chars, link text chars, link count) of a block, whitespace ignored."""
    text_chars = len(re.sub(r"\s", "", block.text_content()))
    anchors = [a for a in block.iter("a") if a.get("href")]
    link_chars = sum(len(re.sub(r"\s", "", a.text_content())) for a in anchors)
    return text_chars, link_chars, len(anchors)
