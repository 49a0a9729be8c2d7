"""OpenAI's Files API (``/v1/files``) on the wire, for batch input and output files.

Uploads are ``multipart/form-data`` with a ``purpose`` and a ``file`` field. Listing files
is not simulated, and files never expire.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from lanes.sim.batches import Exchange
from lanes.sim.openai_api import OPENAI
from lanes.sim.uploads import PURPOSES, StoredFile
from lanes.sim.validate import InvalidRequest
from lanes.sim.wire import Reply, json_reply

PREFIX = "/v1/files"
MAX_BODY_BYTES = 512 * 1024 * 1024
"""The Files API's upload size limit."""
CONTENT_TYPE = "application/octet-stream"

Form = dict[str, tuple[str | None, bytes]]
"""Field name -> (file name, when the field is a file; content)."""


def parse_form(content_type: str, body: bytes) -> Form:
    """The fields of a ``multipart/form-data`` body; raises :class:`InvalidRequest`."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequest("Content-Type: send the upload as multipart/form-data")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise InvalidRequest("the multipart body could not be read")
    form: Form = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            form[name] = (part.get_filename(), payload)
    return form


def _upload(exchange: Exchange) -> Reply:
    try:
        form = parse_form(exchange.headers.get("content-type", ""), exchange.body)
    except InvalidRequest as exc:
        return OPENAI.error(400, str(exc))
    purpose = form.get("purpose", (None, b""))[1].decode("utf-8", "replace")
    if purpose not in PURPOSES:
        return OPENAI.error(400, f"purpose: {purpose!r} is not a supported purpose")
    if "file" not in form:
        return OPENAI.error(400, "file: Field required")
    filename, data = form["file"]
    stored = exchange.store.files.add(filename or "upload", purpose, data)
    return json_reply(200, stored.describe())


def _not_found(file_id: str) -> Reply:
    return OPENAI.error(404, f"No such File object: {file_id}")


def _found(exchange: Exchange) -> StoredFile | None:
    return exchange.store.files.get(exchange.parts[0])


def _retrieve(exchange: Exchange) -> Reply:
    stored = _found(exchange)
    return _not_found(exchange.parts[0]) if stored is None else json_reply(200, stored.describe())


def _content(exchange: Exchange) -> Reply:
    stored = _found(exchange)
    if stored is None:
        return _not_found(exchange.parts[0])
    return Reply(200, stored.data, content_type=CONTENT_TYPE)


def _delete(exchange: Exchange) -> Reply:
    stored = exchange.store.files.delete(exchange.parts[0])
    if stored is None:
        return _not_found(exchange.parts[0])
    return json_reply(200, {"id": stored.id, "object": "file", "deleted": True})


def handle(exchange: Exchange) -> Reply:
    """Answer a request under ``/v1/files`` (``exchange.parts`` follow it)."""
    refused = OPENAI.check_headers(exchange.headers, exchange.store.state.profile)
    if refused is not None:
        return refused
    method, parts = exchange.method, exchange.parts
    if method == "POST" and not parts:
        return _upload(exchange)
    if method == "GET" and len(parts) == 1:
        return _retrieve(exchange)
    if method == "DELETE" and len(parts) == 1:
        return _delete(exchange)
    if method == "GET" and len(parts) == 2 and parts[1] == "content":
        return _content(exchange)
    return OPENAI.error(404, f"no route {method} {'/'.join((PREFIX, *parts))}")
