"""A chunked body's framing, followed as gunicorn's own reader takes its bytes, however the
socket splits them: what can never be served is refused at once, everything else is untouched."""

from types import SimpleNamespace

import pytest
from gunicorn.http.body import Body, ChunkedReader
from gunicorn.http.unreader import IterUnreader

from service.api.body import follow_chunked_framing
from service.errors import InvalidRequest, PayloadTooLarge

LIMIT = 1000


def gunicorn_body(raw: bytes, piece: int) -> Body:
    """gunicorn's chunked body over `raw`, arriving `piece` bytes per read, framing followed."""
    unreader = IterUnreader(raw[start : start + piece] for start in range(0, len(raw), piece))
    body = Body(ChunkedReader(SimpleNamespace(unreader=unreader, limit_request_field_size=0), unreader))
    follow_chunked_framing(body, LIMIT)
    return body


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64, 4096])
def test_a_valid_body_reads_the_same_however_it_is_split(piece):
    raw = chunked(b'{"inputs": ', b'"\n\r\n x"', b"}" * (LIMIT - 30)) + b"GET /next HTTP/1.1\r\n"
    body = gunicorn_body(raw, piece)
    assert body.read() == b'{"inputs": "\n\r\n x"' + b"}" * (LIMIT - 30)
    rest, unreader = b"", body.reader.req.unreader
    while data := unreader.read():
        rest += data
    assert rest == b"GET /next HTTP/1.1\r\n"  # what follows the body is kept for the next request


@pytest.mark.parametrize("piece", [1, 3, 4096])
@pytest.mark.parametrize(
    "raw, refusal",
    [
        (b"%x\r\n" % (LIMIT + 1), PayloadTooLarge),
        (b"f" * 40, PayloadTooLarge),  # an unfinished size line already over the limit
        (b"200\r\n" + b"x" * 0x200 + b"\r\n200\r\n", PayloadTooLarge),  # two chunks adding up over it
        (b"5\nhello", InvalidRequest),
        (b"5\r\nhello\n", InvalidRequest),
        (b"5\r\nhello\rX", InvalidRequest),
        (b"5\r\nhelloXY", InvalidRequest),
        (b"5;a=b\n", InvalidRequest),
        (b"0\n", InvalidRequest),
    ],
    ids=[
        "one chunk",
        "a long size",
        "chunks",
        "bare LF",
        "LF after data",
        "CR then junk",
        "no CRLF",
        "extension",
        "last",
    ],
)
def test_what_can_never_be_served_is_refused_without_more_bytes(raw, refusal, piece):
    body = gunicorn_body(raw, piece)  # nothing follows: the caller would be waiting for the answer
    with pytest.raises(refusal):
        body.read()


def test_a_body_already_being_read_is_left_alone():
    unreader = IterUnreader([chunked(b"abc")])
    body = Body(ChunkedReader(SimpleNamespace(unreader=unreader, limit_request_field_size=0), unreader))
    assert body.read(1) == b"a"
    parser = body.reader.parser
    follow_chunked_framing(body, LIMIT)
    assert body.reader.parser is parser and body.read() == b"bc"
