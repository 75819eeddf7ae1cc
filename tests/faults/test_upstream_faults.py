"""Every upstream fault of the contract, through the real gunicorn process.

Each scenario checks the documented status and error shape, an answer within the deadline
plus one second, no worker killed or restarted, the token nowhere in what came back, and
that the next ordinary request is served normally.
"""

import time

import pytest

from harness.gunicorn_server import GunicornServer, free_port
from harness.upstream import LoopbackUpstream, Step
from tests.support.fault_service import (
    IMAGE_DEADLINE,
    IMAGE_PATH,
    MAX_IMAGE_BYTES,
    TEXT_DEADLINE,
    TOKEN,
    TRANSLATION_PATH,
    WORKERS,
    booted_workers,
    fault_env,
)

TRANSLATION_BODY = '{"inputs": "连衣裙"}'
IMAGE_BODY = '{"inputs": "a red dress"}'
ERROR_KEYS = {"code", "error_type", "message", "request_id"}
HUGE_IMAGE_BYTES = 50 * 1024 * 1024
# Far below the 50 MiB answers: what a worker may grow by while refusing one of them.
RSS_GROWTH_LIMIT_KB = 10 * 1024


def loading(estimated_time: float) -> dict:
    """The hosted API's answer for a model that is still loading."""
    return {"error": "Model t5-base is currently loading", "estimated_time": estimated_time}


RATE_LIMITED = {"error": "Rate limit reached. You reached free usage limit (reset hourly)."}
TRANSLATION_ANSWER = [{"translation_text": "Dress"}]


def infer(captured, service, task="text-translation", body=TRANSLATION_BODY):
    """POST one task; return the response and how long it took."""
    started = time.monotonic()
    response = captured.post(f"{service.url}/api/infer/{task}", data=body.encode("utf-8"))
    return response, time.monotonic() - started


def assert_error(response, status: int, error_type: str) -> dict:
    """Check the documented error shape and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert ERROR_KEYS <= set(body) <= ERROR_KEYS | {"errors"}
    assert (body["code"], body["error_type"]) == (status, error_type)
    assert isinstance(body["message"], str) and body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def assert_success(response, count: int = 1) -> dict:
    """Check a success answer with `count` results."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0 and len(body["result"]) == count
    return body


def assert_unharmed(service, upstream, captured, task="text-translation", body=TRANSLATION_BODY) -> None:
    """No worker killed or restarted, no token logged, and an ordinary request still served."""
    upstream.wait_idle()
    upstream.clear_scripts()
    assert_success(infer(captured, service, task, body)[0])
    log = service.log_text()
    assert "WORKER TIMEOUT" not in log
    assert TOKEN not in log
    assert service.worker_pids() == service.initial_workers
    assert not captured.leaks(TOKEN)


def retry_after_seconds(response) -> int:
    """Read the Retry-After header the service sent."""
    return int(response.headers["Retry-After"])


FAILING_SCENARIOS = {
    "still loading, estimate beyond the deadline": (
        Step(status=503, json=loading(20.0), repeat=50),
        503,
        "model_unavailable",
    ),
    "502 until the deadline": (
        Step(status=502, body="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html", repeat=200),
        502,
        "upstream_error",
    ),
    "reset mid-body every time": (Step(json=TRANSLATION_ANSWER, reset_after=5, repeat=200), 502, "upstream_error"),
    "headers never come": (Step(never_respond=True, repeat=20), 504, "upstream_timeout"),
    "body trickles forever": (
        Step(json=[{"translation_text": "x" * 400}], trickle=0.1, repeat=20),
        504,
        "upstream_timeout",
    ),
    "endless slow body": (
        Step(body=b'[{"translation_text": "', content_type="application/json", endless=True, repeat=20),
        504,
        "upstream_timeout",
    ),
    "endless fast body": (
        Step(
            body=b'[{"translation_text": "',
            content_type="application/json",
            endless=True,
            chunk_size=256 * 1024,
            trickle=0.001,
        ),
        502,
        "upstream_error",
    ),
    "garbage 200 body": (
        Step(body=b"\x00\xff\xfe garbage \x80", content_type="application/json"),
        502,
        "upstream_error",
    ),
    "truncated JSON": (
        Step(body=b'[{"translation_text": "Dre', content_type="application/json"),
        502,
        "upstream_error",
    ),
    "HTML error page with 200": (
        Step(body="<!DOCTYPE html><html><body><h1>Service Unavailable</h1></body></html>", content_type="text/html"),
        502,
        "upstream_error",
    ),
    "image bytes to a text task": (
        Step(body=b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, content_type="image/png"),
        502,
        "upstream_error",
    ),
    "JSON of the wrong shape": (Step(json={"unexpected": True}), 502, "upstream_error"),
}


