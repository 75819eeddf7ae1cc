"""The provider helpers' own rules: configuration refused at start, reasoning stripped, polled
providers (wavespeed, zai-org), router policies, and what the 2026 router changed."""

import json
import tomllib

import pytest

from harness import recordings
from harness.catalogs import task_routes
from service.catalog import Catalog, CatalogError
from service.hub.messages import HUB_TOKEN, UpstreamReply
from service.hub.providers import Providers
from service.hub.providers.helper import InferenceCall
from tests.support.app import API, ROUTER, make_app, make_settings, post
from tests.support.assertions import assert_error_shape

ROOT = "https://hub.test"
BASE = task_routes()
MODELS = """
[models.r1]
id = "deepseek-ai/DeepSeek-R1"
protocol = "openai-chat"
provider = "fireworks-ai"
[models.r1.prompts.text-translation]
user = "Translate into {target_language}: {text}"

[models.r1-thinking]
id = "deepseek-ai/DeepSeek-R1"
protocol = "openai-chat"
provider = "fireworks-ai"
keep_thinking = true

[models.wavespeed]
id = "black-forest-labs/FLUX.1-dev"
protocol = "wavespeed"
provider_model = "wavespeed-ai/flux-dev"

[models.zai]
id = "zai-org/CogView4-6B"
protocol = "zai-org"
provider_model = "cogview-4-250304"

[providers.wavespeed]
download_hosts = ["*.wavespeed.ai"]
[providers.zai-org]
download_hosts = ["*.z.ai"]
"""
# The recorded fireworks-ai chat answer, its content replaced by what a reasoning model says
# (no DeepSeek-R1 answer is among the stored recordings): the thinking first, then the answer.
FIREWORKS = next(
    entry
    for entry in recordings.from_clients("fireworks-ai")
    if entry["response"]["status"] == 200
    and entry["response"]["headers"]["content-type"].startswith("application/json")
)
THINKING = "<think>\nThe user wants the dress in English. 连衣裙 is a one-piece dress.\n</think>\n\n"


def reasoning_answer(content: str) -> dict:
    document = recordings.json_body(FIREWORKS)
    document["choices"][0]["message"]["content"] = content
    return document


@pytest.fixture
def client(clock):
    settings = make_settings(hf_providers_base=ROOT, max_image_bytes=4 * 1024 * 1024)
    return make_app(settings, BASE + MODELS, clock).test_client()


PROVIDERS = Providers.from_settings(make_settings(hf_providers_base=ROOT))


def checked(models: str) -> None:
    PROVIDERS.check(Catalog(tomllib.loads(BASE + models)))


@pytest.mark.parametrize(
    "models, named",
    [
        ('[models.m]\nprotocol = "fal-ai"\nprovider_model = "fal-ai/flux/dev"\nprompts = {}\n', "prompts"),
        ('[models.m]\nprotocol = "hf-inference"\nprovider_model = "x"\n', "provider_model"),
        ('[models.m]\nprotocol = "openai-chat"\nlang_codes = {zh = "zh_CN"}\n', "lang_codes"),
        ('[models.m]\nprotocol = "replicate"\nprovider_model = "a/b"\nsize = "1024x1024"\n', "size"),
        ('[models.m]\nprotocol = "openai-completions"\nprompts = {}\n', "prompts"),
        ('[models.m]\nprotocol = "wavespeed"\nprovider_model = "a/b"\nwidth = 512\n', "width"),
        ("[models.m]\ntemperature = 0.2\n", "temperature"),
    ],
)
def test_a_key_the_models_helper_does_not_take_is_refused_at_start_naming_the_model(models, named):
    with pytest.raises(CatalogError, match=rf"models\.m: {named} not taken"):
        checked(models)


@pytest.mark.parametrize(
    "models, says",
    [
        ('[models.m]\nprotocol = "fal-ai"\n', "needs provider_model"),
        ('[models.m]\nprotocol = "zai-org"\n', "needs provider_model"),
        ('[models.m]\nprotocol = "openai-images"\nprovider_model = "x"\n', "needs provider = one of nscale, together"),
        ('[models.m]\nprotocol = "openai-images"\nprovider = "fal-ai"\nprovider_model = "x"\n', "needs provider"),
        ('[models.m]\nprotocol = "grpc"\n', "protocol must be one of"),
        ('[models.m]\nprotocol = "openai-chat"\nkeep_thinking = "yes"\n', "keep_thinking must be a boolean"),
    ],
)
def test_a_model_its_helper_cannot_serve_is_refused_at_start(models, says):
    with pytest.raises(CatalogError, match=says):
        checked(models)


@pytest.mark.parametrize("provider", ["black-forest-labs", "clarifai", "hyperbolic", "nebius", "nvidia", "sambanova"])
def test_providers_removed_from_the_router_are_refused_at_start_with_that_reason(provider):
    with pytest.raises(
        CatalogError, match=f"provider {provider} was removed from the Hugging Face router on 2026-07-01"
    ):
        checked(f'[models.m]\nprotocol = "openai-chat"\nprovider = "{provider}"\n')


