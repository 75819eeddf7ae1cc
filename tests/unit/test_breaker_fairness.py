"""No single caller can open a target's breaker for everyone, nor keep it open, on both real
stores: failures the upstream puts down to the input never count; with client keys, opening
and reopening need failures from two keys; a probe has a short time of its own."""

import time

import pytest
import requests

from service.hub.client import HubClient
from service.pipeline import breakers as breakers_module
from service.pipeline.breakers import target_id
from service.store import open_store
from service.store.contract import BreakerPolicy, BreakerState, UsageQuery, utc_day
from tests.support.app import API, ROUTER, TEST_CATALOG, make_app, make_settings, post
from tests.support.assertions import assert_error_shape

FAILING = f"{API}/missing/model"
CHAT = f"{ROUTER}/chat/completions"
OPEN_SECONDS = 0.6
PROBE_SECONDS = 2.0
ZH2DE = "?model_type=zh2de"  # missing/model first, then chat-model
KEY_A, KEY_B = "fairness-key-a-0123456789", "fairness-key-b-0123456789"
OVERLOADED = {"status": 503, "json": {"error": "Model is overloaded", "error_type": "overloaded"}}
CHAT_ANSWER = {"choices": [{"message": {"content": "Kleid"}}]}


@pytest.fixture(autouse=True)
def read_the_store_every_time(monkeypatch):
    """One worker here: no need to trust a breaker read a moment ago."""
    monkeypatch.setattr(breakers_module, "BREAKER_READ_SECONDS", 0.0)


def breaker_settings(store_backend, **overrides):
    values = dict(
        breaker_failures=2,
        breaker_open_seconds=OPEN_SECONDS,
        breaker_probe_seconds=PROBE_SECONDS,
        **store_backend,
    )
    values.update(overrides)
    return make_settings(**values)


class BreakerClock:
    """The app's wall clock, which the breakers read, moved by the test alone: a loaded machine
    cannot end an open time between two requests that expect it to hold."""

    def __init__(self):
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def breaker_clock():
    return BreakerClock()


@pytest.fixture
def keyed_app(store_backend, clock, breaker_clock):
    settings = breaker_settings(store_backend, api_keys=frozenset({KEY_A, KEY_B}))
    return make_app(settings, TEST_CATALOG, clock, wall=breaker_clock.time)


@pytest.fixture
def open_app(store_backend, clock, breaker_clock):
    return make_app(breaker_settings(store_backend), TEST_CATALOG, clock, wall=breaker_clock.time)


def translate(client, key=None, query=ZH2DE):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return post(client, "text-translation", {"inputs": "连衣裙", "args": {"do_sample": True}}, query, headers=headers)


def calls_to(mock_hub, url) -> int:
    return sum(call.request.url == url for call in mock_hub.calls)


def breaker_of(app, model: str) -> dict:
    gateway = app.extensions["gateway"]
    return gateway.breakers.describe(gateway.catalog.target(model))


def wait_out_the_open_time(breaker_clock):
    breaker_clock.now += OPEN_SECONDS + 0.1


@pytest.mark.parametrize(
    "status, body",
    [
        (500, {"error": "CUDA error: device-side assert triggered", "error_type": "generation"}),
        (500, {"error": "Request failed during generation", "error_type": "incomplete_generation"}),
        (424, {"error": "Request failed during generation", "error_type": "generation"}),
        (500, {"error": "Input validation error: inputs must have less than 1024 tokens", "error_type": "validation"}),
        (413, {"error": "Payload Too Large"}),
        (409, {"error": "Conflict"}),
    ],
)
def test_failures_the_upstream_puts_down_to_the_input_never_count(open_app, mock_hub, status, body):
    client = open_app.test_client()
    mock_hub.post(FAILING, status=status, json=body)
    mock_hub.post(CHAT, json=CHAT_ANSWER)
    for _ in range(5):
        assert translate(client).status_code != 503
    assert breaker_of(open_app, "missing/model") == {"state": "closed", "failures": 0}
    before = calls_to(mock_hub, FAILING)
    translate(client)
    assert calls_to(mock_hub, FAILING) == before + 1  # still asked: nobody was locked out