@pytest.mark.parametrize("step, status, error_type", FAILING_SCENARIOS.values(), ids=FAILING_SCENARIOS.keys())
def test_fault_answers_the_documented_error(fault_service, upstream, captured, step, status, error_type):
    upstream.script(TRANSLATION_PATH, step)
    response, seconds = infer(captured, fault_service)
    assert_error(response, status, error_type)
    assert seconds < TEXT_DEADLINE + 1
    if status == 503:
        assert retry_after_seconds(response) >= 1
    assert_unharmed(fault_service, upstream, captured)


def test_loading_then_ready_succeeds(fault_service, upstream, captured):
    upstream.script(TRANSLATION_PATH, Step(status=503, json=loading(0.5), repeat=3))
    response, seconds = infer(captured, fault_service)
    assert_success(response)
    assert seconds < TEXT_DEADLINE + 1
    assert len(upstream.requests_for(TRANSLATION_PATH)) == 4
    assert_unharmed(fault_service, upstream, captured)


def test_loading_poll_interval_follows_estimated_time(fault_service, upstream, captured):
    upstream.script(TRANSLATION_PATH, Step(status=503, json=loading(1.0), repeat=50))
    response, _ = infer(captured, fault_service)
    assert_error(response, 503, "model_unavailable")
    assert retry_after_seconds(response) == 1
    attempts = upstream.requests_for(TRANSLATION_PATH)
    # One poll per estimated second until the deadline, not a tight loop and not a single try.
    assert 2 <= len(attempts) <= TEXT_DEADLINE + 1
    assert_unharmed(fault_service, upstream, captured)


@pytest.mark.parametrize(
    "headers, expected_wait",
    [
        ({"Retry-After": "60"}, 60),
        ({"RateLimit": '"api";r=0;t=45'}, 45),
    ],
)
def test_rate_limit_longer_than_the_deadline_is_passed_on(fault_service, upstream, captured, headers, expected_wait):
    upstream.script(TRANSLATION_PATH, Step(status=429, json=RATE_LIMITED, headers=headers, repeat=50))
    response, seconds = infer(captured, fault_service)
    assert_error(response, 429, "rate_limited")
    assert retry_after_seconds(response) == expected_wait
    assert len(upstream.requests_for(TRANSLATION_PATH)) == 1  # a wait that cannot fit is not slept
    assert_unharmed(fault_service, upstream, captured)


@pytest.mark.parametrize(
    "headers", [{"Retry-After": "1"}, {"RateLimit": '"api";r=0;t=1'}], ids=["Retry-After", "RateLimit"]
)
def test_rate_limit_is_waited_out(fault_service, upstream, captured, headers):
    upstream.script(TRANSLATION_PATH, Step(status=429, json=RATE_LIMITED, headers=headers))
    response, seconds = infer(captured, fault_service)
    assert_success(response)
    assert seconds < TEXT_DEADLINE + 1
    first, second = upstream.requests_for(TRANSLATION_PATH)
    assert second.started - first.started >= 0.9  # the announced second was honoured
    assert_unharmed(fault_service, upstream, captured)


@pytest.mark.parametrize("statuses", [(500, 500), (502, 502), (504, 504), (500, 502, 504)], ids=str)
def test_5xx_burst_then_success(fault_service, upstream, captured, statuses):
    steps = [Step(status=status, json={"error": f"upstream HTTP {status}"}) for status in statuses]
    upstream.script(TRANSLATION_PATH, *steps)
    response, seconds = infer(captured, fault_service)
    assert_success(response)
    assert seconds < TEXT_DEADLINE + 1
    assert len(upstream.requests_for(TRANSLATION_PATH)) == len(statuses) + 1
    assert_unharmed(fault_service, upstream, captured)


