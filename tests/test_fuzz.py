"""Fuzzing the CPU stage: decode -> links -> extract -> tag (`process_page`) on generated and
mutated HTML. No exception may escape and every case must return in bounded time.

CI runs ~3,000 cases in all (`FRAUDKB_FUZZ_CASES` sets the total; `FRAUDKB_LONG=1` makes it
100,000 and asserts 5 s per case; CI only guards against hangs with a 30 s bound). Each
property is run both with an article pattern that forces extraction and without one.

The pathological shapes are bounded by 30 s in both modes: work there is linear in the
number of nodes and links, but not cheap (measured: a 1.1 MB page of 100,000 paragraphs
~7 s, 50,000 links ~6 s, mostly trafilatura and URL normalisation). CI runs them at a fifth
of that size.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.config import SourceConfig
from crawler.process import process_page
from crawler.records import FetchOutcome, FetchResult, ProcessedPage
from crawler.tag import Tagger, build_matcher
from crawler.taxonomy import default_categories_path, load_taxonomy

LONG = os.environ.get("FRAUDKB_LONG") == "1"
TOTAL_CASES = int(os.environ.get("FRAUDKB_FUZZ_CASES", "100000" if LONG else "3000"))
PROPERTIES = 3
CASE_SECONDS = 5.0 if LONG else 30.0
REPO = Path(__file__).resolve().parents[1]
SEED_PAGES = sorted([*REPO.glob("crawler/demo_site/**/*.htm*"),
                     *REPO.glob("tests/data/extract_gold/*.html")])
URL = "http://fuzz.example.cn/fzxc/t20240315_1.html"
FORCED = SourceConfig(name="fuzz", start_urls=("http://fuzz.example.cn/",),
                      article=(re.compile(r"/t\d{8}_\d+\.html$"),))
DECIDED_BY_PAGE = SourceConfig(name="fuzz", start_urls=("http://fuzz.example.cn/",))
FUZZ = settings(max_examples=max(1, TOTAL_CASES // PROPERTIES), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example],
                derandomize=not LONG, database=None)

TAGS = ("html", "head", "body", "title", "meta", "div", "p", "span", "table", "tr", "td", "a",
        "ul", "li", "h1", "br", "img", "script", "style", "iframe", "noscript", "svg", "math",
        "template", "textarea", "select", "option", "form", "frameset", "plaintext", "xmp",
        "article", "section", "font", "center", "pre", "code", "base", "link")
ATTRS = ("href", "src", "class", "id", "style", "content", "charset", "http-equiv", "rel",
         "name", "property", "onclick", "data-x", "lang", "dir")
WORDS = ("诈骗", "刷单", "兼职", "客服", "退款", "警方提示", "发布时间：2024-03-15", "下一页",
         "&amp;", "&#0;", "&#x110000;", "&nbsp;", "<!--", "-->", "<![CDATA[", "]]>", "<?xml",
         "\x00", "\ufeff", "\ufffd", "\u202e", "𠮷", "..", "javascript:", "%zz", "http://[::1",
         "上一页", "尾页", "2024年3月15日", "詐騙", "ｆｕｌｌ", "\r\n", "\t")
ENCODINGS = ("utf-8", "gb18030", "gbk", "big5", "utf-16", "latin-1", "shift_jis", "bogus")


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return build_matcher(load_taxonomy(default_categories_path()))


def run_case(body: bytes, content_type: str | None, tagger: Tagger, forced: bool,
             bound: float = CASE_SECONDS) -> ProcessedPage:
    """process_page on one body, asserting the time bound."""
    result = FetchResult(URL, URL, FetchOutcome.OK, status=200, body=body,
                         content_type=content_type)
    started = time.monotonic()
    processed = process_page(result, FORCED if forced else DECIDED_BY_PAGE, tagger)
    elapsed = time.monotonic() - started
    assert elapsed < bound, f"{elapsed:.1f} s for a {len(body)}-byte page"
    assert processed.url.startswith("http://fuzz.example.cn/")
    if processed.article is not None:
        assert processed.tags is not None and len(processed.article.text) >= 40
    return processed


# -- generated HTML --------------------------------------------------------------------------
text = st.one_of(st.sampled_from(WORDS), st.text(max_size=30),
                 st.text(alphabet="诈骗刷单兼职客服<>&;\"'=/ \n", max_size=60))
attr_value = st.one_of(text, st.sampled_from(["text/html; charset=gbk", "utf-8", "gb2312",
                                              "canonical", "next", "/a.html", "//x", "#"]))
attributes = st.lists(st.tuples(st.sampled_from(ATTRS), attr_value), max_size=3)


@st.composite
def element(draw: st.DrawFn, children: st.SearchStrategy[str]) -> str:
    tag = draw(st.sampled_from(TAGS))
    attrs = "".join(f" {name}=\"{value}\"" if draw(st.booleans()) else f" {name}={value}"
                    for name, value in draw(attributes))
    inner = "".join(draw(st.lists(children, max_size=4)))
    close = draw(st.sampled_from([f"</{tag}>", f"</{tag}>", "", f"</{tag}", "</>", "<"]))
    return f"<{tag}{attrs}>{inner}{close}"


html_text = st.recursive(text, lambda children: element(children), max_leaves=40)


@st.composite
def encoded_page(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """(body, Content-Type): a generated page in some encoding, declared right, wrong or not
    at all, with a <meta charset> that may disagree."""
    html = draw(html_text)
    meta = draw(st.sampled_from(["", "<meta charset='gbk'>", "<meta charset='utf-8'>",
                                 "<meta http-equiv='Content-Type' content='text/html; "
                                 "charset=gb2312'>", "<meta charset='x-bogus'>"]))
    real = draw(st.sampled_from(ENCODINGS[:-1]))
    body = f"<html><head>{meta}</head><body>{html}</body></html>".encode(real, "replace")
    declared = draw(st.sampled_from([None, "text/html", *(f"text/html; charset={e}"
                                                          for e in ENCODINGS)]))
    return body, declared


@FUZZ
@given(page=encoded_page(), forced=st.booleans())
def test_generated_html_never_raises(page: tuple[bytes, str | None], forced: bool,
                                     tagger: Tagger) -> None:
    run_case(*page, tagger, forced)


# -- mutated real pages ----------------------------------------------------------------------
INSERTS = (b"\x00", b"\x00" * 64, "诈骗".encode("gbk"), b"\xff\xfe", b"\xef\xbb\xbf", b"<",
           b"</div>", b"<table><tr><td>", b"<!--", b"<script>", b"\x81\x30", b"\xc3",
           b"&#x0;", b"<meta charset=big5>", b"\xe4\xb8")


@st.composite
def mutated_page(draw: st.DrawFn) -> bytes:
    """A demo or gold page with a few byte-level edits: inserts, cuts, duplicated slices."""
    body = bytearray(draw(st.sampled_from(SEED_PAGES)).read_bytes())
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(body)))
        op = draw(st.sampled_from(("insert", "delete", "duplicate", "truncate", "flip")))
        if op == "insert":
            body[at:at] = draw(st.one_of(st.sampled_from(INSERTS), st.binary(max_size=16)))
        elif op == "delete":
            del body[at:at + draw(st.integers(1, 500))]
        elif op == "duplicate":
            body[at:at] = body[at:at + draw(st.integers(1, 2000))] * draw(st.integers(1, 5))
        elif op == "truncate":
            del body[at:]
        elif at < len(body):
            body[at] ^= draw(st.integers(1, 255))
    return bytes(body)


@FUZZ
@given(body=mutated_page(), declared=st.sampled_from([None, "text/html; charset=utf-8",
                                                      "text/html; charset=gbk"]),
       forced=st.booleans())
def test_mutated_real_pages_never_raise(body: bytes, declared: str | None, forced: bool,
                                        tagger: Tagger) -> None:
    run_case(body, declared, tagger, forced)


@FUZZ
@given(prefix=st.sampled_from(SEED_PAGES), junk=st.binary(min_size=1, max_size=400),
       forced=st.booleans())
def test_random_bytes_spliced_into_a_real_page_never_raise(prefix: Path, junk: bytes,
                                                           forced: bool, tagger: Tagger) -> None:
    body = prefix.read_bytes()
    middle = len(body) // 2
    run_case(body[:middle] + junk + body[middle:], "text/html; charset=utf-8", tagger, forced)


# -- pathological shapes, each once ----------------------------------------------------------
NOTICE = "警方提示：兼职刷单先垫付，返利佣金都是诈骗。" * 3
PATHOLOGICAL_SECONDS = 30.0
SCALE = 5 if LONG else 1      # paragraphs and links: full size in long mode only


def pathological_pages() -> dict[str, bytes]:
    deep = 5000
    return {
        "divs nested 5,000 deep": ("<div>" * deep + NOTICE + "</div>" * deep).encode(),
        "tables nested 5,000 deep": ("<table><tr><td>" * deep + NOTICE).encode(),
        "unclosed inline tags 5,000 deep": ("<b><i><span>" * deep + NOTICE).encode(),
        "1 MiB attribute": f"<p title='{'诈' * 350_000}'>{NOTICE}</p>".encode(),
        "4 MiB single line": (f"<p>{NOTICE}" + "骗" * 1_400_000 + "</p>").encode(),
        f"{20_000 * SCALE:,} tiny paragraphs": ("<p>刷单</p>" * 20_000 * SCALE).encode(),
        "only NUL bytes": b"\x00" * 100_000,
        "NULs between every byte": b"\x00".join(bytes([c]) for c in
                                                f"<p>{NOTICE}</p>".encode()),
        "GBK bytes in a UTF-8 page": (f"<meta charset='utf-8'><p>{NOTICE}</p>".encode()
                                      + NOTICE.encode("gbk") * 50),
        f"{10_000 * SCALE:,} links": "".join(f"<a href='/t{n}.html'>诈骗{n}</a>"
                                              for n in range(10_000 * SCALE)).encode(),
        "200-level URL": f"<a href='/{'a/' * 200}x.html'>深</a><p>{NOTICE}</p>".encode(),
        "comment never closed": f"<p>{NOTICE}</p><!--".encode() + b"x" * 500_000,
        "empty body": b"",
    }


@pytest.mark.parametrize("name", list(pathological_pages()))
@pytest.mark.parametrize("forced", [True, False], ids=["extract", "page-decides"])
def test_pathological_page_is_processed_in_bounded_time(name: str, forced: bool,
                                                        tagger: Tagger) -> None:
    run_case(pathological_pages()[name], "text/html; charset=utf-8", tagger, forced,
             bound=PATHOLOGICAL_SECONDS)