@pytest.mark.parametrize(
    "failure, status",
    [
        (OVERLOADED, 200),  # falls back to the chat model
        ({"body": requests.exceptions.ReadTimeout("read timed out")}, 200),  # a slow input: every attempt times out
        ({"status": 500, "json": {"error": "CUDA out of memory"}}, 502),  # a 5xx is not worth the next target
    ],
    ids=["overloaded", "timeout", "server-error"],
)
def test_with_keys_one_key_alone_never_opens_a_breaker(keyed_app, mock_hub, failure, status):
    client = keyed_app.test_client()
    mock_hub.post(FAILING, **failure)
    mock_hub.post(CHAT, json=CHAT_ANSWER)
    for _ in range(6):
        assert translate(client, KEY_A).status_code == status
    assert breaker_of(keyed_app, "missing/model")["state"] == "closed"
    before = calls_to(mock_hub, FAILING)
    translate(client, KEY_B)
    assert calls_to(mock_hub, FAILING) > before  # key B still reached the target...
    assert breaker_of(keyed_app, "missing/model")["state"] == "open"  # ...and its failure was the second key's
    during = calls_to(mock_hub, FAILING)
    for key in (KEY_A, KEY_B):
        assert translate(client, key).get_json()["model"] == "org/chat-model"
    assert calls_to(mock_hub, FAILING) == during


def test_without_keys_failures_open_the_breaker_as_before(open_app, mock_hub):
    client = open_app.test_client()
    mock_hub.post(FAILING, **OVERLOADED)
    mock_hub.post(CHAT, json=CHAT_ANSWER)
    for _ in range(2):
        translate(client)
    assert breaker_of(open_app, "missing/model")["state"] == "open"


def open_with_two_keys(client, app, mock_hub):
    mock_hub.post(FAILING, **OVERLOADED)
    mock_hub.post(CHAT, json=CHAT_ANSWER)
    for key in (KEY_A, KEY_B):
        translate(client, key)
    assert breaker_of(app, "missing/model")["state"] == "open"


def test_one_keys_failed_probe_never_reopens_and_that_key_waits_while_others_probe(keyed_app, mock_hub, breaker_clock):
    client = keyed_app.test_client()
    open_with_two_keys(client, keyed_app, mock_hub)
    wait_out_the_open_time(breaker_clock)
    before = calls_to(mock_hub, FAILING)
    assert translate(client, KEY_A).get_json()["model"] == "org/chat-model"  # A probed, and failed
    assert calls_to(mock_hub, FAILING) > before
    assert breaker_of(keyed_app, "missing/model")["state"] == "half-open"  # not open for 30 s more
    probed = calls_to(mock_hub, FAILING)
    assert translate(client, KEY_A).get_json()["model"] == "org/chat-model"
    assert calls_to(mock_hub, FAILING) == probed  # A's next request skips: its failure already told
    assert_error_shape(translate(client, KEY_A, query="?model_name=missing/model"), 503, "model_unavailable")
    mock_hub.replace("POST", FAILING, json=[{"translation_text": "Kleid"}])
    assert translate(client, KEY_B).get_json()["model"] == "missing/model"  # B probes, and it answers
    assert breaker_of(keyed_app, "missing/model") == {"state": "closed", "failures": 0}


def test_a_key_whose_probe_failed_probes_again_an_open_time_later(keyed_app, mock_hub, breaker_clock):
    client = keyed_app.test_client()
    open_with_two_keys(client, keyed_app, mock_hub)
    wait_out_the_open_time(breaker_clock)
    translate(client, KEY_A)  # A's probe fails: nobody else calls
    skipped = calls_to(mock_hub, FAILING)
    translate(client, KEY_A)
    assert calls_to(mock_hub, FAILING) == skipped
    wait_out_the_open_time(breaker_clock)
    mock_hub.replace("POST", FAILING, json=[{"translation_text": "Kleid"}])
    assert translate(client, KEY_A).get_json()["model"] == "missing/model"  # A is never locked out for good
    assert breaker_of(keyed_app, "missing/model") == {"state": "closed", "failures": 0}


