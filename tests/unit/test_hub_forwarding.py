"""The Hub's other tasks on the Hub's API, forwarded to the hosted route as they came (JSON or a
file's bytes) and answered as they came back, through the pipeline: keys and their limits, the
ledger, the deadline, the upstream's loading and rate limits, and the answer cache for the
deterministic tasks. The upstream is mocked with `responses`."""

import hashlib
import json

import pytest
from prometheus_client import REGISTRY

from harness import recordings
from service.hub.messages import RawBody
from service.pipeline.cache import decode_results, encode_results
from tests.support.app import API, TEST_CATALOG, TOKEN, make_app, make_settings

HUB_API = "https://hub-api.test/api"
EXPAND = "?expand[]=pipeline_tag&expand[]=inferenceProviderMapping"
BART = "sshleifer/distilbart-cnn-12-6"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
CLASSIFIER = "org/sentiment"
VIT = "google/vit-base-patch16-224"
SPEAKER = "org/speaker"
JPEG = recordings.recorded_body("/CompVis/stable-diffusion-v1-4")
FLAC = b"fLaC\x00\x00\x00\x22" + bytes(range(64))
SUMMARY = [{"summary_text": "The tower is 324 metres tall."}]
LABELS = [[{"label": "POSITIVE", "score": 0.9998}]]
KEY = "forwarding-key-0123456789abcdef"
LIMITED_KEY = "forwarding-limited-0123456789ab"
ADMIN_KEY = "forwarding-admin-0123456789abcd"
KEY_FILE = """
[keys.caller]
sha256 = "{caller}"

[keys.limited]
sha256 = "{limited}"
rpm = 1

[keys.ops]
sha256 = "{ops}"
admin = true
"""


@pytest.fixture
def app(clock, tmp_path):
    settings = make_settings(hf_hub_api_base=HUB_API, store="sqlite", data_dir=tmp_path / "data")
    return make_app(settings, TEST_CATALOG, clock)


@pytest.fixture
def keyed_client(clock, tmp_path):
    digests = {
        name: hashlib.sha256(secret.encode()).hexdigest()
        for name, secret in (("caller", KEY), ("limited", LIMITED_KEY), ("ops", ADMIN_KEY))
    }
    key_file = tmp_path / "keys.toml"
    key_file.write_text(KEY_FILE.format(**digests), encoding="utf-8")
    settings = make_settings(
        hf_hub_api_base=HUB_API, store="sqlite", data_dir=tmp_path / "data", api_keys_file=key_file
    )
    return make_app(settings, TEST_CATALOG, clock).test_client()


def forward(client, path, body, content_type="application/json", **kwargs):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, data=data, content_type=content_type, buffered=True, **kwargs)


def describe(mock_hub, model_id, pipeline_tag):
    mock_hub.get(f"{HUB_API}/models/{model_id}{EXPAND}", json={"pipeline_tag": pipeline_tag})


def posts(mock_hub, url=None) -> list:
    return [
        call.request for call in mock_hub.calls if call.request.method == "POST" and url in (None, call.request.url)
    ]


def assert_hub_error(response, status, error_type) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == error_type
    return body["error"]


def requests_counted(task: str, status: str) -> float:
    labels = {"task": task, "model": "other", "status": status}
    return REGISTRY.get_sample_value("hf_gateway_requests_total", labels) or 0.0


# --- what is sent, what comes back ---------------------------------------------------------------


def test_a_json_body_goes_upstream_byte_for_byte_and_its_answer_comes_back(client, mock_hub):
    mock_hub.post(f"{API}/{BART}", json=SUMMARY)
    body = b'{"inputs": "The tower is 324 metres tall.",  "parameters": {"max_length": 20}}'
    response = forward(client, f"/pipeline/summarization/{BART}", body)
    assert response.status_code == 200 and response.get_json() == SUMMARY
    assert response.headers["Content-Type"] == "application/json"
    [sent] = posts(mock_hub)
    assert sent.body == body and sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_models_pipeline_tag_names_the_task_it_is_forwarded_as(client, mock_hub):
    describe(mock_hub, BART, "summarization")
    mock_hub.post(f"{API}/{BART}", json=SUMMARY)
    response = forward(client, f"/models/{BART}", {"inputs": "The tower is 324 metres tall."})
    assert response.status_code == 200 and response.get_json() == SUMMARY


