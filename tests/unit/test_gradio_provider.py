"""The Gradio helper: the submit it builds, the stream it reads, the checks of its model entries,
against answers recorded from the real apps of tests/gradio_apps (tests/recordings/gradio.json)."""

import json
from pathlib import Path

import pytest

from service.api.schemas import ARGS_SCHEMAS
from service.catalog import Catalog, CatalogError
from service.errors import ModelUnavailable, UpstreamError
from service.hub.downloads import ImageLink
from service.hub.messages import HUB_TOKEN, UpstreamReply
from service.hub.providers import Providers
from service.hub.providers.gradio import GIVES, space_host
from service.hub.providers.helper import InferenceCall

RECORDINGS = json.loads((Path(__file__).parents[1] / "recordings" / "gradio.json").read_text())
ROUTES = """
[tasks.text-translation]
default_pair = "zh2en"
[tasks.text-translation.pairs]
zh2en = {zh2en}
[tasks.text-completion]
targets = ["gpt2"]
[tasks.text-to-text]
targets = ["gpt2"]
[tasks.text-to-image]
targets = {image}
"""
MODELS = """
[models.echo]
protocol = "gradio"
url = "http://127.0.0.1:7861"
api_name = "translate"
inputs = ["text", "source_language", "target_language"]
[models.picture]
protocol = "gradio"
space = "Some_Owner/My.Space"
api_name = "/draw"
inputs = ["text", "seed", "width", "height"]
[models.private-picture]
protocol = "gradio"
space = "owner/private"
api_name = "draw"
token = true
"""


def load(models: str = MODELS, zh2en='["echo"]', image='["picture"]'):
    import tomllib

    catalog = Catalog(tomllib.loads(ROUTES.format(zh2en=zh2en, image=image) + models))
    providers = Providers("https://router.example/p", "https://router.example/h", "https://router.example/v1")
    providers.check(catalog)
    return catalog, providers


def recorded(name: str, port: int = 7862) -> UpstreamReply:
    entry = RECORDINGS[name]
    body = entry["body"].replace("PORT", str(port)).encode()
    return UpstreamReply(entry["status"], {"content-type": entry["content_type"]}, body)


def translation_call(catalog):
    from service.catalog import LanguagePair

    return InferenceCall(
        "text-translation",
        catalog.models["echo"],
        "hello",
        {"num_sentences": 1},
        pair=LanguagePair("zh2en", "zh", "en"),
        source_language="Simplified Chinese",
        target_language="English",
    )


def test_a_space_is_reached_at_its_hf_space_host():
    assert space_host("Some_Owner/My.Space") == "some-owner-my-space.hf.space"
    assert space_host("gradio/hello_world") == "gradio-hello-world.hf.space"


def test_the_submit_fills_the_function_inputs_by_position_without_a_token():
    catalog, providers = load()
    call = translation_call(catalog)
    request = providers.helper_for(call.target, call.task_type).request(call, None, 1)
    assert request.url == "http://127.0.0.1:7861/gradio_api/call/translate"
    assert request.payload == {"data": ["hello", "Simplified Chinese", "English"]}
    assert request.credential is None


def test_an_image_call_sends_the_seed_and_unset_args_as_null_to_the_space():
    catalog, providers = load()
    call = InferenceCall("text-to-image", catalog.models["picture"], "a cat", {"num_sentences": 1, "width": 32})
    request = providers.helper_for(call.target, call.task_type).request(call, 7, 1)
    assert request.url == "https://some-owner-my-space.hf.space/gradio_api/call/draw"
    assert request.payload == {"data": ["a cat", 7, 32, None]}
    assert request.credential is None


def test_a_private_space_gets_the_hub_token_only_when_configured():
    catalog, providers = load(image='["private-picture"]')
    call = InferenceCall("text-to-image", catalog.models["private-picture"], "a cat", {"num_sentences": 1})
    assert providers.helper_for(call.target, call.task_type).request(call, None, 1).credential == HUB_TOKEN