def test_failed_probes_of_two_keys_reopen_the_breaker(keyed_app, mock_hub, breaker_clock):
    client = keyed_app.test_client()
    open_with_two_keys(client, keyed_app, mock_hub)
    wait_out_the_open_time(breaker_clock)
    translate(client, KEY_A)
    assert breaker_of(keyed_app, "missing/model")["state"] == "half-open"
    translate(client, KEY_B)
    assert breaker_of(keyed_app, "missing/model")["state"] == "open"


def test_a_probe_failing_on_its_input_neither_closes_nor_reopens_the_breaker(keyed_app, mock_hub, breaker_clock):
    client = keyed_app.test_client()
    open_with_two_keys(client, keyed_app, mock_hub)
    wait_out_the_open_time(breaker_clock)
    mock_hub.replace("POST", FAILING, status=500, json={"error": "bad input", "error_type": "generation"})
    before = calls_to(mock_hub, FAILING)
    translate(client, KEY_A)
    assert calls_to(mock_hub, FAILING) == before + 1  # it was the probe
    assert breaker_of(keyed_app, "missing/model") == {"state": "half-open", "failures": 2}
    breaker_clock.now += PROBE_SECONDS + 1.1  # the probe's time is up: the next request probes
    mock_hub.replace("POST", FAILING, json=[{"translation_text": "Kleid"}])
    assert translate(client, KEY_B).get_json()["model"] == "missing/model"
    assert breaker_of(keyed_app, "missing/model") == {"state": "closed", "failures": 0}


def test_a_named_models_input_failure_never_wipes_a_row_of_failures(keyed_app, mock_hub):
    client = keyed_app.test_client()
    mock_hub.post(FAILING, **OVERLOADED)
    mock_hub.post(CHAT, json=CHAT_ANSWER)
    translate(client, KEY_A)
    mock_hub.replace("POST", FAILING, status=500, json={"error": "bad input", "error_type": "generation"})
    translate(client, KEY_A, query="?model_name=missing/model")
    assert breaker_of(keyed_app, "missing/model") == {"state": "closed", "failures": 1}


def test_a_probe_has_a_short_time_of_its_own(open_app, mock_hub, monkeypatch, breaker_clock):
    client = open_app.test_client()
    mock_hub.post(FAILING, **OVERLOADED)
    mock_hub.post(CHAT, json=CHAT_ANSWER)
    for _ in range(2):
        translate(client)
    wait_out_the_open_time(breaker_clock)
    times_given = []
    real_call = HubClient.call

    def recording_call(self, request, context):
        if request.url == FAILING:
            times_given.append(context.deadline.remaining())
        return real_call(self, request, context)

    gateway = open_app.extensions["gateway"]
    store, name = gateway.store.store, target_id(gateway.catalog.target("missing/model"))
    real_probe = store.breaker_probe
    probes = []
    monkeypatch.setattr(store, "breaker_probe", lambda *args: probes.append(args) or real_probe(*args))
    monkeypatch.setattr(HubClient, "call", recording_call)
    translate(client)  # the probe: 15 s would be its share of the 30 s deadline
    assert times_given and max(times_given) <= PROBE_SECONDS
    assert [(target, seconds) for target, _, seconds in probes] == [(name, PROBE_SECONDS + 1.0)]


def test_a_request_every_model_failed_is_booked_under_the_last_one_tried(store_backend, clock, mock_hub):
    app = make_app(make_settings(api_keys=frozenset({KEY_A}), **store_backend), TEST_CATALOG, clock)
    mock_hub.post(FAILING, **OVERLOADED)
    mock_hub.post(CHAT, **OVERLOADED)
    assert_error_shape(translate(app.test_client(), KEY_A), 503, "model_unavailable")
    day = utc_day(time.time())
    rows = app.extensions["gateway"].store.store.usage_rows(UsageQuery(day, day))
    assert [(row.model, row.counts.get("errors.model_unavailable")) for row in rows] == [("org/chat-model", 1)]


