"""The answer cache and coalescing through the app, on both real stores (SQLite and redis-server).

The upstream is mocked with `responses`: its call count says whether an answer was kept.
"""

import hashlib
import json
import threading
import time

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import recordings
from service.errors import ConnectionsBusy, ModelRejectedInput, UpstreamTimeout
from service.hub.deadline import Deadline
from service.hub.images import Image
from service.pipeline.cache import Flight, ResponseCache, decode_results, encode_results
from service.pipeline.context import RequestContext
from service.store import open_store
from service.store.contract import CacheLimits
from tests.support.app import API, ROUTER, TEST_CATALOG, make_app, make_settings, post
from tests.support.assertions import assert_error_shape
from tests.support.waiting import wait_until

OPUS = f"{API}/Helsinki-NLP/opus-mt-zh-en"
GPT2 = f"{API}/openai-community/gpt2"
IMAGE = f"{API}/CompVis/stable-diffusion-v1-4"
CHAT = f"{ROUTER}/chat/completions"
GREEDY = {"do_sample": False}


@pytest.fixture
def app(store_backend, clock):
    return make_app(make_settings(**store_backend), TEST_CATALOG, clock)


def translate(client, args=None, headers=None, query=""):
    return post(client, "text-translation", {"inputs": "连衣裙", "args": args or GREEDY}, query, headers=headers)


def answer_without_id(response) -> dict:
    document = response.get_json()
    document.pop("request_id")
    return document


def test_a_greedy_request_is_asked_once_then_answered_from_the_cache(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    first, second = (
        translate(client, {"do_sample": False, "num_sentences": 3}),
        translate(client, {"do_sample": False, "num_sentences": 3}),
    )
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert answer_without_id(first) == answer_without_id(second)
    assert answer_without_id(second)["result"] == ["Dress"] * 3
    assert len(mock_hub.calls) == 1


def test_a_seeded_fan_out_is_kept_call_by_call(client, mock_hub):
    def by_seed(request):
        seed = json.loads(request.body)["parameters"]["seed"]
        return 200, {}, json.dumps([{"generated_text": f" seed {seed}"}])

    mock_hub.add_callback(responses.POST, GPT2, callback=by_seed)
    args = {"seed": 7, "num_sentences": 3}
    first = post(client, "text-completion", {"inputs": "hello", "args": args})
    second = post(client, "text-completion", {"inputs": "hello", "args": args})
    assert first.get_json()["result"] == second.get_json()["result"] == [" seed 7", " seed 8", " seed 9"]
    assert second.headers["X-Cache"] == "HIT" and len(mock_hub.calls) == 3
    longer = post(client, "text-completion", {"inputs": "hello", "args": {"seed": 7, "num_sentences": 4}})
    assert longer.headers["X-Cache"] == "MISS" and len(mock_hub.calls) == 4  # only seed 10 was new


def test_sampled_requests_without_a_seed_are_never_kept(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    for _ in range(2):
        assert translate(client, {"do_sample": True}).headers["X-Cache"] == "MISS"
    assert len(mock_hub.calls) == 2


def test_images_come_back_byte_for_byte(client, mock_hub):
    jpeg = recordings.recorded_body("CompVis/stable-diffusion-v1-4")
    mock_hub.post(IMAGE, body=jpeg, content_type="image/jpeg")
    body = {"inputs": "a dress", "args": {"seed": 42, "num_sentences": 2}}
    query = "?model_name=CompVis/stable-diffusion-v1-4"
    first, second = (post(client, "text-to-image", body, query) for _ in range(2))
    assert second.headers["X-Cache"] == "HIT" and len(mock_hub.calls) == 2
    assert answer_without_id(first) == answer_without_id(second)
    assert first.get_data().replace(first.get_json()["request_id"].encode(), b"") == second.get_data().replace(
        second.get_json()["request_id"].encode(), b""
    )


def test_cache_control_no_cache_asks_again_and_no_store_keeps_nothing(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    assert translate(client, headers={"Cache-Control": "no-store"}).headers["X-Cache"] == "MISS"
    assert translate(client).headers["X-Cache"] == "MISS"  # nothing was kept: asked, and kept now
    assert translate(client).headers["X-Cache"] == "HIT"
    mock_hub.replace("POST", OPUS, json=[{"translation_text": "Fresh dress"}])
    fresh = translate(client, headers={"Cache-Control": "no-cache"})
    assert fresh.headers["X-Cache"] == "MISS" and fresh.get_json()["result"] == ["Fresh dress"]
    assert translate(client).get_json()["result"] == ["Fresh dress"]  # the fresh answer replaced the old
    assert len(mock_hub.calls) == 3


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"error": "boom"}},
        {"status": 200, "body": "<html>not json</html>"},
        {"status": 200, "json": [{"unexpected": "shape"}]},
        {"status": 422, "json": {"error": "Input validation error"}},
    ],
)
def test_an_error_is_never_kept(client, mock_hub, failure):
    mock_hub.post(OPUS, **failure)
    assert translate(client).status_code != 200
    mock_hub.replace("POST", OPUS, json=[{"translation_text": "Dress"}])
    calls = len(mock_hub.calls)
    answered = translate(client)
    assert answered.status_code == 200 and answered.headers["X-Cache"] == "MISS"
    assert len(mock_hub.calls) == calls + 1


