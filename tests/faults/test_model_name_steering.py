"""`model_name` can never steer traffic: hostile names are refused before any upstream call."""

import pytest

from tests.support.fault_service import TRANSLATION_BODY

STEERING_ATTEMPTS = [
    "http://169.254.169.254/latest/meta-data",
    "https://evil.example/models/x",
    "//evil.example/x",
    "evil.example:8080/x",
    "..",
    "../x",
    "../../admin",
    "org/../x",
    "org/..",
    "org/./x",
    "./x",
    "org%2Fname",
    "org%2F..%2Fx",
    "%2e%2e/x",
    "org/name%00",
    "user@evil.example",
    "org/name@evil.example",
    "org\\name",
    "..\\..\\x",
    "оrg/name",  # Cyrillic о
    "ｏｒｇ/name",  # full-width letters
    "gpt２",  # full-width digit
    "org／name",  # full-width solidus
    "org/name\u200b",  # zero-width space
    "a" * 129,
    "org/" + "b" * 200,
    "org/name/extra",
    "org/name?x=1",
    "org/name#fragment",
    " org/name",
    "org/name\n",
    "org/name\x00",
    "/org/name",
    "org/name/",
    "",
]


@pytest.mark.parametrize("model_name", STEERING_ATTEMPTS, ids=ascii)
def test_steering_model_name_is_refused_before_any_upstream_call(fault_service, upstream, captured, model_name):
    response = captured.post(
        f"{fault_service.url}/api/infer/text-translation",
        params={"model_name": model_name},
        data=TRANSLATION_BODY,
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["code"], body["error_type"]) == (400, "invalid_request")
    assert "model_name" in body["errors"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    upstream.wait_idle()
    assert upstream.requests == []


def test_a_plain_hub_id_does_reach_the_upstream(fault_service, upstream, captured):
    # The same path with a valid id: proves the check above would see a request that got through.
    response = captured.post(
        f"{fault_service.url}/api/infer/text-translation",
        params={"model_name": "t5-base"},
        data=TRANSLATION_BODY,
    )
    assert response.status_code == 200, response.text
    assert [entry.path for entry in upstream.requests] == ["/hf-inference/models/t5-base"]
