"""Write a success answer as JSON bytes, splicing base64 images in without copying them."""

import json

from flask import current_app


def json_answer(document: dict):
    """Return `document` as a JSON response; bytes values (base64, so ASCII) go out as they are."""
    return current_app.response_class(json_chunks(document), mimetype="application/json")


def json_chunks(document) -> list:
    """Encode a JSON document as byte chunks: one per bytes value, one per run of text between them."""
    chunks, text = [], []
    _encode(document, chunks, text)
    text.append("\n")
    _flush(chunks, text)
    return chunks


def _encode(value, chunks: list, text: list) -> None:
    """Append one value: text to `text`, bytes values as their own chunk."""
    if isinstance(value, bytes):
        # A megabyte-sized image stays one object: no str copy, no escaped copy, no joined copy.
        text.append('"')
        _flush(chunks, text)
        chunks.append(value)
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
