"""Extraction: the gold gate (tests/data/extract_gold) and unit tests of titles, dates,
boilerplate and the article/list decision."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import trafilatura
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.extract import (
    BOILERPLATE_HINT_RE,
    BOILERPLATE_RE,
    CONTENT_CONTAINER_XPATHS,
    FURNITURE_KEYWORDS,
    _is_content_container,
    clean_title,
    date_from_url,
    extract_article,
    is_article_page,
    parse_date,
)
from crawler.htmltree import parse_html
from crawler.links import find_links
from crawler.records import Page

GOLD_DIR = Path(__file__).parent / "data" / "extract_gold"
GOLD: list[dict[str, Any]] = json.loads((GOLD_DIR / "gold.json").read_text("utf-8"))["pages"]


def gold_page(entry: dict[str, Any], url: str | None = None) -> Page:
    html = (GOLD_DIR / entry["file"]).read_text("utf-8")
    return Page(url=url or entry["url"], html=html, encoding="utf-8")


def page(html: str, url: str = "https://example.gov.cn/a/1.html") -> Page:
    return Page(url=url, html=html, encoding="utf-8")


def list_html(items: int = 20, pager: str = "") -> str:
    """A column page as CMSs render it: a long <ul> of dated article links."""
    rows = "".join(
        f'<li><a href="./202403/t202403{day:02d}_{day}.html">反诈提醒第{day}期：'
        f"警惕新型网络诈骗手法</a><span>2024-03-{day:02d}</span></li>"
        for day in range(1, items + 1)
    )
    return (
        "<html><head><title>反诈宣传_青禾市公安局</title></head><body>"
        '<div class="nav"><a href="/">首页</a><a href="/fzxc/">反诈宣传</a></div>'
        f'<div class="list"><ul>{rows}</ul>{pager}</div>'
        '<div class="footer">主办单位：青禾市公安局</div></body></html>'
    )


# --- the gold gate --------------------------------------------------------------------


@pytest.mark.parametrize("entry", GOLD, ids=[e["file"] for e in GOLD])
def test_gold_page_extracts_title_date_and_body_without_boilerplate(entry: dict) -> None:
    article = extract_article(gold_page(entry))
    assert article is not None
    assert article.title == entry["title"]
    assert article.published == entry["published"]
    for sentence in entry["present"]:
        assert sentence in article.text
    for furniture in entry["absent"]:
        assert furniture not in article.text


@pytest.mark.parametrize("entry", GOLD, ids=[e["file"] for e in GOLD])
def test_gold_page_text_has_one_paragraph_per_line_and_no_blank_lines(entry: dict) -> None:
    article = extract_article(gold_page(entry))
    assert article is not None
    lines = article.text.split("\n")
    assert all(line == line.strip() and line for line in lines)
    assert len(lines) >= 1 if entry["file"] == "short_notice.html" else len(lines) >= 3


def test_gold_set_has_at_least_eight_pages_each_with_present_and_absent_strings() -> None:
    assert len(GOLD) >= 8
    assert all(e["present"] and e["absent"] for e in GOLD)


# --- bodies ---------------------------------------------------------------------------


def test_short_notice_below_trafilatura_default_minimum_is_kept() -> None:
    notice = "接到自称客服要求退款理赔的电话，请先挂断，再通过官方渠道核实，切勿转账。"
    html = f'<html><body><h1>预警</h1><div class="TRS_Editor"><p>{notice}</p></div></body></html>'
    article = extract_article(page(html))
    assert article is not None
    assert article.text == notice


def test_the_cms_container_is_extracted_whole_even_a_repeated_paragraph() -> None:
    # trafilatura knows no Chinese CMS container; marked as the articleBody it takes the
    # container as the body, instead of collecting stray paragraphs (which dropped repeats).
    slogan = "不听、不信、不转账，陌生来电多核实，守护好自己的钱袋子。"
    case = "近日，市民李某接到自称快递客服的电话，称其包裹丢失可双倍理赔，随后被骗三万元。"
    html = ('<html><body><h1>反诈提醒</h1><div class="v_news_content">'
            f"<p>{slogan}</p><p>{case}</p><p>{slogan}</p></div></body></html>")
    article = extract_article(page(html))
    assert article is not None
    assert article.text.splitlines() == [slogan, case, slogan]


def test_page_without_meaningful_body_returns_none() -> None:
    html = "<html><head><title>提示</title></head><body><p>请点击查看</p></body></html>"
    assert extract_article(page(html)) is None


def test_empty_page_returns_none() -> None:
    assert extract_article(page("  ")) is None


def test_nbsp_and_full_width_indents_are_removed_from_paragraph_starts() -> None:
    body = "".join(
        f"<p>&nbsp;&nbsp;\u3000\u3000第{n}段：不要向陌生账户转账，遇到可疑情况及时拨打96110。</p>"
        for n in range(1, 4)
    )
    article = extract_article(page(f"<html><body><div id='zoom'>{body}</div></body></html>"))
    assert article is not None
    assert article.text.split("\n")[0].startswith("第1段")
    assert "\u00a0" not in article.text and "\u3000" not in article.text


def test_prose_mentioning_tech_support_without_a_label_colon_survives() -> None:
    sentence = "对方自称平台技术支持人员，要求受害人下载会议软件并开启屏幕共享。"
    html = (
        f"<html><body><div class='article'><p>{sentence}</p>"
        "<p>民警提醒，正规平台不会要求共享屏幕，更不会索要验证码。</p></div>"
        "<div>技术支持：某某公司</div></body></html>"
    )
    article = extract_article(page(html))
    assert article is not None
    assert sentence in article.text
    assert "某某公司" not in article.text


def test_extract_article_keeps_the_page_url() -> None:
    entry = GOLD[0]
    article = extract_article(gold_page(entry))
    assert article is not None and article.url == entry["url"]


# --- titles ---------------------------------------------------------------------------


def test_meta_article_title_wins_over_title_tag() -> None:
    html = (
        '<html><head><meta name="ArticleTitle" content="冒充客服退款诈骗预警">'
        "<title>首页_某市公安局</title></head><body><div id='zoom'><p>"
        + "客服退款诈骗提醒，凡是要求开启屏幕共享的都是骗子。" * 3
        + "</p></div></body></html>"
    )
    article = extract_article(page(html))
    assert article is not None and article.title == "冒充客服退款诈骗预警"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("警惕刷单诈骗_青禾市公安局", "警惕刷单诈骗"),
        ("关于防范校园贷诈骗的提示-保卫处", "关于防范校园贷诈骗的提示"),
        ("南溪理工大学保卫处-关于防范校园贷诈骗的提示", "关于防范校园贷诈骗的提示"),
        ("冒充领导诈骗 | 东川区人民政府", "冒充领导诈骗"),
        ("网恋稳赚？当心杀猪盘——记者调查 - 澄江晚报", "网恋稳赚？当心杀猪盘——记者调查"),
        ("关于防范冒充公检法诈骗的紧急提醒--石桥区公安分局", "关于防范冒充公检法诈骗的紧急提醒"),
        ("2024-2025学年第一学期防诈骗教育安排", "2024-2025学年第一学期防诈骗教育安排"),
        ("警惕冒充客服诈骗-市反诈中心提醒", "警惕冒充客服诈骗-市反诈中心提醒"),
        ("反诈宣传_防范网贷诈骗的五个要点_某市公安局", "防范网贷诈骗的五个要点"),
    ],
)
def test_clean_title_drops_the_site_name_but_not_the_titles_own_dashes(
    raw: str, expected: str
) -> None:
    assert clean_title(raw) == expected


def test_clean_title_drops_a_known_site_name_that_does_not_look_like_one() -> None:
    assert clean_title("当心网贷陷阱 - 平安临川", site_name="平安临川") == "当心网贷陷阱"


# --- dates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("发布时间：2024-03-15 10:20", "2024-03-15"),
        ("2024年3月15日", "2024-03-15"),
        ("2024/03/15", "2024-03-15"),
        ("2024.3.5", "2024-03-05"),
        ("2024-13-01 然后 2024-02-29", "2024-02-29"),
        ("1989-06-01", None),
        ("2023-02-30", None),
        ("电话 0571-2024-1234", None),
    ],
)
def test_parse_date_accepts_chinese_formats_and_rejects_impossible_dates(
    text: str, expected: str | None
) -> None:
    assert parse_date(text) == expected


def test_parse_date_rejects_dates_in_the_future() -> None:
    next_year = dt.date.today().year + 1
    assert parse_date(f"{next_year}-01-01") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.gov.cn/fzxc/202403/t20240315_1001.html", "2024-03-15"),
        ("https://bwc.a.edu.cn/2024/0828/c2052a102531/page.htm", "2024-08-28"),
        ("https://a.gov.cn/art/2024/3/5/art_12_345.html", "2024-03-05"),
        ("https://a.gov.cn/fzxc/202403/t20241315_1001.html", None),
        ("https://bwc.a.edu.cn/info/1017/3302.htm", None),
    ],
)
def test_date_from_url_reads_trs_webplus_and_jcms_urls(url: str, expected: str | None) -> None:
    assert date_from_url(url) == expected


def test_meta_pubdate_wins_over_the_url_date() -> None:
    entry = next(e for e in GOLD if e["file"] == "trs_gov.html")
    article = extract_article(gold_page(entry))
    assert "t20240311" in entry["url"]
    assert article is not None and article.published == "2024-03-12"


def test_labelled_publish_line_wins_over_an_earlier_case_date_in_the_text() -> None:
    html = (
        "<html><body><p>发布时间：2024-05-06</p><div id='zoom'><p>2023年12月1日，"
        "市民李某接到冒充客服的电话，被骗八千元。警方提醒切勿向陌生账户转账。</p></div>"
        "</body></html>"
    )
    article = extract_article(page(html, url="https://a.gov.cn/news/77.html"))
    assert article is not None and article.published == "2024-05-06"


def test_page_without_any_date_has_published_none() -> None:
    body = "切勿向陌生账户转账，谨防诈骗。" * 5
    html = f"<html><body><div id='zoom'><p>{body}</p></div></body></html>"
    article = extract_article(page(html, url="https://a.gov.cn/news/notice.html"))
    assert article is not None and article.published is None


# --- article or list ------------------------------------------------------------------


@pytest.mark.parametrize("entry", GOLD, ids=[e["file"] for e in GOLD])
def test_gold_pages_are_articles(entry: dict) -> None:
    assert is_article_page(gold_page(entry))


@pytest.mark.parametrize(
    "file", ["trs_gov.html", "heavy_footer.html", "news_og.html", "gbk_era.html"]
)
def test_article_is_recognised_from_content_when_the_url_gives_no_hint(file: str) -> None:
    entry = next(e for e in GOLD if e["file"] == file)
    assert is_article_page(gold_page(entry, url="https://example.cn/show?id=5"))


@pytest.mark.parametrize(
    "url",
    [
        "https://a.gov.cn/fzxc/index.html",
        "https://a.gov.cn/fzxc/index_2.html",
        "https://bwc.a.edu.cn/2052/list.htm",
        "https://bwc.a.edu.cn/2052/list2.htm",
        "https://bwc.a.edu.cn/1017.htm",
        "https://a.gov.cn/fzxc/",
        "https://a.gov.cn/show?col=5",
    ],
)
def test_list_pages_are_not_articles(url: str) -> None:
    pager = '<a href="list2.htm">下一页</a><a href="list3.htm">尾页</a>'
    assert not is_article_page(page(list_html(pager=pager), url=url))


def test_short_list_of_three_links_is_not_an_article() -> None:
    assert not is_article_page(page(list_html(items=3), url="https://a.gov.cn/col/5.html"))


@pytest.mark.parametrize(
    "url",
    [
        "https://a.gov.cn/fzxc/202403/t20240315_1001.html",
        "https://bwc.a.edu.cn/2024/0828/c2052a102531/page.htm",
        "https://bwc.a.edu.cn/info/1017/3302.htm",
        "https://a.gov.cn/news/content_123.html",
        "https://a.gov.cn/art/2024/3/15/art_1229_4567.html",
    ],
)
def test_article_url_shapes_are_articles(url: str) -> None:
    assert is_article_page(page("<html><body><p>短</p></body></html>", url=url))


def test_news_list_with_summaries_is_not_an_article() -> None:
    summary = (
        "近期冒充客服、刷单返利、虚假贷款等诈骗高发，"
        "民警梳理了典型案例和防范要点，请广大市民提高警惕。"
    ) * 3
    items = "".join(
        f'<div class="item"><a href="/a/{n}.html">第{n}期反诈周报：警惕多种新型诈骗</a>'
        f"<p>{summary}</p><span>2024-05-{n:02d}</span></div>"
        for n in range(1, 13)
    )
    html = f"<html><body><div class='news'>{items}</div></body></html>"
    assert not is_article_page(page(html, url="https://a.gov.cn/news/weekly.shtml"))


def test_short_dated_notice_at_a_neutral_url_is_an_article() -> None:
    notice = (
        "近期有人冒充快递客服，以包裹丢失理赔为由诱导扫码、开启屏幕共享。"
        "凡是要求提供验证码、向陌生账户转账的，都是诈骗，请挂断电话并通过官方渠道核实。"
    )
    html = (
        "<html><body><h1>冒充快递客服诈骗预警</h1><p>发布日期：2024-06-01</p>"
        f"<div id='zoom'><p>{notice}</p></div></body></html>"
    )
    assert is_article_page(page(html, url="https://a.gov.cn/notice/show.php?id=7"))


def test_site_logo_h1_loses_to_the_page_title() -> None:
    html = (
        "<html><head><title>当心网贷骗局_青禾市公安局</title></head><body>"
        "<h1 class='logo'>青禾市公安局</h1><div class='TRS_Editor'><p>"
        + "凡是放款前要求先交解冻金、保证金的网贷，都是诈骗。" * 2
        + "</p></div></body></html>"
    )
    article = extract_article(page(html))
    assert article is not None and article.title == "当心网贷骗局"


def test_short_notice_inside_a_wrapper_named_like_furniture_is_kept() -> None:
    notice = "接到自称公安机关要求把钱转入安全账户的电话，一律是诈骗，请立即挂断并拨打110核实。"
    html = (
        "<html><body><div class='top-news print-area'><h1>紧急提醒</h1>"
        f"<div class='TRS_Editor'><p>{notice}</p></div>"
        "<p>【打印本页】【关闭窗口】</p></div></body></html>"
    )
    article = extract_article(page(html))
    assert article is not None and article.text == notice


def test_compact_pubdate_meta_is_read() -> None:
    html = (
        '<html><head><meta name="PubDate" content="20240315"></head><body>'
        "<div id='zoom'><p>"
        + "警惕冒充客服退款诈骗，切勿开启屏幕共享。" * 3
        + "</p></div></body></html>"
    )
    article = extract_article(page(html, url="https://a.gov.cn/a/1.html"))
    assert article is not None and article.published == "2024-03-15"


def test_layout_table_page_keeps_paragraphs_and_drops_cell_markup() -> None:
    entry = next(e for e in GOLD if e["file"] == "gbk_era.html")
    article = extract_article(gold_page(entry))
    assert article is not None
    assert len(article.text.split("\n")) == 3
    assert "|" not in article.text


def test_case_date_label_in_the_body_loses_to_the_url_date() -> None:
    html = (
        "<html><body><div id='zoom'><p>案发时间：2023年12月1日。市民李某接到冒充客服的电话，"
        "被骗八千元。警方提醒切勿向陌生账户转账。</p></div></body></html>"
    )
    url = "https://a.gov.cn/fzxc/202402/t20240206_5.html"
    article = extract_article(page(html, url=url))
    assert article is not None and article.published == "2024-02-06"


def test_earliest_date_in_the_text_is_taken_whatever_its_format() -> None:
    assert parse_date("2024-03-01 发布；2024年5月6日案发") == "2024-03-01"


def test_control_characters_in_old_pages_are_dropped() -> None:
    text = "\x00\x01警惕冒充客服诈骗\x0b，切勿向陌生账户转账，谨防上当受骗。"
    html = f"<html><body><p>{text}</p></body></html>"
    article = extract_article(page(html))
    assert article is not None
    assert article.text == "警惕冒充客服诈骗，切勿向陌生账户转账，谨防上当受骗。"


TAGS = st.sampled_from(["p", "div", "span", "td", "a", "h1", "br", "table", "li", "script"])


@st.composite
def html_fragments(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(TAGS, st.text(max_size=40)), max_size=12))
    return "".join(f"<{tag}>{text}</{tag}>" for tag, text in parts)


@settings(max_examples=80, deadline=None)
@given(html_fragments(), st.sampled_from(["", "<html><body>", "<?xml version='1.0'?>"]))
def test_any_markup_gives_an_article_with_clean_lines_or_none(body: str, prefix: str) -> None:
    article = extract_article(page(prefix + body))
    assert article is None or all(line and line == line.strip()
                                  for line in article.text.split("\n"))
    is_article_page(page(prefix + body))


# --- one parse shared with link discovery, and the fast paths -------------------------------


@pytest.mark.parametrize("entry", GOLD, ids=[e["file"] for e in GOLD])
def test_extracting_from_the_crawls_shared_parse_gives_the_same_article(entry: dict) -> None:
    gold = gold_page(entry)
    tree = parse_html(gold.html)
    find_links(gold, tree)  # the crawl reads links from the same tree first
    assert extract_article(gold, tree) == extract_article(gold)


def test_trafilatura_leaves_a_tree_it_is_given_unchanged() -> None:
    # _extract_body reads the pruned tree again (its fallback) after trafilatura ran on it.
    tree = parse_html((GOLD_DIR / GOLD[0]["file"]).read_text("utf-8"))
    assert tree is not None
    before = lxml.html.tostring(tree)
    assert trafilatura.extract(tree, output_format="txt")
    assert lxml.html.tostring(tree) == before


def test_content_container_test_agrees_with_the_container_xpaths() -> None:
    classes = ("TRS_Editor", "x TRS_Editor", "TRS_Editor2", "article", "article-content",
               "my-article", "articles", "v_news_content", "wp_articlecontent", "Article",
               "a\tarticle", "a\u00a0article", "")
    ids = ("zoom", "Zoom", "ZOOM", "UCAP-CONTENT", "vsb_content", "content", "")
    html = "".join(f"<div class='{c}' id='{i}'><p>正文</p></div>" for c in classes for i in ids)
    html += "<article><p>正文</p></article><section class='article'><p>正文</p></section>"
    pages = [f"<html><body>{html}</body></html>"]
    pages += [(GOLD_DIR / e["file"]).read_text("utf-8") for e in GOLD]
    for text in pages:
        tree = parse_html(text)
        assert tree is not None
        by_xpath = {el for xpath in CONTENT_CONTAINER_XPATHS for el in tree.xpath(xpath)}
        fast = {el for el in tree.iter() if isinstance(el.tag, str) and _is_content_container(el)}
        assert fast == by_xpath


@settings(max_examples=3000, deadline=None)
@given(st.from_regex(BOILERPLATE_RE))
def test_boilerplate_hint_never_hides_a_boilerplate_match(text: str) -> None:
    # Texts that contain a match of BOILERPLATE_RE, each alternative and case variant.
    assert BOILERPLATE_HINT_RE.search(text)
    assert any(keyword in text.lower() for keyword in FURNITURE_KEYWORDS)
