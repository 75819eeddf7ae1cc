"""Secrets never leave the service, whole, cut, or without their prefix."""

import pytest

from service.telemetry.redaction import FRAGMENT_CHARS, REDACTED, Redactor
from tests.support.app import API, TEST_CATALOG, TOKEN, make_app, make_settings, post
from tests.support.assertions import assert_error_shape

GPT2 = f"{API}/openai-community/gpt2"
CLIENT_KEY = "client-key-7f3a9c2e5b1d4086"


def fragments(secret: str) -> list:
    """Every run of FRAGMENT_CHARS characters of a secret."""
    return [secret[start : start + FRAGMENT_CHARS] for start in range(len(secret) - FRAGMENT_CHARS + 1)]


def assert_no_fragment(text: str, secret: str) -> None:
    leaked = [piece for piece in fragments(secret) if piece in text]
    assert not leaked, f"fragments of a secret leaked: {leaked}"


@pytest.mark.parametrize("position", [0, 100, 470, 480, 490, 495, 499, 510])
def test_a_token_echoed_near_the_clip_point_is_not_passed_on_in_part(client, mock_hub, position):
    message = "x" * position + TOKEN + " was refused"
    mock_hub.post(GPT2, json={"error": message}, status=400)
    response = post(client, "text-completion", {"inputs": "Once upon a time"})
    body = assert_error_shape(response, 422, "model_rejected_input")
    assert_no_fragment(body["message"], TOKEN)
    assert "hf_" not in body["message"].replace(REDACTED, "")


def test_the_token_without_its_prefix_is_redacted(client, mock_hub):
    bare = TOKEN.removeprefix("hf_")
    mock_hub.post(GPT2, json={"error": f"unknown credential {bare}"}, status=400)
    body = assert_error_shape(post(client, "text-completion", {"inputs": "Once"}), 422, "model_rejected_input")
    assert_no_fragment(body["message"], TOKEN)
    assert REDACTED in body["message"]


@pytest.fixture
def keyed_client(clock):
    return make_app(make_settings(api_keys=frozenset({CLIENT_KEY})), TEST_CATALOG, clock).test_client()


def test_a_client_key_is_redacted_whole_and_in_part(keyed_client, mock_hub):
    mock_hub.post(GPT2, json={"error": f"seen {CLIENT_KEY} and {CLIENT_KEY[3:15]} and {CLIENT_KEY[:-4]}"}, status=400)
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    response = post(keyed_client, "text-completion", {"inputs": "Once"}, headers=headers)
    body = assert_error_shape(response, 422, "model_rejected_input")
    assert_no_fragment(body["message"], CLIENT_KEY)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("before hf_abcdefghijklmnop after", f"before {REDACTED} after"),
        ("before abcdefghijklmnop after", f"before hf_{REDACTED} after".replace("hf_", "")),
        ("cut at the end: hf_abcdefgh", f"cut at the end: {REDACTED}"),
        ("cut at the start: ijklmnop.", f"cut at the start: {REDACTED}."),
        ("too short to tell: hf_abcd", "too short to tell: hf_abcd"),
        ("twice hf_abcdefghijklmnop hf_abcdefghijklmnop", f"twice {REDACTED} {REDACTED}"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_redactor_replaces_whole_secrets_and_long_fragments(text, expected):
    assert Redactor(["hf_abcdefghijklmnop"])(text) == expected


def test_a_short_secret_is_redacted_whole_only():
    assert Redactor(["abc"])("abc abd ab") == f"{REDACTED} abd ab"


def test_clip_redacts_before_it_cuts():
    secret = "hf_" + "z" * 30
    text = "y" * 95 + secret
    clipped = Redactor([secret]).clip(text, 100)
    assert len(clipped) <= 100
    assert "zzz" not in clipped and "hf_" not in clipped


def test_no_secret_means_no_change():
    assert Redactor([None, ""])("hf_anything at all") == "hf_anything at all"
