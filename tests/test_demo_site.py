"""The bundled demo site (crawler/demo_site) is well-formed: links resolve, encodings are
what the crawl tests expect, and every article extracts with a title and a date."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlsplit

import lxml.html
import pytest

from crawler.extract import date_from_url, extract_article, is_article_page
from crawler.records import Page

SITE = Path(__file__).parent.parent / "crawler" / "demo_site"
BASE = "http://127.0.0.1:8000"  # any origin: the site's links are relative or root-relative
GBK_FILE = SITE / "fzxc" / "202405" / "t20240520_1010.html"
PRINT_COPY = SITE / "fzxc" / "202403" / "t20240315_1001_print.html"
ARTICLE_RE = re.compile(r"(/t\d{8}_\d+\.html|/c\d+a\d+/page\.htm)$")
LIST_PAGES = ("fzxc/index.html", "fzxc/index_1.html", "fzxc/index_2.html",
              "bwc/2052/list.htm", "bwc/2052/list2.htm")
# A few unmistakable signals per SPEC category, to check the site's topical spread.
CATEGORY_SIGNALS = {
    "brushing_rebate": ("刷单",), "fake_investment": ("投资平台", "导师"),
    "fake_loan": ("解冻金", "贷款"), "fake_customer_service": ("理赔", "退款"),
    "impersonate_authority": ("安全账户",), "fake_credit": ("征信",),
    "game_trading": ("游戏账号", "装备"), "romance_scam": ("杀猪盘", "网恋"),
    "impersonate_acquaintance": ("冒充领导", "老板"), "fake_shopping": ("代购", "付款后"),
    "sextortion": ("裸聊",), "money_mule": ("帮信", "出租"), "fake_job": ("入职费", "培训费"),
}


def url_of(path: Path) -> str:
    return f"{BASE}/{path.relative_to(SITE).as_posix()}"


def read_page(path: Path) -> Page:
    """Decode as the crawler's decode stage would for these files (declared charset)."""
    encoding = "gbk" if path == GBK_FILE else "utf-8"
    return Page(url=url_of(path), html=path.read_bytes().decode(encoding), encoding=encoding)


def html_files() -> list[Path]:
    return sorted(p for p in SITE.rglob("*") if p.suffix in (".html", ".htm"))


def article_files() -> list[Path]:
    return [p for p in html_files() if ARTICLE_RE.search(p.as_posix())]


def hrefs(path: Path) -> list[str]:
    tree = lxml.html.document_fromstring(read_page(path).html)
    return [e.get("href") for e in tree.xpath("//a[@href] | //link[@href]")] + [
        e.get("src") for e in tree.xpath("//*[@src]")
    ]


def file_for(url: str) -> Path:
    return SITE / PurePosixPath(urlsplit(url).path).relative_to("/")


def article_texts() -> dict[Path, str]:
    texts = {}
    for path in article_files():
        article = extract_article(read_page(path))
        assert article is not None, path
        texts[path] = article.text
    return texts


@pytest.mark.parametrize("path", html_files(), ids=lambda p: p.relative_to(SITE).as_posix())
def test_every_internal_link_resolves_to_a_file_except_admin(path: Path) -> None:
    for href in hrefs(path):
        if href.startswith(("javascript:", "mailto:", "#")):
            continue
        target = urljoin(url_of(path), href)
        assert target.startswith(BASE + "/"), f"external or absolute link {href} in {path}"
        if urlsplit(target).path.startswith("/admin/"):
            continue
        assert file_for(target).is_file(), f"{href} in {path} does not resolve"


def test_home_links_to_both_sections_the_admin_page_and_latest_articles() -> None:
    targets = {urljoin(BASE + "/index.html", h) for h in hrefs(SITE / "index.html")}
    assert f"{BASE}/fzxc/index.html" in targets
    assert f"{BASE}/bwc/2052/list.htm" in targets
    assert f"{BASE}/admin/login.html" in targets
    assert sum(bool(ARTICLE_RE.search(t)) for t in targets) >= 2


