"""Every upstream failure maps to the documented status, with retries only where they help."""

from types import MappingProxyType

import pytest
import requests

from harness.catalogs import task_routes
from service.settings import Settings
from tests.support.app import API, TOKEN, make_app, make_settings, post
from tests.support.assertions import assert_error_shape

GPT2 = f"{API}/openai-community/gpt2"
OK = [{"generated_text": " and so on"}]
LOADING = {"error": "Model openai-community/gpt2 is currently loading", "estimated_time": 20.0}


def complete(client, **args):
    return post(client, "text-completion", {"inputs": "Once upon a time", "args": args})


@pytest.mark.parametrize(
    "status, body, content_type, error_type, code, fragment",
    [
        (
            400,
            '{"error": "The following `model_kwargs` are not used by the model: [\'watermark\']", "warnings": ["w"]}',
            "application/json",
            "model_rejected_input",
            422,
            "model_kwargs",
        ),
        (
            400,
            '{"error": ["bad input", "too long"]}',
            "application/json",
            "model_rejected_input",
            422,
            "bad input; too long",
        ),
        (
            400,
            '{"error": {"message": "bad top_p", "type": "invalid_request_error", "code": 400}}',
            "application/json",
            "model_rejected_input",
            422,
            "bad top_p",
        ),
        (
            400,
            '{"message": "bad n", "type": "invalid_request_error", "code": 400}',
            "application/json",
            "model_rejected_input",
            422,
            "bad n",
        ),
        (
            422,
            '{"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 1512", "error_type": "validation"}',
            "application/json",
            "model_rejected_input",
            422,
            "must be <= 1512",
        ),
        (
            422,
            "Failed to deserialize the JSON body into the target type: missing field `inputs`",
            "text/plain; charset=utf-8",
            "model_rejected_input",
            422,
            "missing field",
        ),
        (401, '{"error": "Invalid username or password."}', "application/json", "upstream_auth", 502, ".env"),
        (
            403,
            '{"error": "This authentication method does not have sufficient permissions"}',
            "application/json",
            "upstream_auth",
            502,
            "HF_API_TOKEN",
        ),
        (
            402,
            '{"error": "You have exceeded your monthly included credits"}',
            "application/json",
            "upstream_auth",
            502,
            "credits",
        ),
        (
            404,
            '{"error": "Model openai-community/gpt2 does not exist"}',
            "application/json",
            "model_not_found",
            404,
            "does not exist",
        ),
        (
            410,
            "The requested URL is gone; use https://router.huggingface.co/hf-inference instead",
            "text/plain",
            "model_not_found",
            404,
            "gone",
        ),
        (
            500,
            '{"error": "CUDA error", "error_type": "generation"}',
            "application/json",
            "upstream_error",
            502,
            "CUDA error",
        ),
        (
            424,
            '{"error": "Request failed during generation", "error_type": "generation"}',
            "application/json",
            "upstream_error",
            502,
            "generation",
        ),
    ],
)
def test_upstream_errors_map_without_retry(client, mock_hub, status, body, content_type, error_type, code, fragment):
    mock_hub.post(GPT2, body=body, status=status, content_type=content_type)
    response = complete(client)
    result = assert_error_shape(response, code, error_type)
    assert fragment in result["message"]
    assert len(mock_hub.calls) == 1  # none of these is worth a second attempt


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_transient_errors_are_retried_until_success(client, mock_hub, clock, status):
    body = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    mock_hub.post(GPT2, body=body, status=status, content_type="text/html")
    mock_hub.post(GPT2, body=body, status=status, content_type="text/html")
    mock_hub.post(GPT2, json=OK)
    response = complete(client)
    assert response.status_code == 200
    assert response.get_json()["result"] == [" and so on"]
    assert len(mock_hub.calls) == 3


def test_loading_503_then_200_succeeds_in_three_attempts(client, mock_hub, clock):
    mock_hub.post(GPT2, json=LOADING, status=503)
    mock_hub.post(GPT2, json=LOADING, status=503)
    mock_hub.post(GPT2, json=OK)
    assert complete(client).status_code == 200
    assert len(mock_hub.calls) == 3
    # estimated_time is honoured, but polled at most every 5 s (it is often stuck at 20).
    assert clock.sleeps == [5.0, 5.0]


def test_still_loading_at_deadline_is_503_with_retry_after(client, mock_hub, clock):
    mock_hub.post(GPT2, json=LOADING, status=503)
    response = complete(client)
    assert_error_shape(response, 503, "model_unavailable")
    assert response.headers["Retry-After"] == "20"
    assert sum(clock.sleeps) <= 30.0  # never slept past the 30 s deadline
    assert len(mock_hub.calls) == len(clock.sleeps) + 1


