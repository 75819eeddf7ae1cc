"""A key's limits, and what is left of them, are stated on every answer, not only on its 429s,
so that a client can pace itself from its first success (the IETF draft's RateLimit-Policy and
RateLimit)."""

import math
import sqlite3
import time

import pytest

from harness.keys import bearer, write_key_file
from service.store.contract import seconds_to_next_day
from tests.support.app import API, TEST_CATALOG, make_app, make_settings, post

OPUS = f"{API}/Helsinki-NLP/opus-mt-zh-en"
KEYS = {
    "batch": {"secret": "secret-batch", "rpm": 10, "concurrency": 4, "results_per_day": 100},
    "free": {"secret": "secret-free"},
}


class WallClock:
    """The app's wall clock, a quarter second into a second of the real one, moved by hand."""

    def __init__(self):
        self.now = math.floor(time.time()) + 0.25

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall():
    return WallClock()


@pytest.fixture
def client(tmp_path, clock, wall):
    key_file = write_key_file(tmp_path / "keys.toml", KEYS)
    settings = make_settings(api_keys_file=key_file, store="sqlite", data_dir=tmp_path / "data")
    return make_app(settings, TEST_CATALOG, clock, wall=wall).test_client()


def translate(client, headers):
    return post(client, "text-translation", {"inputs": "连衣裙"}, headers=headers)


def test_a_success_states_the_keys_limits(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    answer = translate(client, bearer("secret-batch"))
    assert answer.status_code == 200
    assert answer.headers["RateLimit-Policy"] == '"rpm";q=10;w=60, "concurrency";q=4, "results";q=100;w=86400'


def test_a_success_says_what_each_limit_has_left_and_when_more_frees(client, wall, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    day_ends = [math.ceil(seconds_to_next_day(wall.now)), math.ceil(seconds_to_next_day(wall.now + 20))]
    first = translate(client, bearer("secret-batch"))
    # The request's own second counts for 61 s from its start: 60.75 s more, said as 61.
    assert first.headers["RateLimit"] == f'"rpm";r=9;t=61, "concurrency";r=3, "results";r=99;t={day_ends[0]}'
    wall.now += 20
    second = translate(client, bearer("secret-batch"))
    assert second.headers["RateLimit"] == f'"rpm";r=8;t=41, "concurrency";r=3, "results";r=98;t={day_ends[1]}'
    for _ in range(8):
        last = translate(client, bearer("secret-batch"))
    assert last.status_code == 200 and last.headers["RateLimit"].startswith('"rpm";r=0;t=41, ')
    refused = translate(client, bearer("secret-batch"))
    assert refused.status_code == 429 and refused.headers["RateLimit"] == '"rpm";r=0;t=41'


def test_a_success_while_the_store_is_away_states_the_limits_but_nothing_left(client, monkeypatch, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    store = client.application.extensions["gateway"].store.store

    def store_away(*args):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "admit", store_away)
    answer = translate(client, bearer("secret-batch"))
    assert answer.status_code == 200 and "RateLimit-Policy" in answer.headers  # admitted, failing open
    assert "RateLimit" not in answer.headers


def test_a_key_without_limits_gets_no_policy(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    answer = translate(client, bearer("secret-free"))
    assert answer.status_code == 200 and "RateLimit-Policy" not in answer.headers
    assert "RateLimit" not in answer.headers


def test_open_access_gets_no_policy(clock, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    answer = translate(make_app(make_settings(), TEST_CATALOG, clock).test_client(), {})
    assert answer.status_code == 200 and "RateLimit-Policy" not in answer.headers
    assert "RateLimit" not in answer.headers
