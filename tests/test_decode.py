"""decode(): bytes -> str like a browser (BOM, HTTP charset, meta, detection), GBK-aware."""

from __future__ import annotations

import asyncio

from crawler.config import FetchConfig
from crawler.decode import decode, decode_bytes
from crawler.fetch import Fetcher
from crawler.records import FetchOutcome, FetchResult, Page
from servers import ScriptedServer, page

NOTICE = ("近期我市发生多起冒充电商客服诈骗案件，骗子以退款理赔为由诱导受害人屏幕共享，"
          "请广大市民提高警惕。")
FAST = FetchConfig(connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0, max_retries=0)


def html(head: str = "", body: str = NOTICE) -> str:
    """A small notice page with `head` markup (e.g. a meta charset)."""
    return f"<html><head>{head}<title>反诈预警</title></head><body><p>{body}</p></body></html>"


def fetch_and_decode(body: bytes, content_type: str | None) -> Page:
    """Serve `body` from a real local server, fetch it and decode the result."""

    async def run(url: str) -> FetchResult:
        async with Fetcher(FAST) as fetcher:
            return await fetcher.fetch(url, is_allowed=lambda u: True)

    with ScriptedServer({"/n.html": page(body, content_type=content_type)}) as server:
        result = asyncio.run(run(server.url("/n.html")))
    assert result.outcome is FetchOutcome.OK
    return decode(result)


def test_gbk_page_with_meta_charset_only_decodes_from_meta() -> None:
    markup = html('<meta http-equiv="Content-Type" content="text/html; charset=gbk">')
    decoded = fetch_and_decode(markup.encode("gbk"), "text/html")
    assert (decoded.html, decoded.encoding) == (markup, "gb18030")


def test_gb2312_meta_is_widened_to_gb18030() -> None:
    # 镕 (Zhu Rongji's 镕) is outside GB2312 and 𠀀 outside GBK: GB2312-labelled pages use them.
    markup = html('<meta charset="gb2312">', body="镕𠀀" + NOTICE)
    decoded = fetch_and_decode(markup.encode("gb18030"), None)
    assert (decoded.html, decoded.encoding) == (markup, "gb18030")


def test_charset_in_header_overrides_meta() -> None:
    markup = html('<meta charset="gbk">')
    decoded = fetch_and_decode(markup.encode("utf-8"), "text/html; charset=UTF-8")
    assert (decoded.html, decoded.encoding) == (markup, "utf-8")


def test_utf8_bom_overrides_header_and_meta() -> None:
    markup = html('<meta charset="gbk">')
    text, encoding = decode_bytes(b"\xef\xbb\xbf" + markup.encode("utf-8"),
                                  "text/html; charset=gbk")
    assert (text, encoding) == (markup, "utf-8")


def test_undeclared_gbk_page_is_detected() -> None:
    markup = html()
    decoded = fetch_and_decode(markup.encode("gbk"), "text/html")
    assert (decoded.html, decoded.encoding) == (markup, "gb18030")


def test_short_undeclared_gbk_text_prefers_gb18030_over_big5() -> None:
    assert decode_bytes("<p>警惕冒充客服诈骗</p>".encode("gbk"), None) == (
        "<p>警惕冒充客服诈骗</p>", "gb18030")


def test_undeclared_big5_page_is_detected() -> None:
    markup = ("<html><head><title>反詐預警</title></head><body><p>近期發生多起冒充電商客服詐騙"
              "案件，請廣大市民提高警惕，切勿相信網上兼職刷單。</p></body></html>")
    text, encoding = decode_bytes(markup.encode("big5"), None)
    assert (text, encoding) == (markup, "big5hkscs")


def test_undeclared_utf8_page_is_detected() -> None:
    markup = html()
    assert decode_bytes(markup.encode("utf-8"), "text/html") == (markup, "utf-8")


def test_invalid_bytes_are_replaced_not_raised() -> None:
    body = html('<meta charset="utf-8">').encode("utf-8") + b"\xff\xfe\xfd"
    text, encoding = decode_bytes(body, None)
    assert encoding == "utf-8"
    assert text.endswith("\ufffd\ufffd\ufffd") and NOTICE in text


def test_invalid_gbk_bytes_are_replaced_not_raised() -> None:
    text, _ = decode_bytes("<p>诈骗</p>".encode("gbk") + b"\x81", "text/html; charset=gbk")
    assert text.startswith("<p>诈骗</p>") and "\ufffd" in text


def test_unknown_header_charset_falls_back_to_meta() -> None:
    markup = html('<meta charset="gbk">')
    text, encoding = decode_bytes(markup.encode("gbk"), "text/html; charset=x-no-such-thing")
    assert (text, encoding) == (markup, "gb18030")


def test_page_url_is_the_final_url_after_redirects() -> None:
    result = FetchResult(url="http://a.cn/old", final_url="http://a.cn/new",
                         outcome=FetchOutcome.OK, status=200, body=b"<p>hi</p>",
                         content_type="text/html; charset=utf-8")
    assert decode(result) == Page(url="http://a.cn/new", html="<p>hi</p>", encoding="utf-8")


def test_empty_body_decodes_to_empty_text() -> None:
    assert decode_bytes(b"", None) == ("", "utf-8")


def test_large_undeclared_gbk_page_is_detected_from_a_sample() -> None:
    # Bigger than the detection sample, so the sample must not cut a character in two.
    markup = html(body=NOTICE * 1500)
    assert decode_bytes(markup.encode("gbk"), None) == (markup, "gb18030")


def test_undeclared_gbk_page_with_a_stray_invalid_byte_is_still_gbk() -> None:
    body = html().encode("gbk")
    at = body.index(b"<p>")
    text, encoding = decode_bytes(body[:at] + b"\x81\x20" + body[at:], None)
    assert encoding == "gb18030"
    assert NOTICE in text and text.count("\ufffd") == 1
