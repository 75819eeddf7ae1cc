"""Text-to-image through the router's providers: payloads, answers, downloads and their failures."""

import base64
import json

import pytest

from harness import recordings
from tests.support.app import TEST_CATALOG, make_app, make_settings, post
from tests.support.assertions import assert_error_shape

ROOT = "https://hub.test"
HUB_API = "https://hub-api.test/api"

PROVIDER_CATALOG = (
    TEST_CATALOG
    + """
[models.flux-fal]
id = "black-forest-labs/FLUX.1-dev"
protocol = "fal-ai"
provider_model = "fal-ai/flux/dev"

[models.sdxl-replicate]
id = "ByteDance/SDXL-Lightning"
protocol = "replicate"
provider_model = "bytedance/sdxl-lightning-4step:5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637"

[models.sdxl-replicate-latest]
id = "ByteDance/SDXL-Lightning"
protocol = "replicate"
provider_model = "bytedance/sdxl-lightning-4step"

[models.sdxl-together]
id = "stabilityai/stable-diffusion-xl-base-1.0"
protocol = "openai-images"
provider = "together"
provider_model = "stabilityai/stable-diffusion-xl-base-1.0"

[models.sdxl-nscale]
id = "stabilityai/stable-diffusion-xl-base-1.0"
protocol = "openai-images"
provider = "nscale"
provider_model = "stabilityai/stable-diffusion-xl-base-1.0"

[models.novita-completions]
id = "meta-llama/Llama-3.1-8B-Instruct"
protocol = "openai-completions"
provider = "novita"
provider_model = "meta-llama/llama-3.1-8b-instruct"

[providers.fal-ai]
download_hosts = ["*.fal.media"]

[providers.replicate]
download_hosts = ["replicate.delivery"]
"""
)


def recording(uri_fragment: str) -> dict:
    for entry in recordings.providers():
        if uri_fragment in entry["request"]["uri"]:
            return entry
    raise AssertionError(uri_fragment)


def replay(mock_hub, entry, url=None):
    """Register a recorded exchange with the mock upstream."""
    response = entry["response"]
    body = base64.b64decode(response["body_base64"]) if response.get("body_base64") else response["body_text"].encode()
    method = entry["request"]["method"]
    mock_hub.add(
        method,
        url or entry["request"]["uri"].replace("https://router.huggingface.co", ROOT),
        body=body,
        status=response["status"],
        content_type=response["headers"]["content-type"],
    )
    return body


@pytest.fixture
def app(clock):
    settings = make_settings(hf_providers_base=ROOT, hf_hub_api_base=HUB_API, max_image_bytes=4 * 1024 * 1024)
    return make_app(settings, PROVIDER_CATALOG, clock)


def draw(client, model_name, args=None):
    return post(
        client,
        "text-to-image",
        {"inputs": "An astronaut riding a horse on the moon.", "args": args or {}},
        query=f"?model_name={model_name}",
    )


def test_fal_ai_answer_is_downloaded_without_the_token(client, mock_hub):
    replay(mock_hub, recording("/fal-ai/fal-ai/flux/dev"))
    png = replay(mock_hub, recording("v3.fal.media"))
    response = draw(client, "flux-fal", {"width": 1024, "height": 768, "seed": 3})
    result = response.get_json()["result"][0]
    assert result["content_type"] == "image/png"  # what the download sent, not what the JSON claimed
    assert base64.b64decode(result["image_base64"]) == png
    post_call, get_call = mock_hub.calls
    assert json.loads(post_call.request.body) == {
        "prompt": "An astronaut riding a horse on the moon.",
        "seed": 3,
        "image_size": {"width": 1024, "height": 768},
    }
    assert "Authorization" in post_call.request.headers
    assert "Authorization" not in get_call.request.headers


def test_replicate_prediction_with_version_is_downloaded(client, mock_hub):
    replay(mock_hub, recording("/replicate/v1/predictions"))
    png = replay(mock_hub, recording("replicate.delivery"))
    response = draw(client, "sdxl-replicate")
    assert base64.b64decode(response.get_json()["result"][0]["image_base64"]) == png
    request = mock_hub.calls[0].request
    assert request.headers["Prefer"] == "wait"
    assert json.loads(request.body)["version"] == "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637"


