"""The Hub's own API on the Flask test client: routes, the task of a model, the parameters'
mapping onto the gateway's args, the Hub's answer shapes, and its errors (never a 503)."""

import json

import pytest
from openapi_schema_validator import OAS30Validator

from harness import recordings
from service.api.error_handlers import ErrorAnswer
from service.api.hub_api.error_shape import hub_error_shape
from tests.support.app import API, TEST_CATALOG, TOKEN, make_app, make_settings

HUB_API = "https://hub-api.test/api"
EXPAND = "?expand[]=pipeline_tag&expand[]=inferenceProviderMapping"
OPUS = f"{API}/Helsinki-NLP/opus-mt-zh-en"
GPT2 = f"{API}/openai-community/gpt2"
FLAN = f"{API}/google/flan-t5-large"
SD = f"{API}/CompVis/stable-diffusion-v1-4"
JPEG = recordings.recorded_body("/CompVis/stable-diffusion-v1-4")
UNUSED = "The following `model_kwargs` are not used by the model: "
LOADING = {"error": "Model openai-community/gpt2 is currently loading", "estimated_time": 20.0}


@pytest.fixture
def app(clock):
    return make_app(make_settings(hf_hub_api_base=HUB_API), TEST_CATALOG, clock)


def hub_post(client, path, body, **kwargs):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    kwargs.setdefault("content_type", "application/json")
    return client.post(path, data=data, buffered=True, **kwargs)


def sent(mock_hub, url) -> list:
    return [json.loads(call.request.body) for call in mock_hub.calls if call.request.url == url]


def describe(mock_hub, model_id, pipeline_tag):
    mock_hub.get(f"{HUB_API}/models/{model_id}{EXPAND}", json={"pipeline_tag": pipeline_tag})


