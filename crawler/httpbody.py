"""Response bodies: decompression under a size cap and binary sniffing. Knows no httpx.

Contract: bodies arrive as the RAW (still compressed) chunks of the stream and are
decompressed by our own decoders, which never produce more than the room left under the
cap, so a compression bomb costs at most about the cap in memory; `read_body` gives up
(`BodyCut`) as soon as the cap is passed, and the caller then drops the connection.
`ACCEPT_ENCODING` offers only the codings that can be decoded with such a bound.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Protocol

import brotli

from crawler.records import FetchOutcome

# Bytes that mark a body as binary whatever its Content-Type claims. Old Office files (OLE2)
# are listed because Chinese government sites often serve .doc/.xls notices as text/html.
BINARY_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"%PDF-", "PDF document"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE2 document (doc/xls)"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\x1f\x8b\x08", "gzip data"),
)
SNIFF_BYTES = 8                     # longest signature above
# brotli >= 1.2 can cap its output; older versions could be bombed, so br is not offered.
BOUNDED_BROTLI = hasattr(brotli.Decompressor, "can_accept_more_data")
ACCEPT_ENCODING = "gzip, deflate, br" if BOUNDED_BROTLI else "gzip, deflate"
# What a corrupt compressed body raises from `Decoder.decode`.
DECOMPRESSION_ERRORS = (zlib.error, brotli.error)


@dataclass(frozen=True, slots=True)
class BodyPolicy:
    """How a body is treated: pages are type-checked and capped; robots.txt is truncated."""

    max_bytes: int
    is_page: bool


class BodyCut(Exception):
    """The body was abandoned part-way (too large or binary); carries what was read."""

    def __init__(self, outcome: FetchOutcome, error: str, partial: bytes | bytearray) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error
        self.partial = partial


class Decoder(Protocol):
    def decode(self, data: bytes, max_length: int) -> bytes:
        """Decompress `data`, returning at most about `max_length` bytes."""


class _Identity:
    """No Content-Encoding: bytes pass through (the caller counts them)."""

    def decode(self, data: bytes, max_length: int) -> bytes:
        """Return `data` unchanged."""
        return data


class _Zlib:
    """gzip / zlib-deflate with an output cap.

    The caller always asks for one byte more than the room left, so when zlib stops at
    `max_length` the body is over the cap and the unconsumed input no longer matters.
    """

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._obj = zlib.decompressobj(wbits)
        self._started = False

    def decode(self, data: bytes, max_length: int) -> bytes:
        """Decompress up to `max_length` bytes of output."""
        try:
            out = self._obj.decompress(data, max_length)
        except zlib.error:
            # Some servers send raw deflate (no zlib header) as "deflate"; retry it raw once.
            if self._started or self._wbits != zlib.MAX_WBITS:
                raise
            self._wbits = -zlib.MAX_WBITS
            self._obj = zlib.decompressobj(self._wbits)
            out = self._obj.decompress(data, max_length)
        self._started = True
        return out


class _Brotli:
    """brotli with an output cap (brotli >= 1.2; its buffer may overshoot by one block)."""

    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def decode(self, data: bytes, max_length: int) -> bytes:
        """Decompress up to about `max_length` bytes of output."""
        out = self._obj.process(data, output_buffer_limit=max_length)
        while len(out) < max_length and not self._obj.can_accept_more_data():
            out += self._obj.process(b"", output_buffer_limit=max_length - len(out))
        return out


def make_decoder(content_encoding: str | None) -> Decoder | None:
    """A decoder for the Content-Encoding header, or None when we cannot decode it."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return _Identity()
    if len(codings) > 1:
        return None     # stacked codings: never offered by us, too rare to be worth a bound
    if codings[0] in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if codings[0] == "deflate":
        return _Zlib(zlib.MAX_WBITS)
    if codings[0] == "br" and BOUNDED_BROTLI:
        return _Brotli()
    return None


async def read_body(chunks: AsyncIterable[bytes], decoder: Decoder, policy: BodyPolicy) -> bytes:
    """Stream raw `chunks` through `decoder`, stopping at the cap or at a binary signature
    (raises BodyCut)."""
    body = bytearray()
    sniffed = not policy.is_page
    async for raw in chunks:
        # Ask for one byte more than the room left: getting it means "over the cap".
        body += decoder.decode(raw, policy.max_bytes - len(body) + 1)
        if len(body) > policy.max_bytes:
            del body[policy.max_bytes:]
            raise BodyCut(FetchOutcome.TOO_LARGE,
                          f"body larger than {policy.max_bytes} bytes (decompressed)", body)
        if not sniffed and len(body) >= SNIFF_BYTES:
            _check_signature(body)
            sniffed = True
    if not sniffed:
        _check_signature(body)
    return bytes(body)


def _check_signature(body: bytearray) -> None:
    """Raise BodyCut when the first bytes are a known binary format."""
    for signature, name in BINARY_SIGNATURES:
        if body.startswith(signature):
            raise BodyCut(FetchOutcome.NOT_HTML, f"body is a {name}", b"")