def test_429_retry_after_is_honoured(client, mock_hub, clock):
    mock_hub.post(GPT2, json={"error": "Rate limit reached"}, status=429, headers={"Retry-After": "7"})
    mock_hub.post(GPT2, json=OK)
    assert complete(client).status_code == 200
    assert clock.sleeps == [7.0]


def test_429_ratelimit_header_form_is_honoured(client, mock_hub, clock):
    mock_hub.post(GPT2, json={"error": "Too many requests"}, status=429, headers={"RateLimit": '"api";r=0;t=3'})
    mock_hub.post(GPT2, json=OK)
    assert complete(client).status_code == 200
    assert clock.sleeps == [3.0]


def test_429_longer_than_the_deadline_is_not_waited(client, mock_hub, clock):
    mock_hub.post(GPT2, json={"error": "Rate limit reached"}, status=429, headers={"Retry-After": "55"})
    response = complete(client)
    assert_error_shape(response, 429, "rate_limited")
    assert response.headers["Retry-After"] == "55"
    assert clock.sleeps == []
    assert len(mock_hub.calls) == 1


def test_overloaded_429_is_the_model_being_unavailable(client, mock_hub, clock):
    mock_hub.post(GPT2, json={"error": "Model is overloaded", "error_type": "overloaded"}, status=429)
    response = complete(client)
    assert_error_shape(response, 503, "model_unavailable")
    assert "Retry-After" in response.headers
    assert len(mock_hub.calls) > 3


def test_429_without_hint_backs_off_until_deadline(client, mock_hub, clock):
    mock_hub.post(GPT2, json={"error": "Too many requests"}, status=429)
    response = complete(client)
    assert_error_shape(response, 429, "rate_limited")
    assert "Retry-After" in response.headers
    assert 25.0 < sum(clock.sleeps) <= 30.0
    assert max(clock.sleeps) <= 4.25  # exponential backoff capped, with jitter


def test_401_is_not_retried(client, mock_hub, clock):
    mock_hub.post(GPT2, json={"error": "Invalid username or password."}, status=401)
    assert_error_shape(complete(client), 502, "upstream_auth")
    assert len(mock_hub.calls) == 1
    assert clock.sleeps == []


NO_TOKEN_CATALOG = (
    task_routes(text_to_text=("chat-model",))
    + """

[models.chat-model]
id = "org/chat-model"
protocol = "openai-chat"

[models.own-server]
id = "my-tgi"
url = "https://tgi.internal.test"

[models.own-server-with-token]
id = "my-endpoint"
url = "https://endpoint.internal.test"
token_env = "MY_ENDPOINT_TOKEN"
"""
)


@pytest.mark.parametrize(
    "task, query",
    [
        ("text-translation", ""),
        ("text-completion", ""),
        ("text-to-text", ""),
        ("text-to-image", ""),
        ("text-completion", "?model_name=org/any-hub-model"),
    ],
)
def test_missing_token_answers_upstream_auth_at_once_without_calling_upstream(clock, mock_hub, task, query):
    app = make_app(make_settings(hf_api_token=None), NO_TOKEN_CATALOG, clock)
    response = post(app.test_client(), task, {"inputs": "连衣裙"}, query=query)
    body = assert_error_shape(response, 502, "upstream_auth")
    assert "HF_API_TOKEN" in body["message"] and ".env" in body["message"]
    assert len(mock_hub.calls) == 0
    assert clock.sleeps == []


def test_a_models_own_server_is_called_without_the_hub_token(clock, mock_hub):
    mock_hub.post("https://tgi.internal.test", json=OK)
    app = make_app(make_settings(), NO_TOKEN_CATALOG, clock)
    response = post(app.test_client(), "text-completion", {"inputs": "Once"}, query="?model_name=own-server")
    assert response.status_code == 200, response.get_json()
    assert "Authorization" not in mock_hub.calls[0].request.headers


def test_a_models_own_token_is_sent_to_its_server_only(clock, mock_hub):
    mock_hub.post("https://endpoint.internal.test", json=OK)
    settings = make_settings(environ=MappingProxyType({"MY_ENDPOINT_TOKEN": "endpoint-secret-123456789"}))
    app = make_app(settings, NO_TOKEN_CATALOG, clock)
    response = post(app.test_client(), "text-completion", {"inputs": "Once"}, query="?model_name=own-server-with-token")
    assert response.status_code == 200, response.get_json()
    assert mock_hub.calls[0].request.headers["Authorization"] == "Bearer endpoint-secret-123456789"


