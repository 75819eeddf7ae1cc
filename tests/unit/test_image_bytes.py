"""An image is passed on only when its bytes are a raster image, typed by those bytes."""

import base64

import pytest

from harness import recordings
from tests.support.app import API, post
from tests.support.assertions import assert_error_shape

SD = f"{API}/CompVis/stable-diffusion-v1-4"
JPEG = recordings.recorded_body("CompVis/stable-diffusion-v1-4")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24
GIF = b"GIF89a" + b"\x00" * 32
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def draw(client):
    return post(client, "text-to-image", {"inputs": "a dress"}, query="?model_name=CompVis/stable-diffusion-v1-4")


@pytest.mark.parametrize(
    "label, data, proven",
    [
        ("image/jpeg", JPEG, "image/jpeg"),
        ("image/png", JPEG, "image/jpeg"),
        ("image/jpeg", PNG, "image/png"),
        ("application/octet-stream", WEBP, "image/webp"),
        ("image/gif", GIF, "image/gif"),
        ("binary/octet-stream", PNG, "image/png"),
    ],
)
def test_the_type_reported_is_the_one_the_bytes_prove(client, mock_hub, label, data, proven):
    mock_hub.post(SD, body=data, content_type=label)
    response = draw(client)
    assert response.status_code == 200, response.get_json()
    image = response.get_json()["result"][0]
    assert image["content_type"] == proven
    assert base64.b64decode(image["image_base64"]) == data


@pytest.mark.parametrize(
    "label, data",
    [
        ("image/png", b"this is text, not a picture"),
        ("image/svg+xml", SVG),
        ("image/png", SVG),
        ("text/html", b"<html><body>sorry</body></html>"),
        ("application/octet-stream", b"\x00\x01\x02\x03 random bytes"),
        ("image/bmp", b"BM" + b"\x00" * 40),
        ("image/png", b"\x89PNG"),
    ],
)
def test_anything_but_a_raster_image_is_an_upstream_error(client, mock_hub, label, data):
    mock_hub.post(SD, body=data, content_type=label)
    body = assert_error_shape(draw(client), 502, "upstream_error")
    assert "PNG, JPEG, WebP or GIF" in body["message"]
