"""Every bad input gets a 4xx in the documented shape, before any upstream call."""

import json

import pytest

from tests.support.app import API, post
from tests.support.assertions import assert_error_shape

TRANSLATION_OK = [{"translation_text": "Dress"}]


@pytest.mark.parametrize(
    "data, fragment",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        ("{}", "inputs"),
        ('{"inputs": ""}', "inputs"),
        ('{"inputs": "   "}', "inputs"),
        ('{"inputs": 5}', "inputs"),
        ('{"inputs": ["a"]}', "inputs"),
        ('{"inputs": "a", "extra": 1}', "extra"),
        ('{"inputs": "a", "args": 3}', "args"),
        ('{"inputs": "a", "args": "[1]"}', "args"),
        ('{"inputs": "a", "args": "{broken"}', "args"),
        ('{"inputs": "a", "args": {"top_p": NaN}}', "NaN"),
        ('{"inputs": "a", "args": "{\\"top_p\\": Infinity}"}', "args"),
        ("[" * 100_000 + "]" * 100_000, "nested"),
    ],
)
def test_bad_bodies_are_400(client, mock_hub, data, fragment):
    body = assert_error_shape(post(client, "text-translation", data), 400, "invalid_request")
    assert fragment in body["message"]
    assert not mock_hub.calls


@pytest.mark.parametrize("literal", ["1e400", "-1e400"])
def test_overflowing_floats_are_400(client, mock_hub, literal):
    for args in (f'{{"guidance_scale": {literal}}}', json.dumps(f'{{"guidance_scale": {literal}}}')):
        response = post(client, "text-to-image", f'{{"inputs": "a", "args": {args}}}')
        assert "guidance_scale" in assert_error_shape(response, 400, "invalid_request")["errors"]["args"]


def test_invalid_utf8_is_400(client, mock_hub):
    response = post(client, "text-completion", b'{"inputs": "\xff\xfe"}')
    assert "UTF-8" in assert_error_shape(response, 400, "invalid_request")["message"]


def test_inputs_longer_than_limit_are_400(client, mock_hub):
    response = post(client, "text-completion", {"inputs": "x" * 10_001})
    assert "10000" in assert_error_shape(response, 400, "invalid_request")["message"]


@pytest.mark.parametrize(
    "task, args, field",
    [
        ("text-translation", {"num_sentences": 0}, "num_sentences"),
        ("text-translation", {"num_sentences": 11}, "num_sentences"),
        ("text-translation", {"num_sentences": 2.5}, "num_sentences"),
        ("text-translation", {"num_sentences": "3"}, "num_sentences"),
        ("text-translation", {"num_sentences": True}, "num_sentences"),
        ("text-to-image", {"num_sentences": 5}, "num_sentences"),
        ("text-completion", {"top_k": 0}, "top_k"),
        ("text-completion", {"top_p": 0}, "top_p"),
        ("text-completion", {"top_p": 1.01}, "top_p"),
        ("text-completion", {"temperature": 0}, "temperature"),
        ("text-completion", {"temperature": -1}, "temperature"),
        ("text-completion", {"max_new_tokens": 0}, "max_new_tokens"),
        ("text-completion", {"max_new_tokens": 2049}, "max_new_tokens"),
        ("text-completion", {"max_new_tokens": 10**30}, "max_new_tokens"),
        ("text-completion", {"do_sample": "maybe"}, "do_sample"),
        ("text-completion", {"seed": -1}, "seed"),
        ("text-to-text", {"return_full_text": True}, "return_full_text"),
        ("text-translation", {"num_sentence": 3}, "num_sentence"),
        ("text-to-image", {"top_k": 3}, "top_k"),
        ("text-to-image", {"width": 32}, "width"),
        ("text-to-image", {"num_inference_steps": 0}, "num_inference_steps"),
    ],
)
def test_bad_args_are_400_naming_the_arg(client, mock_hub, task, args, field):
    for form in (args, json.dumps(args)):
        body = assert_error_shape(post(client, task, {"inputs": "a", "args": form}), 400, "invalid_request")
        assert field in body["errors"]["args"]
        assert body["message"].startswith(f"args.{field}")
    assert not mock_hub.calls


@pytest.mark.parametrize(
    "model_name",
    [
        "http://evil.test/x",
        "https:",
        "../etc/passwd",
        "org/../x",
        "org/name/extra",
        "a b",
        "user@host",
        "org%2Fname",
        "org\\name",
        "оrg/model",  # Cyrillic o
        "x" * 200,
        "-leading-dash",
    ],
)
def test_unsafe_model_names_never_reach_upstream(client, mock_hub, model_name):
    response = client.post("/api/infer/text-completion", query_string={"model_name": model_name}, data='{"inputs":"a"}')
    assert "model_name" in assert_error_shape(response, 400, "invalid_request")["errors"]
    assert not mock_hub.calls