def test_a_tag_outside_the_hubs_task_list_is_forwarded_as_other(client, mock_hub):
    describe(mock_hub, "org/robot", "robotics")
    mock_hub.post(f"{API}/org/robot", json={"action": [0.1]})
    before = requests_counted("forwarded:other", "200")
    assert forward(client, "/models/org/robot", {"inputs": "go"}).get_json() == {"action": [0.1]}
    assert requests_counted("forwarded:other", "200") == before + 1


@pytest.mark.parametrize("path", [f"/pipeline/feature-extraction/{MINILM}", f"/models/{MINILM}"])
def test_feature_extraction_goes_to_the_models_feature_extraction_route(client, mock_hub, path):
    describe(mock_hub, MINILM, "sentence-similarity")
    vectors = [[0.1, -0.2, 0.3]]
    mock_hub.post(f"{API}/{MINILM}/pipeline/feature-extraction", json=vectors)
    mock_hub.post(f"{API}/{MINILM}/pipeline/sentence-similarity", json=[0.5])
    response = forward(client, path, {"inputs": "Hi, who are you?"})
    expected = vectors if "feature-extraction" in path else [0.5]  # its tag, sentence-similarity, on /models/
    assert response.status_code == 200 and response.get_json() == expected


def test_a_files_bytes_go_upstream_with_their_content_type(client, mock_hub):
    mock_hub.post(f"{API}/{VIT}", json=[{"label": "dress", "score": 0.7}])
    response = forward(client, f"/pipeline/image-classification/{VIT}", JPEG, content_type="image/jpeg")
    assert response.status_code == 200 and response.get_json() == [{"label": "dress", "score": 0.7}]
    [sent] = posts(mock_hub)
    assert sent.body == JPEG and sent.headers["Content-Type"] == "image/jpeg"


def test_bytes_come_back_as_they_came_and_a_sampled_task_is_never_cached(client, mock_hub):
    mock_hub.post(f"{API}/{SPEAKER}", body=FLAC, content_type="audio/flac")
    answers = [forward(client, f"/pipeline/text-to-speech/{SPEAKER}", {"inputs": "Hello"}) for _ in range(2)]
    for answer in answers:
        assert answer.status_code == 200
        assert (answer.headers["Content-Type"], answer.data) == ("audio/flac", FLAC)
        assert answer.headers["X-Cache"] == "MISS"
    sent = posts(mock_hub)
    assert len(sent) == 2 and all(request.headers["x-use-cache"] == "false" for request in sent)


def test_a_deterministic_task_is_answered_from_the_cache_for_the_same_bytes(client, mock_hub):
    mock_hub.post(f"{API}/{CLASSIFIER}", json=LABELS)
    path = f"/pipeline/text-classification/{CLASSIFIER}"
    first = forward(client, path, b'{"inputs": "I love it"}')
    kept = forward(client, path, b'{"inputs": "I love it"}')
    spaced = forward(client, path, b'{"inputs":  "I love it"}')  # other bytes, another call
    assert [r.headers["X-Cache"] for r in (first, kept, spaced)] == ["MISS", "HIT", "MISS"]
    assert kept.get_json() == LABELS and kept.headers["Content-Type"] == "application/json"
    assert len(posts(mock_hub)) == 2


def test_a_cached_file_answer_is_keyed_on_its_content_type_too(client, mock_hub):
    mock_hub.post(f"{API}/{VIT}", json=[{"label": "dress", "score": 0.7}])
    path = f"/pipeline/image-classification/{VIT}"
    outcomes = [forward(client, path, JPEG, content_type=kind).headers["X-Cache"] for kind in ("image/jpeg",) * 2]
    outcomes.append(forward(client, path, JPEG, content_type="image/png").headers["X-Cache"])
    assert outcomes == ["MISS", "HIT", "MISS"] and len(posts(mock_hub)) == 2


