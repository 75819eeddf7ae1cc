"""Read an image out of an upstream answer: raw bytes, or JSON carrying base64."""

import base64
import binascii

from service.errors import UpstreamError
from service.hub.messages import UpstreamReply


def image_result(data: bytes, content_type: str) -> dict:
    """Shape one image as the API returns it; the base64 stays bytes (ASCII) until it is sent."""
    return {"image_base64": base64.b64encode(data), "content_type": content_type}


def image_from_reply(reply: UpstreamReply) -> dict:
    """Return the image in an answer, whatever type the upstream chose to send."""
    if reply.content_type.startswith("image/"):
        if not reply.body:
            raise UpstreamError("the upstream sent an empty image")
        return image_result(reply.body, reply.content_type)
    if reply.content_type.endswith("json"):
        return _image_from_json(reply)
    raise UpstreamError(f"the upstream answered {reply.content_type or 'no content type'} instead of an image")


def _image_from_json(reply: UpstreamReply) -> dict:
    """Decode `{"data": [{"b64_json": ...}]}`, the OpenAI-style image answer."""
    document = reply.json()
    try:
        encoded = document["data"][0]["b64_json"]
        data = base64.b64decode(encoded, validate=True)
    except (KeyError, IndexError, TypeError, binascii.Error, ValueError):
        raise UpstreamError("the upstream's JSON answer holds no base64 image") from None
    return image_result(data, sniff_image_type(data))


def sniff_image_type(data: bytes) -> str:
    """Tell the image format from its first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise UpstreamError("the upstream's answer is not a PNG, JPEG or WebP image")