def test_robots_disallows_admin_and_no_admin_file_exists() -> None:
    robots = (SITE / "robots.txt").read_text("ascii").splitlines()
    assert robots[:2] == ["User-agent: *", "Disallow: /admin/"]
    assert not (SITE / "admin").exists()


def test_gbk_article_decodes_as_gbk_and_not_as_utf8_and_declares_gbk() -> None:
    raw = GBK_FILE.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gbk")
    assert 'content="text/html; charset=gbk"' in text
    assert "银行卡" in text


def test_all_other_pages_are_utf8() -> None:
    for path in html_files():
        if path != GBK_FILE:
            path.read_bytes().decode("utf-8")


def test_site_has_at_least_fourteen_articles_and_two_short_notices() -> None:
    lengths = [len(text) for text in article_texts().values()]
    assert len(lengths) >= 16
    assert sum(300 <= n <= 1200 for n in lengths) >= 14
    assert sum(n < 200 for n in lengths) >= 2


@pytest.mark.parametrize("path", article_files(), ids=lambda p: p.relative_to(SITE).as_posix())
def test_every_article_extracts_with_title_date_and_no_furniture(path: Path) -> None:
    page = read_page(path)
    article = extract_article(page)
    assert article is not None
    h1 = lxml.html.document_fromstring(page.html).xpath("string(//h1)").strip()
    assert article.title == h1
    assert article.published == date_from_url(page.url)
    for furniture in ("打印本页", "关闭窗口", "字体", "上一篇", "下一篇", "浏览次数",
                      "分享到", "主办单位", "ICP备", "公网安备", "技术支持", "版权所有"):
        assert furniture not in article.text
    assert is_article_page(page)


@pytest.mark.parametrize("rel", [*LIST_PAGES, "index.html"])
def test_list_pages_and_home_are_not_articles(rel: str) -> None:
    assert not is_article_page(read_page(SITE / rel))


@pytest.mark.parametrize("number", [0, 1, 2])
def test_trs_list_pages_paginate_only_through_the_script_call(number: int) -> None:
    path = SITE / "fzxc" / ("index.html" if number == 0 else f"index_{number}.html")
    html = path.read_text("utf-8")
    assert f'createPageHTML(3, {number}, "index", "html");' in html
    # Pages 2 and 3 are reachable only by understanding the script call.
    assert not any(re.search(r"index_\d+\.html$", href) for href in hrefs(path))


def test_webplus_list_pages_have_plain_pager_links() -> None:
    first = (SITE / "bwc/2052/list.htm").read_text("utf-8")
    second = (SITE / "bwc/2052/list2.htm").read_text("utf-8")
    assert '<a href="list2.htm" class="next">下一页</a>' in first
    assert "尾页" in first
    assert '<a href="list.htm" class="prev">上一页</a>' in second
    assert "首页" in second


def test_print_copy_is_canonical_to_the_original_and_linked_from_a_list() -> None:
    tree = lxml.html.document_fromstring(read_page(PRINT_COPY).html)
    canonical = urljoin(url_of(PRINT_COPY), tree.xpath("string(//link[@rel='canonical']/@href)"))
    original = file_for(canonical)
    assert original == SITE / "fzxc" / "202403" / "t20240315_1001.html"
    copy_article = extract_article(read_page(PRINT_COPY))
    original_article = extract_article(read_page(original))
    assert copy_article is not None and original_article is not None
    assert copy_article.text == original_article.text
    linked = {urljoin(url_of(SITE / rel), h) for rel in LIST_PAGES for h in hrefs(SITE / rel)}
    assert url_of(PRINT_COPY) in linked


def test_at_least_two_articles_are_about_part_time_jobs_as_customer_service() -> None:
    both = [p for p, text in article_texts().items() if "兼职" in text and "客服" in text]
    assert len(both) >= 2


def test_articles_cover_at_least_eight_scam_categories() -> None:
    corpus = "\n".join(article_texts().values())
    covered = [c for c, signals in CATEGORY_SIGNALS.items() if any(s in corpus for s in signals)]
    assert len(covered) >= 8


def test_readme_says_the_content_is_fictional() -> None:
    assert "fictional" in (SITE / "README.txt").read_text("utf-8")
