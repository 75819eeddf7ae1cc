"""Write a success answer as JSON bytes, splicing base64 images in without copying them."""

import json

from flask import current_app

from service.api.lifecycle import current_context
from service.hub.images import let_others_run
from service.keys.admission import policy_header, remaining_header


class SplicedString(tuple):
    """One JSON string written as several ASCII byte pieces (base64), each its own chunk."""


def json_answer(document: dict, spliced: bool = False):
    """Return `document` as a JSON response; SplicedString values (base64) go out as their pieces.

    Text answers are encoded in one call; only answers holding images take the spliced path.
    """
    if not spliced:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
        response = current_app.response_class(text.encode("utf-8"), mimetype="application/json")
    else:
        chunks = json_chunks(document)
        response = current_app.response_class(_taking_turns(chunks), mimetype="application/json")
        response.content_length = sum(len(chunk) for chunk in chunks)
    response.headers.update(limit_headers())
    return response


def limit_headers() -> dict:
    """The caller's key's limits (RateLimit-Policy) and what its admission left of each
    (RateLimit), as its 429s state them, so that a client can pace itself from its first
    success, even beside others using the key, instead of learning them from a refusal."""
    current = current_context()
    key = current.client_key if current else None
    policy = policy_header(key.limits) if key is not None else ""
    if not policy:
        return {}
    headers = {"RateLimit-Policy": policy}
    remaining = current.ticket.remaining if current.ticket is not None else {}
    if remaining:  # none when the store could not say, or the answer admitted nothing
        headers["RateLimit"] = remaining_header(remaining)
    return headers


def _taking_turns(chunks: list):
    """Yield the chunks, letting the worker's other requests run between two of them.

    Writing a megabyte to a fast socket never waits, so without a turn between chunks one
    large answer would hold the whole worker until it is written.
    """
    for position, chunk in enumerate(chunks):
        if position:
            let_others_run()
        yield chunk


def json_chunks(document) -> list:
    """Encode a JSON document as byte chunks: one per bytes value, one per run of text between them."""
    chunks, text = [], []
    _encode(document, chunks, text)
    text.append("\n")
    _flush(chunks, text)
    return chunks


def _encode(value, chunks: list, text: list) -> None:
    """Append one value: text to `text`, bytes values as their own chunk."""
    if isinstance(value, SplicedString):
        # A megabyte-sized image stays in its pieces: no str copy, no escaped copy, no joined copy.
        text.append('"')
        _flush(chunks, text)
        chunks.extend(value)
        text.append('"')
    elif isinstance(value, dict):
        text.append("{")
        for position, (key, item) in enumerate(value.items()):
            text.append(("," if position else "") + json.dumps(key, ensure_ascii=False) + ":")
            _encode(item, chunks, text)
        text.append("}")
    elif isinstance(value, (list, tuple)):
        text.append("[")
        for position, item in enumerate(value):
            if position:
                text.append(",")
            _encode(item, chunks, text)
        text.append("]")
    else:
        text.append(json.dumps(value, ensure_ascii=False))


def _flush(chunks: list, text: list) -> None:
    """Turn the text gathered so far into one chunk."""
    if text:
        chunks.append("".join(text).encode("utf-8"))
        text.clear()