def test_use_cache_false_skips_the_lookup_and_reaches_the_upstream_as_sent(client, mock_hub):
    mock_hub.post(f"{API}/{CLASSIFIER}", json=LABELS)
    path = f"/pipeline/text-classification/{CLASSIFIER}"
    forward(client, path, {"inputs": "I love it"})
    body = {"inputs": "I love it", "options": {"use_cache": False}}
    assert forward(client, path, body).headers["X-Cache"] == "MISS"
    assert (
        forward(client, path, {"inputs": "I love it"}, headers={"Cache-Control": "no-cache"}).headers["X-Cache"]
        == "MISS"
    )
    assert json.loads(posts(mock_hub)[1].body) == body


# --- keys, limits, ledger, deadline --------------------------------------------------------------


def test_the_ledger_books_a_forwarded_call_as_one_result(keyed_client, mock_hub):
    mock_hub.post(f"{API}/{BART}", json=SUMMARY)
    headers = {"Authorization": f"Bearer {KEY}"}
    assert forward(keyed_client, f"/pipeline/summarization/{BART}", {"inputs": "x"}, headers=headers).status_code == 200
    assert posts(mock_hub)[0].headers["Authorization"] == f"Bearer {TOKEN}"  # never the caller's key
    usage = keyed_client.get("/api/usage", query_string={"key": "caller"}, headers={"X-API-Key": ADMIN_KEY})
    [row] = usage.get_json()["rows"]
    assert (row["model"], row["requests"], row["results"], row["upstream_attempts"]) == ("other", 1, 1, 1)
    assert row["input_chars"] == len(json.dumps({"inputs": "x"}))  # the body's bytes
    assert row["errors"] == {}


def test_a_keys_limit_refuses_before_anything_is_sent(keyed_client, mock_hub):
    mock_hub.post(f"{API}/{BART}", json=SUMMARY)
    headers = {"Authorization": f"Bearer {LIMITED_KEY}"}
    path = f"/pipeline/summarization/{BART}"
    assert forward(keyed_client, path, {"inputs": "x"}, headers=headers).status_code == 200
    refused = forward(keyed_client, path, {"inputs": "x"}, headers=headers)
    assert_hub_error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1 and len(posts(mock_hub)) == 1
    assert_hub_error(forward(keyed_client, path, {"inputs": "x"}), 401, "unauthorized")


def test_a_loading_model_is_waited_for(client, mock_hub, clock):
    mock_hub.post(f"{API}/{BART}", status=503, json={"error": "Model is currently loading", "estimated_time": 2.0})
    mock_hub.post(f"{API}/{BART}", json=SUMMARY)
    response = forward(client, f"/pipeline/summarization/{BART}", {"inputs": "x"})
    assert response.status_code == 200 and response.get_json() == SUMMARY
    assert len(posts(mock_hub)) == 2 and clock.sleeps == [2.0]


@pytest.mark.parametrize(
    "task, model, body, kind, deadline",
    [
        ("summarization", BART, b'{"inputs": "x"}', "application/json", 30.0),
        ("image-classification", VIT, JPEG, "image/jpeg", 60.0),
    ],
)
def test_loading_past_the_deadline_is_a_429_never_a_503(client, mock_hub, clock, task, model, body, kind, deadline):
    mock_hub.post(f"{API}/{model}", status=503, json={"error": "Model is currently loading", "estimated_time": 20.0})
    response = forward(client, f"/pipeline/{task}/{model}", body, content_type=kind)
    assert_hub_error(response, 429, "model_unavailable")
    assert response.headers["Retry-After"] == "20"
    # A file's task waits within the image deadline (60 s here), a text's within the text deadline (30 s).
    assert deadline - 20.0 < sum(clock.sleeps) <= deadline


def test_an_upstream_rate_limit_is_retried_after_its_wait(client, mock_hub, clock):
    mock_hub.post(f"{API}/{BART}", status=429, json={"error": "Too many requests"}, headers={"Retry-After": "3"})
    mock_hub.post(f"{API}/{BART}", json=SUMMARY)
    assert forward(client, f"/pipeline/summarization/{BART}", {"inputs": "x"}).get_json() == SUMMARY
    assert clock.sleeps == [3.0]


# --- errors --------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_and_never_sent(clock, tmp_path, mock_hub):
    settings = make_settings(hf_hub_api_base=HUB_API, max_body_bytes=1000)
    client = make_app(settings, TEST_CATALOG, clock).test_client()
    response = forward(client, f"/pipeline/image-classification/{VIT}", b"\xff" * 1001, content_type="image/jpeg")
    assert_hub_error(response, 413, "payload_too_large")
    assert not mock_hub.calls


