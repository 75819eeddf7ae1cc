"""Self-tests of the loopback upstream: replay, synthesized routes, scripted faults, CLI."""

import base64
import json
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from harness import recordings
from harness.paths import REPO_ROOT
from harness.upstream import LoopbackUpstream, Step

T5_BASE = "/hf-inference/models/t5-base"
STABLE_DIFFUSION = "/hf-inference/models/CompVis/stable-diffusion-v1-4"


def recorded_entry(uri_suffix, status=200):
    """Return the first recorded entry whose URI ends with uri_suffix."""
    for name in recordings.RECORDING_FILES:
        for entry in recordings.load(name):
            if entry["request"]["uri"].endswith(uri_suffix) and entry["response"]["status"] == status:
                return entry
    raise LookupError(uri_suffix)


@pytest.fixture(scope="module")
def loopback():
    """Start one upstream for the module: loading the recordings is the slow part."""
    with LoopbackUpstream() as upstream:
        yield upstream


@pytest.fixture
def upstream(loopback):
    """Hand each test an upstream with no scripts, aliases of other tests or logged requests."""
    loopback.clear_scripts()
    loopback.wait_idle()
    loopback.reset_log()
    yield loopback
    loopback.clear_scripts()


def test_replays_translation_for_a_string_and_a_list(upstream):
    single = requests.post(upstream.url + T5_BASE, json={"inputs": "My name is Wolfgang"}, timeout=5)
    several = requests.post(upstream.url + T5_BASE, json={"inputs": ["a", "b"]}, timeout=5)

    assert single.status_code == 200
    assert single.headers["Content-Type"] == "application/json"
    assert single.json() == [{"translation_text": "Mein Name ist Wolfgang und ich lebe in Berlin"}]
    assert [item["translation_text"] for item in several.json()] == [
        "Mein Name ist Wolfgang und ich lebe in Berlin",
        "Ich arbeite als Programmierer",
    ]


def test_logs_each_request(upstream):
    requests.post(
        upstream.url + T5_BASE + "?wait=1", json={"inputs": "x"}, headers={"Authorization": "Bearer t"}, timeout=5
    )

    assert upstream.wait_idle()
    [logged] = upstream.requests_for(T5_BASE)
    assert (logged.method, logged.query, logged.json, logged.status) == ("POST", "wait=1", {"inputs": "x"}, 200)
    assert logged.headers["authorization"] == logged.headers["Authorization"] == "Bearer t"
    assert logged.started <= logged.ended


def test_alias_answers_like_the_recorded_path(upstream):
    upstream.alias("/hf-inference/models/Helsinki-NLP/opus-mt-zh-en", T5_BASE)

    response = requests.post(
        upstream.url + "/hf-inference/models/Helsinki-NLP/opus-mt-zh-en", json={"inputs": "你好"}, timeout=5
    )

    assert response.status_code == 200
    assert "translation_text" in response.json()[0]