def test_the_event_id_is_polled_and_the_completed_stream_is_the_text():
    catalog, providers = load()
    call = translation_call(catalog)
    helper = providers.helper_for(call.target, call.task_type)
    submit = helper.request(call, None, 1)
    poll = helper.next_poll(call, recorded("submit"), submit)
    assert poll.request.method == "GET"
    assert poll.request.url == "http://127.0.0.1:7861/gradio_api/call/translate/3e0193bf16154243a517eb01f6f02ad0"
    assert poll.request.credential is None
    stream = recorded("echo_complete")
    assert helper.next_poll(call, stream, poll.request) is None
    assert helper.parse(call, stream, 1) == ["HELLO [English->German]"]


def test_an_image_output_is_a_link_allowed_only_from_the_app_itself():
    catalog, providers = load(image='["echo-image"]', models=MODELS + ECHO_IMAGE)
    call = InferenceCall("text-to-image", catalog.models["echo-image"], "a cat", {"num_sentences": 1})
    [link] = providers.helper_for(call.target, call.task_type).parse(call, recorded("image_complete", 7862), 1)
    assert isinstance(link, ImageLink)
    assert link.url.startswith("http://127.0.0.1:7862/gradio_api/file=/tmp/gradio/")
    assert link.hosts == ("http://127.0.0.1:7862",)


def test_a_space_image_is_allowed_from_its_own_host_only():
    catalog, providers = load()
    call = InferenceCall("text-to-image", catalog.models["picture"], "a cat", {"num_sentences": 1})
    [link] = providers.helper_for(call.target, call.task_type).parse(call, recorded("image_complete"), 1)
    assert link.hosts == ("some-owner-my-space.hf.space",)


ECHO_IMAGE = """
[models.echo-image]
protocol = "gradio"
url = "http://127.0.0.1:7862"
api_name = "draw"
"""


def test_a_function_that_raised_without_a_message_is_the_targets_failure():
    catalog, providers = load()
    call = translation_call(catalog)
    helper = providers.helper_for(call.target, call.task_type)
    poll = helper.next_poll(call, recorded("submit"), helper.request(call, None, 1))
    with pytest.raises(ModelUnavailable, match="function failed: it gave no message"):
        helper.next_poll(call, recorded("raised"), poll.request)


def test_an_error_message_of_the_app_is_passed_on():
    catalog, providers = load()
    call = translation_call(catalog)
    helper = providers.helper_for(call.target, call.task_type)
    reply = UpstreamReply(200, {}, b'event: error\ndata: {"error": "out of memory"}\n\n')
    with pytest.raises(ModelUnavailable, match="out of memory"):
        helper.next_poll(call, reply, helper.poll_at(call, "/x", 0).request)


@pytest.mark.parametrize(
    "body, message",
    [
        (b"event: heartbeat\ndata: null\n\n", "without a result"),
        (b"event: complete\ndata: [1]\n\n", "not a text"),
        (b"event: complete\ndata: []\n\n", "no output 0"),
        (b"event: complete\ndata: [oops\n\n", "not JSON"),
    ],
)
def test_a_stream_without_a_text_result_is_refused(body, message):
    catalog, providers = load()
    call = translation_call(catalog)
    with pytest.raises(UpstreamError, match=message):
        providers.helper_for(call.target, call.task_type).parse(call, UpstreamReply(200, {}, body), 1)


def test_a_submit_without_an_event_id_is_refused():
    catalog, providers = load()
    call = translation_call(catalog)
    helper = providers.helper_for(call.target, call.task_type)
    with pytest.raises(UpstreamError, match="event_id"):
        helper.next_poll(call, UpstreamReply(200, {}, b"{}"), helper.request(call, None, 1))


