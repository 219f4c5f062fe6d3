"""One lxml parse of a page, shared by link discovery and extraction, and the small text
helpers both use.

The crawl parses each page once: `parse_html` keeps everything (scripts and <noscript> hold
links and pagers that discovery needs); extraction then calls `drop_non_content` on the same
tree before reading titles, dates and the body.
"""

from __future__ import annotations

import copy
import re

import lxml.html
from lxml import etree

CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
XML_DECLARATION_RE = re.compile(r"^\s*<\?xml[^>]*\?>")
DROP_TAGS = ("script", "style", "noscript", "template", "iframe")
_DROP_XPATH = etree.XPath("//" + " | //".join(DROP_TAGS) + " | //comment()")
BLOCK_TAGS = frozenset(
    {"p", "div", "li", "tr", "td", "h1", "h2", "h3", "h4", "h5", "h6", "section",
     "article", "blockquote", "table", "ul", "ol", "dd", "dt", "pre"}
)
# Zero-width characters are deleted, not turned into spaces. (A regex, not str.translate:
# translate does a dict lookup per character, ~15x slower on Chinese text.)
_ZERO_WIDTH_RE = re.compile("[\u200b\u200c\u200d\ufeff]")


def parse_html(html: str) -> lxml.html.HtmlElement | None:
    """The page as an lxml document (<html> root), or None when there is nothing to parse."""
    # lxml refuses str with an XML encoding declaration (the text is decoded already) and
    # text nodes with C0 control characters, which some old CMS pages contain.
    html = CONTROL_CHARS_RE.sub("", XML_DECLARATION_RE.sub("", html))
    if not html.strip():
        return None
    try:
        return lxml.html.document_fromstring(html, parser=_parser())
    except (etree.ParserError, ValueError):
        return None


def _parser() -> lxml.html.HTMLParser:
    """lxml.html's parser with one element class for every tag.

    lxml.html's own lookup picks a class per tag (forms, inputs...) in a Python callback that
    runs whenever an element is touched from Python: ~6 % of the crawl's worker time, since
    link discovery, pruning and trafilatura each walk the tree. Nothing here uses the form
    classes. A new parser per page (~1 µs): lxml parsers must not be shared between threads.
    """
    parser = lxml.html.HTMLParser()
    parser.set_element_class_lookup(etree.ElementDefaultClassLookup(element=lxml.html.HtmlElement))
    return parser


def drop_non_content(tree: lxml.html.HtmlElement) -> None:
    """Remove scripts, styles, <noscript>, templates, iframes and comments (in place)."""
    for element in _DROP_XPATH(tree):
        remove_node(element)


def remove_node(element: etree._Element) -> None:
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


def normalise_space(text: str) -> str:
    """Collapse whitespace runs to one space and strip; zero-width characters removed.

    str.split() splits on exactly the Unicode whitespace that `\\s` matches, &nbsp; (U+00A0)
    and the full-width space (U+3000) that indent Chinese paragraphs included."""
    return " ".join(_ZERO_WIDTH_RE.sub("", text).split())


def text_len(element: etree._Element) -> int:
    """Length of the element's text with whitespace normalised."""
    return len(normalise_space(element.text_content()))


def block_text(element: etree._Element) -> str:
    """Text of an element with a line break at every block boundary and <br>."""
    element = copy.deepcopy(element)
    for node in element.iter():
        if node.tag == "br" or node.tag in BLOCK_TAGS:
            node.tail = "\n" + (node.tail or "")
        if node.tag in BLOCK_TAGS:
            node.text = "\n" + (node.text or "")
    return element.text_content()
