"""Provider shapes from the recordings, result downloads, not-served fallbacks, and liveness."""

import base64
import json
import re

import pytest

from service.__main__ import main as operator_main
from service.liveness import parse_provider_mapping, target_status
from tests.support import recordings
from tests.unit.conftest import API, ROUTER, TEST_CATALOG, make_app, make_settings, post
from tests.unit.test_validation import assert_error_shape

ROOT = "https://hub.test"
HUB_API = "https://hub-api.test/api"

PROVIDER_CATALOG = TEST_CATALOG + """
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


def recording(uri_fragment: str) -> dict:
    for entry in recordings.providers():
        if uri_fragment in entry["request"]["uri"]:
            return entry
    raise AssertionError(uri_fragment)


def replay(upstream, entry, url=None):
    """Register a recorded exchange with the mock upstream."""
    response = entry["response"]
    body = base64.b64decode(response["body_base64"]) if response.get("body_base64") else response["body_text"].encode()
    method = entry["request"]["method"]
    upstream.add(method, url or entry["request"]["uri"].replace("https://router.huggingface.co", ROOT), body=body, status=response["status"], content_type=response["headers"]["content-type"])
    return body


@pytest.fixture
def app(clock):
    settings = make_settings(hf_providers_base=ROOT, hf_hub_api_base=HUB_API, max_image_bytes=4 * 1024 * 1024)
    return make_app(settings, PROVIDER_CATALOG, clock)


def draw(client, model_name, args=None):
    return post(client, "text-to-image", {"inputs": "An astronaut riding a horse on the moon.", "args": args or {}}, query=f"?model_name={model_name}")


def test_fal_ai_answer_is_downloaded_without_the_token(client, upstream):
    replay(upstream, recording("/fal-ai/fal-ai/flux/dev"))
    png = replay(upstream, recording("v3.fal.media"))
    response = draw(client, "flux-fal", {"width": 1024, "height": 768, "seed": 3})
    result = response.get_json()["result"][0]
    assert result["content_type"] == "image/png"  # what the download sent, not what the JSON claimed
    assert base64.b64decode(result["image_base64"]) == png
    post_call, get_call = upstream.calls
    assert json.loads(post_call.request.body) == {"prompt": "An astronaut riding a horse on the moon.", "seed": 3, "image_size": {"width": 1024, "height": 768}}
    assert "Authorization" in post_call.request.headers
    assert "Authorization" not in get_call.request.headers


def test_replicate_prediction_with_version_is_downloaded(client, upstream):
    replay(upstream, recording("/replicate/v1/predictions"))
    png = replay(upstream, recording("replicate.delivery"))
    response = draw(client, "sdxl-replicate")
    assert base64.b64decode(response.get_json()["result"][0]["image_base64"]) == png
    request = upstream.calls[0].request
    assert request.headers["Prefer"] == "wait"
    assert json.loads(request.body)["version"] == "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637"


def test_replicate_without_version_uses_the_model_route(client, upstream):
    entry = recording("/replicate/v1/predictions")
    replay(upstream, entry, url=f"{ROOT}/replicate/v1/models/bytedance/sdxl-lightning-4step/predictions")
    replay(upstream, recording("replicate.delivery"))
    assert draw(client, "sdxl-replicate-latest").status_code == 200
    assert "version" not in json.loads(upstream.calls[0].request.body)


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


def test_replicate_prediction_still_running_is_polled_through_the_router_until_it_succeeds(client, upstream, clock):
    upstream.post(f"{ROOT}/replicate/v1/predictions", json=prediction("starting"), status=201)
    upstream.get(POLL_URL, json=prediction("processing"))
    upstream.get(POLL_URL, json=prediction("processing"))
    upstream.get(POLL_URL, json=prediction("succeeded", [IMAGE_URL]))
    png = recordings.recorded_body("/out-0.png", recordings.PROVIDERS_FILE)  # replicate's recorded PNG
    upstream.get(IMAGE_URL, body=png, content_type="application/octet-stream")
    started = clock.now
    response = draw(client, "sdxl-replicate")
    assert response.status_code == 200, response.get_json()
    result = response.get_json()["result"][0]
    assert result["content_type"] == "image/png" and base64.b64decode(result["image_base64"]) == png
    assert [call.request.method for call in upstream.calls] == ["POST", "GET", "GET", "GET", "GET"]
    assert all("Authorization" in call.request.headers for call in upstream.calls[:4])  # polls go through the router
    assert "Authorization" not in upstream.calls[4].request.headers  # never to the CDN
    assert clock.now - started == pytest.approx(3.0)  # three polls, a second apart


def test_replicate_prediction_that_never_finishes_is_504_at_the_deadline_not_earlier(client, upstream, clock):
    upstream.post(f"{ROOT}/replicate/v1/predictions", json=prediction("starting"), status=201)
    upstream.get(POLL_URL, json=prediction("processing"))
    started = clock.now
    body = assert_error_shape(draw(client, "sdxl-replicate"), 504, "upstream_timeout")
    assert "replicate" in body["message"]
    assert clock.now - started == pytest.approx(60.0)  # the image deadline of these tests


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_replicate_prediction_that_failed_is_an_upstream_error(client, upstream, status):
    upstream.post(f"{ROOT}/replicate/v1/predictions", json={**prediction(status), "error": "NSFW content detected"}, status=201)
    body = assert_error_shape(draw(client, "sdxl-replicate"), 502, "upstream_error")
    assert "NSFW" in body["message"] or status in body["message"]


def test_together_base64_answer(client, upstream):
    replay(upstream, recording("/together/v1/images/generations"))
    response = draw(client, "sdxl-together", {"num_inference_steps": 20, "guidance_scale": 5.0, "width": 512, "height": 512})
    result = response.get_json()["result"][0]
    assert result["content_type"] == "image/jpeg"
    assert json.loads(upstream.calls[0].request.body) == {
        "prompt": "An astronaut riding a horse on the moon.",
        "model": "stabilityai/stable-diffusion-xl-base-1.0",
        "response_format": "base64",
        "steps": 20,
        "guidance": 5.0,
        "width": 512,
        "height": 512,
    }


def test_nscale_uses_size_and_b64_json(client, upstream):
    entry = recording("/together/v1/images/generations")
    replay(upstream, entry, url=f"{ROOT}/nscale/v1/images/generations")
    assert draw(client, "sdxl-nscale", {"width": 512, "height": 768}).status_code == 200
    payload = json.loads(upstream.calls[0].request.body)
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
def test_disallowed_result_urls_are_refused_before_any_request(client, upstream, url):
    upstream.post(f"{ROOT}/fal-ai/fal-ai/flux/dev", json={"images": [{"url": url}]})
    body = assert_error_shape(draw(client, "flux-fal"), 502, "upstream_error")
    assert "URL" in body["message"] or "refused" in body["message"]
    assert len(upstream.calls) == 1


def test_download_redirects_are_not_followed(client, upstream):
    upstream.post(f"{ROOT}/fal-ai/fal-ai/flux/dev", json={"images": [{"url": "https://v3.fal.media/x.png"}]})
    upstream.get("https://v3.fal.media/x.png", status=302, headers={"Location": "http://169.254.169.254/"})
    assert_error_shape(draw(client, "flux-fal"), 502, "upstream_error")
    assert len(upstream.calls) == 2


def test_download_over_the_size_limit_is_refused(client, upstream):
    upstream.post(f"{ROOT}/fal-ai/fal-ai/flux/dev", json={"images": [{"url": "https://v3.fal.media/x.png"}]})
    upstream.get("https://v3.fal.media/x.png", body=b"\x89PNG\r\n\x1a\n" + b"0" * (5 * 1024 * 1024), content_type="image/png")
    assert "limit" in assert_error_shape(draw(client, "flux-fal"), 502, "upstream_error")["message"]


def test_provider_completions_route(client, upstream):
    upstream.post(f"{ROOT}/novita/v3/openai/completions", json={"choices": [{"text": " more"}]})
    response = post(client, "text-completion", {"inputs": "hi"}, query="?model_name=novita-completions")
    assert response.get_json()["result"] == [" more"]
    assert json.loads(upstream.calls[0].request.body)["model"] == "meta-llama/llama-3.1-8b-instruct"


def test_not_served_by_provider_falls_back(client, upstream):
    upstream.post(f"{API}/missing/model", json={"error": "Model missing/model is not supported by provider hf-inference"}, status=400)
    upstream.post(f"{ROUTER}/chat/completions", json={"choices": [{"message": {"content": "Kleid"}}]})
    response = post(client, "text-translation", {"inputs": "连衣裙"}, query="?model_type=zh2de")
    assert response.get_json()["model"] == "org/chat-model"


@pytest.mark.parametrize(
    "mapping, expected",
    [
        ({"hf-inference": {"status": "live", "providerId": "x", "task": "translation"}}, {"hf-inference": "live"}),
        ([{"provider": "fal-ai", "status": "staging"}, {"provider": "together", "status": "live"}], {"fal-ai": "staging", "together": "live"}),
        (None, {}),
        ("garbage", {}),
    ],
)
def test_provider_mapping_both_forms(mapping, expected):
    assert parse_provider_mapping(mapping) == expected


def test_target_status():
    assert target_status("hf-inference", {"hf-inference": "live"}) == "live"
    assert target_status("hf-inference", {"together": "live"}) == "not_served"
    assert target_status(None, {"together": "live"}) == "live"
    assert target_status(None, {"together": "staging"}) == "not_served"  # the router picks live ones only
    assert target_status(None, {"together": "error", "novita": "staging"}) == "degraded"
    assert target_status("together", {"together": "error"}) == "degraded"
    assert target_status("together", {"together": "staging"}) == "staging"


def hub_model(upstream, model_id, mapping, status=200):
    upstream.get(f"{HUB_API}/models/{model_id}?expand[]=inferenceProviderMapping", json={"id": model_id, "inferenceProviderMapping": mapping} if status == 200 else {"error": "Repository not found"}, status=status)


def test_api_models_lists_routes_with_live_status_and_caches(client, upstream):
    hub_model(upstream, "Helsinki-NLP/opus-mt-zh-en", {"hf-inference": {"status": "live"}})
    hub_model(upstream, "missing/model", None, status=404)
    # Every other model is unknown to the Hub too: no lookup retries, so the shared fake clock
    # (which the lookups' retry waits would move) stays put.
    upstream.get(re.compile(re.escape(HUB_API) + "/models/.*"), json={"error": "Repository not found"}, status=404)
    report = client.get("/api/models").get_json()
    routes = {route["route"]: route["targets"] for route in report["routes"]}
    assert routes["text-translation:zh2en"][0]["status"] == "live"
    assert routes["text-translation:zh2de"][0]["status"] == "not_found"
    assert routes["text-to-image"][0]["model"] == "missing/image-model"
    calls = len(upstream.calls)
    client.get("/api/models")
    assert len(upstream.calls) == calls  # served from the cache
    assert not any("/hf-inference/" in call.request.url for call in upstream.calls)  # never calls a model


def test_operator_command_prints_the_table(monkeypatch, tmp_path, upstream, capsys):
    config = tmp_path / "models.toml"
    config.write_text(TEST_CATALOG)
    monkeypatch.setenv("MODELS_CONFIG", str(config))
    monkeypatch.setenv("HF_HUB_API_BASE", HUB_API)
    hub_model(upstream, "Helsinki-NLP/opus-mt-zh-en", [{"provider": "hf-inference", "status": "live"}])
    upstream.get(re.compile(re.escape(HUB_API) + "/models/.*"), json={"error": "Repository not found"}, status=404)
    assert operator_main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ROUTE", "#", "MODEL", "PROTOCOL", "PROVIDER", "STATUS"]
    row = next(line for line in lines if "Helsinki-NLP/opus-mt-zh-en" in line)
    assert row.split()[-1] == "live"
    assert operator_main(["nonsense"]) == 2


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_failed_download_is_not_blamed_on_the_token_or_the_model(client, upstream, status):
    upstream.post(f"{ROOT}/fal-ai/fal-ai/flux/dev", json={"images": [{"url": "https://v3.fal.media/x.png"}]})
    upstream.get("https://v3.fal.media/x.png", status=status, body="AccessDenied")
    body = assert_error_shape(draw(client, "flux-fal"), 502, "upstream_error")
    assert "download" in body["message"]
    assert len(upstream.calls) == 2  # not retried


def test_liveness_non_json_answer_is_an_error_not_not_served(client, upstream):
    upstream.get(re.compile(re.escape(HUB_API) + "/models/.*"), body="<html>maintenance</html>", status=200, content_type="text/html")
    routes = {route["route"]: route["targets"] for route in client.get("/api/models").get_json()["routes"]}
    assert routes["text-translation:zh2en"][0]["status"] == "upstream_error"


def test_transient_download_failure_is_retried(client, upstream):
    png = recording("v3.fal.media")
    upstream.post(f"{ROOT}/fal-ai/fal-ai/flux/dev", json={"images": [{"url": png["request"]["uri"]}]})
    upstream.get(png["request"]["uri"], status=503, body="busy")
    image = replay(upstream, png)
    response = draw(client, "flux-fal")
    assert base64.b64decode(response.get_json()["result"][0]["image_base64"]) == image
    assert [call.request.method for call in upstream.calls] == ["POST", "GET", "GET"]