@pytest.mark.parametrize("policy", ["fastest", ":fastest", "cheapest", ":cheapest", "preferred", ":preferred"])
def test_router_policies_are_providers_of_chat_models(clock, mock_hub, policy):
    models = f'[models.m]\nid = "meta-llama/Llama-3.1-8B-Instruct"\nprotocol = "openai-chat"\nprovider = "{policy}"\n'
    client = make_app(make_settings(), BASE + models, clock).test_client()
    mock_hub.post(f"{ROUTER}/chat/completions", json=reasoning_answer("Dress"))
    assert post(client, "text-to-text", {"inputs": "连衣裙"}, query="?model_name=m").status_code == 200
    sent = json.loads(mock_hub.calls[0].request.body)["model"]
    assert sent == f"meta-llama/Llama-3.1-8B-Instruct:{policy.lstrip(':')}"


def test_wavespeed_and_zai_org_serve_text_to_image():
    catalog = Catalog(tomllib.loads(BASE + MODELS))
    assert PROVIDERS.tasks_served(catalog.models["wavespeed"]) == ["text-to-image"]
    assert PROVIDERS.tasks_served(catalog.models["zai"]) == ["text-to-image"]
    assert PROVIDERS.helper_for(catalog.models["wavespeed"], "text-to-text") is None


POLLED = [
    pytest.param(
        'protocol = "replicate"\nprovider_model = "a/b:1f2e"',
        {"status": "processing", "id": "jf23", "urls": {"get": "https://api.replicate.com/v1/predictions/jf23"}},
        f"{ROOT}/replicate/v1/predictions/jf23",
        {},
        id="replicate",
    ),
    pytest.param(
        'protocol = "wavespeed"\nprovider_model = "wavespeed-ai/flux-dev"',
        {"data": {"status": "processing", "urls": {"get": "https://api.wavespeed.ai/api/v3/predictions/7c1e/result"}}},
        f"{ROOT}/wavespeed/api/v3/predictions/7c1e/result",
        {},
        id="wavespeed",
    ),
    pytest.param(
        'protocol = "zai-org"\nprovider_model = "cogview-4-250304"',
        {"id": "9f2a-1", "task_status": "PROCESSING"},
        f"{ROOT}/zai-org/api/paas/v4/async-result/9f2a-1",
        {"Accept-Language": "en-US,en"},
        id="zai-org",
    ),
]


@pytest.mark.parametrize("entry, answer, polled_url, headers", POLLED)
def test_a_polled_provider_asks_again_with_a_get_under_its_base_url_with_the_hub_token(
    entry, answer, polled_url, headers
):
    target = Catalog(tomllib.loads(f'{BASE}[models.m]\nid = "o/m"\n{entry}\n')).models["m"]
    helper = PROVIDERS.helper_for(target, "text-to-image")
    call = InferenceCall("text-to-image", target, "a dress", {"num_sentences": 1})
    sent = helper.request(call, None, 1)
    poll = helper.next_poll(call, UpstreamReply(200, {}, json.dumps(answer).encode()), sent)
    assert sent.url.startswith(f"{ROOT}/{target.protocol}/") and sent.method == "POST"
    assert (poll.request.method, poll.request.url, poll.request.payload) == ("GET", polled_url, None)
    assert poll.request.headers == headers and poll.request.credential == HUB_TOKEN
    assert poll.after_seconds > 0


def test_helpers_are_reached_at_the_bases_the_settings_name():
    settings = make_settings(hf_api_base="https://a.test/models", hf_router_base="https://b.test/v1")
    providers = Providers.from_settings(settings)
    catalog = Catalog(
        tomllib.loads(
            BASE + '[models.hosted]\nid = "o/hosted"\n[models.chat]\nid = "o/chat"\nprotocol = "openai-chat"\n'
            '[models.novita]\nid = "o/novita"\nprotocol = "openai-completions"\nprovider = "novita"\n'
        )
    )

    def url_of(key: str, task_type: str) -> str:
        target = catalog.models[key]
        return providers.helper_for(target, task_type).url(InferenceCall(task_type, target, "Once", {}))

    assert url_of("hosted", "text-completion") == "https://a.test/models/o/hosted"
    assert url_of("chat", "text-to-text") == "https://b.test/v1/chat/completions"
    assert url_of("novita", "text-completion") == f"{settings.hf_providers_base}/novita/v3/openai/completions"


def test_a_reasoning_models_thinking_is_stripped_from_text_to_text_and_translation(client, mock_hub):
    mock_hub.post(f"{ROUTER}/chat/completions", json=reasoning_answer(THINKING + "Dress"))
    mock_hub.post(f"{ROUTER}/chat/completions", json=reasoning_answer(THINKING + "One-piece dress"))
    text = post(client, "text-to-text", {"inputs": "连衣裙"}, query="?model_name=r1").get_json()
    translation = post(client, "text-translation", {"inputs": "连衣裙"}, query="?model_name=r1").get_json()
    assert text["result"] == ["Dress"]
    assert translation["result"] == ["One-piece dress"]


