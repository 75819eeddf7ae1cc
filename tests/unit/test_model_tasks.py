"""A model the caller names is checked against the task before any call: from the catalog where
a chain names it, else from the Hub's model API, asked once per id; when the Hub cannot say
in time, MODEL_TASK_UNKNOWN decides."""

import hashlib
import re
import threading

import pytest
from prometheus_client import REGISTRY

from service.pipeline.model_tasks import HubTasks, hub_tasks_of
from tests.support.app import API, TEST_CATALOG, make_app, make_settings, post
from tests.support.assertions import assert_error_shape

HUB_API = "https://hub-api.test/api"
EXPAND = "?expand[]=pipeline_tag&expand[]=inferenceProviderMapping"
IMAGE_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def model_api(model_id: str) -> str:
    return f"{HUB_API}/models/{model_id}{EXPAND}"


@pytest.fixture
def app(clock):
    return make_app(make_settings(hf_hub_api_base=HUB_API, model_task_lookup_seconds=5.0), TEST_CATALOG, clock)


def complete(client, model_name):
    return post(client, "text-completion", {"inputs": "Once upon a time"}, f"?model_name={model_name}")


def translate(client, model_name):
    return post(client, "text-translation", {"inputs": "连衣裙"}, f"?model_name={model_name}")


def inference_calls(mock_hub) -> list:
    return [call.request.url for call in mock_hub.calls if call.request.url.startswith(API)]


def lookups(mock_hub) -> list:
    return [call.request.url for call in mock_hub.calls if call.request.url.startswith(HUB_API)]


def unknown_count(decision: str) -> float:
    return REGISTRY.get_sample_value("hf_gateway_model_task_unknown_total", {"decision": decision}) or 0.0


def test_a_model_a_chain_places_elsewhere_is_refused_without_asking_anyone(client, mock_hub):
    # CompVis/stable-diffusion-v1-4 is text-to-image's second target in the catalog.
    refused = translate(client, "CompVis/stable-diffusion-v1-4")
    body = assert_error_shape(refused, 400, "invalid_request")
    assert "serves text-to-image" in body["message"] and "model_name" in body["errors"]
    assert len(mock_hub.calls) == 0


def test_an_alias_is_placed_by_what_it_names(client, mock_hub):
    refused = post(client, "text-to-image", {"inputs": "a red dress"}, "?model_name=opus")
    assert "serves text-translation" in assert_error_shape(refused, 400, "invalid_request")["message"]
    assert len(mock_hub.calls) == 0


def test_a_hub_id_the_hub_says_draws_images_is_refused_for_text_and_asked_once(client, mock_hub):
    model = "stabilityai/stable-diffusion-3-medium-diffusers"
    mock_hub.get(
        model_api(model),
        json={"id": model, "pipeline_tag": "text-to-image", "inferenceProviderMapping": {"hf-inference": {}}},
    )
    for _ in range(3):
        body = assert_error_shape(complete(client, model), 400, "invalid_request")
        assert f"{model} serves text-to-image" in body["message"] and "not text-completion" in body["message"]
    assert len(lookups(mock_hub)) == 1  # asked once, then kept
    assert inference_calls(mock_hub) == []  # never posted, never billed


def test_the_providers_tasks_count_beside_the_pipeline_tag(client, mock_hub):
    model = "org/mixed-model"
    mapping = [{"provider": "hf-inference", "task": "text-generation", "status": "live"}]
    mock_hub.get(
        model_api(model), json={"id": model, "pipeline_tag": "text-to-image", "inferenceProviderMapping": mapping}
    )
    mock_hub.post(f"{API}/{model}", json=[{"generated_text": " there was a dress."}])
    assert complete(client, model).status_code == 200


def test_a_hub_id_that_serves_the_task_is_called(client, mock_hub):
    model = "org/some-gpt"
    mock_hub.get(model_api(model), json={"id": model, "pipeline_tag": "text-generation"})
    mock_hub.post(f"{API}/{model}", json=[{"generated_text": " there was a dress."}])
    assert complete(client, model).status_code == 200
    assert complete(client, model).status_code == 200
    assert len(lookups(mock_hub)) == 1
    assert len(inference_calls(mock_hub)) == 2


def test_a_model_the_hub_does_not_know_is_called_and_answers_404(client, mock_hub):
    model = "org/no-such-model"
    mock_hub.get(model_api(model), status=404, json={"error": "Repository not found"})
    mock_hub.post(f"{API}/{model}", status=404, json={"error": f"Model {model} does not exist"})
    assert_error_shape(complete(client, model), 404, "model_not_found")


def test_when_the_hub_fails_the_model_is_called_counted_and_logged_and_not_asked_again_at_once(
    client, mock_hub, captured_logs
):
    model = "org/unlisted-gpt"
    mock_hub.get(model_api(model), status=500, body="<html>oops</html>", content_type="text/html")
    mock_hub.post(f"{API}/{model}", json=[{"generated_text": " there was a dress."}])
    before = unknown_count("call")
    assert complete(client, model).status_code == 200
    assert complete(client, model).status_code == 200
    assert unknown_count("call") == before + 2
    assert len(lookups(mock_hub)) == 1  # the failure is kept: the next request does not wait on the Hub
    assert any(
        "model task unknown" in record.getMessage() and model in record.getMessage() for record in captured_logs.records
    )


