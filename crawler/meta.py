"""Title and publish date of a parsed article page (the metadata half of extraction).

    title  meta ArticleTitle > og:title > <h1> > <title>, with the site name removed
    date   meta PubDate & co > 发布时间-style lines > date in the URL > first date in text
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import lxml.html

from crawler.htmltree import block_text, normalise_space

# Oldest plausible publish year: Chinese government sites go back to the late 1990s.
MIN_PUBLISH_YEAR = 1990
MAX_TITLE_CHARS = 120

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


def extract_title(tree: lxml.html.HtmlElement) -> str:
    """Best title of a parsed page: CMS meta, og:title, <h1>, then <title> without site name."""
    metas = meta_values(tree)
    site = metas.get("og:site_name") or metas.get("sitename")
    candidates = (
        metas.get("articletitle"),
        metas.get("og:title"),
        _first_text(tree, "//h1"),
        _first_text(tree, "//title"),
    )
    titles = [clean_title(c, site) if c else "" for c in candidates]
    # The meta titles are the CMS's own; an <h1> may be the site logo ("青禾市公安局").
    trusted = [t for i, t in enumerate(titles) if t and (i < 2 or not _looks_like_site_name(t))]
    return next(iter(trusted), next((t for t in titles if t), ""))


def clean_title(raw: str, site_name: str | None = None) -> str:
    """Drop the site name a CMS adds to a title ("标题_某市公安局"), keeping the title."""
    title = _strip_site_name(normalise_space(raw), (site_name or "").strip())
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
    metas = meta_values(tree)
    for name in META_DATE_NAMES:
        value = metas.get(name, "")
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


def meta_values(tree: lxml.html.HtmlElement) -> dict[str, str]:
    """{lower-case name/property/itemprop: content} of the page's <meta> tags; the first
    non-empty content of a name wins. One pass, however many names are looked up."""
    values: dict[str, str] = {}
    for meta in tree.iter("meta"):
        key = (meta.get("name") or meta.get("property") or meta.get("itemprop") or "").lower()
        if key not in values and (content := (meta.get("content") or "").strip()):
            values[key] = content
    return values


def _first_text(tree: lxml.html.HtmlElement, xpath: str) -> str | None:
    for element in tree.xpath(xpath):
        if text := normalise_space(element.text_content()):
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
    return block_text(body if body is not None else tree)
