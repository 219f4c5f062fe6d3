import lxml.html

from crawler.htmltree import parse_html
from crawler.links import find_links, synthesise_trs_pages
from crawler.records import Page


def links_of(html: str, url: str = "http://a.cn/fzxc/index.html"):
    return find_links(Page(url=url, html=html, encoding="utf-8"))


def test_trs_pager_that_exists_only_as_a_script_call_is_synthesised():
    html = '<script>createPageHTML(4, 0, "index", "html");</script>'
    urls = [link.url for link in links_of(html).links]
    assert urls == ["http://a.cn/fzxc/index_1.html", "http://a.cn/fzxc/index_2.html",
                    "http://a.cn/fzxc/index_3.html"]
    assert all(link.is_pagination for link in links_of(html).links)


def test_trs_pager_with_variables_reads_their_values():
    html = ("<script>var countPage = 3//共多少页\nvar currentPage = 1;"
            'createPageHTML(countPage, currentPage, "index", "shtml");</script>')
    assert synthesise_trs_pages(html, "http://a.cn/x/index_1.shtml") == [
        "http://a.cn/x/index.shtml", "http://a.cn/x/index_1.shtml",
        "http://a.cn/x/index_2.shtml"]


def test_plain_pager_links_are_pagination_and_articles_are_not():
    html = """<ul><li><a href="2024/0828/c2052a1/page.htm">兼职刷单预警</a></li></ul>
    <a href="list2.htm">下一页</a> <a href="list9.htm">尾页</a> <a href="list3.htm">3</a>"""
    links = {link.url: link for link in links_of(html, "http://a.cn/2052/list.htm").links}
    assert not links["http://a.cn/2052/2024/0828/c2052a1/page.htm"].is_pagination
    assert links["http://a.cn/2052/list2.htm"].is_pagination
    assert links["http://a.cn/2052/list9.htm"].is_pagination
    assert links["http://a.cn/2052/list3.htm"].is_pagination


def test_index_n_series_is_pagination_by_url_shape():
    links = links_of('<a href="index_7.html">more</a>').links
    assert links[0].is_pagination


def test_canonical_base_and_ignored_schemes():
    html = """<head><base href="http://a.cn/other/"><link rel="canonical" href="t1.html"></head>
    <a href="mailto:x@a.cn">mail</a><a href="javascript:;">js</a><a href="t2.html#c">t2</a>"""
    result = links_of(html)
    assert result.canonical == "http://a.cn/other/t1.html"
    assert [link.url for link in result.links] == ["http://a.cn/other/t2.html"]


def test_links_are_deduplicated_and_self_links_dropped():
    html = '<a href="t1.html">a</a><a href="t1.html#x">b</a><a href="index.html">home</a>'
    assert [link.url for link in links_of(html).links] == ["http://a.cn/fzxc/t1.html"]


def test_empty_or_broken_html_gives_no_links():
    assert links_of("").links == ()
    assert links_of("<?xml version='1.0' encoding='gbk'?><html><a href='x.html'>x</a>").links


def test_meta_refresh_and_script_redirects_are_followed_as_redirect_links():
    refresh = '<meta http-equiv="Refresh" content="0; URL=\'/fzxc/index.html\'">'
    script = '<script>window.location.href = "col/col12/index.html";</script>'
    replace = "<script>location.replace('http://a.cn/m/');</script>"
    for html, expected in ((refresh, "http://a.cn/fzxc/index.html"),
                           (script, "http://a.cn/col/col12/index.html"),
                           (replace, "http://a.cn/m/")):
        (link,) = links_of(html, "http://a.cn/index.html").links
        assert link.url == expected and link.is_redirect and not link.is_pagination


def test_a_shared_parse_finds_the_same_links_and_is_left_as_it_was():
    html = ("<html><head><base href='/fzxc/'><link rel='canonical' href='a.html'></head><body>"
            "<noscript><a href='nojs.html'>无脚本版</a></noscript>"
            "<script>createPageHTML(3, 0, 'index', 'html'); location.href='moved.html';</script>"
            "<a href='a.html'>一</a><a href='index_1.html'>下一页</a></body></html>")
    page = Page(url="http://a.cn/fzxc/index.html", html=html, encoding="utf-8")
    tree = parse_html(html)
    before = lxml.html.tostring(tree)
    assert find_links(page, tree) == find_links(page)
    assert lxml.html.tostring(tree) == before


def test_location_redirects_in_long_pages_are_still_found():
    filler = "<p>" + "反诈宣传" * 2000 + "</p>"
    html = f"<html><body>{filler}<script>window.location.href = '/new/';</script></body></html>"
    links = links_of(html).links
    assert [(link.url, link.is_redirect) for link in links] == [("http://a.cn/new/", True)]
