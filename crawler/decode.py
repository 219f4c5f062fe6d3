"""FetchResult -> Page: the one place bytes become str.

Decoding follows a browser: BOM -> charset in the HTTP Content-Type -> <meta charset> /
http-equiv / XML declaration -> detection (charset-normalizer) -> UTF-8. Labels go through
the WHATWG mapping, so gb2312 and gbk are decoded as their superset gb18030 (and big5 as
big5hkscs). Invalid bytes become U+FFFD; decoding never raises.
"""

from __future__ import annotations

import charset_normalizer
from w3lib.encoding import html_to_unicode, resolve_encoding

from crawler.records import FetchResult, Page

# Our sources are Chinese sites; limiting detection to the encodings they actually use stops
# short GBK pages from being "detected" as Korean cp949 or Japanese (seen with ~20-byte
# pages). cp1252 stays a candidate for the odd Western page.
DETECTION_CANDIDATES = ("utf_8", "gb18030", "big5", "cp1252")
# Short texts decode "cleanly" as both GBK and Big5 (same byte ranges); our sources are
# mainland sites, so gb18030 wins unless Big5 reads clearly better. 0.02 covers the short
# GBK notices we tried (Big5 ahead by 0.013); on the Big5 pages we tried, gb18030 was not
# even a candidate, so the margin does not pull them over.
GB18030_CHAOS_MARGIN = 0.02
DETECTION_SAMPLE_BYTES = 64 * 1024      # detection cost stays flat on multi-MB pages
DEFAULT_ENCODING = "utf-8"
FALLBACK_ENCODINGS = ("gb18030", "utf-8", "big5hkscs")     # in order of preference on ties


def decode(result: FetchResult) -> Page:
    """Decode a fetched body into a Page (url = the final URL after redirects)."""
    html, encoding = decode_bytes(result.body, result.content_type)
    return Page(url=result.final_url, html=html, encoding=encoding)


def decode_bytes(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode an HTML body like a browser: returns (text, codec name actually used)."""
    encoding, text = html_to_unicode(content_type, body, default_encoding=DEFAULT_ENCODING,
                                     auto_detect_fun=detect_encoding)
    return text, encoding


def detect_encoding(body: bytes) -> str | None:
    """Guess the encoding of undeclared bytes; gbk/gb2312 guesses are widened to gb18030."""
    sample = _sample(body)
    if _is_utf8(sample):
        return "utf-8"
    matches = charset_normalizer.from_bytes(sample, cp_isolation=list(DETECTION_CANDIDATES))
    best = matches.best()
    if best is None:
        # charset-normalizer drops every codec that hits one invalid byte, and real pages
        # have stray bytes: then take the codec with the fewest errors (gb18030 wins ties).
        return min(FALLBACK_ENCODINGS, key=lambda enc: _error_count(sample, enc))
    gb = next((m for m in matches if m.encoding == "gb18030"), None)
    if gb is not None and gb.chaos <= best.chaos + GB18030_CHAOS_MARGIN:
        best = gb
    # html_to_unicode uses the detected name as-is; map it like a declared label.
    return resolve_encoding(best.encoding)


def _sample(body: bytes) -> bytes:
    """The start of the body, cut after an ASCII byte below 0x40 ("<", newline, space...).

    No GBK, Big5 or UTF-8 multi-byte character contains such a byte, so the cut never
    splits a character (a split one would make every codec look wrong).
    """
    if len(body) <= DETECTION_SAMPLE_BYTES:
        return body
    sample = body[:DETECTION_SAMPLE_BYTES]
    cut = max(sample.rfind(byte) for byte in (b"<", b">", b"\n", b" "))
    return sample[:cut + 1] if cut > 0 else sample


def _error_count(sample: bytes, encoding: str) -> int:
    """How many undecodable sequences `sample` has in `encoding`."""
    return sample.decode(encoding, errors="replace").count("\ufffd")


def _is_utf8(sample: bytes) -> bool:
    """True when the sample is valid UTF-8."""
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
