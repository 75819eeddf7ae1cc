"""Circuit breakers through the app, on both real stores: a failing target is skipped once its
breaker opens, probed once when its time is up, and never blamed for the caller's errors."""

import time

import pytest
import responses
import urllib3
from prometheus_client import REGISTRY

from service.pipeline import breakers as breakers_module
from tests.support.app import API, ROUTER, TEST_CATALOG, make_app, make_settings, post
from tests.support.assertions import assert_error_shape

FAILING = f"{API}/missing/model"
CHAT = f"{ROUTER}/chat/completions"
OPEN_SECONDS = 0.6
ZH2DE = "?model_type=zh2de"  # missing/model first, then chat-model


@pytest.fixture(autouse=True)
def read_the_store_every_time(monkeypatch):
    """One worker here: no need to trust a breaker read a moment ago."""
    monkeypatch.setattr(breakers_module, "BREAKER_READ_SECONDS", 0.0)


@pytest.fixture
def app(store_backend, clock):
    settings = make_settings(breaker_failures=2, breaker_open_seconds=OPEN_SECONDS, **store_backend)
    return make_app(settings, TEST_CATALOG, clock)


def translate(client, query=ZH2DE):
    return post(client, "text-translation", {"inputs": "连衣裙", "args": {"do_sample": True}}, query)


def calls_to(mock_hub, url) -> int:
    return sum(call.request.url == url for call in mock_hub.calls)


def breaker_of(client, model: str) -> dict:
    routes = client.get("/api/models").get_json()["routes"]
    return next(target["breaker"] for route in routes for target in route["targets"] if target["model"] == model)


def skipped(model: str) -> float:
    return REGISTRY.get_sample_value("hf_gateway_breaker_skipped_total", {"model": model}) or 0.0


@pytest.fixture
def failing_first(mock_hub):
    mock_hub.post(FAILING, status=500, json={"error": "CUDA out of memory"})  # retried, then the next target
    mock_hub.post(CHAT, json={"choices": [{"message": {"content": "Kleid"}}]})
    return mock_hub


def open_the_breaker(client, mock_hub) -> None:
    mock_hub.replace("POST", FAILING, status=503, json={"error": "overloaded", "error_type": "overloaded"})
    for _ in range(2):
        assert translate(client).get_json()["model"] == "org/chat-model"


def test_an_open_breaker_skips_its_target_straight_to_the_next(client, failing_first):
    open_the_breaker(client, failing_first)
    assert breaker_of(client, "missing/model")["state"] == "open"
    before, skipped_before = calls_to(failing_first, FAILING), skipped("missing/model")
    for _ in range(3):
        answer = translate(client)
        assert answer.status_code == 200 and answer.get_json()["model"] == "org/chat-model"
    assert calls_to(failing_first, FAILING) == before  # never asked while open
    assert skipped("missing/model") == skipped_before + 3
    assert breaker_of(client, "org/chat-model") == {"state": "closed", "failures": 0}


def test_with_no_target_left_the_answer_is_503_at_once_with_the_time_left(client, failing_first):
    open_the_breaker(client, failing_first)
    before = len(failing_first.calls)
    refused = translate(client, "?model_name=missing/model")
    assert_error_shape(refused, 503, "model_unavailable")
    assert "circuit breaker is open" in refused.get_json()["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 1 + OPEN_SECONDS
    assert len(failing_first.calls) == before


def test_after_its_time_one_probe_goes_and_a_success_closes_the_breaker(client, failing_first):
    open_the_breaker(client, failing_first)
    time.sleep(OPEN_SECONDS + 0.1)
    assert breaker_of(client, "missing/model")["state"] == "half-open"
    failing_first.replace("POST", FAILING, json=[{"translation_text": "Kleid"}])
    probe = translate(client)
    assert probe.get_json()["model"] == "missing/model"  # the probe went to the first target, and it answered
    assert breaker_of(client, "missing/model") == {"state": "closed", "failures": 0}
    assert translate(client).get_json()["model"] == "missing/model"  # traffic is back


def test_a_failed_probe_opens_the_breaker_again(client, failing_first):
    open_the_breaker(client, failing_first)
    time.sleep(OPEN_SECONDS + 0.1)
    before = calls_to(failing_first, FAILING)
    assert translate(client).get_json()["model"] == "org/chat-model"  # probed, failed, fell back
    assert calls_to(failing_first, FAILING) > before
    assert breaker_of(client, "missing/model")["state"] == "open"
    during = calls_to(failing_first, FAILING)
    translate(client)
    assert calls_to(failing_first, FAILING) == during


def test_while_another_request_probes_the_rest_skip_without_asking_the_store(app, failing_first, monkeypatch):
    client = app.test_client()
    open_the_breaker(client, failing_first)
    time.sleep(OPEN_SECONDS + 0.1)
    store = app.extensions["gateway"].store.store
    name = breakers_module.target_id(app.extensions["gateway"].catalog.target("missing/model"))
    assert store.breaker_probe(name, time.time(), 30.0) is True  # another worker's probe is out
    probes = []
    real_probe = store.breaker_probe
    monkeypatch.setattr(store, "breaker_probe", lambda *args: probes.append(args) or real_probe(*args))
    before = calls_to(failing_first, FAILING)
    for _ in range(3):
        assert translate(client).get_json()["model"] == "org/chat-model"
    assert calls_to(failing_first, FAILING) == before
    assert probes == []  # the probe it read is out: no store write per request to learn it again


def test_the_gateways_own_connections_running_out_never_count_against_the_target(client, mock_hub):
    # What urllib3 raises when no connection of the worker's pool frees up in time.
    mock_hub.add(responses.POST, FAILING, body=urllib3.exceptions.EmptyPoolError(None, "Pool is empty."))
    mock_hub.post(CHAT, json={"choices": [{"message": {"content": "Kleid"}}]})
    for _ in range(3):
        assert translate(client).get_json()["model"] == "org/chat-model"
    assert calls_to(mock_hub, FAILING) >= 3
    assert breaker_of(client, "missing/model") == {"state": "closed", "failures": 0}


@pytest.mark.parametrize(
    "status, body",
    [
        (422, {"error": "Input validation error: inputs too long"}),
        (400, {"error": "bad parameter"}),
        (401, {"error": "Invalid credentials in Authorization header"}),
        (403, {"error": "no access"}),
        (404, {"error": "Model not found"}),
    ],
)
def test_the_callers_errors_and_the_token_are_never_the_targets_fault(client, mock_hub, status, body):
    mock_hub.post(FAILING, status=status, json=body)
    mock_hub.post(CHAT, json={"choices": [{"message": {"content": "Kleid"}}]})
    for _ in range(4):
        translate(client)
    assert breaker_of(client, "missing/model")["state"] == "closed"