def test_a_slow_hub_is_waited_for_once_only(clock, mock_hub):
    app = make_app(make_settings(hf_hub_api_base=HUB_API, model_task_lookup_seconds=0.2), TEST_CATALOG, clock)
    client = app.test_client()
    model = "org/slow-to-describe"
    answer_now = threading.Event()

    def slow_model_api(request):
        answer_now.wait(10)
        return 200, {}, '{"pipeline_tag": "text-to-image"}'

    mock_hub.add_callback("GET", model_api(model), callback=slow_model_api)
    mock_hub.post(f"{API}/{model}", json=[{"generated_text": " there was a dress."}])
    try:
        assert complete(client, model).status_code == 200  # waited 0.2 s, then called
        assert complete(client, model).status_code == 200  # the same lookup is out: no second wait
    finally:
        answer_now.set()
    gateway = app.extensions["gateway"]
    for _ in range(100):
        if gateway.runner.model_tasks.hub_tasks(model).known:
            break
        threading.Event().wait(0.05)
    assert_error_shape(complete(client, model), 400, "invalid_request")  # now known, and refused
    assert len(lookups(mock_hub)) == 1


def test_refuse_when_unknown_answers_503_without_a_call(clock, mock_hub):
    settings = make_settings(hf_hub_api_base=HUB_API, model_task_unknown="refuse")
    client = make_app(settings, TEST_CATALOG, clock).test_client()
    model = "org/unlisted"
    mock_hub.get(re.compile(re.escape(HUB_API) + ".*"), status=502, body="bad gateway")
    before = unknown_count("refuse")
    refused = complete(client, model)
    assert_error_shape(refused, 503, "model_unavailable")
    assert "Retry-After" in refused.headers
    assert unknown_count("refuse") == before + 1
    assert inference_calls(mock_hub) == []


def test_a_model_on_its_own_server_is_never_looked_up(client, mock_hub):
    mock_hub.post("https://tgi.internal.test", json=[{"generated_text": " more"}])
    assert complete(client, "tgi-server").status_code == 200
    assert lookups(mock_hub) == []


@pytest.mark.parametrize(
    "document, tasks",
    [
        ({"pipeline_tag": "translation"}, {"translation"}),
        (
            {"pipeline_tag": "text-to-image", "inferenceProviderMapping": {"fal-ai": {"task": "text-to-image"}}},
            {"text-to-image"},
        ),
        ({"inferenceProviderMapping": [{"provider": "together", "task": "conversational"}]}, {"conversational"}),
        ({"pipeline_tag": None, "inferenceProviderMapping": "garbage"}, set()),
    ],
)
def test_the_hubs_tasks_are_read_from_either_mapping_form(document, tasks):
    assert hub_tasks_of(document) == HubTasks(frozenset(tasks))


def test_what_hub_tasks_can_serve():
    assert HubTasks(frozenset({"translation"})).serves() == ("text-translation",)
    assert HubTasks(frozenset({"text-to-image"})).serves() == ("text-to-image",)
    assert "text-to-image" not in HubTasks(frozenset({"text-generation"})).serves()
    assert HubTasks(frozenset({"image-classification"})).serves() == ()
    assert not hub_tasks_of("not a document").known


def test_a_key_over_its_limit_makes_no_lookup(store_backend, tmp_path, clock, mock_hub):
    secret = "model-task-limited-key-0123456789"
    key_file = tmp_path / "keys.toml"
    key_file.write_text(f'[keys.one]\nsha256 = "{hashlib.sha256(secret.encode()).hexdigest()}"\nrpm = 1\n')
    settings = make_settings(hf_hub_api_base=HUB_API, api_keys_file=key_file, **store_backend)
    client = make_app(settings, TEST_CATALOG, clock).test_client()
    mock_hub.get(re.compile(re.escape(HUB_API) + ".*"), json={"pipeline_tag": "text-generation"})
    mock_hub.post(re.compile(re.escape(API) + ".*"), json=[{"generated_text": " there was a dress."}])
    headers = {"Authorization": f"Bearer {secret}"}
    sent = [
        post(client, "text-completion", {"inputs": "Once"}, f"?model_name=org/random-{n}", headers=headers)
        for n in range(5)
    ]
    assert [answer.status_code for answer in sent] == [200, 429, 429, 429, 429]
    assert len(lookups(mock_hub)) == 1  # the refused requests never reached the Hub


def test_a_lookup_that_breaks_unforeseen_frees_its_place_and_counts_as_not_known(client, mock_hub, monkeypatch):
    model = "org/odd-answer-gpt"
    mock_hub.post(f"{API}/{model}", json=[{"generated_text": " there was a dress."}])
    tasks = client.application.extensions["gateway"].runner.model_tasks

    def broken(model_id):
        raise RuntimeError("a fault nobody foresaw")

    monkeypatch.setattr(tasks, "_ask_hub", broken)
    before = unknown_count("call")
    assert complete(client, model).status_code == 200
    assert unknown_count("call") == before + 1
    assert tasks._lookups == {}  # its place is free: a broken lookup never holds one for good
