"""huggingface_hub's InferenceClient, pinned, with only its model URL pointing at the gateway's
`/models/<id>`, and the serverless API's own `requests.post` snippet with only its base swapped.

The upstream answers with the client libraries' recorded exchanges (tests/recordings/).
"""

import io
import warnings

import numpy as np
import pytest
import requests
from huggingface_hub import InferenceClient, constants
from huggingface_hub.errors import BadRequestError, HfHubHTTPError, UnknownError
from huggingface_hub.inference import _common
from PIL import Image

from harness import recordings
from harness.service import TOKEN
from harness.upstream import Step
from tests.clients.conftest import CLIENT_KEY

pytestmark = pytest.mark.integration

BART = "sshleifer/distilbart-cnn-12-6"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(autouse=True)
def client_state(monkeypatch):
    """Telemetry off even if another module imported the client first; the models the client
    learnt to send fewer parameters to are forgotten after each test."""
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(_common, "_UNSUPPORTED_TEXT_GENERATION_KWARGS", {})


@pytest.fixture
def hub(gateway):
    return InferenceClient(api_key=CLIENT_KEY)


def model_url(gateway, model_id: str) -> str:
    return f"{gateway.url}/models/{model_id}"


def only_the_gateways_token_went_upstream(upstream) -> None:
    upstream.wait_idle()
    sent = [entry.headers.get("authorization") for entry in upstream.requests if entry.method == "POST"]
    assert sent and set(sent) == {f"Bearer {TOKEN}"}


def native_completion(gateway, model_id: str, prompt: str, task: str = "text-completion", **args) -> str:
    """The same call through the gateway's own API, for the text the replay gives."""
    response = requests.post(
        f"{gateway.url}/api/infer/{task}",
        params={"model_name": model_id},
        json={"inputs": prompt, "args": args},
        headers={"X-API-Key": CLIENT_KEY},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["result"][0]


def test_translation(hub, gateway, upstream):
    output = hub.translation(
        "连衣裙", model=model_url(gateway, "Helsinki-NLP/opus-mt-zh-en"), src_lang="zh", tgt_lang="en"
    )
    # The loopback answers this model with t5-base's recorded translation.
    expected = native_completion(gateway, "Helsinki-NLP/opus-mt-zh-en", "连衣裙", task="text-translation")
    assert output.translation_text == expected and expected
    only_the_gateways_token_went_upstream(upstream)


def test_translation_error_is_the_clients_bad_request_with_the_gateways_message(hub, gateway, upstream):
    with pytest.raises(BadRequestError) as raised:
        hub.translation("连衣裙", model=model_url(gateway, "opus-zh-en"), src_lang="zh", tgt_lang="ja")
    error = raised.value
    assert "no translation from 'zh' to 'ja' is configured" in str(error)
    assert error.response.status_code == 400 and error.request_id == error.response.headers["X-Request-ID"]
    assert not upstream.requests


def test_text_generation(hub, gateway, upstream):
    url = model_url(gateway, "openai-community/gpt2")
    text = hub.text_generation("The answer to the universe is", model=url, max_new_tokens=12, temperature=0.5)
    expected = native_completion(
        gateway, "openai-community/gpt2", "The answer to the universe is", max_new_tokens=12, temperature=0.5
    )
    assert isinstance(text, str) and text == expected
    sent = upstream.requests_for("/hf-inference/models/openai-community/gpt2")[0].json
    assert sent["parameters"]["max_new_tokens"] == 12 and sent["parameters"]["temperature"] == 0.5
    only_the_gateways_token_went_upstream(upstream)


def test_text_generation_retries_without_what_the_gateway_cannot_pass(hub, gateway, upstream):
    url = model_url(gateway, "gpt2")
    with pytest.warns(UserWarning, match="Ignoring following parameters: repetition_penalty"):
        text = hub.text_generation("Once upon a time", model=url, max_new_tokens=3, repetition_penalty=1.2)
    assert text == native_completion(gateway, "gpt2", "Once upon a time", max_new_tokens=3)
    assert _common._UNSUPPORTED_TEXT_GENERATION_KWARGS[url] == ["repetition_penalty"]
    # The refusal was the gateway's: only the call without it reached the upstream.
    assert len(upstream.requests_for("/hf-inference/models/openai-community/gpt2")) == 2  # it, and native_completion


def test_text_generation_retries_when_the_upstream_refuses_kwargs(hub, gateway, upstream):
    # The hosted route's recorded refusal of a non-TGI model, then the recorded answer.
    refusal = next(entry for entry in recordings.hosted() if entry["response"]["status"] == 400)
    path = "/hf-inference/models/openai-community/gpt2"
    upstream.script(path, Step(status=400, body=recordings.response_body(refusal), content_type="application/json"))
    url = model_url(gateway, "openai-community/gpt2")
    text = hub.text_generation("Once upon a time", model=url, max_new_tokens=3)
    assert text == native_completion(gateway, "openai-community/gpt2", "Once upon a time", max_new_tokens=3)
    assert _common._UNSUPPORTED_TEXT_GENERATION_KWARGS[url] == ["watermark", "stop", "decoder_input_details"]
    assert len(upstream.requests_for(path)) == 3  # refused, sent again, and native_completion


def test_text_generation_error_is_the_clients_own_type_with_the_gateways_message(hub, gateway, upstream):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UnknownError) as raised:
            hub.text_generation("Hi", model=model_url(gateway, "openai-community/gpt2"), max_new_tokens=100000)
    assert str(raised.value).startswith("parameters.max_new_tokens: Must be greater than or equal to 1")
    assert isinstance(raised.value.__cause__, BadRequestError)
    assert not upstream.requests


