"""The shipped nginx site in front of the real gunicorn process: README calls, request ids, body limit."""

import re
import threading

import pytest
import requests

from harness.nginx_server import NginxServer
from harness.upstream import Step
from tests.support.readme_curl import (
    README_EXAMPLES,
    assert_documented_success,
    readme_curl_commands,
    run_curl,
)

MADLAD = "/hf-inference/models/google/madlad400-3b-mt"
TRANSLATION = "/api/infer/text-translation"
BODY_LIMIT = 1024 * 1024
NGINX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def nginx(service, tmp_path_factory):
    with NginxServer(upstream_port=service.port, work=tmp_path_factory.mktemp("nginx")) as proxy:
        yield proxy


def body_of_size(size: int) -> bytes:
    """Return a JSON body of exactly `size` bytes (an `inputs` far over MAX_INPUT_CHARS)."""
    frame = b'{"inputs": ""}'
    return frame[:-2] + b"x" * (size - len(frame)) + frame[-2:]


def assert_one_id_end_to_end(nginx, loopback, response, path=MADLAD) -> str:
    """Check the response's id is the one nginx logged and the upstream received; return it."""
    request_id = response.headers["X-Request-ID"]
    assert response.json()["request_id"] == request_id
    assert nginx.access_logged(f"request_id={request_id} ")
    sent = loopback.requests_for(path)
    assert sent and all(call.headers["X-Request-ID"] == request_id for call in sent)
    return request_id


@pytest.mark.parametrize("index, task, model, count", README_EXAMPLES)
def test_readme_curl_through_nginx_writes_the_documented_json(nginx, upstream, tmp_path, index, task, model, count):
    body = run_curl(readme_curl_commands()[index], nginx.port, tmp_path)
    assert_documented_success(body, task, model, count)
    # curl sent no id: the one nginx made up is the one the service answered with and sent upstream.
    assert NGINX_ID.fullmatch(body["request_id"])
    assert nginx.access_logged(f"request_id={body['request_id']} ")
    upstream.wait_idle()
    assert upstream.requests
    assert {call.headers["X-Request-ID"] for call in upstream.requests} == {body["request_id"]}


def test_a_callers_sane_request_id_passes_through(nginx, upstream):
    response = requests.post(
        nginx.url + TRANSLATION, json={"inputs": "连衣裙"}, headers={"X-Request-ID": "batch-42.line:7"}, timeout=20
    )
    assert response.status_code == 200
    assert assert_one_id_end_to_end(nginx, upstream, response) == "batch-42.line:7"


@pytest.mark.parametrize("offered", ["two words", "x" * 129, 'id"quoted', "ünï"])
def test_an_unsafe_request_id_is_replaced_by_nginxs(nginx, upstream, offered):
    response = requests.post(
        nginx.url + TRANSLATION, json={"inputs": "连衣裙"}, headers={"X-Request-ID": offered}, timeout=20
    )
    assert response.status_code == 200
    assert NGINX_ID.fullmatch(assert_one_id_end_to_end(nginx, upstream, response))


def test_a_2mb_body_is_refused_by_nginx_in_the_services_error_shape(nginx, service, upstream):
    response = requests.post(nginx.url + TRANSLATION, data=body_of_size(2 * 1024 * 1024), timeout=20)
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert (body["code"], body["error_type"]) == (413, "payload_too_large")
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert NGINX_ID.fullmatch(body["request_id"])
    assert body["request_id"] not in service.log_text()  # nginx answered alone
    assert not upstream.requests


def test_a_chunked_body_over_the_limit_is_refused_too(nginx, service, upstream):
    chunks = (b"x" * 65536 for _ in range(40))  # 2.5 MiB without a Content-Length
    response = requests.post(nginx.url + TRANSLATION, data=chunks, headers={"X-Request-ID": "chunked-1"}, timeout=20)
    assert response.status_code == 413
    assert response.json()["request_id"] == "chunked-1"
    assert "request_id=chunked-1 " not in service.log_text()


def test_a_body_at_the_limit_reaches_the_service(nginx, upstream):
    at_limit = requests.post(nginx.url + TRANSLATION, data=body_of_size(BODY_LIMIT), timeout=20)
    assert at_limit.status_code == 400  # the service's answer: inputs too long
    assert at_limit.json()["error_type"] == "invalid_request"
    over = requests.post(nginx.url + TRANSLATION, data=body_of_size(BODY_LIMIT + 1), timeout=20)
    assert over.status_code == 413
    assert not upstream.requests


def test_service_errors_pass_through_unchanged(nginx, upstream):
    response = requests.get(nginx.url + TRANSLATION, timeout=5)
    assert response.status_code == 405
    assert response.json()["error_type"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_metrics_are_served_to_the_local_host(nginx):
    response = requests.get(nginx.url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert "hf_gateway_requests_total" in response.text


def test_a_streamed_chunk_reaches_the_caller_before_the_upstream_sends_the_next(nginx, upstream):
    gate = threading.Event()  # the upstream sends its second chunk only once the caller has the first
    first = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Deep"}, "finish_reason": None}]}
    second = {"choices": [{"index": 0, "delta": {"content": " learning"}, "finish_reason": "stop"}]}
    upstream.script("/v1/chat/completions", Step(events=(first, second, "[DONE]"), gate=gate))
    body = {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
    }
    try:
        with requests.post(nginx.url + "/v1/chat/completions", json=body, stream=True, timeout=10) as answer:
            assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/event-stream")
            assert answer.headers["Cache-Control"] == "no-cache"
            lines = (line for line in answer.iter_lines() if line)
            assert b'"content":"Deep"' in next(lines)  # read while the upstream still holds the second chunk
            gate.set()
            rest = list(lines)
    finally:
        gate.set()
    assert b'"content":" learning"' in rest[0] and rest[-1] == b"data: [DONE]"