def test_a_models_own_token_missing_is_upstream_auth_naming_its_variable(clock, mock_hub):
    app = make_app(make_settings(), NO_TOKEN_CATALOG, clock)
    response = post(app.test_client(), "text-completion", {"inputs": "Once"}, query="?model_name=own-server-with-token")
    body = assert_error_shape(response, 502, "upstream_auth")
    assert "MY_ENDPOINT_TOKEN" in body["message"]
    assert len(mock_hub.calls) == 0


def test_token_is_sent_upstream(client, mock_hub):
    mock_hub.post(GPT2, json=OK)
    complete(client)
    assert mock_hub.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_connection_errors_end_as_502_at_deadline(client, mock_hub, clock):
    mock_hub.post(GPT2, body=requests.ConnectionError("connection refused"))
    body = assert_error_shape(complete(client), 502, "upstream_error")
    assert "could not reach" in body["message"]
    assert len(mock_hub.calls) > 3


def test_timeouts_end_as_504(client, mock_hub, clock):
    mock_hub.post(GPT2, body=requests.ReadTimeout("read timed out"))
    assert_error_shape(complete(client), 504, "upstream_timeout")


def test_timeout_then_success_is_retried(client, mock_hub, clock):
    mock_hub.post(GPT2, body=requests.ConnectTimeout("connect timed out"))
    mock_hub.post(GPT2, json=OK)
    assert complete(client).status_code == 200


@pytest.mark.parametrize(
    "body, content_type",
    [
        ("this is not json", "application/json"),
        ('{"unexpected": "shape"}', "application/json"),
        ("[]", "application/json"),
        ('[{"generated_text": 5}]', "application/json"),
        ('[{"generated_text": "trunc', "application/json"),
    ],
)
def test_unparseable_success_is_502(client, mock_hub, body, content_type):
    mock_hub.post(GPT2, body=body, status=200, content_type=content_type)
    assert_error_shape(complete(client), 502, "upstream_error")
    assert len(mock_hub.calls) == 1


def test_error_message_from_header_when_body_is_empty(client, mock_hub):
    mock_hub.post(GPT2, body="", status=400, headers={"X-Error-Message": "prompt too long"})
    assert "prompt too long" in assert_error_shape(complete(client), 422, "model_rejected_input")["message"]


def test_unexpected_exception_is_500_without_details(client, mock_hub, monkeypatch, captured_logs):
    from service.hub import client as client_module

    def explode(*args, **kwargs):
        raise RuntimeError(f"secret internals {TOKEN}")

    monkeypatch.setattr(client_module.transport, "send", explode)
    response = complete(client)
    body = assert_error_shape(response, 500, "internal_error")
    assert "internals" not in response.get_data(as_text=True)
    assert "Traceback" in captured_logs.text and "RuntimeError" in captured_logs.text
    assert TOKEN not in captured_logs.text
    assert body["request_id"] in captured_logs.text


def test_token_never_in_logs_or_responses(client, mock_hub, clock, captured_logs):
    mock_hub.post(GPT2, json={"error": f"echo {TOKEN}"}, status=400)
    mock_hub.post(f"{API}/google/flan-t5-large", json={"error": "Invalid username or password."}, status=401)
    responses_seen = [
        complete(client),
        post(client, "text-to-text", {"inputs": "x"}),
        post(client, "text-completion", "broken"),
    ]
    for response in responses_seen:
        assert TOKEN not in response.get_data(as_text=True)
        assert TOKEN not in str(response.headers)
    assert captured_logs.records, "the service logged nothing"
    assert TOKEN not in captured_logs.text


def test_settings_repr_hides_token():
    assert TOKEN not in repr(make_settings())
    assert TOKEN not in str(Settings(hf_api_token=TOKEN))


def test_one_log_line_per_request_without_input_text(client, mock_hub, captured_logs):
    mock_hub.post(GPT2, json=OK)
    complete(client)
    lines = [r.getMessage() for r in captured_logs.records if r.name == "service.access"]
    assert len(lines) == 1
    for field in (
        "request_id=",
        "task=text-completion",
        "model=openai-community/gpt2",
        "status=200",
        "upstream_attempts=1",
        "duration_ms=",
    ):
        assert field in lines[0]
    assert "Once upon a time" not in captured_logs.text


def test_deeply_nested_upstream_json_is_502_not_500(client, mock_hub):
    mock_hub.post(GPT2, body="[" * 100_000, status=200, content_type="application/json")
    assert_error_shape(complete(client), 502, "upstream_error")
    mock_hub.post(f"{API}/google/flan-t5-large", body="[" * 100_000, status=400, content_type="application/json")
    assert_error_shape(post(client, "text-to-text", {"inputs": "x"}), 422, "model_rejected_input")
