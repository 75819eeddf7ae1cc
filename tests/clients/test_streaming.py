"""Streamed chat through the real clients (the openai SDK, huggingface_hub) against the real
gunicorn service (gevent workers) in front of the loopback upstream: the same text as the whole
answer, the upstream's usage, errors after the first chunk as the clients raise them, and a
stream's key slot held until its body closes, a hang-up included."""

import hashlib
import threading

import huggingface_hub
import openai
import pytest
import requests
from huggingface_hub import InferenceClient
from huggingface_hub.errors import TextGenerationError

from harness.gunicorn_server import GunicornServer
from harness.service import TOKEN, service_env
from harness.upstream import Step
from tests.support.waiting import wait_until

KEY = "stream-client-key-0123456789"
SINGLE_KEY = "stream-single-key-0123456789"  # one request at a time
CHAT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
ROUTER_CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "What is deep learning?"}]
KEY_FILE = """
[keys.client]
sha256 = "{client}"

[keys.single]
sha256 = "{single}"
concurrency = 1
"""


@pytest.fixture(scope="module", autouse=True)
def no_calls_to_the_hub():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
        yield


@pytest.fixture(scope="module")
def gateway(loopback, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gunicorn-streams")
    keys = folder / "keys.toml"
    digests = {
        name: hashlib.sha256(key.encode()).hexdigest() for name, key in (("client", KEY), ("single", SINGLE_KEY))
    }
    keys.write_text(KEY_FILE.format(**digests), encoding="utf-8")
    env = service_env(loopback, API_KEYS_FILE=str(keys), WEB_CONCURRENCY="1", STREAM_IDLE_SECONDS="2")
    with GunicornServer(env=env, log_path=folder / "service.log") as server:
        yield server
    log = server.log_text()
    assert TOKEN not in log and KEY not in log and "WORKER TIMEOUT" not in log


@pytest.fixture
def sdk(gateway):
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0) as client:
        yield client


def chunk(text, finish_reason=None):
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish_reason}]}


def test_the_openai_sdk_streams_the_same_text_as_the_whole_answer(sdk, upstream):
    whole = sdk.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=20)
    stream = sdk.chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, max_tokens=20, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == whole.choices[0].message.content and text.startswith("Deep learning is")
    assert len(chunks) > 5 and chunks[-1].usage.total_tokens == whole.usage.total_tokens > 0
    streamed = upstream.requests_for(ROUTER_CHAT)[-1]
    assert streamed.json["stream"] is True and streamed.json["stream_options"] == {"include_usage": True}


def test_huggingface_hub_streams_the_same_text_on_both_chat_routes(gateway, upstream):
    whole = InferenceClient(base_url=f"{gateway.url}/v1", api_key=KEY).chat_completion(MESSAGES, model=CHAT_MODEL)
    expected = whole.choices[0].message.content
    for client, model in (
        (InferenceClient(base_url=f"{gateway.url}/v1", api_key=KEY), CHAT_MODEL),
        (InferenceClient(model=f"{gateway.url}/models/{CHAT_MODEL}", api_key=KEY), None),
    ):
        pieces = [
            part.choices[0].delta.content or "" for part in client.chat_completion(MESSAGES, model=model, stream=True)
        ]
        assert "".join(pieces) == expected
    assert all(sent.json["model"] == CHAT_MODEL for sent in upstream.requests_for(ROUTER_CHAT))


def test_an_error_after_the_first_chunk_is_raised_by_the_sdk_without_a_silent_end(sdk, upstream):
    failure = {"error": "Request failed during generation: out of memory", "error_type": "generation"}
    upstream.script(ROUTER_CHAT, Step(events=(chunk("Deep"), failure)))
    stream = sdk.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.content == "Deep"
    with pytest.raises(openai.APIError, match="out of memory"):
        list(stream)


def test_a_stream_holds_its_keys_slot_until_it_ends_and_a_hang_up_frees_it(gateway, upstream):
    gate = threading.Event()
    upstream.script(ROUTER_CHAT, Step(events=(chunk("Deep"), chunk(" learning", "stop"), "[DONE]"), gate=gate))
    body = {"model": CHAT_MODEL, "messages": MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {SINGLE_KEY}"}
    url = f"{gateway.url}/v1/chat/completions"
    with requests.post(url, json=body, headers=headers, stream=True, timeout=10) as streaming:
        assert streaming.status_code == 200 and streaming.headers["X-Accel-Buffering"] == "no"
        lines = streaming.iter_lines()
        assert next(lines).startswith(b"data: ")
        busy = requests.post(url, json=body, headers=headers, timeout=10)
        assert busy.status_code == 429 and busy.json()["error"]["code"] == "rate_limited"
        gate.set()
        assert [line for line in lines if line][-1] == b"data: [DONE]"
    assert requests.post(url, json={**body, "stream": False}, headers=headers, timeout=10).status_code == 200
    # A caller who hangs up mid-stream: the upstream's stream is closed, the slot freed.
    upstream.reset_log()
    endless = tuple(chunk(".") for _ in range(400))  # 20 s of chunks unless the gateway hangs up
    upstream.script(ROUTER_CHAT, Step(events=(*endless, "[DONE]"), trickle=0.05))
    with requests.post(url, json=body, headers=headers, stream=True, timeout=10) as leaving:
        assert next(leaving.iter_lines()).startswith(b"data: ")
    assert upstream.wait_idle(5.0)
    # The slot is freed just after the upstream is let go: a refusal or two may come first.
    assert wait_until(
        lambda: requests.post(url, json={**body, "stream": False}, headers=headers, timeout=10).status_code == 200,
        timeout=5.0,
        poll=0.1,
    )


def test_under_the_gthread_worker_a_stream_comes_whole_and_a_hang_up_closes_upstream(loopback, upstream, tmp_path):
    env = service_env(loopback, API_KEYS=KEY, WEB_CONCURRENCY="1", WORKER_CLASS="gthread", GUNICORN_THREADS="4")
    with GunicornServer(env=env, log_path=tmp_path / "service.log") as server:
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0) as client:
            whole = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
            stream = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True)
            text = "".join(part.choices[0].delta.content or "" for part in stream if part.choices)
        assert text == whole.choices[0].message.content
        endless = tuple(chunk(".") for _ in range(400))
        upstream.script(ROUTER_CHAT, Step(events=(*endless, "[DONE]"), trickle=0.05))
        body = {"model": CHAT_MODEL, "messages": MESSAGES, "stream": True}
        headers = {"Authorization": f"Bearer {KEY}"}
        with requests.post(
            f"{server.url}/v1/chat/completions", json=body, headers=headers, stream=True, timeout=10
        ) as r:
            assert next(r.iter_lines()).startswith(b"data: ")
        assert upstream.wait_idle(5.0)


def test_huggingface_hub_raises_an_error_after_the_first_chunk_on_the_per_model_route(gateway, upstream):
    failure = {"error": "Request failed during generation: out of memory", "error_type": "generation"}
    upstream.script(ROUTER_CHAT, Step(events=(chunk("Deep"), failure)))
    client = InferenceClient(model=f"{gateway.url}/models/{CHAT_MODEL}", api_key=KEY)
    stream = client.chat_completion(MESSAGES, stream=True)
    assert next(stream).choices[0].delta.content == "Deep"
    with pytest.raises(TextGenerationError, match="out of memory"):
        list(stream)
