"""hf-infer batch keeps to its key's limits: the pacer, and a client that waits them out."""

import math
import time as real_time

import responses

from harness.keys import bearer, write_key_file
from service.batch.gateway_client import GatewayClient
from service.batch.inputs import BatchItem
from service.batch.pacing import Pacer, Quota, parse_structured_list, policies_of, reset_seconds
from tests.support.app import API, TEST_CATALOG, make_app, make_settings, post

URL = "http://gateway.test"
ENDPOINT = f"{URL}/api/infer/text-translation"
OK = {"code": 0, "message": "ok", "result": ["Dress"]}
POLICY = {"RateLimit-Policy": '"rpm";q=10;w=60, "concurrency";q=4, "results";q=100;w=86400'}


class FakeTime:
    """A clock that moves only when someone sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def refused(seconds, policy="rpm"):
    return {
        "status": 429,
        "json": {"code": 429, "error_type": "rate_limited", "message": f"retry in {seconds} s", "request_id": "r"},
        "headers": {**POLICY, "RateLimit": f'"{policy}";r=0;t={seconds}', "Retry-After": str(seconds)},
    }


def test_the_draft_headers_are_read():
    assert parse_structured_list('"rpm";q=10;w=60, "concurrency";q=4') == {
        "rpm": {"q": "10", "w": "60"},
        "concurrency": {"q": "4"},
    }
    assert policies_of(POLICY) == (Quota(10, 60.0), 4)
    assert policies_of({}) == (None, None)
    assert policies_of({"RateLimit-Policy": '"rpm";q=ten;w=60, ;;, "concurrency"'}) == (None, None)
    assert reset_seconds({"RateLimit": '"rpm";r=0;t=58'}) == 58.0
    assert reset_seconds({"RateLimit": '"rpm";r=3;t=58'}) is None  # not exhausted
    assert reset_seconds({}) is None


def test_no_policy_never_waits():
    pacer = Pacer()
    for _ in range(100):
        assert pacer.reserve(0.0) == 0
    for _ in range(100):
        pacer.answered(0.0, {})
    assert pacer.reserve(0.0) == 0


def test_a_full_window_waits_until_its_oldest_answer_leaves_it():
    pacer = Pacer()
    for second in range(10):
        assert pacer.reserve(float(second)) == 0
        pacer.answered(second + 0.5, POLICY)
    # The first answer came back at 0.5; the gateway counts it for up to 61 s.
    assert pacer.reserve(20.0) == 61.5 - 20.0
    assert pacer.reserve(61.5) == 0
    assert pacer.reserve(61.6) == 62.5 - 61.6  # one more in flight fills the window again


def test_requests_in_flight_count_against_the_window_and_the_concurrency_limit():
    pacer = Pacer()
    assert pacer.reserve(0.0) == 0
    pacer.answered(0.1, POLICY)  # learns rpm 10 and concurrency 4
    for _ in range(4):
        assert pacer.reserve(0.2) == 0
    assert pacer.reserve(0.2) > 0  # four in flight: the key's concurrency
    pacer.unanswered()  # a request that got no answer gives its turn back
    assert pacer.reserve(0.2) == 0

    rpm_only = Pacer()
    assert rpm_only.reserve(0.0) == 0
    rpm_only.answered(0.1, {"RateLimit-Policy": '"rpm";q=10;w=60'})
    for _ in range(9):
        assert rpm_only.reserve(0.2) == 0
    assert rpm_only.reserve(0.2) == 61.1 - 0.2  # one answered and nine in flight fill the window


def test_a_refusal_holds_every_worker_off_for_the_time_it_names():
    pacer = Pacer()
    assert pacer.reserve(0.0) == 0
    pacer.answered(1.0, {}, refused_for=30.0)
    assert pacer.reserve(2.0) == 29.0
    assert pacer.reserve(31.0) == 0


@responses.activate
def test_a_refusal_by_the_key_is_waited_out_and_never_counts_as_a_retry():
    time = FakeTime()
    client = GatewayClient(URL, "text-translation", retries=0, sleep=time.sleep, clock=time.clock)
    for seconds in (58, 2, 1):
        responses.post(ENDPOINT, **refused(seconds))
    responses.post(ENDPOINT, json=OK, headers=POLICY)
    assert client.infer(BatchItem(1, "x")).result == ["Dress"]
    assert len(responses.calls) == 4
    assert sum(time.sleeps) >= 58 + 2 + 1


@responses.activate
def test_a_refusal_beyond_the_lines_budget_is_its_error_at_once():
    time = FakeTime()
    client = GatewayClient(URL, "text-translation", limit_budget=600, sleep=time.sleep, clock=time.clock)
    responses.post(ENDPOINT, **refused(30))
    responses.post(ENDPOINT, **refused(40000, policy="results"))  # a daily quota: back tomorrow
    outcome = client.infer(BatchItem(1, "x"))
    assert (outcome.error["status"], outcome.retry_after, len(responses.calls)) == (429, 40000, 2)
    assert sum(time.sleeps) < 600


@responses.activate
def test_an_upstream_429_without_a_policy_still_counts_as_a_retry():
    time = FakeTime()
    client = GatewayClient(URL, "text-translation", retries=1, max_wait=5, sleep=time.sleep, clock=time.clock)
    for _ in range(3):
        responses.post(
            ENDPOINT,
            status=429,
            json={"code": 429, "error_type": "rate_limited", "message": "rate limited upstream", "request_id": "r"},
            headers={"Retry-After": "3"},
        )
    outcome = client.infer(BatchItem(1, "x"))
    assert outcome.error["status"] == 429 and len(responses.calls) == 2 and time.sleeps == [3.0]


@responses.activate
def test_a_batch_alone_on_its_key_meets_no_429():
    """30 lines through one client at rpm 10: paced from the policy on its 200s, never refused."""
    time = FakeTime()
    client = GatewayClient(URL, "text-translation", retries=0, sleep=time.sleep, clock=time.clock)
    sent = []

    def gateway(request):
        window = [at for at in sent if int(at) + 61 > time.now]  # the gateway counts per second
        sent.append(time.now)
        if len(window) >= 10:
            return (429, {**POLICY, "Retry-After": "1"}, '{"error_type": "rate_limited", "message": "over"}')
        return (200, POLICY, '{"result": ["Dress"]}')

    responses.add_callback(responses.POST, ENDPOINT, callback=gateway)
    outcomes = [client.infer(BatchItem(number, "x")) for number in range(30)]
    assert [outcome.result for outcome in outcomes] == [["Dress"]] * 30
    assert len(responses.calls) == 30  # not one refusal
    assert 120 <= time.now - 1000.0 < 130  # three windows' worth, no more


def test_a_success_saying_nothing_is_left_holds_every_worker_off_too():
    pacer = Pacer()
    assert pacer.reserve(0.0) == 0
    pacer.answered(1.0, {"RateLimit-Policy": '"rpm";q=10;w=60', "RateLimit": '"rpm";r=0;t=20'})
    assert pacer.reserve(2.0) == 19.0
    assert pacer.reserve(2.0) == 19.0
    assert pacer.reserve(21.0) == 0


def test_a_batch_sharing_its_key_holds_off_when_the_gateways_success_says_nothing_is_left(tmp_path, clock, mock_hub):
    """Through the gateway itself: another client has used 3 of the key's 5 requests of the
    minute, which the batch cannot count; the 200s say what is left, so it meets no 429."""
    key_file = write_key_file(tmp_path / "keys.toml", {"shared": {"secret": "secret-shared", "rpm": 5}})
    settings = make_settings(api_keys_file=key_file, store="sqlite", data_dir=tmp_path / "data")
    time = FakeTime()
    time.now = math.floor(real_time.time()) + 0.5
    app = make_app(settings, TEST_CATALOG, clock, wall=time.clock)
    gateway = app.test_client()
    mock_hub.post(f"{API}/Helsinki-NLP/opus-mt-zh-en", json=[{"translation_text": "Dress"}])
    for _ in range(3):
        assert (
            post(gateway, "text-translation", {"inputs": "连衣裙"}, headers=bearer("secret-shared")).status_code == 200
        )
    statuses = []

    def through_the_gateway(request):
        headers = {name: request.headers[name] for name in ("Authorization", "Content-Type")}
        answer = gateway.post(request.path_url, data=request.body, headers=headers, buffered=True)
        statuses.append(answer.status_code)
        return (answer.status_code, dict(answer.headers), answer.get_data())

    mock_hub.add_callback(responses.POST, ENDPOINT, callback=through_the_gateway)
    client = GatewayClient(
        URL, "text-translation", api_key="secret-shared", retries=0, sleep=time.sleep, clock=time.clock
    )
    outcomes = [client.infer(BatchItem(number, "连衣裙")) for number in range(4)]
    assert [outcome.result for outcome in outcomes] == [["Dress"]] * 4
    assert statuses == [200, 200, 200, 200]  # the second line's 200 said r=0: the third waited
    assert 60 <= sum(time.sleeps) <= 62
