"""huggingface.js (@huggingface/inference), the version tests/clients/package-lock.json pins, run
by node as a user's script runs it, with only its endpointUrl pointing at the gateway's
`/models/<id>`: translation, text generation (which posts to `.../v1/completions`), chat completion
(`.../v1/chat/completions`), text to image (a Blob), summarization and feature extraction (forwarded to the hosted route as they came), and
errors as the client's own ProviderApiError with the gateway's message. The client
sends a request answered 503 again at once, forever: no gateway error may start that, so each
error test counts the requests the gateway and the upstream saw.
"""

import base64
import io
import json

import pytest
import requests
from PIL import Image

from harness import recordings
from harness.upstream import Step
from tests.clients.conftest import CLIENT_KEY
from tests.support.node import CLIENTS, run_node

pytestmark = pytest.mark.integration

PINNED = "4.13.30"
OPUS = "Helsinki-NLP/opus-mt-zh-en"
BART = "sshleifer/distilbart-cnn-12-6"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
CHAT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
# A bound for a call that would otherwise never end: the client's endless resending of a 503.
ABORT_AFTER_MS = 20_000


def locked_version() -> str:
    lock = json.loads((CLIENTS / "package-lock.json").read_text(encoding="utf-8"))
    return lock["packages"]["node_modules/@huggingface/inference"]["version"]


def call(gateway, model: str, method: str, args: dict, key: str = CLIENT_KEY) -> dict:
    """One InferenceClient call from node, its endpoint the gateway's /models/<model>."""
    options = json.dumps({"abort_after_ms": ABORT_AFTER_MS})
    url = f"{gateway.url}/models/{model}"
    return run_node("hf_inference.mjs", url, method, json.dumps(args), options, env={"GATEWAY_KEY": key})


