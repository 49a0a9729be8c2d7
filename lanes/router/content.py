"""What a message may hold besides text: the Messages API's content blocks, and tools.

A job carries the Anthropic request shape (it is the richer of the two APIs lanes speaks);
OpenAI-compatible lanes get it translated by their provider. Blocks are validated here, at
submit, so a malformed one is refused with the field named instead of failing on a lane.

Images and PDFs count in a job's token estimate by the rules of :mod:`lanes.kernel.media`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lanes.kernel.media import (
    IMAGE_TYPES,
    PDF_TOKENS_PER_PAGE,
    UNKNOWN_IMAGE_TOKENS,
    image_size,
    image_tokens,
    pdf_pages,
)

TOOL_OVERHEAD_TOKENS = 350
"""What the provider adds to the prompt once a request carries tools."""
FEATURES = ("tools", "images", "documents")
"""What a model may or may not take (``models.<name>.features``)."""
OUTPUT_TOOL = "json_answer"
"""The tool an Anthropic lane is made to call to answer with a job's ``output_schema``."""
_TOOL_NAME = r"^[A-Za-z0-9_-]{1,64}$"


class _Block(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class CacheControl(_Block):
    type: Literal["ephemeral"] = "ephemeral"
    ttl: Literal["5m", "1h"] | None = None


class Base64Source(_Block):
    type: Literal["base64"]
    media_type: str
    data: str = Field(min_length=1)

    @field_validator("data")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("is not valid base64 (standard alphabet, padded)") from None
        return value

    def raw(self) -> bytes:
        return base64.b64decode(self.data)


class UrlSource(_Block):
    type: Literal["url"]
    url: str = Field(pattern=r"^https?://\S+$", max_length=8192)


class TextSource(_Block):
    type: Literal["text"]
    media_type: Literal["text/plain"] = "text/plain"
    data: str


class TextBlock(_Block):
    type: Literal["text"]
    text: str = Field(min_length=1)
    cache_control: CacheControl | None = None


class ImageBlock(_Block):
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource, Field(discriminator="type")]
    cache_control: CacheControl | None = None

    @model_validator(mode="after")
    def _image_type(self) -> ImageBlock:
        if isinstance(self.source, Base64Source) and self.source.media_type not in IMAGE_TYPES:
            raise ValueError(f"an image's media_type must be one of {', '.join(IMAGE_TYPES)}")
        return self

    def tokens(self) -> int:
        if isinstance(self.source, UrlSource):
            return UNKNOWN_IMAGE_TOKENS
        return image_tokens(image_size(self.source.raw()[:65536]))


class DocumentBlock(_Block):
    type: Literal["document"]
    source: Annotated[Base64Source | TextSource | UrlSource, Field(discriminator="type")]
    title: str | None = None
    context: str | None = None
    cache_control: CacheControl | None = None

    @model_validator(mode="after")
    def _pdf_only(self) -> DocumentBlock:
        source = self.source
        if isinstance(source, Base64Source) and source.media_type != "application/pdf":
            raise ValueError("a base64 document's media_type must be application/pdf")
        return self

    def text(self) -> str:
        parts = [self.title or "", self.context or ""]
        if isinstance(self.source, TextSource):
            parts.append(self.source.data)
        return "\n".join(p for p in parts if p)

    def media_tokens(self) -> int:
        if isinstance(self.source, TextSource):
            return 0
        if isinstance(self.source, UrlSource):
            return PDF_TOKENS_PER_PAGE
        return PDF_TOKENS_PER_PAGE * pdf_pages(self.source.raw())


class ToolUseBlock(_Block):
    type: Literal["tool_use"]
    id: str = Field(min_length=1, max_length=128)
    name: str = Field(pattern=_TOOL_NAME)
    input: dict[str, Any]


class ToolResultBlock(_Block):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1, max_length=128)
    content: str | list[Annotated[TextBlock | ImageBlock, Field(discriminator="type")]] = ""
    is_error: bool = False
    cache_control: CacheControl | None = None

    def parts(self) -> list[TextBlock | ImageBlock]:
        if isinstance(self.content, str):
            return [TextBlock(type="text", text=self.content)] if self.content else []
        return list(self.content)


Block = Annotated[
    TextBlock | ImageBlock | DocumentBlock | ToolUseBlock | ToolResultBlock,
    Field(discriminator="type"),
]
USER_ONLY = ("image", "document", "tool_result")
ASSISTANT_ONLY = ("tool_use",)


def block_text(block: Block) -> str:
    """The text a block shows the model (for classifying, sizing and secret scans); an
    image shows none."""
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, DocumentBlock):
        return block.text()
    if isinstance(block, ToolUseBlock):
        return f"{block.name}({json.dumps(block.input, ensure_ascii=False)})"
    if isinstance(block, ToolResultBlock):
        return "\n".join(p.text for p in block.parts() if isinstance(p, TextBlock))
    return ""


def media_tokens(block: Block) -> int:
    """Tokens a block costs beyond its text: images and PDFs."""
    if isinstance(block, ImageBlock):
        return block.tokens()
    if isinstance(block, DocumentBlock):
        return block.media_tokens()
    if isinstance(block, ToolResultBlock):
        return sum(p.tokens() for p in block.parts() if isinstance(p, ImageBlock))
    return 0


def block_features(block: Block) -> set[str]:
    """What a model must take to read ``block``."""
    if isinstance(block, ImageBlock):
        return {"images"}
    if isinstance(block, DocumentBlock):
        return set() if isinstance(block.source, TextSource) else {"documents"}
    if isinstance(block, ToolUseBlock):
        return {"tools"}
    if isinstance(block, ToolResultBlock):
        found = {"tools"}
        if any(isinstance(p, ImageBlock) for p in block.parts()):
            found.add("images")
        return found
    return set()


class Tool(_Block):
    """A function the model may call: its arguments are described by a JSON Schema."""

    name: str = Field(pattern=_TOOL_NAME)
    description: str | None = None
    input_schema: dict[str, Any]
    cache_control: CacheControl | None = None

    @field_validator("input_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        return object_schema(value)


class ToolChoice(_Block):
    """``auto``: the model decides; ``any``: it calls some tool; ``tool``: it calls ``name``;
    ``none``: it calls none."""

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = Field(default=None, pattern=_TOOL_NAME)
    disable_parallel_tool_use: bool | None = None

    @model_validator(mode="after")
    def _name_for_tool(self) -> ToolChoice:
        if (self.type == "tool") != (self.name is not None):
            raise ValueError("give 'name' exactly when type is 'tool'")
        return self


def object_schema(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` if it is a valid JSON Schema for an object; else a ValueError saying why."""
    if value.get("type") != "object":
        raise ValueError('must be a JSON Schema with "type": "object"')
    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"is not a valid JSON Schema: {exc.message}") from None
    return value