def test_replicate_without_version_uses_the_model_route(client, mock_hub):
    entry = recording("/replicate/v1/predictions")
    replay(mock_hub, entry, url=f"{ROOT}/replicate/v1/models/bytedance/sdxl-lightning-4step/predictions")
    replay(mock_hub, recording("replicate.delivery"))
    assert draw(client, "sdxl-replicate-latest").status_code == 200
    assert "version" not in json.loads(mock_hub.calls[0].request.body)


def prediction(status: str, output=None) -> dict:
    """A replicate prediction in the shape of the recorded one."""
    return {
        "id": "jf23sy140hrj00cn0008841srg",
        "status": status,
        "output": output,
        "urls": {"get": "https://api.replicate.com/v1/predictions/jf23sy140hrj00cn0008841srg"},
    }


POLL_URL = f"{ROOT}/replicate/v1/predictions/jf23sy140hrj00cn0008841srg"
IMAGE_URL = "https://replicate.delivery/yhqm/out-0.webp"


def test_replicate_prediction_still_running_is_polled_through_the_router_until_it_succeeds(client, mock_hub, clock):
    mock_hub.post(f"{ROOT}/replicate/v1/predictions", json=prediction("starting"), status=201)
    mock_hub.get(POLL_URL, json=prediction("processing"))
    mock_hub.get(POLL_URL, json=prediction("processing"))
    mock_hub.get(POLL_URL, json=prediction("succeeded", [IMAGE_URL]))
    png = recordings.recorded_body("/out-0.png", recordings.PROVIDERS_FILE)  # replicate's recorded PNG
    mock_hub.get(IMAGE_URL, body=png, content_type="application/octet-stream")
    started = clock.now
    response = draw(client, "sdxl-replicate")
    assert response.status_code == 200, response.get_json()
    result = response.get_json()["result"][0]
    assert result["content_type"] == "image/png" and base64.b64decode(result["image_base64"]) == png
    assert [call.request.method for call in mock_hub.calls] == ["POST", "GET", "GET", "GET", "GET"]
    assert all("Authorization" in call.request.headers for call in mock_hub.calls[:4])  # polls go through the router
    assert "Authorization" not in mock_hub.calls[4].request.headers  # never to the CDN
    assert clock.now - started == pytest.approx(3.0)  # three polls, a second apart


def test_replicate_prediction_that_never_finishes_is_504_at_the_deadline_not_earlier(client, mock_hub, clock):
    mock_hub.post(f"{ROOT}/replicate/v1/predictions", json=prediction("starting"), status=201)
    mock_hub.get(POLL_URL, json=prediction("processing"))
    started = clock.now
    body = assert_error_shape(draw(client, "sdxl-replicate"), 504, "upstream_timeout")
    assert "replicate" in body["message"]
    assert clock.now - started == pytest.approx(60.0)  # the image deadline of these tests


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_replicate_prediction_that_failed_is_an_upstream_error(client, mock_hub, status):
    mock_hub.post(
        f"{ROOT}/replicate/v1/predictions", json={**prediction(status), "error": "NSFW content detected"}, status=201
    )
    body = assert_error_shape(draw(client, "sdxl-replicate"), 502, "upstream_error")
    assert "NSFW" in body["message"] or status in body["message"]


def test_together_base64_answer(client, mock_hub):
    replay(mock_hub, recording("/together/v1/images/generations"))
    response = draw(
        client, "sdxl-together", {"num_inference_steps": 20, "guidance_scale": 5.0, "width": 512, "height": 512}
    )
    result = response.get_json()["result"][0]
    assert result["content_type"] == "image/jpeg"
    assert json.loads(mock_hub.calls[0].request.body) == {
        "prompt": "An astronaut riding a horse on the moon.",
        "model": "stabilityai/stable-diffusion-xl-base-1.0",
        "response_format": "base64",
        "steps": 20,
        "guidance": 5.0,
        "width": 512,
        "height": 512,
    }


