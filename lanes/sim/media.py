"""Images and documents in a prompt: checked against what their request says they are, and
costed by the rules of :mod:`lanes.kernel.media` (the same for both APIs). An image or a PDF
given by URL is never fetched: it costs a flat :data:`UNKNOWN_IMAGE_TOKENS` or one page; a
plain-text document counts as text (see :mod:`lanes.sim.content`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from lanes.kernel.media import (
    IMAGE_TYPES,
    PDF_TOKENS_PER_PAGE,
    PDF_TYPE,
    UNKNOWN_IMAGE_TOKENS,
    image_size,
    image_tokens,
    pdf_pages,
    sniff,
)
from lanes.sim.validate import InvalidRequest

__all__ = ["IMAGE_TYPES", "PDF_TYPE", "Media", "image_size", "image_tokens", "pdf_pages", "sniff"]

_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Media:
    """An image or document as the prompt sees it: its tokens and a digest of its source
    (so two different images make two different replies)."""

    tokens: int
    key: bytes


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("invalid base64 data") from None


def inline_image(media_type: str, data: str, where: str) -> Media:
    """A base64 image; refused when the bytes are no image of ``media_type``."""
    try:
        return _image(media_type, data)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc}") from None


def inline_pdf(data: str, where: str) -> Media:
    try:
        return _pdf(data)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc}") from None


@lru_cache(maxsize=64)
def _image(media_type: str, data: str) -> Media:
    raw = _decode(data)
    found = sniff(raw)
    if found != media_type:
        described = f"a {found} image" if found else "in no image format the API supports"
        raise InvalidRequest(
            f"The image was specified using the {media_type} media type, "
            f"but the image appears to be {described}"
        )
    return Media(image_tokens(image_size(raw)), _key(data))


@lru_cache(maxsize=64)
def _pdf(data: str) -> Media:
    raw = _decode(data)
    if sniff(raw) != PDF_TYPE:
        raise InvalidRequest("The PDF specified was not valid")
    return Media(pdf_pages(raw) * PDF_TOKENS_PER_PAGE, _key(data))


def linked_image(url: str) -> Media:
    return Media(UNKNOWN_IMAGE_TOKENS, _key(url))


def linked_pdf(url: str) -> Media:
    return Media(PDF_TOKENS_PER_PAGE, _key(url))


def data_url(url: str, where: str) -> Media:
    """An image given as a ``data:<type>;base64,...`` URL."""
    match = _DATA_URL.fullmatch(url)
    if match is None or match["type"] not in IMAGE_TYPES:
        raise InvalidRequest(
            f"{where}: Invalid image URL: expected a base64 data URL of "
            f"{', '.join(IMAGE_TYPES)} or an http(s) URL"
        )
    return inline_image(match["type"], match["data"], where)


def _key(source: str) -> bytes:
    return hashlib.sha256(source.encode()).digest()