def test_an_image_over_the_size_limit_is_never_kept(client, mock_hub):
    mock_hub.post(IMAGE, body=b"\xff\xd8\xff" + b"x" * (2 * 1024 * 1024), content_type="image/jpeg")
    query = "?model_name=CompVis/stable-diffusion-v1-4"
    assert post(client, "text-to-image", {"inputs": "a dress", "args": {"seed": 1}}, query).status_code == 502
    assert post(client, "text-to-image", {"inputs": "a dress", "args": {"seed": 1}}, query).status_code == 502
    assert len(mock_hub.calls) == 2


def test_an_answer_too_large_to_keep_is_served_and_not_kept(store_backend, clock, mock_hub):
    client = make_app(make_settings(cache_max_entry_bytes=100, **store_backend), TEST_CATALOG, clock).test_client()
    mock_hub.post(OPUS, json=[{"translation_text": "Dress " * 40}])
    assert [translate(client).headers["X-Cache"] for _ in range(2)] == ["MISS", "MISS"]
    assert len(mock_hub.calls) == 2


def test_the_answer_names_the_model_that_made_it_after_a_fallback(client, mock_hub):
    mock_hub.post(f"{API}/missing/model", status=404, json={"error": "Model not found"})
    mock_hub.post(CHAT, json={"choices": [{"message": {"content": "Kleid"}}]})
    first = translate(client, query="?model_type=zh2de")
    second = translate(client, query="?model_type=zh2de")
    assert first.get_json()["model"] == second.get_json()["model"] == "org/chat-model"
    assert second.headers["X-Cache"] == "HIT"  # the target that answered did so from the cache
    assert [call.request.url for call in mock_hub.calls].count(CHAT) == 1


def identical_at_once(app, count: int) -> list:
    """Send `count` identical greedy translations at the same moment; return their answers."""
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(translate(app.test_client()))) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_identical_calls_in_flight_make_one_upstream_call(app, mock_hub):
    def slow(request):
        time.sleep(0.3)
        return 200, {}, json.dumps([{"translation_text": "Dress"}])

    mock_hub.add_callback(responses.POST, OPUS, callback=slow)
    answers = identical_at_once(app, 6)
    assert [answer.status_code for answer in answers] == [200] * 6
    assert len(mock_hub.calls) == 1
    assert {json.dumps(answer.get_json()["result"]) for answer in answers} == {'["Dress"]'}


def test_identical_calls_in_flight_share_the_error_too(app, mock_hub):
    def failing(request):
        time.sleep(0.3)
        return 422, {}, json.dumps({"error": "Input validation error: too long"})

    mock_hub.add_callback(responses.POST, OPUS, callback=failing)
    statuses = [answer.status_code for answer in identical_at_once(app, 4)]
    assert statuses == [422] * 4 and len(mock_hub.calls) == 1


def test_every_caller_of_a_call_in_flight_gets_a_list_of_its_own():
    flight = Flight()
    flight.results = ("Dress", "Gown")
    flight.landed.set()
    first = flight.wait(1.0)
    first.append("filled in by one request's own fan-out")
    assert flight.wait(1.0) == ["Dress", "Gown"]


def test_one_failure_shared_by_identical_calls_counts_once_against_the_target(store_backend, clock, mock_hub):
    app = make_app(make_settings(breaker_failures=2, **store_backend), TEST_CATALOG, clock)

    def failing(request):
        time.sleep(0.3)
        return 500, {}, json.dumps({"error": "CUDA out of memory"})

    mock_hub.add_callback(responses.POST, OPUS, callback=failing)
    statuses = [answer.status_code for answer in identical_at_once(app, 4)]
    assert statuses == [502] * 4
    # One upstream failure, not one per request that waited on it.
    assert breaker_of(app, "Helsinki-NLP/opus-mt-zh-en") == {"state": "closed", "failures": 1}


def test_a_ttl_of_zero_keeps_nothing(store_backend, clock, mock_hub):
    client = make_app(make_settings(cache_ttl=0, **store_backend), TEST_CATALOG, clock).test_client()
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    assert [translate(client).headers["X-Cache"] for _ in range(2)] == ["MISS", "MISS"]
    assert len(mock_hub.calls) == 2


