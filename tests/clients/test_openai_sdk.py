"""The pinned openai SDK, and huggingface_hub's OpenAI-style chat, run unchanged but for their
base URL against the real gunicorn service in front of the loopback upstream, which answers
from the recordings (chat from the recorded Llama-3.1-8B-Instruct completion)."""

import base64
import hashlib
import io
import json
import os
import subprocess

import huggingface_hub
import openai
import pytest
from huggingface_hub import InferenceClient
from PIL import Image

from harness import recordings
from harness.gunicorn_server import GunicornServer
from harness.paths import DOCS
from harness.service import TOKEN, service_env
from harness.upstream import Step
from tests.support.documents import curl_lines

KEY = "openai-client-key-0123456789"
LIMITED_KEY = "openai-limited-key-0123456789"
CHAT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
ROUTER_CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "What is deep learning?"}]
KEY_FILE = """
[keys.client]
sha256 = "{client}"

[keys.limited]
sha256 = "{limited}"
rpm = 1
"""


@pytest.fixture(scope="module", autouse=True)
def no_calls_to_the_hub():
    """huggingface_hub would otherwise ask huggingface.co which agent harness runs it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
        yield


@pytest.fixture(scope="module")
def gateway(loopback, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gunicorn-openai")
    keys = folder / "keys.toml"
    digests = {
        name: hashlib.sha256(key.encode()).hexdigest() for name, key in (("client", KEY), ("limited", LIMITED_KEY))
    }
    keys.write_text(KEY_FILE.format(**digests), encoding="utf-8")
    env = service_env(loopback, API_KEYS_FILE=str(keys), WEB_CONCURRENCY="1")
    with GunicornServer(env=env, log_path=folder / "service.log") as server:
        yield server
    log = server.log_text()
    assert TOKEN not in log and KEY not in log


@pytest.fixture
def sdk(gateway):
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0) as client:
        yield client


def test_a_chat_completion_through_the_openai_sdk(sdk, upstream):
    completion = sdk.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=20)
    assert completion.object == "chat.completion" and completion.model == CHAT_MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content.startswith("Deep learning is")
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
    (sent,) = upstream.requests_for(ROUTER_CHAT)
    assert sent.json["model"] == CHAT_MODEL and sent.json["max_tokens"] == 20 and sent.json["messages"] == MESSAGES
    # The caller's key stays with the gateway; the upstream gets the gateway's own token.
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert KEY not in str(dict(sent.headers))


def test_a_chat_completion_through_huggingface_hubs_openai_style_client(gateway, upstream):
    client = InferenceClient(base_url=f"{gateway.url}/v1", api_key=KEY)
    output = client.chat.completions.create(model=f"{CHAT_MODEL}:fastest", messages=MESSAGES, max_tokens=8)
    assert output.choices[0].message.content.startswith("Deep learning is")
    (sent,) = upstream.requests_for(ROUTER_CHAT)
    assert sent.json["model"] == f"{CHAT_MODEL}:fastest"


def test_the_per_model_chat_route_through_huggingface_hub(gateway, upstream):
    client = InferenceClient(model=f"{gateway.url}/models/{CHAT_MODEL}", api_key=KEY)
    output = client.chat_completion(MESSAGES, max_tokens=5)  # the body's model is "dummy"
    assert output.choices[0].message.content.startswith("Deep learning is")
    (sent,) = upstream.requests_for(ROUTER_CHAT)
    assert sent.json["model"] == CHAT_MODEL


def test_a_completion_along_the_tasks_chain(sdk, upstream):
    completion = sdk.completions.create(model="text-completion", prompt="The answer is", max_tokens=5)
    assert completion.object == "text_completion" and completion.choices[0].text
    (sent,) = [entry for entry in upstream.requests if entry.path.endswith("/v1/completions")]
    assert sent.json["prompt"] == "The answer is" and sent.json["max_tokens"] == 5


def test_an_image_generation_decodes_to_an_image(sdk, upstream):
    answer = sdk.images.generate(model="text-to-image", prompt="a red dress", size="512x512")
    image = Image.open(io.BytesIO(base64.b64decode(answer.data[0].b64_json)))
    image.load()
    assert image.size == (512, 512)
    (sent,) = [entry for entry in upstream.requests if entry.method == "POST"]
    assert sent.json["parameters"] == {"width": 512, "height": 512}


def test_the_model_list(sdk):
    names = {model.id for model in sdk.models.list()}
    assert {"chat-completion", "text-completion", "text-to-image", "llama", "llama-3.1-8b-chat"} <= names


def test_a_bad_request_is_the_sdks_own_exception_with_the_gateways_message(sdk, upstream):
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, temperature=3.5)
    error = raised.value
    assert error.status_code == 400 and (error.code, error.param) == ("invalid_request", "temperature")
    assert str(error).startswith("Error code: 400 - ") and "temperature:" in str(error)
    assert error.request_id and not upstream.requests


def test_the_models_refusal_surfaces_with_its_message(sdk, upstream):
    error = {"error": "Template error: template not found", "error_type": "template_error"}
    upstream.script(ROUTER_CHAT, Step(status=422, json=error))
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        sdk.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert "Template error: template not found" in str(raised.value)
    assert raised.value.code == "model_rejected_input"


def test_a_server_error_the_gateway_already_retried_is_not_sent_again(gateway, upstream):
    upstream.script(ROUTER_CHAT, Step(body="<html>not an answer</html>", content_type="text/html"))
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=2) as retrying:
        with pytest.raises(openai.InternalServerError) as raised:
            retrying.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert raised.value.status_code == 502 and raised.value.response.headers["x-should-retry"] == "false"
    assert len(upstream.requests_for(ROUTER_CHAT)) == 1


def test_a_keys_rate_limit_is_a_rate_limit_error_with_retry_after(gateway, upstream):
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=LIMITED_KEY, max_retries=0) as limited:
        limited.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        with pytest.raises(openai.RateLimitError) as raised:
            limited.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    error = raised.value
    assert "1 requests per minute" in str(error) and error.code == "rate_limited"
    assert 1 <= int(error.response.headers["retry-after"]) <= 61
    assert len(upstream.requests_for(ROUTER_CHAT)) == 1


def test_the_documented_curl_examples_run(gateway, upstream):
    commands = curl_lines(DOCS / "openai-api.md", "Examples")
    assert len(commands) == 4
    answers = []
    for command in commands:
        command = command.replace("127.0.0.1:8098", f"127.0.0.1:{gateway.port}")
        done = subprocess.run(
            ["sh", "-c", command + " --show-error --fail-with-body --max-time 20"],
            env={**os.environ, "GATEWAY_KEY": KEY},
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        answers.append(json.loads(done.stdout))
    assert [answer.get("object") for answer in answers] == ["chat.completion", "text_completion", None, "list"]
    assert answers[2]["data"][0]["b64_json"]


def test_embeddings_reach_the_sdk_as_floats_whatever_encoding_it_asked(sdk, upstream):
    recorded = json.loads(recordings.recorded_body(f"{EMBEDDER}/pipeline/feature-extraction", binary=False))
    answer = sdk.embeddings.create(model="feature-extraction", input="Hi, who are you?")  # the SDK asks for base64
    assert answer.model == EMBEDDER and len(answer.data) == 1
    assert answer.data[0].embedding == recorded and len(recorded) == 384
    (sent,) = upstream.requests_for(f"/hf-inference/models/{EMBEDDER}/pipeline/feature-extraction")
    assert sent.json == {"inputs": "Hi, who are you?"}
    batch = sdk.embeddings.create(model=EMBEDDER, input=["Hi", "Bye"], encoding_format="float")
    assert [item.index for item in batch.data] == [0, 1] and all(len(item.embedding) == 384 for item in batch.data)
