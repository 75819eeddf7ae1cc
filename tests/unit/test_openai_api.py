"""The OpenAI API's routes on the Flask test client, the upstream mocked with `responses`:
what each route sends upstream, what it answers, and its errors in OpenAI's shape."""

import base64
import hashlib
import json

import pytest
from flask import Flask

from harness import recordings
from service.api.openai_api import per_model
from service.catalog.tasks import TASKS
from tests.support.app import API, ROUTER, TEST_CATALOG, TOKEN, make_app, make_settings

CHAT = f"{ROUTER}/chat/completions"
GPT2 = f"{API}/openai-community/gpt2"
IMAGE = f"{API}/CompVis/stable-diffusion-v1-4"
CATALOG = TEST_CATALOG + '\n[tasks.chat-completion]\ntargets = ["missing/chat", "chat-model"]\n'
HELLO = [{"role": "user", "content": "Hello!"}]
KEY = "caller-secret-key"


def chat_answer(content="Hi there!", n=1, usage=(9, 3)):
    choice = {"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    return {
        "id": "upstream-id",
        "object": "chat.completion",
        "choices": [{**choice, "index": index} for index in range(n)],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


@pytest.fixture
def app(clock):
    return make_app(make_settings(api_keys=frozenset({KEY})), CATALOG, clock)


@pytest.fixture
def client(app):
    return app.test_client()


def call(client, path, body, **headers):
    headers.setdefault("Authorization", f"Bearer {KEY}")
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers, buffered=True)


def sent(mock_hub, index=-1):
    return json.loads(mock_hub.calls[index].request.body)