def test_an_entry_that_cannot_be_read_is_a_miss_and_asked_again(app, mock_hub, captured_logs, monkeypatch):
    client = app.test_client()
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    store = app.extensions["gateway"].store.store
    kept, real_put = [], store.cache_put
    monkeypatch.setattr(store, "cache_put", lambda key, *rest: kept.append(key) or real_put(key, *rest))
    assert translate(client).headers["X-Cache"] == "MISS"
    real_put(kept[0], b"not an answer of any version", time.time(), app.extensions["gateway"].runner.cache.limits)
    answer = translate(client)
    assert answer.status_code == 200 and answer.headers["X-Cache"] == "MISS"
    assert answer.get_json()["result"] == ["Dress"] and len(mock_hub.calls) == 2
    assert "cannot be read; asking the upstream again" in captured_logs.text


def test_waiting_on_another_workers_call_ends_in_504_at_the_deadline_not_blaming_the_target(
    store_backend, clock, mock_hub, monkeypatch
):
    app = make_app(make_settings(text_deadline=0.5, breaker_failures=1, **store_backend), TEST_CATALOG, clock)
    store = app.extensions["gateway"].store.store
    monkeypatch.setattr(store, "claim", lambda *args: False)  # another worker makes this call, and never ends
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    answer = translate(app.test_client(), query="?model_name=Helsinki-NLP/opus-mt-zh-en")
    assert_error_shape(answer, 504, "upstream_timeout")
    assert "identical call in flight" in answer.get_json()["message"]
    assert len(mock_hub.calls) == 0
    assert breaker_of(app, "Helsinki-NLP/opus-mt-zh-en") == {"state": "closed", "failures": 0}


def breaker_of(app, model: str) -> dict:
    routes = app.test_client().get("/api/models").get_json()["routes"]
    return next(target["breaker"] for route in routes for target in route["targets"] if target["model"] == model)


def test_a_store_that_fails_means_no_cache_and_every_request_served(clock, mock_hub, captured_logs):
    client = make_app(
        make_settings(store="redis", redis_url="redis://127.0.0.1:9/0"), TEST_CATALOG, clock
    ).test_client()
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    assert [translate(client).status_code for _ in range(3)] == [200] * 3
    assert len(mock_hub.calls) == 3
    assert captured_logs.text.count("store unavailable (redis") == 1  # said once, not per request


def test_a_cached_value_reads_back_as_written():
    results = ["text é 中", Image("image/png", (b"iVBORw0KGgo", b"AAAA")), "more"]
    decoded = decode_results(encode_results(results))
    assert decoded[0] == "text é 中" and decoded[2] == "more"
    assert (decoded[1].content_type, b"".join(decoded[1].base64_pieces)) == ("image/png", b"iVBORw0KGgoAAAA")
    for broken in (b"", b"{}\n", b'{"v": 1, "items": [{"image": "image/png", "bytes": 9}]}\nshort', b"\xff\n"):
        with pytest.raises(ValueError):
            decode_results(broken)


ARG_VALUES = {
    "num_sentences": st.integers(1, 3),
    "do_sample": st.booleans(),
    "seed": st.integers(0, 5),
    "top_k": st.integers(1, 4),
    "top_p": st.sampled_from([0.5, 0.9, 1.0]),
    "temperature": st.sampled_from([0.5, 1.0]),
    "max_new_tokens": st.integers(1, 3),
}


def echo_of_payload(request):
    """An upstream whose answer is a digest of exactly what it was sent."""
    digest = hashlib.sha256(request.url.encode() + request.body).hexdigest()[:16]
    return 200, {}, json.dumps([{"translation_text": digest}])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.fixed_dictionaries({}, optional=ARG_VALUES), name=st.sampled_from(sorted(ARG_VALUES)), data=st.data())
def test_requests_differing_in_one_argument_never_share_an_answer(client, mock_hub, base, name, data):
    """Whatever came from the cache equals what the upstream answers for that very request."""
    other = {**base, name: data.draw(ARG_VALUES[name])}
    mock_hub.add_callback(responses.POST, OPUS, callback=echo_of_payload)
    for args in ({**base, "seed": base.get("seed", 1)}, {**other, "seed": other.get("seed", 1)}):
        kept = translate(client, args)
        fresh = translate(client, args, headers={"Cache-Control": "no-cache, no-store"})
        assert kept.status_code == fresh.status_code == 200
        assert kept.get_json()["result"] == fresh.get_json()["result"]
    mock_hub.reset()


def test_a_sampled_translation_is_never_kept_even_with_a_seed(client, mock_hub):
    """The translation pipeline takes no seed: its sampled answers differ whatever the seed."""
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    args = {"do_sample": True, "seed": 3, "num_sentences": 2}
    assert [translate(client, args).headers["X-Cache"] for _ in range(2)] == ["MISS", "MISS"]
    assert len(mock_hub.calls) == 4  # two calls each: never coalesced into one