def test_alias_to_a_recorded_get_answers_a_post(upstream):
    recorded = base64.b64decode(recorded_entry("/out-0.png")["response"]["body_base64"])
    recorded_path = "/" + recorded_entry("/out-0.png")["request"]["uri"].split("/", 3)[3]
    upstream.alias("/hf-inference/models/large/png", recorded_path)

    response = requests.post(upstream.url + "/hf-inference/models/large/png", json={"inputs": "a koala"}, timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.content == recorded


def test_a_post_to_a_recorded_get_path_without_alias_is_404(upstream):
    recorded_path = "/" + recorded_entry("/out-0.png")["request"]["uri"].split("/", 3)[3]

    response = requests.post(upstream.url + recorded_path, json={"inputs": "a koala"}, timeout=5)

    assert response.status_code == 404


def test_chat_completion_repeats_a_recorded_choice_n_times(upstream):
    recorded = json.loads(
        recorded_entry("/meta-llama/Llama-3.1-8B-Instruct/v1/chat/completions")["response"]["body_text"]
    )

    response = requests.post(
        upstream.url + "/v1/chat/completions",
        timeout=5,
        json={
            "model": "meta-llama/Llama-3.1-8B-Instruct:novita",
            "messages": [{"role": "user", "content": "hi"}],
            "n": 3,
        },
    )

    choices = response.json()["choices"]
    assert response.status_code == 200
    assert [choice["index"] for choice in choices] == [0, 1, 2]
    assert {choice["message"]["content"] for choice in choices} == {recorded["choices"][0]["message"]["content"]}


def test_feature_extraction_answers_a_list_with_the_recorded_vector_per_text(upstream):
    path = "/hf-inference/models/sentence-transformers/all-MiniLM-L6-v2/pipeline/feature-extraction"
    vector = json.loads(recordings.recorded_body("all-MiniLM-L6-v2/pipeline/feature-extraction", binary=False))
    one = requests.post(upstream.url + path, json={"inputs": "Hi, who are you?"}, timeout=5)
    several = requests.post(upstream.url + path, json={"inputs": ["Hi", "Bye"]}, timeout=5)
    assert one.json() == vector and len(vector) == 384
    assert several.status_code == 200 and several.json() == [vector, vector]


def test_text_completion_shape(upstream):
    response = requests.post(
        upstream.url + "/hf-inference/models/openai-community/gpt2/v1/completions",
        json={"model": "openai-community/gpt2", "prompt": "Hi", "n": 2},
        timeout=5,
    )

    body = response.json()
    assert response.status_code == 200
    assert (body["id"], body["object"], body["model"]) == ("cmpl-replay", "text_completion", "openai-community/gpt2")
    assert [choice["index"] for choice in body["choices"]] == [0, 1]
    assert all(choice["finish_reason"] == "length" and choice["text"] for choice in body["choices"])
    assert not body["choices"][0]["text"].startswith("The answer to the universe is")


def test_binary_image_is_byte_identical(upstream):
    recorded = base64.b64decode(recorded_entry("/CompVis/stable-diffusion-v1-4")["response"]["body_base64"])

    response = requests.post(
        upstream.url + STABLE_DIFFUSION, json={"inputs": "An astronaut"}, headers={"Accept": "image/png"}, timeout=5
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.content == recorded
    assert int(response.headers["Content-Length"]) == len(recorded) == 26062


def test_unknown_model_answers_404_like_the_router(upstream):
    response = requests.post(upstream.url + "/hf-inference/models/acme/no-such-model", json={"inputs": "x"}, timeout=5)

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"error": "Model acme/no-such-model does not exist"}


def test_scripted_errors_then_replay(upstream):
    loading = {"error": "Model t5-base is currently loading", "estimated_time": 20.0}
    upstream.script(T5_BASE, Step(status=503, json=loading, headers={"Retry-After": "1"}, repeat=2))

    statuses = [requests.post(upstream.url + T5_BASE, json={"inputs": "x"}, timeout=5) for _ in range(3)]

    assert [response.status_code for response in statuses] == [503, 503, 200]
    assert statuses[0].json() == loading
    assert statuses[0].headers["Retry-After"] == "1"
    assert "translation_text" in statuses[2].json()[0]


def test_delay_holds_the_answer_back(upstream):
    upstream.script(T5_BASE, Step(delay=0.3))

    started = time.monotonic()
    response = requests.post(upstream.url + T5_BASE, json={"inputs": "x"}, timeout=5)

    assert time.monotonic() - started >= 0.3
    assert "translation_text" in response.json()[0]


def test_trickle_sends_the_body_slowly(upstream):
    upstream.script("/slow", Step(body=b"0123456789", trickle=0.03))

    started = time.monotonic()
    response = requests.get(upstream.url + "/slow", timeout=5)

    assert response.content == b"0123456789"
    assert time.monotonic() - started >= 9 * 0.03


def test_reset_after_cuts_the_body_with_a_reset(upstream):
    upstream.script(STABLE_DIFFUSION, Step(replay=True, reset_after=1000))

    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        requests.post(upstream.url + STABLE_DIFFUSION, json={"inputs": "x"}, timeout=5)


def wait_until(condition, timeout=2.0):
    """Poll condition until it holds or timeout passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_never_respond_until_the_client_gives_up(upstream):
    upstream.script(T5_BASE, Step(never_respond=True))

    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(upstream.url + T5_BASE, json={"inputs": "x"}, timeout=(2, 0.3))

    [logged] = upstream.requests_for(T5_BASE)
    assert upstream.wait_idle(timeout=2)
    assert logged.status is None


def test_endless_body_keeps_coming_until_the_client_leaves(upstream):
    upstream.script("/endless", Step(endless=True, trickle=0.01, content_type="text/event-stream"))

    arrival_times = []
    with requests.get(upstream.url + "/endless", stream=True, timeout=2) as response:
        deadline = time.monotonic() + 0.5
        for _ in response.iter_content(chunk_size=1):
            arrival_times.append(time.monotonic())
            if arrival_times[-1] > deadline:
                break

    gaps = [later - earlier for earlier, later in zip(arrival_times, arrival_times[1:], strict=False)]
    assert "Content-Length" not in response.headers
    assert len(arrival_times) >= 10
    assert max(gaps) < 0.3
    [logged] = upstream.requests_for("/endless")
    assert upstream.wait_idle(timeout=2)


def test_size_streams_a_large_body(upstream):
    size = 8 * 1024 * 1024
    upstream.script("/big.png", Step(size=size, content_type="image/png"))

    with requests.get(upstream.url + "/big.png", stream=True, timeout=5) as response:
        received = sum(len(chunk) for chunk in response.iter_content(chunk_size=1 << 16))

    assert response.headers["Content-Type"] == "image/png"
    assert int(response.headers["Content-Length"]) == received == size


def test_keep_alive_reuses_one_connection(upstream):
    with requests.Session() as session:
        for _ in range(3):
            session.post(upstream.url + T5_BASE, json={"inputs": "x"}, timeout=5)

    assert len({logged.client_port for logged in upstream.requests}) == 1


def test_max_in_flight_counts_concurrent_requests(upstream):
    upstream.script_default(Step(delay=0.3, repeat=3))

    threads = [
        threading.Thread(
            target=requests.post, args=(upstream.url + T5_BASE,), kwargs={"json": {"inputs": "x"}, "timeout": 5}
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert upstream.max_in_flight == 3
    assert len(upstream.requests) == 3


def get_ignoring_errors(url):
    """GET url, swallowing the connection errors a stopping server causes."""
    try:
        requests.get(url, timeout=10)
    except requests.exceptions.RequestException:
        pass


def test_stop_cuts_hanging_answers_short():
    upstream = LoopbackUpstream().start()
    upstream.script("/hang", Step(never_respond=True))
    upstream.script("/drip", Step(endless=True))
    clients = [threading.Thread(target=get_ignoring_errors, args=(upstream.url + path,)) for path in ("/hang", "/drip")]
    for client in clients:
        client.start()
    assert wait_until(lambda: len(upstream.requests) == 2)

    started = time.monotonic()
    upstream.stop()
    stop_seconds = time.monotonic() - started
    for client in clients:
        client.join(timeout=5)

    assert stop_seconds < 1.5
    assert all(logged.ended is not None for logged in upstream.requests)
    assert not any(client.is_alive() for client in clients)


def test_command_line_serves_until_sigterm():
    command = [
        sys.executable,
        "-m",
        "harness.upstream",
        "--port",
        "0",
        "--latency",
        "0.1",
        "--alias",
        f"/hf-inference/models/Helsinki-NLP/opus-mt-zh-en={T5_BASE}",
    ]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            ready, port = process.stdout.readline().split()
            started = time.monotonic()
            response = requests.post(
                f"http://127.0.0.1:{port}/hf-inference/models/Helsinki-NLP/opus-mt-zh-en",
                json={"inputs": "你好"},
                timeout=5,
            )
            elapsed = time.monotonic() - started
        finally:
            process.send_signal(signal.SIGTERM)
            exit_code = process.wait(timeout=5)
        errors = process.stderr.read()

    assert ready == "READY"
    assert elapsed >= 0.1
    assert "translation_text" in response.json()[0]
    assert (exit_code, errors) == (0, "")
