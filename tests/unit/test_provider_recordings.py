"""Real answers of the router's providers, recorded by the Hugging Face client libraries
(tests/recordings/huggingface_js/), fed through each provider helper and the service."""

import base64
import gzip
import json

import pytest

from harness import recordings
from harness.catalogs import task_routes
from service.hub.providers.openai_style import bare_answer
from tests.support.app import API, ROUTER, make_app, make_settings, post

ROOT = "https://hub.test"
CHAT = f"{ROUTER}/chat/completions"
CHAT_PROVIDERS = ("novita", "together", "cerebras", "cohere", "fireworks-ai", "nscale")
FAL_PNG = recordings.recorded_body("/files/koala/7EQDw9PT6pMiX2fm7bYOC.png", recordings.PROVIDERS_FILE)
REPLICATE_PNG = recordings.recorded_body("/out-0.png", recordings.PROVIDERS_FILE)

CATALOG = (
    task_routes(text_to_text=("chat-novita",), text_to_image=("fal",))
    + """

[models.fal]
id = "black-forest-labs/FLUX.1-dev"
protocol = "fal-ai"
provider_model = "fal-ai/flux/dev"

[models.replicate]
id = "stabilityai/stable-diffusion-xl-base-1.0"
protocol = "replicate"
provider_model = "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"

[models.together-images]
id = "stabilityai/stable-diffusion-xl-base-1.0"
protocol = "openai-images"
provider = "together"
provider_model = "stabilityai/stable-diffusion-xl-base-1.0"

[providers.fal-ai]
download_hosts = ["fal.media", "*.fal.media"]
[providers.replicate]
download_hosts = ["replicate.delivery", "*.replicate.delivery"]
"""
    + "".join(
        f'\n[models.chat-{provider}]\nid = "meta-llama/Llama-3.1-8B-Instruct"\nprotocol = "openai-chat"\nprovider = "{provider}"\n'
        for provider in CHAT_PROVIDERS
    )
)


@pytest.fixture
def client(clock):
    settings = make_settings(hf_providers_base=ROOT, max_image_bytes=4 * 1024 * 1024)
    return make_app(settings, CATALOG, clock).test_client()


def answered(entry) -> bool:
    """A recorded success with a whole JSON body (streams are not what the service asks for)."""
    response = entry["response"]
    return response["status"] == 200 and response["headers"].get("content-type", "").startswith("application/json")


def replay(mock_hub, method: str, url: str, entry, body: bytes | None = None):
    """Answer `url` with the recorded status, content type, encoding and body (or `body` in its place)."""
    response = entry["response"]
    encoding = response["headers"].get("content-encoding") if body is None and "body_base64" in response else None
    mock_hub.add(
        method,
        url,
        body=body if body is not None else recordings.response_body(entry),
        status=response["status"],
        content_type=response["headers"].get("content-type"),
        headers={"Content-Encoding": encoding} if encoding else None,
    )


def decoded(entry) -> bytes:
    """Return the recorded body as the client reads it (a gzip-encoded one decompressed)."""
    body = recordings.response_body(entry)
    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


CHAT_ANSWERS = [
    pytest.param(provider, entry, id=f"{provider}-{number}")
    for provider in CHAT_PROVIDERS
    for number, entry in enumerate(recordings.from_clients(provider))
    if answered(entry) and "/chat/completions" in entry["request"]["uri"]
]


@pytest.mark.parametrize("provider, entry", CHAT_ANSWERS)
def test_recorded_chat_answers_of_every_provider_come_back_as_the_result(client, mock_hub, provider, entry):
    replay(mock_hub, "POST", CHAT, entry)
    response = post(client, "text-to-text", {"inputs": "What is deep learning?"}, query=f"?model_name=chat-{provider}")
    assert response.status_code == 200, response.get_json()
    content = json.loads(decoded(entry))["choices"][0]["message"]["content"]
    assert response.get_json()["result"] == [bare_answer(content)]
    assert json.loads(mock_hub.calls[0].request.body)["model"] == f"meta-llama/Llama-3.1-8B-Instruct:{provider}"


FAL_ANSWERS = [entry for entry in recordings.from_clients("fal-ai") if answered(entry)]


@pytest.mark.parametrize("entry", FAL_ANSWERS, ids=lambda entry: entry["request"]["uri"].rsplit("/", 2)[-2])
def test_recorded_fal_ai_answers_are_downloaded(client, mock_hub, entry):
    replay(mock_hub, "POST", f"{ROOT}/fal-ai/fal-ai/flux/dev", entry)
    image_url = recordings.json_body(entry)["images"][0]["url"]
    mock_hub.get(image_url, body=FAL_PNG, content_type="image/png")  # the bytes fal-ai served (providers.json)
    response = post(client, "text-to-image", {"inputs": "a dress"}, query="?model_name=fal")
    assert response.status_code == 200, response.get_json()
    assert base64.b64decode(response.get_json()["result"][0]["image_base64"]) == FAL_PNG
    assert "Authorization" not in mock_hub.calls[1].request.headers