class LeaderThatFails:
    """A first call that fails, once a second identical request has joined it, with `error`."""

    def __init__(self, monkeypatch, error: BaseException):
        self.error = error
        self.joined = threading.Event()
        real_wait = Flight.wait

        def noticed_wait(flight, seconds):
            self.joined.set()
            return real_wait(flight, seconds)

        monkeypatch.setattr(Flight, "wait", noticed_wait)

    def compute(self) -> list:
        assert self.joined.wait(10), "no request joined the call in flight"
        raise self.error


def context_with(seconds: float) -> RequestContext:
    return RequestContext(request_id=f"r-{time.monotonic_ns()}", deadline=Deadline(seconds))


def leader_and_follower(cache_of_leader, cache_of_follower, leader: LeaderThatFails, follower_compute):
    """Run the failing first call and an identical second one; return the second's outcome."""
    outcome = {}

    def lead():
        with pytest.raises(type(leader.error)):
            cache_of_leader.through("the-call", leader.compute, context_with(5.0))

    def follow():
        context = context_with(30.0)
        try:
            outcome["results"] = cache_of_follower.through("the-call", follower_compute, context)
        except Exception as exc:  # noqa: BLE001 - the test reports what the second request got
            outcome["error"] = exc
        outcome["waited"] = context.cache.waited

    first = threading.Thread(target=lead)
    first.start()
    assert wait_until(lambda: cache_of_leader._flights), "the first call never started"
    second = threading.Thread(target=follow)
    second.start()
    first.join(20)
    second.join(20)
    return outcome


@pytest.fixture
def guarded_store(store_backend):
    guard = open_store(make_settings(**store_backend))
    yield guard
    guard.store.close()


def response_cache(guard) -> ResponseCache:
    return ResponseCache(guard, CacheLimits(ttl_seconds=60, max_entries=10, max_bytes=10_000), 10_000)


@pytest.mark.parametrize(
    "failure",
    [
        UpstreamTimeout("the first request's deadline passed"),
        ConnectionsBusy("every connection of the first request's worker was busy"),
        RuntimeError("the first request was cut off"),
    ],
    ids=["its deadline", "its connections busy", "cut off"],
)
def test_a_request_joining_a_call_that_fails_on_its_own_makes_the_call_itself(guarded_store, monkeypatch, failure):
    cache = response_cache(guarded_store)
    leader = LeaderThatFails(monkeypatch, failure)
    calls = []
    outcome = leader_and_follower(cache, cache, leader, lambda: calls.append(1) or ["Dress"])
    assert outcome == {"results": ["Dress"], "waited": False}  # its own call: its own outcome
    assert calls == [1]
    assert decode_results(guarded_store.store.cache_get("the-call", time.time())) == ["Dress"]


def test_a_request_joining_a_call_the_upstream_refused_shares_the_refusal(guarded_store, monkeypatch):
    cache = response_cache(guarded_store)
    leader = LeaderThatFails(monkeypatch, ModelRejectedInput("Input validation error: too long"))
    calls = []
    outcome = leader_and_follower(cache, cache, leader, lambda: calls.append(1) or ["Dress"])
    assert isinstance(outcome["error"], ModelRejectedInput) and outcome["waited"] is True
    assert calls == []


def test_a_request_joining_a_call_in_another_worker_makes_it_itself_when_that_one_times_out(guarded_store, monkeypatch):
    leader = LeaderThatFails(monkeypatch, UpstreamTimeout("the first request's deadline passed"))
    real_claim = guarded_store.store.claim

    def noticed_claim(*args):  # the second worker found the call claimed: it waits on it
        claimed = real_claim(*args)
        if not claimed:
            leader.joined.set()
        return claimed

    monkeypatch.setattr(guarded_store.store, "claim", noticed_claim)
    calls = []
    outcome = leader_and_follower(
        response_cache(guarded_store), response_cache(guarded_store), leader, lambda: calls.append(1) or ["Dress"]
    )
    assert outcome == {"results": ["Dress"], "waited": False} and calls == [1]


def test_a_request_waits_for_a_call_in_flight_within_its_own_deadline_only(guarded_store):
    cache = response_cache(guarded_store)
    release = threading.Event()
    leader = threading.Thread(
        target=lambda: cache.through("the-call", lambda: release.wait(10) and ["Dress"], context_with(30.0))
    )
    leader.start()
    try:
        assert wait_until(lambda: "the-call" in cache._flights)
        context = context_with(0.3)
        with pytest.raises(UpstreamTimeout, match="identical call in flight"):
            cache.through("the-call", lambda: ["never asked"], context)
        assert context.cache.waited is True
    finally:
        release.set()
        leader.join(10)
