"""Read a request's JSON body, whatever Content-Type curl chose to send, within a size and a time."""

import json
import socket
import time

from flask import current_app, request

from service import strict_json
from service.errors import InvalidRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from service.watchdog import WATCHDOG, shut_down

# curl -d sends application/x-www-form-urlencoded; shell scripts send text/plain or nothing.
_ACCEPTED_TYPES = {"", "application/json", "application/x-www-form-urlencoded", "text/plain"}
READ_CHUNK_BYTES = 64 * 1024


def json_body() -> dict:
    """Return the body as a JSON object, or raise a 400/408/413/415 in the documented shape."""
    _check_content_type()
    settings = current_app.extensions["gateway"].settings
    raw = read_body(request.environ, settings.max_body_bytes, settings.body_timeout)
    try:
        document = strict_json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequest("body: the request body is not valid UTF-8") from None
    except RecursionError:
        raise InvalidRequest("body: the request body is nested too deeply") from None
    except strict_json.StrictJSONError as exc:
        raise InvalidRequest(f"body: {exc}") from None
    except ValueError as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InvalidRequest(f"body: the request body is not valid JSON ({detail})") from None
    if not isinstance(document, dict):
        raise InvalidRequest('body: the request body must be a JSON object such as {"inputs": "..."}')
    return document


def read_body(environ: dict, max_bytes: int, seconds: float) -> bytes:
    """Read the whole body, counting as it comes: over `max_bytes` is 413, later than `seconds` 408.

    The count covers every framing (Content-Length, chunked, none). Under gunicorn the
    client's socket is watched: at the deadline its read side is shut, which ends a read
    blocked on a client that went quiet; the connection then closes after the answer.
    """
    declared = _declared_length(environ)
    client = environ.get("gunicorn.socket")
    if declared is not None and declared > max_bytes:
        _close_after_answer(client)
        raise PayloadTooLarge.over(max_bytes)
    expires_at = time.monotonic() + seconds
    key = WATCHDOG.watch(client, expires_at, socket.SHUT_RD) if client is not None else None
    try:
        body = _read_within(environ["wsgi.input"], max_bytes, expires_at, client)
    finally:
        if key is not None:
            WATCHDOG.release(key)
    if declared is not None and len(body) < declared:
        if time.monotonic() >= expires_at:
            raise _too_slow()
        raise InvalidRequest(f"body: the request body ended after {len(body)} of its {declared} bytes")
    return body


def _read_within(stream, max_bytes: int, expires_at: float, client) -> bytes:
    """Collect the stream's chunks until its end, refusing it past `max_bytes`."""
    chunks, size = [], 0
    while True:
        try:
            chunk = stream.read(READ_CHUNK_BYTES)
        except OSError:  # gunicorn's NoMoreData: the chunked body stopped mid-way
            if time.monotonic() >= expires_at:
                raise _too_slow() from None
            raise InvalidRequest("body: the request body ended before its last chunk") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            _close_after_answer(client)
            raise PayloadTooLarge.over(max_bytes)
        chunks.append(chunk)


def _declared_length(environ: dict) -> int | None:
    """Return the Content-Length the caller declared, None when the body is chunked or unframed."""
    raw = (environ.get("CONTENT_LENGTH") or "").strip()
    return int(raw) if raw.isdigit() else None


def _close_after_answer(client) -> None:
    """Make gunicorn close the connection after the answer instead of reading the rest of the body."""
    if client is not None:
        shut_down(client, socket.SHUT_RD)


def _too_slow() -> RequestTimeout:
    """Describe a body that did not arrive in time."""
    return RequestTimeout("the request body did not arrive in time; send it whole, then wait for the answer")


def _check_content_type() -> None:
    """Refuse only media types that cannot be a JSON document."""
    media_type = (request.mimetype or "").lower()
    if media_type in _ACCEPTED_TYPES or media_type.endswith("+json"):
        return
    raise UnsupportedMediaType(f"unsupported Content-Type {media_type!r}: send a JSON body (application/json)")
