"""Every row of the error table, reached through the real gunicorn process."""

import time

import pytest
import requests

from harness.upstream import Step

MADLAD = "/hf-inference/models/google/madlad400-3b-mt"
OPUS = "/hf-inference/models/Helsinki-NLP/opus-mt-zh-en"
CHAT = "/v1/chat/completions"


def call(service, task="text-translation", body=None, params=None, **kwargs):
    body = body if body is not None else '{"inputs": "连衣裙"}'
    return requests.post(f"{service.url}/api/infer/{task}", data=body, params=params, timeout=30, **kwargs)


def assert_error(response, status, error_type):
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["code"], body["error_type"]) == (status, error_type)
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def fail_whole_chain(loopback, *steps):
    """Make every target of the zh2en chain answer with the same steps."""
    for path in (MADLAD, OPUS, CHAT):
        loopback.script(path, *steps)


@pytest.mark.parametrize(
    "request_kwargs, status, error_type",
    [
        ({"body": "not json"}, 400, "invalid_request"),
        ({"body": '{"inputs": "x", "args": "{\\"num_sentence\\": 3}"}'}, 400, "invalid_request"),
        ({"params": {"model_name": "http://169.254.169.254/latest"}}, 400, "invalid_request"),
        ({"params": {"model_type": "xx2yy"}}, 400, "invalid_request"),
        ({"task": "summarize"}, 404, "unknown_task"),
        ({"body": '{"inputs": "' + "x" * (1024 * 1024 + 10) + '"}'}, 413, "payload_too_large"),
        ({"headers": {"Content-Type": "application/xml"}}, 415, "unsupported_media_type"),
    ],
)
def test_caller_errors(service, upstream, request_kwargs, status, error_type):
    assert_error(call(service, **request_kwargs), status, error_type)
    assert not upstream.requests


def test_405(service):
    assert_error(requests.get(f"{service.url}/api/infer/text-translation", timeout=5), 405, "method_not_allowed")


def test_model_not_found_from_upstream(service, upstream):
    body = assert_error(call(service, params={"model_name": "this-model-does-not-exist-123"}), 404, "model_not_found")
    assert "does not exist" in body["message"]


def test_model_rejected_input(service, upstream):
    upstream.script(MADLAD, Step(status=422, json={"error": "Input validation error", "error_type": "validation"}))
    assert "Input validation error" in assert_error(call(service), 422, "model_rejected_input")["message"]
    assert len(upstream.requests) == 1  # no fallback on the caller's own error


def test_upstream_auth(service, upstream):
    upstream.script(MADLAD, Step(status=401, json={"error": "Invalid username or password."}))
    assert ".env" in assert_error(call(service), 502, "upstream_auth")["message"]
    assert len(upstream.requests) == 1


def test_rate_limited_at_deadline(service, upstream):
    fail_whole_chain(
        upstream, Step(status=429, json={"error": "Rate limit reached"}, headers={"Retry-After": "60"}, repeat=50)
    )
    started = time.monotonic()
    response = call(service)
    assert_error(response, 429, "rate_limited")
    assert response.headers["Retry-After"] == "60"
    assert time.monotonic() - started < 4 + 1


def test_model_unavailable_at_deadline(service, upstream):
    loading = {"error": "Model is currently loading", "estimated_time": 20.0}
    fail_whole_chain(upstream, Step(status=503, json=loading, repeat=50))
    started = time.monotonic()
    response = call(service)
    assert_error(response, 503, "model_unavailable")
    assert int(response.headers["Retry-After"]) >= 1
    assert time.monotonic() - started < 4 + 1


def test_upstream_error_after_retries(service, upstream):
    fail_whole_chain(
        upstream, Step(status=502, body="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html", repeat=200)
    )
    started = time.monotonic()
    assert_error(call(service), 502, "upstream_error")
    assert time.monotonic() - started < 4 + 1
    assert len(upstream.requests_for(MADLAD)) > 1  # retried


def test_upstream_timeout(service, upstream):
    fail_whole_chain(upstream, Step(never_respond=True, repeat=20))
    started = time.monotonic()
    assert_error(call(service), 504, "upstream_timeout")
    assert time.monotonic() - started < 4 + 1


def test_service_still_serves_after_errors(service, upstream):
    response = call(service)
    assert response.status_code == 200 and response.json()["code"] == 0
