"""Images and PDFs as providers count them: their kind from their first bytes, an image's
size from its header, and the tokens each costs.

An image costs ``ceil(width * height / 750)`` tokens (Anthropic's published estimate), at least
1 and at most :data:`MAX_IMAGE_TOKENS` (the API scales larger images down to about that); one
whose size cannot be read (WebP, one given by URL) :data:`UNKNOWN_IMAGE_TOKENS`. A PDF costs
:data:`PDF_TOKENS_PER_PAGE` a page, its pages counted by its ``/Type /Page`` objects.
"""

from __future__ import annotations

import math
import re

IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
PDF_TYPE = "application/pdf"
TOKENS_PER_PIXEL_DIVISOR = 750
MAX_IMAGE_TOKENS = 1600
UNKNOWN_IMAGE_TOKENS = 1600
PDF_TOKENS_PER_PAGE = 1500
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def sniff(data: bytes) -> str | None:
    """The media type the bytes' magic number says, or None when unknown."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF"):
        return PDF_TYPE
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF or JPEG header; None for anything else."""
    kind = sniff(data)
    if kind == "image/png" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if kind == "image/gif" and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if kind == "image/jpeg":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG segments to the first start-of-frame marker."""
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:
            at += 1
            continue
        if marker in _JPEG_FRAMES:
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            return int.from_bytes(data[at + 7 : at + 9], "big"), height
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def image_tokens(size: tuple[int, int] | None) -> int:
    if size is None:
        return UNKNOWN_IMAGE_TOKENS
    width, height = size
    return max(1, min(MAX_IMAGE_TOKENS, math.ceil(width * height / TOKENS_PER_PIXEL_DIVISOR)))


def pdf_pages(data: bytes) -> int:
    return max(1, len(_PAGE.findall(data)))