def assert_hub_error(response, status, error_type) -> str:
    """The Hub's error shape: `{"error", "error_type"}`, with the request's id in its header."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == error_type
    assert isinstance(body["error"], str) and body["error"]
    assert response.headers["X-Request-ID"]
    return body["error"]


# --- routes and the task of a model ------------------------------------------------------------


def test_a_model_the_catalog_places_in_one_task_is_served_without_asking_the_hub(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    response = hub_post(client, "/models/Helsinki-NLP/opus-mt-zh-en", {"inputs": "连衣裙"})
    assert response.status_code == 200 and response.get_json() == [{"translation_text": "Dress"}]
    assert [call.request.method for call in mock_hub.calls] == ["POST"]


def test_an_alias_names_its_model(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    assert hub_post(client, "/models/opus", {"inputs": "连衣裙"}).get_json() == [{"translation_text": "Dress"}]


def test_another_model_takes_its_pipeline_tag_asked_once(client, mock_hub):
    describe(mock_hub, "org/writer", "text-generation")
    mock_hub.post(f"{API}/org/writer", json=[{"generated_text": "Hi there"}])
    for _ in range(2):
        response = hub_post(client, "/models/org/writer", {"inputs": "Hi"})
        assert response.get_json() == [{"generated_text": " there"}]
    assert sum(call.request.method == "GET" for call in mock_hub.calls) == 1


@pytest.mark.parametrize(
    "tag, upstream, answer, expected",
    [
        ("text2text-generation", [{"generated_text": "ja"}], "json", [{"generated_text": "ja"}]),
        ("translation", [{"translation_text": "Kleid"}], "json", [{"translation_text": "Kleid"}]),
    ],
)
def test_each_hub_task_answers_its_own_shape(client, mock_hub, tag, upstream, answer, expected):
    describe(mock_hub, "org/model", tag)
    mock_hub.post(f"{API}/org/model", json=upstream)
    assert hub_post(client, "/models/org/model", {"inputs": "x"}).get_json() == expected


def test_a_model_of_another_task_is_forwarded_to_its_route(client, mock_hub):
    describe(mock_hub, "org/classifier", "image-classification")
    mock_hub.post(f"{API}/org/classifier", json=[{"label": "dress", "score": 0.9}])
    response = hub_post(client, "/models/org/classifier", {"inputs": "x"})
    assert response.status_code == 200 and response.get_json() == [{"label": "dress", "score": 0.9}]
    assert [call.request.method for call in mock_hub.calls] == ["GET", "POST"]


def test_a_model_not_on_the_hub_is_404(client, mock_hub):
    mock_hub.get(f"{HUB_API}/models/org/nothing{EXPAND}", status=404, json={"error": "Repository not found"})
    message = assert_hub_error(hub_post(client, "/models/org/nothing", {"inputs": "x"}), 404, "model_not_found")
    assert "/pipeline/" in message or "name the task" in message


def test_a_task_the_hub_cannot_tell_in_time_is_a_429_with_retry_after(clock, mock_hub):
    app = make_app(make_settings(hf_hub_api_base=HUB_API, model_task_lookup_seconds=0.05), TEST_CATALOG, clock)
    mock_hub.get(f"{HUB_API}/models/org/slow{EXPAND}", status=502, body="bad gateway")
    response = hub_post(app.test_client(), "/models/org/slow", {"inputs": "x"})
    assert_hub_error(response, 429, "model_unavailable")
    assert int(response.headers["Retry-After"]) >= 1


def test_completions_and_the_model_path_are_both_routed(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": "Once upon a time there"}])
    plain = hub_post(client, "/models/openai-community/gpt2", {"inputs": "Once upon a time"})
    assert plain.get_json() == [{"generated_text": " there"}]
    completion = hub_post(
        client,
        "/models/openai-community/gpt2/v1/completions",
        {"model": "http://127.0.0.1:1/models/openai-community/gpt2", "prompt": "Once upon a time", "max_tokens": 7},
    )
    body = completion.get_json()
    assert completion.status_code == 200, body
    assert body["object"] == "text_completion" and body["model"] == "openai-community/gpt2"
    assert [choice["text"] for choice in body["choices"]] == [" there"]
    assert body["choices"][0]["index"] == 0 and body["choices"][0]["finish_reason"]
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert body["id"] == f"cmpl-{completion.headers['X-Request-ID']}"
    assert sent(mock_hub, GPT2)[1]["parameters"]["max_new_tokens"] == 7


def test_completions_refuse_an_image_model(client, mock_hub):
    body = {"prompt": "a dress"}
    message = assert_hub_error(
        hub_post(client, "/models/CompVis/stable-diffusion-v1-4/v1/completions", body), 400, "invalid_request"
    )
    assert "text-to-image" in message
    assert not mock_hub.calls


def test_completions_refuse_what_they_cannot_pass(client, mock_hub):
    body = {"model": "dummy", "prompt": "Hi", "logprobs": 2}
    message = assert_hub_error(
        hub_post(client, "/models/openai-community/gpt2/v1/completions", body), 400, "invalid_request"
    )
    assert message == UNUSED + "['logprobs']"
    assert not mock_hub.calls


def test_a_text_model_named_with_its_task(client, mock_hub):
    mock_hub.post(FLAN, json=[{"generated_text": "ja"}])
    response = hub_post(client, "/pipeline/text2text-generation/google/flan-t5-large", {"inputs": "Translate: yes"})
    assert response.get_json() == [{"generated_text": "ja"}]


def test_default_is_the_tasks_chain_with_its_fallback(client, mock_hub):
    mock_hub.post(f"{API}/missing/image-model", status=404, json={"error": "Model missing/image-model does not exist"})
    mock_hub.post(SD, body=JPEG, content_type="image/jpeg")
    response = hub_post(client, "/pipeline/text-to-image/default", {"inputs": "a red dress"})
    assert response.status_code == 200 and response.data == JPEG
    assert response.headers["Content-Type"] == "image/jpeg"


def test_a_pair_names_its_chain_for_translation(client, mock_hub):
    mock_hub.post(f"{API}/google/madlad400-3b-mt", json=[{"translation_text": "连衣裙"}])
    response = hub_post(client, "/pipeline/translation/en2zh", {"inputs": "dress"})
    assert response.get_json() == [{"translation_text": "连衣裙"}]
    assert sent(mock_hub, f"{API}/google/madlad400-3b-mt")[0]["inputs"] == "<2zh> dress"
    assert hub_post(client, "/models/en2zh", {"inputs": "dress"}).status_code == 200


def test_an_unknown_task_is_404_naming_the_hubs_task_names(client, mock_hub):
    message = assert_hub_error(
        hub_post(client, "/pipeline/summarisation/org/model", {"inputs": "x"}), 404, "unknown_task"
    )
    assert "text2text-generation" in message
    # The path's part is named as this surface calls it.
    assert message.startswith("unknown task 'summarisation'; valid tasks: ") and "task_type" not in message
    assert not mock_hub.calls


# --- parameters --------------------------------------------------------------------------------


def test_the_clients_generation_names_reach_the_upstream(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": " there"}])
    parameters = {"max_new_tokens": 12, "temperature": 0.5, "top_k": 5, "top_p": 0.9, "seed": 7, "do_sample": True}
    assert (
        hub_post(client, "/models/openai-community/gpt2", {"inputs": "Hi", "parameters": parameters}).status_code == 200
    )
    assert sent(mock_hub, GPT2)[0]["parameters"] == {**parameters, "return_full_text": False}


def test_src_and_tgt_lang_pick_the_pair(client, mock_hub):
    mock_hub.post(f"{API}/google/madlad400-3b-mt", json=[{"translation_text": "连衣裙"}])
    parameters = {"src_lang": "en_XX", "tgt_lang": "zh"}
    assert (
        hub_post(client, "/pipeline/translation/default", {"inputs": "dress", "parameters": parameters}).status_code
        == 200
    )
    assert sent(mock_hub, f"{API}/google/madlad400-3b-mt")[0]["inputs"] == "<2zh> dress"


@pytest.mark.parametrize(
    "path, parameters, fragment",
    [
        ("/pipeline/translation/default", {"src_lang": "en", "tgt_lang": "ja"}, "en2zh"),
        ("/pipeline/translation/default", {"src_lang": "en"}, "go together"),
        ("/pipeline/translation/zh2en", {"src_lang": "en", "tgt_lang": "zh"}, "the path names zh2en"),
    ],
)
def test_languages_that_make_no_configured_pair_are_refused(client, mock_hub, path, parameters, fragment):
    message = assert_hub_error(
        hub_post(client, path, {"inputs": "dress", "parameters": parameters}), 400, "invalid_request"
    )
    assert fragment in message
    assert not mock_hub.calls


def test_generate_parameters_nest_the_generation_names(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    body = {"inputs": "连衣裙", "parameters": {"generate_parameters": {"do_sample": False, "max_new_tokens": 9}}}
    assert hub_post(client, "/models/Helsinki-NLP/opus-mt-zh-en", body).status_code == 200
    assert sent(mock_hub, OPUS)[0]["parameters"]["generate_parameters"] == {"do_sample": False, "max_new_tokens": 9}


@pytest.mark.parametrize(
    "path, parameters, names",
    [
        ("/models/openai-community/gpt2", {"max_new_tokens": 3, "watermark": True}, ["watermark"]),
        (
            "/models/openai-community/gpt2",
            {"best_of": 2, "details": True, "stop": ["\n"]},
            ["best_of", "details", "stop"],
        ),
        ("/pipeline/text2text-generation/google/flan-t5-large", {"return_full_text": True}, ["return_full_text"]),
        ("/models/Helsinki-NLP/opus-mt-zh-en", {"generate_parameters": {"num_beams": 4}}, ["num_beams"]),
        ("/models/CompVis/stable-diffusion-v1-4", {"scheduler": "DDIM"}, ["scheduler"]),
    ],
)
def test_a_parameter_the_gateway_cannot_pass_is_named_as_transformers_names_it(
    client, mock_hub, path, parameters, names
):
    message = assert_hub_error(
        hub_post(client, path, {"inputs": "x", "parameters": parameters}), 400, "invalid_request"
    )
    assert message == UNUSED + repr(names)
    assert not mock_hub.calls


def test_values_that_ask_for_nothing_are_accepted(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": " there"}])
    parameters = {"stop": [], "details": False, "max_new_tokens": 3, "top_k": None}
    response = hub_post(
        client, "/models/openai-community/gpt2", {"inputs": "Hi", "parameters": parameters, "stream": False}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"inputs": "Hi", "parameters": {"top_p": 2.0}}, "parameters.top_p"),
        ({"inputs": "Hi", "parameters": {"max_new_tokens": "12"}}, "parameters.max_new_tokens"),
        ({"inputs": ["Hi", "there"]}, "inputs: Must be a string"),
        ({"inputs": "   "}, "inputs"),
        ({"parameters": {}}, "inputs"),
        ({"inputs": "Hi", "extra": 1}, "extra"),
        ({"inputs": "Hi", "options": {"use_cache": "no"}}, "options.use_cache"),
        ({"inputs": "Hi", "stream": True}, "stream"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_bodies_are_400_in_the_hubs_shape(client, mock_hub, body, fragment):
    assert fragment in assert_hub_error(hub_post(client, "/models/openai-community/gpt2", body), 400, "invalid_request")
    assert not mock_hub.calls


def test_num_return_sequences_gives_that_many_results(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": " there"}])
    body = {"inputs": "Hi", "parameters": {"num_return_sequences": 2, "seed": 1}}
    assert hub_post(client, "/models/openai-community/gpt2", body).get_json() == [{"generated_text": " there"}] * 2
    assert [payload["parameters"]["seed"] for payload in sent(mock_hub, GPT2)] == [1, 2]


def test_return_full_text_puts_the_prompt_in_front(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": "Hi there"}])
    body = {"inputs": "Hi", "parameters": {"return_full_text": True}}
    assert hub_post(client, "/models/openai-community/gpt2", body).get_json() == [{"generated_text": "Hi there"}]
    assert sent(mock_hub, GPT2)[0]["parameters"]["return_full_text"] is True


def test_use_cache_false_skips_the_lookup(clock, mock_hub, tmp_path):
    settings = make_settings(hf_hub_api_base=HUB_API, store="sqlite", data_dir=tmp_path / "data")
    app = make_app(settings, TEST_CATALOG, clock)
    client = app.test_client()
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    body = {"inputs": "连衣裙", "parameters": {"generate_parameters": {"do_sample": False}}}
    first = hub_post(client, "/models/Helsinki-NLP/opus-mt-zh-en", body)
    kept = hub_post(client, "/models/Helsinki-NLP/opus-mt-zh-en", body)
    fresh = hub_post(client, "/models/Helsinki-NLP/opus-mt-zh-en", {**body, "options": {"use_cache": False}})
    assert [r.headers["X-Cache"] for r in (first, kept, fresh)] == ["MISS", "HIT", "MISS"]
    assert len(sent(mock_hub, OPUS)) == 2


# --- answers -----------------------------------------------------------------------------------


def test_an_image_is_its_own_bytes_under_the_type_they_prove(client, mock_hub):
    mock_hub.post(SD, body=JPEG, content_type="application/octet-stream")
    parameters = {
        "width": 256,
        "height": 256,
        "negative_prompt": "blur",
        "guidance_scale": 7.5,
        "num_inference_steps": 20,
    }
    response = hub_post(
        client, "/models/CompVis/stable-diffusion-v1-4", {"inputs": "a dress", "parameters": parameters}
    )
    assert response.status_code == 200
    assert (response.headers["Content-Type"], response.data) == ("image/jpeg", JPEG)
    assert sent(mock_hub, SD)[0]["parameters"].items() >= parameters.items()


# --- errors ------------------------------------------------------------------------------------


def test_a_model_still_loading_at_the_deadline_is_a_429_never_a_503(client, mock_hub, clock):
    mock_hub.post(GPT2, json=LOADING, status=503)
    response = hub_post(client, "/models/openai-community/gpt2", {"inputs": "Hi"})
    assert_hub_error(response, 429, "model_unavailable")
    assert response.headers["Retry-After"] == "20"


def test_an_upstream_refusing_kwargs_stays_the_hubs_400(client, mock_hub):
    refusal = {"error": UNUSED + "['top_k'] (note: typos in the generate arguments will also show up in this list)"}
    mock_hub.post(GPT2, json=refusal, status=400)
    message = assert_hub_error(
        hub_post(client, "/models/openai-community/gpt2", {"inputs": "Hi"}), 400, "model_rejected_input"
    )
    assert UNUSED + "['top_k']" in message


def test_the_upstreams_other_errors_keep_their_status(client, mock_hub):
    mock_hub.post(GPT2, status=404, json={"error": "Model openai-community/gpt2 does not exist"})
    assert_hub_error(hub_post(client, "/models/openai-community/gpt2", {"inputs": "Hi"}), 404, "model_not_found")


@pytest.mark.parametrize(
    "status, error_type, expected",
    [
        (503, "not_ready", 502),
        (503, "store_unavailable", 502),
        (503, "model_unavailable", 429),
        (504, "upstream_timeout", 504),
    ],
)
def test_no_503_leaves_the_error_shape(status, error_type, expected):
    shaped, body = hub_error_shape(ErrorAnswer(status, error_type, "why", None, "rid"))
    assert (shaped, body) == (expected, {"error": "why", "error_type": error_type})


def test_routing_errors_come_in_the_hubs_shape(client):
    assert_hub_error(client.get("/models/openai-community/gpt2"), 405, "method_not_allowed")
    assert_hub_error(hub_post(client, "/pipeline/translation", {"inputs": "x"}), 404, "not_found")


def test_a_key_is_asked_for_and_never_sent_upstream(clock, mock_hub):
    key = "client-key-0123456789abcdef"
    app = make_app(make_settings(hf_hub_api_base=HUB_API, api_keys=frozenset({key})), TEST_CATALOG, clock)
    client = app.test_client()
    assert_hub_error(hub_post(client, "/models/Helsinki-NLP/opus-mt-zh-en", {"inputs": "连衣裙"}), 401, "unauthorized")
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    headers = {"Authorization": f"Bearer {key}"}
    assert (
        hub_post(client, "/models/Helsinki-NLP/opus-mt-zh-en", {"inputs": "连衣裙"}, headers=headers).status_code == 200
    )
    assert [call.request.headers["Authorization"] for call in mock_hub.calls] == [f"Bearer {TOKEN}"]


# --- the OpenAPI document ----------------------------------------------------------------------

HUB_ROUTES = {
    "/models/{model}": "/models/<path:model>",
    "/models/{model}/v1/completions": "/models/<path:model>/v1/completions",
    "/pipeline/{task}/{model}": "/pipeline/<task_name>/<path:model>",
}


def test_the_document_has_the_hubs_routes_and_no_503(app, client):
    document = client.get("/openapi.json").get_json()
    served = {rule.rule for rule in app.url_map.iter_rules()}
    for path, rule in HUB_ROUTES.items():
        assert set(document["paths"][path]) == {"post"} and rule in served
        responses = document["paths"][path]["post"]["responses"]
        assert "503" not in responses and "Retry-After" in responses["429"]["headers"]
    tasks = document["paths"]["/pipeline/{task}/{model}"]["post"]["parameters"][0]["schema"]["enum"]
    assert tasks[:4] == ["translation", "text-generation", "text2text-generation", "text-to-image"]
    assert {"summarization", "feature-extraction", "image-classification", "text-to-speech"} <= set(tasks)


def test_the_documented_answers_are_the_answers(client, mock_hub):
    document = client.get("/openapi.json").get_json()
    mock_hub.post(GPT2, json=[{"generated_text": " there"}])
    answers = {
        "HubAnswer": hub_post(client, "/models/openai-community/gpt2", {"inputs": "Hi"}).get_json(),
        "HubCompletion": hub_post(client, "/models/openai-community/gpt2/v1/completions", {"prompt": "Hi"}).get_json(),
        "HubError": hub_post(client, "/models/openai-community/gpt2", {"inputs": ""}).get_json(),
    }
    for name, answer in answers.items():
        schema = {**document["components"]["schemas"][name], "components": document["components"]}
        OAS30Validator(schema).validate(answer)


def test_the_hubs_routes_ask_for_a_key_when_keys_are_configured(clock):
    app = make_app(make_settings(api_keys=frozenset({"client-key-0123456789abcdef"})), TEST_CATALOG, clock)
    document = app.test_client().get("/openapi.json").get_json()
    for path in HUB_ROUTES:
        assert document["paths"][path]["post"]["security"] == [{"bearer": []}, {"apiKey": []}]