def test_reset_mid_body_once_is_retried(fault_service, upstream, captured):
    upstream.script(TRANSLATION_PATH, Step(json=TRANSLATION_ANSWER, reset_after=5))
    response, _ = infer(captured, fault_service)
    assert_success(response)
    assert len(upstream.requests_for(TRANSLATION_PATH)) == 2
    assert_unharmed(fault_service, upstream, captured)


@pytest.mark.parametrize(
    "step",
    [
        Step(body="<html><body>not an image</body></html>", content_type="text/html"),
        Step(json=TRANSLATION_ANSWER),
        Step(body=b"", content_type="image/jpeg"),
        Step(body=b"\x00" * 64, content_type="application/octet-stream"),
    ],
    ids=["html", "json without image", "empty image", "octet-stream"],
)
def test_image_answer_of_the_wrong_type(fault_service, upstream, captured, step):
    upstream.script(IMAGE_PATH, step)
    response, seconds = infer(captured, fault_service, "text-to-image", IMAGE_BODY)
    assert_error(response, 502, "upstream_error")
    assert seconds < IMAGE_DEADLINE + 1
    assert_unharmed(fault_service, upstream, captured, "text-to-image", IMAGE_BODY)


@pytest.mark.parametrize(
    "step",
    [
        Step(size=HUGE_IMAGE_BYTES, content_type="image/jpeg", chunk_size=1024 * 1024),
        Step(endless=True, content_type="image/jpeg", chunk_size=1024 * 1024, trickle=0.001),
    ],
    ids=["with Content-Length", "without Content-Length"],
)
def test_image_over_the_size_limit_is_refused_without_reading_it(fault_service, upstream, captured, step):
    # An ordinary image first, so that what the worker needs for images is already in place.
    assert_success(infer(captured, fault_service, "text-to-image", IMAGE_BODY)[0])
    before = sum(fault_service.worker_rss_kb().values())
    upstream.script(IMAGE_PATH, step)
    response, seconds = infer(captured, fault_service, "text-to-image", IMAGE_BODY)
    growth = sum(fault_service.worker_rss_kb().values()) - before
    body = assert_error(response, 502, "upstream_error")
    assert f"{MAX_IMAGE_BYTES}-byte limit" in body["message"]
    assert seconds < IMAGE_DEADLINE + 1
    assert len(upstream.requests_for(IMAGE_PATH)) == 2  # refused, not retried
    assert growth < RSS_GROWTH_LIMIT_KB, f"workers grew by {growth} kB"
    assert_unharmed(fault_service, upstream, captured, "text-to-image", IMAGE_BODY)


@pytest.mark.parametrize(
    "step, status, error_type",
    [
        (
            Step(status=422, json={"error": f"Authorization: Bearer {TOKEN} is not valid here"}),
            422,
            "model_rejected_input",
        ),
        (
            Step(status=500, body=f"<html>token={TOKEN}</html>", content_type="text/html", repeat=200),
            502,
            "upstream_error",
        ),
        (Step(status=401, json={"error": f"Invalid credentials in header: {TOKEN}"}), 502, "upstream_auth"),
    ],
    ids=["422", "500", "401"],
)
def test_upstream_echoing_the_token_never_passes_it_on(fault_service, upstream, captured, step, status, error_type):
    upstream.script(TRANSLATION_PATH, step)
    response, _ = infer(captured, fault_service)
    body = assert_error(response, status, error_type)
    assert "[REDACTED]" in body["message"] or status == 502
    # The token was really in play: the upstream received it.
    assert upstream.requests_for(TRANSLATION_PATH)[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert_unharmed(fault_service, upstream, captured)


def test_connection_refused_then_recovered(models_config, captured, tmp_path):
    closed_port = free_port()
    env = fault_env(_NoUpstream(closed_port), models_config)
    with GunicornServer(env=env, log_path=tmp_path / "service.log") as service:
        service.initial_workers = booted_workers(service, WORKERS)
        response, seconds = infer(captured, service)
        assert_error(response, 502, "upstream_error")
        assert "could not reach the upstream" in response.json()["message"]
        assert seconds < TEXT_DEADLINE + 1
        with LoopbackUpstream(port=closed_port) as upstream:
            assert_unharmed(service, upstream, captured)


class _NoUpstream:
    """Where an upstream would be, with nothing listening."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"