def test_text_to_image_opens_with_pil(hub, gateway, upstream):
    image = hub.text_to_image(
        "a red dress", model=model_url(gateway, "stabilityai/stable-diffusion-3-medium-diffusers")
    )
    # Answered with CompVis/stable-diffusion-v1-4's recorded 512x512 JPEG.
    assert isinstance(image, Image.Image) and image.format == "JPEG" and image.size == (512, 512)
    only_the_gateways_token_went_upstream(upstream)


def test_a_call_without_a_key_is_the_clients_http_error(gateway, upstream):
    with pytest.raises(HfHubHTTPError) as raised:
        InferenceClient(api_key="not-a-key").translation("连衣裙", model=model_url(gateway, "opus-zh-en"))
    assert raised.value.response.status_code == 401
    assert raised.value.response.json()["error_type"] == "unauthorized"
    assert not upstream.requests


def test_the_serverless_apis_requests_snippet(gateway, upstream):
    # The snippet the serverless API's model pages gave, with only the base URL swapped.
    API_URL = f"{gateway.url}/models/Helsinki-NLP/opus-mt-zh-en"  # was https://router.huggingface.co/hf-inference
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}

    def query(payload):
        response = requests.post(API_URL, headers=headers, json=payload)
        return response.json()

    output = query({"inputs": "连衣裙"})
    assert isinstance(output, list) and isinstance(output[0]["translation_text"], str)
    only_the_gateways_token_went_upstream(upstream)


def test_the_pipeline_route_with_a_pair_and_the_image_bytes(gateway, upstream):
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    translated = requests.post(
        f"{gateway.url}/pipeline/translation/zh2en", headers=headers, json={"inputs": "连衣裙"}, timeout=30
    )
    assert translated.status_code == 200 and translated.json()[0]["translation_text"]
    drawn = requests.post(
        f"{gateway.url}/pipeline/text-to-image/default", headers=headers, json={"inputs": "a red dress"}, timeout=30
    )
    assert drawn.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(drawn.content)).size == (512, 512)


def recorded(uri_suffix: str):
    """The recorded answer to the request whose URI ends with `uri_suffix`, parsed."""
    entry = next(entry for entry in recordings.hosted() if entry["request"]["uri"].endswith(uri_suffix))
    return recordings.json_body(entry)


def test_summarization_is_forwarded_as_sent_and_answered_as_recorded(hub, gateway, upstream):
    upstream.describe_model(BART, "summarization")
    output = hub.summarization("The sky is blue, the tree is green.", model=model_url(gateway, BART))
    assert output.summary_text == recorded(f"/models/{BART}")[0]["summary_text"]
    [sent] = upstream.requests_for(f"/hf-inference/models/{BART}")
    assert sent.json == {"inputs": "The sky is blue, the tree is green.", "parameters": {}}
    only_the_gateways_token_went_upstream(upstream)


@pytest.mark.parametrize("route", ["pipeline/feature-extraction", "models"])
def test_feature_extraction_is_the_recorded_vector_as_a_numpy_array(hub, gateway, upstream, route):
    upstream.describe_model(MINILM, "feature-extraction")
    vector = hub.feature_extraction("Hi, who are you?", model=f"{gateway.url}/{route}/{MINILM}")
    expected = np.array(recorded(f"/{MINILM}/pipeline/feature-extraction"), dtype="float32")
    assert isinstance(vector, np.ndarray) and vector.dtype == np.float32 and vector.shape == (384,)
    assert np.array_equal(vector, expected)
    only_the_gateways_token_went_upstream(upstream)


def test_a_forwarded_task_still_loading_is_the_clients_http_error_never_a_503(hub, gateway, upstream):
    loading = {"error": f"Model {BART} is currently loading", "estimated_time": 30.0}
    upstream.script(f"/hf-inference/models/{BART}", Step(status=503, json=loading, repeat=50))
    with pytest.raises(HfHubHTTPError) as raised:
        hub.summarization("The sky is blue.", model=f"{gateway.url}/pipeline/summarization/{BART}")
    assert raised.value.response.status_code == 429 and "currently loading" in str(raised.value)
    assert raised.value.response.headers["Retry-After"] == "30"
