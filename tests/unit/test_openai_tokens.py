"""A key's `tokens_per_day`: admitted while the day's tokens last, booked after from the
tokens the answers report, on both real stores."""

import hashlib
import json

import pytest

from service.keys.keyfile import read_key_file
from tests.support.app import ROUTER, TEST_CATALOG, make_app, make_settings

CHAT = f"{ROUTER}/chat/completions"
SECRET = "tokens-key-secret"
BODY = {"model": "chat-model", "messages": [{"role": "user", "content": "Hello!"}]}


def chat_answer(prompt=21, completion=4):
    return {
        "choices": [{"message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
    }


@pytest.fixture
def client(store_backend, tmp_path, clock):
    key_file = tmp_path / "keys.toml"
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    key_file.write_text(f'[keys.metered]\nsha256 = "{digest}"\ntokens_per_day = 30\n', encoding="utf-8")
    return make_app(make_settings(api_keys_file=key_file, **store_backend), TEST_CATALOG, clock).test_client()


def chat(client):
    return client.post(
        "/v1/chat/completions",
        data=json.dumps(BODY),
        content_type="application/json",
        headers={"Authorization": f"Bearer {SECRET}"},
        buffered=True,
    )


def test_the_days_tokens_admit_until_the_answers_have_used_them(client, mock_hub):
    mock_hub.post(CHAT, json=chat_answer())
    first = chat(client)
    assert first.status_code == 200
    assert '"tokens";q=30;w=86400' in first.headers["RateLimit-Policy"]
    assert chat(client).status_code == 200  # 25 of 30 used: still admitted
    refused = chat(client)
    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert (error["code"], error["type"]) == ("quota_exceeded", "insufficient_quota")
    assert "used 50 of its 30 tokens" in error["message"]
    assert int(refused.headers["Retry-After"]) > 120  # past the openai SDK's longest wait: it does not retry
    assert len(mock_hub.calls) == 2


def test_a_request_that_failed_books_only_the_tokens_it_used(client, mock_hub):
    mock_hub.post(CHAT, status=422, json={"error": "Template error: template not found"})
    assert [chat(client).status_code for _ in range(3)] == [422, 422, 422]  # nothing used, nothing reserved
    mock_hub.replace("POST", CHAT, json=chat_answer(prompt=29, completion=0))
    assert chat(client).status_code == 200  # 29 of 30
    assert chat(client).status_code == 200  # one more may start
    assert chat(client).status_code == 429


def test_the_key_file_takes_tokens_per_day(tmp_path):
    path = tmp_path / "keys.toml"
    path.write_text(f'[keys.a]\nsha256 = "{"0" * 64}"\ntokens_per_day = 1000\n', encoding="utf-8")
    assert read_key_file(path).keys[0].limits.tokens_per_day == 1000