def native(gateway, task: str, model: str, inputs: str, **args):
    """The same call through the gateway's own API: the result the replay gives."""
    answer = requests.post(
        f"{gateway.url}/api/infer/{task}",
        params={"model_name": model},
        json={"inputs": inputs, "args": args},
        headers={"X-API-Key": CLIENT_KEY},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["result"][0]


def posts_to(gateway, path: str) -> int:
    """How many POSTs to `path` the gateway has answered (its access lines)."""
    return gateway.log_text().count(f"method=POST path={path} ")


def test_node_runs_the_pinned_client():
    found = run_node("version.mjs", "http://127.0.0.1:9/models/any")
    assert locked_version() == PINNED and found["version"] == PINNED
    assert found["client"] == "function"
    assert found["methods"] == ["translation", "textGeneration", "textToImage", "chatCompletion"]
    assert int(found["node"].split(".")[0]) >= 18  # the package's engines
    assert found["url"] == "http://127.0.0.1:9/models/any"


def test_translation(gateway, upstream):
    called = call(
        gateway, OPUS, "translation", {"inputs": "连衣裙", "parameters": {"src_lang": "zh", "tgt_lang": "en"}}
    )
    assert called["ok"], called
    # One translation comes back as the object itself, not a list of one.
    assert called["value"] == {"translation_text": native(gateway, "text-translation", OPUS, "连衣裙")}


def test_chat_completion_stream_has_the_text_of_the_whole_answer(gateway, upstream):
    model = "meta-llama/Llama-3.1-8B-Instruct"
    messages = [{"role": "user", "content": "What is deep learning?"}]
    whole = call(gateway, model, "chatCompletion", {"messages": messages, "max_tokens": 20})
    streamed = call(gateway, model, "chatCompletionStream", {"messages": messages, "max_tokens": 20})
    assert streamed["ok"], streamed
    text = "".join(
        chunk["choices"][0]["delta"].get("content") or "" for chunk in streamed["chunks"] if chunk["choices"]
    )
    assert text == whole["value"]["choices"][0]["message"]["content"] and len(streamed["chunks"]) > 5
    assert upstream.requests_for("/v1/chat/completions")[-1].json["stream"] is True


def test_text_generation_through_the_completions_route(gateway, upstream):
    args = {"inputs": "The answer to the universe is", "parameters": {"max_new_tokens": 12, "temperature": 0.5}}
    called = call(gateway, "openai-community/gpt2", "textGeneration", args)
    assert called["ok"], called
    expected = native(gateway, "text-completion", "openai-community/gpt2", args["inputs"], **args["parameters"])
    assert called["value"] == {"generated_text": expected} and expected
    assert len(upstream.requests_for("/hf-inference/models/openai-community/gpt2")) == 2  # it, and native()


def test_chat_completion_through_the_models_chat_route(gateway, upstream):
    messages = [{"role": "user", "content": "What is deep learning?"}]
    called = call(gateway, CHAT_MODEL, "chatCompletion", {"messages": messages, "max_tokens": 20})
    assert called["ok"], called
    assert called["value"]["object"] == "chat.completion"
    assert called["value"]["choices"][0]["message"]["content"].startswith("Deep learning is")
    (sent,) = upstream.requests_for("/v1/chat/completions")
    # The client puts its endpoint URL in the body's model; the path names the model sent upstream.
    assert sent.json["model"] == CHAT_MODEL and sent.json["messages"] == messages
    assert CLIENT_KEY not in str(dict(sent.headers))


def test_text_to_image_is_a_blob_of_the_image(gateway, upstream):
    called = call(gateway, "stabilityai/stable-diffusion-3-medium-diffusers", "textToImage", {"inputs": "a red dress"})
    assert called["ok"], called
    blob = called["blob"]
    assert blob["type"] == "image/jpeg"
    image = Image.open(io.BytesIO(base64.b64decode(blob["base64"])))
    # Answered with CompVis/stable-diffusion-v1-4's recorded 512x512 JPEG.
    assert image.format == "JPEG" and image.size == (512, 512) and blob["size"] > 1000


def test_a_gateway_error_is_the_clients_error_with_its_message_sent_once(gateway, upstream):
    before = posts_to(gateway, f"/models/{OPUS}")
    args = {"inputs": "连衣裙", "parameters": {"src_lang": "zh", "tgt_lang": "ja"}}
    called = call(gateway, OPUS, "translation", args)
    assert not called["ok"]
    error = called["error"]
    assert error["name"] == "ProviderApiError" and error["status"] == 400, error
    assert error["message"].startswith("Failed to perform inference: "), error  # the client's own words
    assert "no translation from 'zh' to 'ja' is configured" in error["message"], error  # then the gateway's
    assert error["requestId"]  # read from X-Request-ID
    assert posts_to(gateway, f"/models/{OPUS}") == before + 1
    assert not upstream.requests


def test_a_model_loading_past_the_deadline_never_sends_the_client_round_again(gateway, upstream):
    loading = {"error": f"Model {OPUS} is currently loading", "estimated_time": 30.0}
    upstream.script(f"/hf-inference/models/{OPUS}", Step(status=503, json=loading, repeat=500))
    before = posts_to(gateway, f"/models/{OPUS}")
    called = call(gateway, OPUS, "translation", {"inputs": "连衣裙"})
    assert posts_to(gateway, f"/models/{OPUS}") == before + 1  # a 503 would have been sent again at once
    assert not called["ok"]
    error = called["error"]
    # Not aborted at the bound either: one answer, saying to wait.
    assert error["name"] == "ProviderApiError" and error["status"] == 429, error
    upstream.wait_idle()
    assert upstream.requests  # the gateway itself asked, within its deadline


def test_a_call_without_a_valid_key_is_refused_once(gateway, upstream):
    before = posts_to(gateway, f"/models/{OPUS}")
    called = call(gateway, OPUS, "translation", {"inputs": "连衣裙"}, key="not-a-key")
    error = called["error"]
    assert error["name"] == "ProviderApiError" and error["status"] == 401, error
    assert posts_to(gateway, f"/models/{OPUS}") == before + 1
    assert not upstream.requests


def recorded(uri_suffix: str):
    """The recorded answer to the request whose URI ends with `uri_suffix`, parsed."""
    entry = next(entry for entry in recordings.hosted() if entry["request"]["uri"].endswith(uri_suffix))
    return recordings.json_body(entry)


def test_summarization_is_forwarded_and_its_recorded_answer_read(gateway, upstream):
    upstream.describe_model(BART, "summarization")
    called = call(gateway, BART, "summarization", {"inputs": "The sky is blue, the tree is green."})
    assert called["ok"], called
    assert called["value"] == recorded(f"/models/{BART}")[0]  # the first summary, as the client returns it
    [sent] = upstream.requests_for(f"/hf-inference/models/{BART}")
    assert sent.json == {"inputs": "The sky is blue, the tree is green."}


def test_feature_extraction_is_the_recorded_vector(gateway, upstream):
    upstream.describe_model(MINILM, "feature-extraction")
    called = call(gateway, MINILM, "featureExtraction", {"inputs": "Hi, who are you?"})
    assert called["ok"], called
    assert called["value"] == recorded(f"/{MINILM}/pipeline/feature-extraction") and len(called["value"]) == 384


def test_a_forwarded_task_loading_past_the_deadline_is_answered_once(gateway, upstream):
    upstream.describe_model(BART, "summarization")
    loading = {"error": f"Model {BART} is currently loading", "estimated_time": 30.0}
    upstream.script(f"/hf-inference/models/{BART}", Step(status=503, json=loading, repeat=500))
    before = posts_to(gateway, f"/models/{BART}")
    called = call(gateway, BART, "summarization", {"inputs": "The sky is blue."})
    assert posts_to(gateway, f"/models/{BART}") == before + 1  # a 503 would have been sent again at once
    error = called["error"]
    assert error["name"] == "ProviderApiError" and error["status"] == 429, error
    assert "currently loading" in error["message"], error