def test_keep_thinking_keeps_it(client, mock_hub):
    mock_hub.post(f"{ROUTER}/chat/completions", json=reasoning_answer(THINKING + "Dress"))
    result = post(client, "text-to-text", {"inputs": "连衣裙"}, query="?model_name=r1-thinking").get_json()["result"]
    assert result[0].startswith("<think>") and result[0].endswith("Dress")


def test_a_translation_answered_as_generated_text_is_read(client, mock_hub):
    mock_hub.post(f"{API}/Helsinki-NLP/opus-mt-zh-en", json=[{"generated_text": "Dress"}])
    assert post(client, "text-translation", {"inputs": "连衣裙"}).get_json()["result"] == ["Dress"]


def test_wavespeed_task_is_polled_then_its_output_downloaded(client, mock_hub, clock):
    # The shapes of wavespeed's API as huggingface_hub's wavespeed helper reads them.
    result_path = "/api/v3/predictions/7c1e/result"
    submitted = {
        "code": 200,
        "data": {
            "id": "7c1e",
            "status": "created",
            "outputs": [],
            "urls": {"get": f"https://api.wavespeed.ai{result_path}"},
        },
    }
    mock_hub.post(f"{ROOT}/wavespeed/api/v3/wavespeed-ai/flux-dev", json=submitted)
    mock_hub.get(f"{ROOT}/wavespeed{result_path}", json={"data": {**submitted["data"], "status": "processing"}})
    mock_hub.get(
        f"{ROOT}/wavespeed{result_path}",
        json={"data": {**submitted["data"], "status": "completed", "outputs": ["https://cdn.wavespeed.ai/o/1.png"]}},
    )
    png = recordings.recorded_body("/out-0.png", recordings.PROVIDERS_FILE)
    mock_hub.get("https://cdn.wavespeed.ai/o/1.png", body=png, content_type="image/png")
    response = post(
        client,
        "text-to-image",
        {"inputs": "a dress", "args": {"width": 512, "height": 512}},
        query="?model_name=wavespeed",
    )
    assert response.status_code == 200, response.get_json()
    assert json.loads(mock_hub.calls[0].request.body) == {"prompt": "a dress", "size": "512*512"}
    assert clock.sleeps.count(0.5) == 2


def test_zai_org_generation_is_polled_by_its_id_then_downloaded(client, mock_hub, clock):
    mock_hub.post(
        f"{ROOT}/zai-org/api/paas/v4/async/images/generations", json={"id": "9f2a-1", "task_status": "PROCESSING"}
    )
    mock_hub.get(f"{ROOT}/zai-org/api/paas/v4/async-result/9f2a-1", json={"task_status": "PROCESSING"})
    mock_hub.get(
        f"{ROOT}/zai-org/api/paas/v4/async-result/9f2a-1",
        json={"task_status": "SUCCESS", "image_result": [{"url": "https://files.z.ai/1.png"}]},
    )
    png = recordings.recorded_body("/out-0.png", recordings.PROVIDERS_FILE)
    mock_hub.get("https://files.z.ai/1.png", body=png, content_type="image/png")
    response = post(client, "text-to-image", {"inputs": "a dress"}, query="?model_name=zai")
    assert response.status_code == 200, response.get_json()
    assert json.loads(mock_hub.calls[0].request.body) == {"model": "cogview-4-250304", "prompt": "a dress"}


def test_zai_org_failure_is_an_upstream_error(client, mock_hub):
    mock_hub.post(f"{ROOT}/zai-org/api/paas/v4/async/images/generations", json={"id": "9f2a-2", "task_status": "FAIL"})
    assert_error_shape(
        post(client, "text-to-image", {"inputs": "a dress"}, query="?model_name=zai"), 502, "upstream_error"
    )


def test_an_upstream_408_is_retried_like_a_504(client, mock_hub):
    mock_hub.post(f"{API}/openai-community/gpt2", body="Request Timeout", status=408)
    mock_hub.post(f"{API}/openai-community/gpt2", json=[{"generated_text": " and so on"}])
    response = post(client, "text-completion", {"inputs": "Once"})
    assert response.status_code == 200, response.get_json()
    assert len(mock_hub.calls) == 2


def test_num_sentences_beside_inputs_is_taken_like_in_args(client, mock_hub):
    mock_hub.post(f"{API}/openai-community/gpt2", json=[{"generated_text": " more"}])
    response = post(client, "text-completion", {"inputs": "Once", "num_sentences": 3, "args": {"do_sample": False}})
    assert response.get_json()["result"] == [" more"] * 3


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": "Once", "num_sentences": 3, "args": {"num_sentences": 2}},
        {"inputs": "Once", "num_sentences": 3, "args": '{"num_sentences": 2}'},
    ],
)
def test_num_sentences_given_twice_with_different_values_is_400(client, mock_hub, body):
    result = assert_error_shape(post(client, "text-completion", body), 400, "invalid_request")
    assert "num_sentences" in result["message"]
    assert len(mock_hub.calls) == 0


def test_num_sentences_beside_inputs_is_validated_like_in_args(client, mock_hub):
    result = assert_error_shape(
        post(client, "text-completion", {"inputs": "Once", "num_sentences": 11}), 400, "invalid_request"
    )
    assert "num_sentences" in result["message"]