def image_predictions() -> list:
    """The recorded replicate predictions of images, with the download recorded after each, if any."""
    entries = list(recordings.from_clients("replicate"))
    found = []
    for position, entry in enumerate(entries):
        document = recordings.json_body(entry) if entry["request"]["method"] == "POST" else {}
        output = document.get("output")
        if isinstance(output, list) and output and output[0].endswith((".png", ".webp", ".jpg")):
            following = entries[position + 1] if position + 1 < len(entries) else None
            download = following if following and following["request"]["method"] == "GET" else None
            found.append(pytest.param(entry, download, id=document["model"]))
    return found


@pytest.mark.parametrize("entry, download", image_predictions())
def test_recorded_replicate_predictions_give_the_image_whatever_its_download_was_labelled(
    client, mock_hub, entry, download
):
    replay(mock_hub, "POST", f"{ROOT}/replicate/v1/predictions", entry)
    url = recordings.json_body(entry)["output"][0]
    # The tapes kept the downloads' headers (application/octet-stream for out-0.webp) but no bytes:
    # those headers, with the PNG replicate served in the router's cassette as the body.
    headers_from = download or {"response": {"status": 200, "headers": {"content-type": "application/octet-stream"}}}
    replay(mock_hub, "GET", url, headers_from, body=REPLICATE_PNG)
    response = post(client, "text-to-image", {"inputs": "a dress"}, query="?model_name=replicate")
    assert response.status_code == 200, response.get_json()
    image = response.get_json()["result"][0]
    assert image["content_type"] == "image/png"  # what the bytes are, not the octet-stream label
    assert base64.b64decode(image["image_base64"]) == REPLICATE_PNG


def test_the_recorded_replicate_prediction_still_starting_is_polled(client, mock_hub, clock):
    starting = next(entry for entry in recordings.from_clients("replicate") if entry["response"]["status"] == 202)
    prediction_id = recordings.json_body(starting)["id"]
    replay(mock_hub, "POST", f"{ROOT}/replicate/v1/predictions", starting)
    mock_hub.get(
        f"{ROOT}/replicate/v1/predictions/{prediction_id}",
        json={
            **recordings.json_body(starting),
            "status": "succeeded",
            "output": ["https://replicate.delivery/x/out-0.png"],
        },
    )
    mock_hub.get("https://replicate.delivery/x/out-0.png", body=REPLICATE_PNG, content_type="application/octet-stream")
    response = post(client, "text-to-image", {"inputs": "a dress"}, query="?model_name=replicate")
    assert response.status_code == 200, response.get_json()
    assert [call.request.url for call in mock_hub.calls][1] == f"{ROOT}/replicate/v1/predictions/{prediction_id}"


def test_the_recorded_together_image_answer_is_passed_on_as_its_base64(client, mock_hub):
    entry = next(
        entry for entry in recordings.from_clients("together") if "/images/generations" in entry["request"]["uri"]
    )
    replay(mock_hub, "POST", f"{ROOT}/together/v1/images/generations", entry)
    response = post(client, "text-to-image", {"inputs": "a dress"}, query="?model_name=together-images")
    assert response.status_code == 200, response.get_json()
    recorded = recordings.json_body(entry)["data"][0]["b64_json"]
    assert response.get_json()["result"][0] == {"image_base64": recorded, "content_type": "image/jpeg"}


RECORDED_ERRORS = [
    pytest.param(entry, id=f"{entry['response']['status']}-{entry['request']['uri'].split('/')[2]}-{number}")
    for number, entry in enumerate(recordings.from_clients("errors"))
    if entry["response"]["status"] >= 400
]


def expected_reading(document: dict) -> str:
    """The words a reader of the body would quote, in each provider's shape."""
    if isinstance(document.get("detail"), list):
        return document["detail"][0]["msg"]
    error = document.get("error", document.get("message"))
    return (error["message"] if isinstance(error, dict) else error)[:40]


@pytest.mark.parametrize("entry", RECORDED_ERRORS)
def test_recorded_error_bodies_are_read_in_every_providers_shape(client, mock_hub, entry):
    replay(mock_hub, "POST", f"{API}/openai-community/gpt2", entry)
    response = post(client, "text-completion", {"inputs": "Paris is"})
    message = response.get_json()["message"]
    assert expected_reading(recordings.json_body(entry)) in message
    assert '{"' not in message and "[{" not in message  # read, not dumped