def test_unknown_model_type_lists_supported_pairs(client, mock_hub):
    response = post(client, "text-translation", {"inputs": "a"}, query="?model_type=fr2ja")
    body = assert_error_shape(response, 400, "invalid_request")
    assert "zh2en" in body["message"] and "en2zh" in body["message"]


def test_malformed_model_type_is_400(client, mock_hub):
    response = post(client, "text-translation", {"inputs": "a"}, query="?model_type=../x")
    assert_error_shape(response, 400, "invalid_request")


def test_unknown_task_is_404_listing_valid_tasks(client):
    body = assert_error_shape(post(client, "summarize", {"inputs": "a"}), 404, "unknown_task")
    assert "text-to-image" in body["message"]


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_unknown_task_is_404_whatever_the_method(client, method):
    response = getattr(client, method)("/api/infer/nope")
    body = assert_error_shape(response, 404, "unknown_task")
    assert "'nope'" in body["message"] and "text-translation" in body["message"]


@pytest.mark.parametrize("task", ["text-translation", "text-completion", "text-to-text", "text-to-image"])
def test_a_trailing_slash_reaches_the_task(client, mock_hub, task):
    response = client.post(f"/api/infer/{task}/", data='{"inputs": ""}')
    assert_error_shape(response, 400, "invalid_request")  # validated by the task itself, not unknown_task
    assert response.status_code != 404


@pytest.mark.parametrize("where", ["args", "body"])
def test_a_number_with_thousands_of_digits_is_a_clear_400(client, mock_hub, where):
    digits = "9" * 5000
    body = (
        f'{{"inputs": "a", "args": {{"seed": {digits}}}}}'
        if where == "body"
        else f'{{"inputs": "a", "args": "{{\\"seed\\": {digits}}}"}}'
    )
    result = assert_error_shape(post(client, "text-completion", body), 400, "invalid_request")
    assert "5000 digits" in result["message"] and "int_max_str_digits" not in result["message"]
    assert len(mock_hub.calls) == 0


def test_unknown_route_is_404_json(client):
    assert_error_shape(client.get("/nowhere"), 404, "not_found")


@pytest.mark.parametrize("path", ["/api/infer/text-translation", "/api/infer/text-translation/"])
def test_wrong_method_is_405_json(client, path):
    response = client.get(path)
    assert_error_shape(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_body_over_one_mebibyte_is_413(client, mock_hub):
    response = post(client, "text-completion", '{"inputs": "' + "x" * (1024 * 1024) + '"}')
    assert_error_shape(response, 413, "payload_too_large")


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=x", "application/xml", "image/png"])
def test_non_json_media_types_are_415(client, mock_hub, content_type):
    response = post(client, "text-completion", {"inputs": "a"}, content_type=content_type)
    assert_error_shape(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/x-www-form-urlencoded", "text/plain", "application/vnd.x+json"],
)
def test_json_body_accepted_whatever_curl_sent(client, mock_hub, content_type):
    mock_hub.post(f"{API}/Helsinki-NLP/opus-mt-zh-en", json=TRANSLATION_OK)
    kwargs = {"content_type": content_type} if content_type else {}
    response = post(client, "text-translation", {"inputs": "连衣裙"}, **kwargs)
    assert response.status_code == 200
    assert response.get_json()["result"] == ["Dress"]


def test_request_id_taken_from_nginx_when_sane(client, mock_hub):
    response = client.get("/healthz", headers={"X-Request-ID": "nginx-abc.123"})
    assert response.headers["X-Request-ID"] == "nginx-abc.123"
    unsafe = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert unsafe.headers["X-Request-ID"] != "bad id <script>"
    assert len(unsafe.headers["X-Request-ID"]) == 32


def test_healthz_never_calls_upstream(client, mock_hub):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert not mock_hub.calls


@pytest.mark.parametrize(
    "args, field",
    [
        ({"top_p": "0.5"}, "top_p"),
        ({"temperature": True}, "temperature"),
        ({"do_sample": "yes"}, "do_sample"),
        ({"do_sample": 1}, "do_sample"),
        ({"return_full_text": "true"}, "return_full_text"),
    ],
)
def test_numbers_and_booleans_must_be_json_numbers_and_booleans(client, mock_hub, args, field):
    body = assert_error_shape(post(client, "text-completion", {"inputs": "a", "args": args}), 400, "invalid_request")
    assert field in body["errors"]["args"]
