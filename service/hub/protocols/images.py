"""Read an image out of an upstream answer: raw bytes, or JSON carrying base64.

The bytes decide: whatever type an answer was labelled with (`image/png`, `image/svg+xml`,
`application/octet-stream`...), it is passed on only when its first bytes are one of the
raster formats below, and reported as the type those bytes prove.
"""

import base64
import binascii

from service.errors import UpstreamError
from service.hub.messages import UpstreamReply


def image_result(data: bytes, content_type: str) -> dict:
    """Shape one image as the API returns it; the base64 stays bytes (ASCII) until it is sent."""
    return {"image_base64": base64.b64encode(data), "content_type": content_type}


def image_from_reply(reply: UpstreamReply) -> dict:
    """Return the image in an answer: JSON carrying base64, or raw bytes whatever their label."""
    if reply.content_type.endswith("json"):
        return _image_from_json(reply)
    if not reply.body:
        raise UpstreamError("the upstream sent an empty image")
    return image_result(reply.body, sniff_image_type(reply.body, reply.content_type))


def _image_from_json(reply: UpstreamReply) -> dict:
    """Decode `{"data": [{"b64_json": ...}]}`, the OpenAI-style image answer."""
    document = reply.json()
    try:
        encoded = document["data"][0]["b64_json"]
        data = base64.b64decode(encoded, validate=True)
    except (KeyError, IndexError, TypeError, binascii.Error, ValueError):
        raise UpstreamError("the upstream's JSON answer holds no base64 image") from None
    return image_result(data, sniff_image_type(data))


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
