"""Read a request's JSON body, whatever Content-Type curl chose to send, within a size and a time."""

import inspect
import json
import socket
import time

from flask import request
from gunicorn.http.body import ChunkedReader
from gunicorn.http.errors import ParseException

from service.api import strict_json
from service.api.gateway import gateway
from service.errors import InvalidRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from service.hub.socket_watchdog import WATCHDOG, shut_down

# curl -d sends application/x-www-form-urlencoded; shell scripts send text/plain or nothing.
_ACCEPTED_TYPES = {"", "application/json", "application/x-www-form-urlencoded", "text/plain"}
READ_CHUNK_BYTES = 64 * 1024


def json_body() -> dict:
    """Return the body as a JSON object, or raise a 400/408/413/415 in the documented shape."""
    _check_content_type()
    return json_document(raw_body())


def raw_body() -> bytes:
    """Return the body's bytes, read within MAX_BODY_BYTES and BODY_TIMEOUT_SECONDS (413, 408)."""
    settings = gateway().settings
    return read_body(request.environ, settings.max_body_bytes, settings.body_timeout)


def json_document(raw: bytes) -> dict:
    """Parse a body as one strict JSON object, or raise a 400 saying what is wrong with it."""
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
    stream = environ["wsgi.input"]
    follow_chunked_framing(stream, max_bytes)
    key = WATCHDOG.watch(client, expires_at, socket.SHUT_RD) if client is not None else None
    try:
        body = _read_within(stream, max_bytes, expires_at, client)
    except (PayloadTooLarge, InvalidRequest):
        _close_after_answer(client)  # where the next request would start is unknown
        raise
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
        except ParseException as exc:  # gunicorn's reader found a malformed chunk
            raise InvalidRequest(f"body: the chunked body is malformed ({type(exc).__name__})") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            _close_after_answer(client)
            raise PayloadTooLarge.over(max_bytes)
        chunks.append(chunk)


class ChunkFraming:
    """Follow a chunked body's framing as gunicorn's reader takes its bytes, and refuse at once
    what no more bytes could make servable: chunks declared over `max_bytes` (413), a line not
    ended by CRLF (400). gunicorn would wait for the rest (the 1 MiB the caller will never send,
    the CRLF that is never coming) until the body's deadline. gunicorn still parses the body
    itself; this only ever refuses sooner.
    """

    _SIZE_LINE, _DATA, _DATA_END, _DONE = range(4)

    def __init__(self, unreader, max_bytes: int):
        self._unreader = unreader
        self._max_bytes = max_bytes
        self._state = self._SIZE_LINE
        self._line = bytearray()
        self._left = 0  # bytes of the current chunk still to come, then of its CRLF
        self._declared = 0

    def read(self, size=None, read_ahead=None):
        """Read on gunicorn's behalf, and follow what was read."""
        data = self._unreader.read(size, read_ahead=read_ahead)
        position = 0
        while position < len(data) and self._state != self._DONE:
            position = self._follow(data, position)
        return data

    def unread(self, data):
        """What gunicorn reads past the body's end goes back for the next request, untouched."""
        self._unreader.unread(data)

    def _follow(self, data: bytes, position: int) -> int:
        """Take the bytes of the current state from `data[position:]`; return where it stopped."""
        if self._state == self._DATA:
            taken = min(self._left, len(data) - position)
            self._left -= taken
            if not self._left:
                self._state, self._left = self._DATA_END, 2
            return position + taken
        if self._state == self._DATA_END:
            if data[position] != b"\r\n"[2 - self._left]:
                raise InvalidRequest("body: a chunk's data is not followed by CRLF")
            self._left -= 1
            if not self._left:
                self._state = self._SIZE_LINE
            return position + 1
        end = data.find(b"\n", position)
        self._line += data[position : len(data) if end < 0 else end]
        self._check_size_line(complete=end >= 0)
        return len(data) if end < 0 else end + 1

    def _check_size_line(self, complete: bool) -> None:
        """Refuse a size line ended by a bare LF, or declaring more than the limit (even unfinished)."""
        if complete and not self._line.endswith(b"\r"):
            raise InvalidRequest("body: a chunk size line ends with a bare LF; chunked lines end with CRLF")
        digits = bytes(self._line).split(b";", 1)[0].rstrip(b"\r \t")
        hex_digits = len(digits) - len(digits.lstrip(b"0123456789abcdefABCDEF"))
        declared = self._declared + int(digits[:hex_digits] or b"0", 16)
        if declared > self._max_bytes:
            raise PayloadTooLarge.over(self._max_bytes)
        if complete:
            # An invalid line is gunicorn's to refuse, by the name it gives it.
            self._declared, self._left, self._line = declared, declared - self._declared, bytearray()
            self._state = self._DATA if self._left else self._DONE


def follow_chunked_framing(stream, max_bytes: int) -> None:
    """Have a chunked body under gunicorn read through a ChunkFraming, before its first byte is read."""
    reader = getattr(stream, "reader", None)
    if not isinstance(reader, ChunkedReader) or reader.parser is None:
        return
    if inspect.getgeneratorstate(reader.parser) != inspect.GEN_CREATED:
        return  # already reading: its framing cannot be followed from the middle
    reader.parser = reader.parse_chunked(ChunkFraming(reader.req.unreader, max_bytes))


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


def is_json_type(media_type: str) -> bool:
    """Tell whether a body of this media type is read as JSON (curl's and scripts' defaults too)."""
    media_type = media_type.lower()
    return media_type in _ACCEPTED_TYPES or media_type.endswith("+json")


def _check_content_type() -> None:
    """Refuse only media types that cannot be a JSON document."""
    media_type = (request.mimetype or "").lower()
    if is_json_type(media_type):
        return
    raise UnsupportedMediaType(f"unsupported Content-Type {media_type!r}: send a JSON body (application/json)")