def openai_error(response, status, code, param=None):
    """Check OpenAI's error shape; return the error object."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["param"] == param
    assert isinstance(error["message"], str) and error["message"]
    assert response.headers["X-Request-ID"]
    return error


# --- chat ----------------------------------------------------------------------------


def test_a_chat_completion_sends_the_messages_and_parameters_and_answers_openais_shape(client, mock_hub):
    mock_hub.post(CHAT, json=chat_answer())
    body = {
        "model": "chat-model",
        "messages": HELLO,
        "max_tokens": 12,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["\n"],
        "seed": 7,
    }
    answer = call(client, "/v1/chat/completions", body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert sent(mock_hub) == {
        "model": "org/chat-model:novita",
        "messages": HELLO,
        "max_tokens": 12,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["\n"],
        "seed": 7,
        "n": 1,
    }
    document = answer.get_json()
    assert document["object"] == "chat.completion" and document["model"] == "org/chat-model"
    assert document["id"] == f"chatcmpl-{answer.headers['X-Request-ID']}"
    assert isinstance(document["created"], int)
    assert document["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi there!"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert document["usage"] == {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def test_the_callers_key_never_goes_upstream_the_gateways_token_does(client, mock_hub):
    mock_hub.post(CHAT, json=chat_answer())
    assert call(client, "/v1/chat/completions", {"model": "chat-model", "messages": HELLO}).status_code == 200
    upstream_headers = mock_hub.calls[0].request.headers
    assert upstream_headers["Authorization"] == f"Bearer {TOKEN}"
    assert KEY not in json.dumps(dict(upstream_headers)) + mock_hub.calls[0].request.body.decode()


def test_an_x_api_key_is_taken_too_and_no_key_is_refused_in_openais_shape(client, mock_hub):
    mock_hub.post(CHAT, json=chat_answer())
    body = {"model": "chat-model", "messages": HELLO}
    assert call(client, "/v1/chat/completions", body, Authorization="", **{"X-API-Key": KEY}).status_code == 200
    error = openai_error(call(client, "/v1/chat/completions", body, Authorization="Bearer wrong"), 401, "unauthorized")
    assert error["type"] == "authentication_error"
    assert len(mock_hub.calls) == 1


@pytest.mark.parametrize(
    ("model", "upstream_model"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("meta-llama/Llama-3.1-8B-Instruct:together", "meta-llama/Llama-3.1-8B-Instruct:together"),
        ("meta-llama/Llama-3.1-8B-Instruct:fastest", "meta-llama/Llama-3.1-8B-Instruct:fastest"),
        ("meta-llama/Llama-3.1-8B-Instruct:cheapest", "meta-llama/Llama-3.1-8B-Instruct:cheapest"),
        ("chat-model:preferred", "org/chat-model:preferred"),  # a key, its provider replaced by a policy
        ("opus", "Helsinki-NLP/opus-mt-zh-en"),  # an alias of a model of another task: its Hub id
    ],
)
def test_model_names_reach_the_routers_chat_route_as_it_takes_them(client, mock_hub, model, upstream_model):
    mock_hub.post(CHAT, json=chat_answer())
    assert call(client, "/v1/chat/completions", {"model": model, "messages": HELLO}).status_code == 200
    assert sent(mock_hub)["model"] == upstream_model


@pytest.mark.parametrize("model", [None, "chat-completion"])
def test_the_chat_chain_falls_back_along_its_targets(client, mock_hub, model):
    mock_hub.post(CHAT, status=404, json={"error": "Model missing/chat does not exist"})
    mock_hub.post(CHAT, json=chat_answer())
    body = {"messages": HELLO} if model is None else {"model": model, "messages": HELLO}
    answer = call(client, "/v1/chat/completions", body)
    assert answer.status_code == 200 and answer.get_json()["model"] == "org/chat-model"
    assert [sent(mock_hub, i)["model"] for i in range(2)] == ["missing/chat", "org/chat-model:novita"]


def test_greedy_chat_asks_once_and_answers_n_choices(client, mock_hub):
    mock_hub.post(CHAT, json=chat_answer())
    answer = call(client, "/v1/chat/completions", {"model": "chat-model", "messages": HELLO, "temperature": 0, "n": 2})
    assert answer.status_code == 200
    assert [choice["index"] for choice in answer.get_json()["choices"]] == [0, 1]
    assert len(mock_hub.calls) == 1 and sent(mock_hub)["n"] == 1 and sent(mock_hub)["temperature"] == 0


def test_sampled_chat_asks_for_n_in_one_call(client, mock_hub):
    mock_hub.post(CHAT, json=chat_answer(n=3))
    answer = call(client, "/v1/chat/completions", {"model": "chat-model", "messages": HELLO, "n": 3})
    assert len(answer.get_json()["choices"]) == 3 and sent(mock_hub)["n"] == 3 and len(mock_hub.calls) == 1


def test_a_stream_of_several_choices_is_refused_before_any_call(client, mock_hub):
    answer = call(client, "/v1/chat/completions", {"model": "chat-model", "messages": HELLO, "stream": True, "n": 2})
    assert "stream" in openai_error(answer, 400, "invalid_request", "n")["message"]
    assert len(mock_hub.calls) == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "chat-model"}, "messages"),
        ({"model": "chat-model", "messages": []}, "messages"),
        ({"model": "chat-model", "messages": [{"role": "robot", "content": "x"}]}, "messages"),
        ({"model": "chat-model", "messages": "Hello"}, "messages"),
        ({"model": "chat-model", "messages": HELLO, "temperature": 3}, "temperature"),
        ({"model": "chat-model", "messages": HELLO, "n": 11}, "n"),
        ({"model": "chat-model", "messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "chat-model", "messages": HELLO, "best_of": 2}, "best_of"),
        (
            {"model": "chat-model", "messages": HELLO, "max_tokens": 5, "max_completion_tokens": 6},
            "max_completion_tokens",
        ),
        ({"model": 42, "messages": HELLO}, "model"),
        ({"model": "org/x:Bad Provider", "messages": HELLO}, "model"),
        ({"model": "../etc/passwd", "messages": HELLO}, "model"),
        ({"model": "http://127.0.0.1:8098/v1", "messages": HELLO}, "model"),  # huggingface.js's endpointUrl
    ],
)
def test_a_bad_chat_body_is_a_400_naming_its_field(client, mock_hub, body, param):
    error = openai_error(call(client, "/v1/chat/completions", body), 400, "invalid_request", param)
    assert error["type"] == "invalid_request_error"
    assert not error["message"].startswith("model_name")
    assert len(mock_hub.calls) == 0


def test_a_body_that_is_not_json_is_a_400_in_openais_shape(client, mock_hub):
    answer = client.post(
        "/v1/chat/completions", data="{nope", content_type="application/json", headers={"X-API-Key": KEY}
    )
    openai_error(answer, 400, "invalid_request")


def test_a_conversation_over_the_input_limit_is_refused(clock, mock_hub):
    small = make_app(make_settings(max_input_chars=10), CATALOG, clock).test_client()
    long = [{"role": "system", "content": "x" * 6}, {"role": "user", "content": [{"type": "text", "text": "y" * 6}]}]
    answer = call(small, "/v1/chat/completions", {"model": "chat-model", "messages": long})
    assert "12 characters" in openai_error(answer, 400, "invalid_request", "messages")["message"]


# --- the per-model route ---------------------------------------------------------------


@pytest.mark.parametrize("body_model", ["dummy", "http://127.0.0.1:9/models/org/other", None])
def test_the_per_model_route_takes_the_model_from_the_path(client, mock_hub, body_model):
    mock_hub.post(CHAT, json=chat_answer())
    body = {"messages": HELLO, "max_tokens": 5, "stream": False}
    if body_model:
        body["model"] = body_model
    answer = call(client, "/models/meta-llama/Llama-3.1-8B-Instruct/v1/chat/completions", body)
    assert answer.status_code == 200 and answer.get_json()["object"] == "chat.completion"
    assert sent(mock_hub)["model"] == "meta-llama/Llama-3.1-8B-Instruct"


def test_the_per_model_route_answers_errors_in_the_shape_of_models_routes_not_openais(client, mock_hub):
    answer = call(client, "/models/org/id/v1/chat/completions", {"messages": HELLO, "temperature": 3.5})
    assert answer.status_code == 400 and answer.headers["X-Request-ID"]
    assert not isinstance(answer.get_json().get("error"), dict)  # the Hub's {"error": "..."} where it is registered
    assert len(mock_hub.calls) == 0


def test_the_per_model_route_wins_over_a_route_for_the_model_itself(mock_hub):
    app = Flask(__name__)
    app.register_blueprint(per_model.bp)
    app.add_url_rule("/models/<path:model>", "hub_model", lambda model: "hub", methods=["POST"])
    adapter = app.url_map.bind("gateway.test")
    assert adapter.match("/models/org/id/v1/chat/completions", method="POST") == (
        "openai_per_model.per_model_chat",
        {"model": "org/id"},
    )
    assert adapter.match("/models/org/id", method="POST") == ("hub_model", {"model": "org/id"})


# --- the ledger, limits and the cache --------------------------------------------------


@pytest.fixture
def limited(tmp_path, clock):
    key_file = tmp_path / "keys.toml"
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    admin = hashlib.sha256(b"admin-secret").hexdigest()
    key_file.write_text(
        f'[keys.caller]\nsha256 = "{digest}"\nrpm = 2\n\n[keys.ops]\nsha256 = "{admin}"\nadmin = true\n',
        encoding="utf-8",
    )
    settings = make_settings(api_keys_file=key_file, store="sqlite", data_dir=tmp_path / "data", cache_ttl=600.0)
    return make_app(settings, CATALOG, clock).test_client()


def test_the_ledger_books_the_tokens_the_answer_reports(limited, mock_hub):
    mock_hub.post(CHAT, json=chat_answer(usage=(21, 4)))
    assert call(limited, "/v1/chat/completions", {"model": "chat-model", "messages": HELLO}).status_code == 200
    rows = limited.get("/api/usage", headers={"Authorization": "Bearer admin-secret"}).get_json()["rows"]
    row = next(row for row in rows if row["key"] == "caller")
    assert (row["model"], row["requests"], row["prompt_tokens"], row["completion_tokens"]) == (
        "org/chat-model",
        1,
        21,
        4,
    )
    assert row["input_chars"] == len("Hello!")


def test_a_keys_rate_limit_is_a_429_with_retry_after_in_openais_shape(limited, mock_hub):
    mock_hub.post(CHAT, json=chat_answer())
    body = {"model": "chat-model", "messages": HELLO}
    assert [call(limited, "/v1/chat/completions", body).status_code for _ in range(2)] == [200, 200]
    refused = call(limited, "/v1/chat/completions", body)
    error = openai_error(refused, 429, "rate_limited")
    assert error["type"] == "rate_limit_error" and "2 requests per minute" in error["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 61  # within the SDK's 120 s: it waits and retries
    assert "x-should-retry" not in refused.headers
    assert len(mock_hub.calls) == 2


def test_a_seeded_chat_is_answered_from_the_cache_the_second_time(limited, mock_hub):
    mock_hub.post(CHAT, json=chat_answer())
    body = {"model": "chat-model", "messages": HELLO, "seed": 3}
    first = call(limited, "/v1/chat/completions", body)
    second = call(limited, "/v1/chat/completions", body)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert first.get_json()["choices"] == second.get_json()["choices"]
    assert second.get_json()["usage"]["total_tokens"] == 0  # nothing was spent upstream
    assert len(mock_hub.calls) == 1


# --- upstream errors --------------------------------------------------------------------


def test_a_model_still_loading_is_a_502_with_retry_after_never_a_503(client, mock_hub, clock):
    mock_hub.post(CHAT, status=503, json={"error": "Model is currently loading", "estimated_time": 500.0})
    answer = call(client, "/v1/chat/completions", {"model": "org/cold", "messages": HELLO})
    error = openai_error(answer, 502, "model_unavailable")
    assert error["type"] == "server_error"
    assert int(answer.headers["Retry-After"]) >= 1 and "x-should-retry" not in answer.headers


def test_a_server_error_without_retry_after_tells_the_sdk_not_to_retry(client, mock_hub):
    mock_hub.post(CHAT, status=200, body="not json", content_type="text/plain")
    answer = call(client, "/v1/chat/completions", {"model": "chat-model", "messages": HELLO})
    openai_error(answer, 502, "upstream_error")
    assert answer.headers["x-should-retry"] == "false"


def test_the_models_refusal_of_the_input_is_a_422_with_its_message(client, mock_hub):
    mock_hub.post(
        CHAT, status=422, json={"error": "Template error: template not found", "error_type": "template_error"}
    )
    answer = call(client, "/v1/chat/completions", {"model": "chat-model", "messages": HELLO})
    assert "Template error" in openai_error(answer, 422, "model_rejected_input")["message"]


def test_an_unknown_path_under_v1_is_a_404_in_openais_shape(client):
    openai_error(client.get("/v1/nope", headers={"X-API-Key": KEY}), 404, "not_found")


# --- completions ------------------------------------------------------------------------


def test_a_completion_maps_openais_names_onto_the_task(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": " world"}])
    body = {"model": "openai-community/gpt2", "prompt": "Hello", "max_tokens": 20, "temperature": 0.7, "top_p": 0.5}
    answer = call(client, "/v1/completions", {**body, "seed": 1, "echo": True})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert sent(mock_hub) == {
        "inputs": "Hello",
        "parameters": {
            "do_sample": True,
            "max_new_tokens": 20,
            "top_k": 30,
            "top_p": 0.5,
            "temperature": 0.7,
            "seed": 1,
            "return_full_text": True,
        },
    }
    document = answer.get_json()
    assert document["object"] == "text_completion" and document["model"] == "openai-community/gpt2"
    assert [choice["text"] for choice in document["choices"]] == [" world"]


def test_a_completion_at_temperature_zero_is_greedy_along_the_chain(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": " world"}])
    answer = call(client, "/v1/completions", {"model": "text-completion", "prompt": ["Hello"], "temperature": 0})
    assert answer.status_code == 200
    assert sent(mock_hub)["parameters"]["do_sample"] is False


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "Hi", "stop": ["\n"]}, "stop"),
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "Hi", "max_tokens": 5000}, "max_tokens"),
        ({"prompt": "Hi", "top_p": 0}, "top_p"),
        ({"prompt": "Hi", "model": "openai-community/gpt2:together"}, "model"),
        ({"prompt": "Hi", "stream": True}, "stream"),
    ],
)
def test_a_bad_completion_body_is_a_400_naming_its_field(client, mock_hub, body, param):
    openai_error(call(client, "/v1/completions", body), 400, "invalid_request", param)
    assert len(mock_hub.calls) == 0


# --- images -----------------------------------------------------------------------------


def test_images_are_answered_as_base64_of_the_models_bytes(client, mock_hub):
    jpeg = recordings.recorded_body("CompVis/stable-diffusion-v1-4")
    mock_hub.post(IMAGE, body=jpeg, content_type="image/jpeg")
    body = {"model": "CompVis/stable-diffusion-v1-4", "prompt": "a dress", "n": 2, "size": "256x320"}
    answer = call(client, "/v1/images/generations", body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    document = answer.get_json()
    assert set(document) == {"created", "data"} and len(document["data"]) == 2
    assert all(base64.b64decode(item["b64_json"]) == jpeg for item in document["data"])
    assert [
        (sent(mock_hub, i)["parameters"]["width"], sent(mock_hub, i)["parameters"]["height"]) for i in range(2)
    ] == [
        (256, 320),
        (256, 320),
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "a dress", "response_format": "url"}, "response_format"),
        ({"prompt": "a dress", "size": "big"}, "size"),
        ({"prompt": "a dress", "size": "32x32"}, "size"),
        ({"prompt": "a dress", "n": 5}, "n"),
        ({"prompt": "a dress", "quality": "hd"}, "quality"),
        ({}, "prompt"),
    ],
)
def test_a_bad_image_body_is_a_400_naming_its_field(client, mock_hub, body, param):
    openai_error(call(client, "/v1/images/generations", body), 400, "invalid_request", param)
    assert len(mock_hub.calls) == 0


# --- models -----------------------------------------------------------------------------


def test_the_model_list_names_chains_keys_aliases_and_chained_ids(client):
    answer = client.get("/v1/models", headers={"X-API-Key": KEY})
    document = answer.get_json()
    assert document["object"] == "list"
    entries = {entry["id"]: entry for entry in document["data"]}
    assert {"chat-completion", "text-completion", "text-to-image"} <= set(entries)
    assert {"chat-model", "madlad400", "opus", "openai-community/gpt2", "missing/chat"} <= set(entries)
    assert entries["chat-model"] == {"id": "chat-model", "object": "model", "created": 0, "owned_by": "novita"}
    assert len(entries) == len(document["data"])  # each once


def test_one_model_is_retrieved_or_a_404(client):
    assert client.get("/v1/models/org/chat-model", headers={"X-API-Key": KEY}).status_code == 404
    assert client.get("/v1/models/chat-model", headers={"X-API-Key": KEY}).get_json()["owned_by"] == "novita"
    openai_error(client.get("/v1/models/nope", headers={"X-API-Key": KEY}), 404, "model_not_found")


# --- the native surface is unchanged ----------------------------------------------------


def test_chat_is_no_task_of_the_native_api(client):
    assert "chat-completion" not in TASKS
    answer = client.post("/api/infer/chat-completion", json={"inputs": "x"}, headers={"X-API-Key": KEY}, buffered=True)
    assert answer.status_code == 404 and answer.get_json()["error_type"] == "unknown_task"