@pytest.mark.parametrize(
    "path, body, kind, status, error_type, words",
    [
        (
            f"/pipeline/summarization/{BART}",
            b'{"parameters": {}}',
            "application/json",
            400,
            "invalid_request",
            "inputs",
        ),
        (f"/pipeline/summarization/{BART}", b'{"inputs": "x",}', "application/json", 400, "invalid_request", "JSON"),
        (f"/pipeline/summarization/{BART}", b'["x"]', "application/json", 400, "invalid_request", "object"),
        (f"/pipeline/image-classification/{VIT}", b"", "image/jpeg", 400, "invalid_request", "empty"),
        (f"/pipeline/image-classification/{VIT}", JPEG, "", 400, "invalid_request", "Content-Type"),
        ("/pipeline/summarization/default", b'{"inputs": "x"}', "application/json", 400, "invalid_request", "name"),
        ("/pipeline/summarization/chat-model", b'{"inputs": "x"}', "application/json", 400, "invalid_request", "serve"),
        ("/pipeline/summarization/../x", b'{"inputs": "x"}', "application/json", 400, "invalid_request", "model id"),
    ],
)
def test_bad_calls_are_refused_in_the_hubs_shape_before_any_call(
    client, mock_hub, path, body, kind, status, error_type, words
):
    message = assert_hub_error(forward(client, path, body, content_type=kind), status, error_type)
    assert words in message
    assert not mock_hub.calls


@pytest.mark.parametrize(
    "status, answer, expected_status, error_type",
    [
        (400, {"error": "Input is not a valid image"}, 422, "model_rejected_input"),
        (404, {"error": "Model org/x does not exist"}, 404, "model_not_found"),
        (500, {"error": "CUDA out of memory"}, 502, "upstream_error"),
    ],
)
def test_the_upstreams_errors_keep_the_hubs_shape(client, mock_hub, clock, status, answer, expected_status, error_type):
    mock_hub.post(f"{API}/{VIT}", status=status, json=answer)
    response = forward(client, f"/pipeline/image-classification/{VIT}", JPEG, content_type="image/jpeg")
    assert answer["error"] in assert_hub_error(response, expected_status, error_type)


def test_a_forwarded_models_completions_route_says_what_it_is_for(client, mock_hub):
    describe(mock_hub, BART, "summarization")
    response = forward(client, f"/models/{BART}/v1/completions", {"prompt": "x"})
    assert "is for summarization" in assert_hub_error(response, 400, "invalid_request")
    assert [call.request.method for call in mock_hub.calls] == ["GET"]


def test_a_failing_target_opens_its_breaker_and_is_then_a_429_without_a_call(clock, tmp_path, mock_hub):
    settings = make_settings(hf_hub_api_base=HUB_API, store="sqlite", data_dir=tmp_path / "data", breaker_failures=2)
    client = make_app(settings, TEST_CATALOG, clock).test_client()
    mock_hub.post(f"{API}/{BART}", status=501, json={"error": "Not implemented"})
    path = f"/pipeline/summarization/{BART}"
    for _ in range(2):
        assert_hub_error(forward(client, path, {"inputs": "x"}), 502, "upstream_error")
    skipped = forward(client, path, {"inputs": "x"})
    assert_hub_error(skipped, 429, "model_unavailable")
    assert int(skipped.headers["Retry-After"]) >= 1 and len(posts(mock_hub)) == 2


def test_a_model_on_its_own_server_gets_the_body_and_never_the_hub_token(client, mock_hub):
    mock_hub.post("https://tgi.internal.test", json=LABELS)
    response = forward(client, "/pipeline/text-classification/tgi-server", {"inputs": "I love it"})
    assert response.status_code == 200 and response.get_json() == LABELS
    [sent] = posts(mock_hub)
    assert "Authorization" not in sent.headers and sent.body == b'{"inputs": "I love it"}'


def test_cached_forwarded_answers_keep_their_bytes_and_type():
    results = [RawBody(FLAC, "audio/flac"), "text", RawBody(b"[1]", "application/json")]
    assert decode_results(encode_results(results)) == results