def test_an_answer_of_the_wrong_kind_from_a_model_the_caller_named_never_counts(open_app, mock_hub):
    client = open_app.test_client()
    named = "org/unlisted-image-model"  # the catalog does not place it, and the Hub cannot be asked here
    mock_hub.post(f"{API}/{named}", body=b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, content_type="image/png")
    for _ in range(4):
        assert_error_shape(translate(client, query=f"?model_name={named}"), 502, "upstream_error")
    assert breaker_of(open_app, named) == {"state": "closed", "failures": 0}


def test_an_answer_of_the_wrong_kind_from_a_target_of_a_chain_counts(open_app, mock_hub):
    client = open_app.test_client()
    mock_hub.post(FAILING, body="<html>maintenance</html>", content_type="text/html")
    for _ in range(2):
        translate(client)
    assert breaker_of(open_app, "missing/model")["state"] == "open"


NOON = 1_764_590_400.0
TWO_KEYS = BreakerPolicy(failures=2, open_seconds=30, window_seconds=60, callers=2)


@pytest.fixture
def store(store_backend):
    guard = open_store(make_settings(**store_backend))
    yield guard.store
    guard.store.close()


def test_the_store_opens_on_two_callers_and_reopens_on_two_callers_probes(store):
    for n in range(3):
        assert store.breaker_outcome("t", False, NOON + n, TWO_KEYS, "a").closed()
    assert store.breaker("t", NOON + 3) == BreakerState(3, None, None, ("a",), NOON)
    opened = store.breaker_outcome("t", False, NOON + 4, TWO_KEYS, "b")
    assert (opened.opened_until, opened.callers) == (NOON + 34, ())
    assert store.breaker_probe("t", NOON + 35, 5)
    probed = store.breaker_outcome("t", False, NOON + 36, TWO_KEYS, "a")  # one key's failed probe
    assert (probed.opened_until, probed.probe_until, probed.callers, probed.since) == (
        NOON + 34,
        None,
        ("a",),
        NOON + 36,
    )
    assert store.breaker("t", NOON + 36) == probed
    assert store.breaker_probe("t", NOON + 37, 5)  # the next probe may go at once
    reopened = store.breaker_outcome("t", False, NOON + 38, TWO_KEYS, "b")
    assert (reopened.opened_until, reopened.callers) == (NOON + 68, ())
    assert store.breaker_outcome("t", True, NOON + 70, TWO_KEYS, "a") == BreakerState()


def test_the_store_forgets_the_callers_of_a_row_too_old_to_count(store):
    store.breaker_outcome("t", False, NOON, TWO_KEYS, "a")
    assert store.breaker_outcome("t", False, NOON + 61, TWO_KEYS, "b").callers == ("b",)
    assert store.breaker_outcome("t", False, NOON + 62, TWO_KEYS, "b").closed()


def test_the_store_opens_on_failures_no_caller_is_named_for(store):
    store.breaker_outcome("t", False, NOON, TWO_KEYS)
    assert store.breaker_outcome("t", False, NOON + 1, TWO_KEYS).opened_until == NOON + 31


def test_with_one_key_configured_its_failures_open_the_breaker(store_backend, clock, mock_hub):
    app = make_app(breaker_settings(store_backend, api_keys=frozenset({KEY_A})), TEST_CATALOG, clock)
    client = app.test_client()
    mock_hub.post(FAILING, **OVERLOADED)
    mock_hub.post(CHAT, json=CHAT_ANSWER)
    for _ in range(2):
        translate(client, KEY_A)
    assert breaker_of(app, "missing/model")["state"] == "open"  # no other key to lock out