@pytest.mark.parametrize(
    "entry, message",
    [
        ('protocol = "gradio"\nurl = "http://127.0.0.1:1"', "needs api_name"),
        ('protocol = "gradio"\napi_name = "draw"', "either space"),
        ('protocol = "gradio"\nspace = "a/b"\nurl = "http://127.0.0.1:1"\napi_name = "draw"', "either space"),
        ('protocol = "gradio"\nspace = "a/b"\napi_name = "draw"\nsteps = 3', "steps not taken"),
        ('protocol = "gradio"\nspace = "a/b"\napi_name = "draw"\ninputs = ["prompt"]', "prompt given by no task"),
        ('protocol = "gradio"\nurl = "http://127.0.0.1:1"\napi_name = "draw"\ntoken = true', "to a space only"),
        ('protocol = "gradio"\nspace = "not a space"\napi_name = "draw"', "Space id"),
        ('protocol = "gradio"\nspace = "a/b"\napi_name = "draw"\noutput = -1', "output must be"),
    ],
)
def test_a_bad_entry_is_refused_at_start_naming_it(entry, message):
    with pytest.raises(CatalogError, match=message) as caught:
        load(models=f"[models.bad]\n{entry}\n", image='["bad"]', zh2en='["gpt2"]')
    assert "models.bad" in str(caught.value)


def test_a_chain_whose_task_does_not_give_an_input_is_refused_at_start():
    with pytest.raises(CatalogError, match="'echo'.*cannot serve text-to-image; it serves: text-translation"):
        load(image='["echo"]')


def test_the_names_a_task_gives_are_its_documented_args():
    for task, names in GIVES.items():
        args = set(ARGS_SCHEMAS[task].fields) - {"num_sentences"}
        assert args <= set(names), task
        assert set(names) - args <= {"text", "source_language", "target_language", "src", "tgt"}


HUB_API = "https://hub-api.test/api"
RUNTIME = f"{HUB_API}/spaces/Some_Owner/My.Space/runtime"


def space_report(clock) -> list:
    """The Gradio targets of /api/models asked twice, for an app whose chains are this module's."""
    from tests.support.app import make_app, make_settings

    catalog_toml = ROUTES.format(zh2en='["echo"]', image='["picture"]') + MODELS
    app = make_app(make_settings(hf_hub_api_base=HUB_API), catalog_toml, clock)
    client = app.test_client()
    client.get("/api/models")  # the second report is served from what the first one kept
    routes = client.get("/api/models").get_json()["routes"]
    return [target for route in routes for target in route["targets"] if target["protocol"] == "gradio"]


@pytest.mark.parametrize(
    ("answer", "status", "shown"),
    [
        (
            {"json": {"stage": "SLEEPING", "hardware": {"current": None}}},
            200,
            {"status": "sleeping", "stage": "SLEEPING"},
        ),
        ({"json": {"stage": "RUNNING_BUILDING"}}, 200, {"status": "building", "stage": "RUNNING_BUILDING"}),
        ({"json": {"stage": "RUNTIME_ERROR"}}, 200, {"status": "error", "stage": "RUNTIME_ERROR"}),
        ({"json": {"error": "Repository not found"}}, 404, {"status": "not_found"}),
        ({"json": ["not", "a", "runtime"]}, 200, {"status": "upstream_error"}),
    ],
)
def test_a_space_shows_the_state_the_hubs_spaces_api_gives(mock_hub, clock, answer, status, shown):
    mock_hub.get(RUNTIME, status=status, **answer)
    targets = space_report(clock)
    (space,) = [target for target in targets if target["key"] == "picture"]
    assert {name: space.get(name) for name in shown} == shown and ("stage" in space) == ("stage" in shown)
    assert space["url"] == "https://some-owner-my-space.hf.space"
    (echo,) = [target for target in targets if target["key"] == "echo"]
    assert echo["status"] == "self-hosted"  # an app of one's own has no state on the Hub
    # The Space was asked once for both reports, and never looked up as a model.
    asked = [call.request.url for call in mock_hub.calls]
    assert asked.count(RUNTIME) == 1 and not any("/models/" in url and "Space" in url for url in asked)