def test_nscale_uses_size_and_b64_json(client, mock_hub):
    entry = recording("/together/v1/images/generations")
    replay(mock_hub, entry, url=f"{ROOT}/nscale/v1/images/generations")
    assert draw(client, "sdxl-nscale", {"width": 512, "height": 768}).status_code == 200
    payload = json.loads(mock_hub.calls[0].request.body)
    assert payload["size"] == "512x768" and payload["response_format"] == "b64_json"


@pytest.mark.parametrize(
    "url",
    [
        "http://v3.fal.media/files/x.png",
        "https://evil.test/x.png",
        "https://fal.media.evil.test/x.png",
        "https://user@v3.fal.media/x.png",
        "https://v3.fal.media:8443/x.png",
        "https://127.0.0.1/x.png",
        "file:///etc/passwd",
        "https://[::1/x",
    ],
)
def test_disallowed_result_urls_are_refused_before_any_request(client, mock_hub, url):
    mock_hub.post(f"{ROOT}/fal-ai/fal-ai/flux/dev", json={"images": [{"url": url}]})
    body = assert_error_shape(draw(client, "flux-fal"), 502, "upstream_error")
    assert "URL" in body["message"] or "refused" in body["message"]
    assert len(mock_hub.calls) == 1


def test_download_redirects_are_not_followed(client, mock_hub):
    mock_hub.post(f"{ROOT}/fal-ai/fal-ai/flux/dev", json={"images": [{"url": "https://v3.fal.media/x.png"}]})
    mock_hub.get("https://v3.fal.media/x.png", status=302, headers={"Location": "http://169.254.169.254/"})
    assert_error_shape(draw(client, "flux-fal"), 502, "upstream_error")
    assert len(mock_hub.calls) == 2


def test_download_over_the_size_limit_is_refused(client, mock_hub):
    mock_hub.post(f"{ROOT}/fal-ai/fal-ai/flux/dev", json={"images": [{"url": "https://v3.fal.media/x.png"}]})
    mock_hub.get(
        "https://v3.fal.media/x.png", body=b"\x89PNG\r\n\x1a\n" + b"0" * (5 * 1024 * 1024), content_type="image/png"
    )
    assert "limit" in assert_error_shape(draw(client, "flux-fal"), 502, "upstream_error")["message"]


def test_provider_completions_route(client, mock_hub):
    mock_hub.post(f"{ROOT}/novita/v3/openai/completions", json={"choices": [{"text": " more"}]})
    response = post(client, "text-completion", {"inputs": "hi"}, query="?model_name=novita-completions")
    assert response.get_json()["result"] == [" more"]
    assert json.loads(mock_hub.calls[0].request.body)["model"] == "meta-llama/llama-3.1-8b-instruct"


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_failed_download_is_not_blamed_on_the_token_or_the_model(client, mock_hub, status):
    mock_hub.post(f"{ROOT}/fal-ai/fal-ai/flux/dev", json={"images": [{"url": "https://v3.fal.media/x.png"}]})
    mock_hub.get("https://v3.fal.media/x.png", status=status, body="AccessDenied")
    body = assert_error_shape(draw(client, "flux-fal"), 502, "upstream_error")
    assert "download" in body["message"]
    assert len(mock_hub.calls) == 2  # not retried


def test_transient_download_failure_is_retried(client, mock_hub):
    png = recording("v3.fal.media")
    mock_hub.post(f"{ROOT}/fal-ai/fal-ai/flux/dev", json={"images": [{"url": png["request"]["uri"]}]})
    mock_hub.get(png["request"]["uri"], status=503, body="busy")
    image = replay(mock_hub, png)
    response = draw(client, "flux-fal")
    assert base64.b64decode(response.get_json()["result"][0]["image_base64"]) == image
    assert [call.request.method for call in mock_hub.calls] == ["POST", "GET", "GET"]
