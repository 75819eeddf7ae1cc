"""Read an image out of an upstream answer: raw bytes, or JSON carrying base64.

The bytes decide: whatever type an answer was labelled with (`image/png`, `image/svg+xml`,
`application/octet-stream`...), it is passed on only when its first bytes are one of the
raster formats below, and reported as the type those bytes prove.
"""

import binascii
import time
from dataclasses import dataclass

from service.errors import UpstreamError
from service.hub.messages import UpstreamReply

# Encoding or checking megabytes of base64 takes milliseconds of CPU. Done in slices of about
# half a millisecond, with a yield between them, so that the worker's other requests (other
# greenlets under gevent) are never held up for longer than a slice.
ENCODE_SLICE_BYTES = 3 * 32 * 1024
DECODE_SLICE_CHARS = 4 * 64 * 1024


@dataclass(frozen=True)
class Image:
    """An image from upstream: the type its bytes prove, and its base64 as ASCII pieces that
    make one string when joined (kept apart so that a large image is never copied whole)."""

    content_type: str
    base64_pieces: tuple


def let_others_run() -> None:
    """Yield to the worker's other requests: a greenlet switch under gevent, the GIL under threads."""
    time.sleep(0)


def image_result(data: bytes, content_type: str) -> Image:
    """Return an image of proven type, its base64 encoded in pieces."""
    return Image(content_type, encode_base64(data))


def encode_base64(data: bytes) -> tuple:
    """Base64-encode in slices of whole 3-byte groups: the pieces, joined, are one encoding."""
    view = memoryview(data)
    pieces = []
    for start in range(0, len(view), ENCODE_SLICE_BYTES):
        if start:
            let_others_run()
        pieces.append(binascii.b2a_base64(view[start : start + ENCODE_SLICE_BYTES], newline=False))
    return tuple(pieces)


def check_base64(encoded: bytes) -> bytes:
    """Check strict base64 in slices (whole 4-character groups); return the image's first bytes."""
    if not encoded or len(encoded) % 4:
        raise binascii.Error("not whole base64 groups")
    view = memoryview(encoded)
    head = b""
    for start in range(0, len(view), DECODE_SLICE_CHARS):
        if start:
            let_others_run()
        decoded = binascii.a2b_base64(view[start : start + DECODE_SLICE_CHARS], strict_mode=True)
        head = head or decoded[:16]
    return head


def image_from_reply(reply: UpstreamReply) -> Image:
    """Return the image in an answer: JSON carrying base64, or raw bytes whatever their label."""
    if reply.content_type.endswith("json"):
        return _image_from_json(reply)
    if not reply.body:
        raise UpstreamError("the upstream sent an empty image")
    return image_result(reply.body, sniff_image_type(reply.body, reply.content_type))


def _image_from_json(reply: UpstreamReply) -> Image:
    """Check `{"data": [{"b64_json": ...}]}`, the OpenAI-style image answer, and pass its base64 on."""
    document = reply.json()
    try:
        encoded = document["data"][0]["b64_json"].encode("ascii")
        head = check_base64(encoded)
    except (KeyError, IndexError, TypeError, AttributeError, binascii.Error, ValueError):
        raise UpstreamError("the upstream's JSON answer holds no base64 image") from None
    # Strict base64 already: sent as it came, without decoding and encoding it again.
    return Image(sniff_image_type(head), (encoded,))


def sniff_image_type(data: bytes, label: str = "") -> str:
    """Tell the image format from its first bytes; anything but PNG, JPEG, WebP or GIF is refused."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    labelled = f" (labelled {label})" if label else ""
    raise UpstreamError(f"the upstream's answer{labelled} is not a PNG, JPEG, WebP or GIF image")
