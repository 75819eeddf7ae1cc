"""POST /v1/embeddings: feature extraction on hf-inference's pipeline route, one vector per
text, through the pipeline (the model's task checked on the Hub, the answer cached)."""

import json

import pytest

from service.api.gateway import gateway_of
from service.api.openapi import build_openapi
from tests.support.app import TEST_CATALOG, make_app, make_settings

HUB_API = "https://hub.test/api"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
PIPELINE = f"https://hub.test/hf-inference/models/{MINILM}/pipeline/feature-extraction"
CATALOG = TEST_CATALOG + f'\n[tasks.feature-extraction]\ntargets = ["{MINILM}"]\n'


def model_api(mock_hub, model_id, tag):
    mock_hub.get(f"{HUB_API}/models/{model_id}", json={"id": model_id, "pipeline_tag": tag})


@pytest.fixture
def app(tmp_path, clock):
    settings = make_settings(hf_hub_api_base=HUB_API, store="sqlite", data_dir=tmp_path / "data", cache_ttl=600.0)
    return make_app(settings, CATALOG, clock)


def embed(client, body):
    return client.post("/v1/embeddings", data=json.dumps(body), content_type="application/json", buffered=True)


def test_texts_are_embedded_in_one_call_and_answered_as_floats(client, mock_hub):
    model_api(mock_hub, MINILM, "sentence-similarity")
    mock_hub.post(PIPELINE, json=[[0.1, -0.2], [0.3, 0.4]])
    answer = embed(client, {"model": MINILM, "input": ["Hi", "Bye"], "encoding_format": "base64"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert json.loads(mock_hub.calls[-1].request.body) == {"inputs": ["Hi", "Bye"]}
    document = answer.get_json()
    assert document["object"] == "list" and document["model"] == MINILM
    assert document["data"] == [
        {"object": "embedding", "index": 0, "embedding": [0.1, -0.2]},
        {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
    ]
    assert document["usage"] == {"prompt_tokens": 0, "total_tokens": 0}


def test_the_same_texts_are_answered_from_the_cache(client, mock_hub):
    mock_hub.post(PIPELINE, json=[[0.5, 0.5]])
    first = embed(client, {"model": "feature-extraction", "input": "Hi"})  # the configured chain
    second = embed(client, {"input": "Hi"})
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert first.get_json()["data"] == second.get_json()["data"]
    assert len([call for call in mock_hub.calls if call.request.method == "POST"]) == 1


def test_a_model_the_hub_says_draws_images_is_refused_before_any_call(client, mock_hub):
    model_api(mock_hub, "org/painter", "text-to-image")
    answer = embed(client, {"model": "org/painter", "input": "Hi"})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["param"] == "model"
    assert "text-to-image" in answer.get_json()["error"]["message"]
    assert all(call.request.method == "GET" for call in mock_hub.calls)


def test_token_vectors_are_no_sentence_embeddings(client, mock_hub):
    model_api(mock_hub, "facebook/bart-base", "feature-extraction")
    pipeline = "https://hub.test/hf-inference/models/facebook/bart-base/pipeline/feature-extraction"
    mock_hub.post(pipeline, json=[[[0.1, 0.2], [0.3, 0.4]]])
    answer = embed(client, {"model": "facebook/bart-base", "input": "Hi"})
    assert answer.status_code == 502
    assert "vector per token" in answer.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MINILM}, "input"),
        ({"model": MINILM, "input": []}, "input"),
        ({"model": MINILM, "input": [[1, 2, 3]]}, "input"),
        ({"model": MINILM, "input": ""}, "input"),
        ({"model": MINILM, "input": "Hi", "encoding_format": "int8"}, "encoding_format"),
        ({"model": MINILM, "input": "Hi", "dimensions": 8}, "dimensions"),
        ({"model": f"{MINILM}:together", "input": "Hi"}, "model"),
    ],
)
def test_a_bad_embedding_body_is_a_400_naming_its_field(client, mock_hub, body, param):
    answer = embed(client, body)
    assert answer.status_code == 400 and answer.get_json()["error"]["param"] == param
    assert not mock_hub.calls


def test_no_chain_and_no_model_is_a_400(clock, mock_hub):
    bare = make_app(make_settings(), TEST_CATALOG, clock).test_client()
    answer = embed(bare, {"input": "Hi"})
    assert answer.status_code == 400 and "no embedding chain" in answer.get_json()["error"]["message"]


def test_the_openapi_document_has_the_openai_routes_and_asks_a_key_for_them(app):
    objects = gateway_of(app)
    document = build_openapi(objects.settings, objects.catalog, type("Keys", (), {"required": True})())
    embeddings = document["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "model" not in embeddings["required"]  # this catalog has an embedding chain
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/images/generations", "/v1/embeddings", "/v1/models"):
        operation = next(iter(document["paths"][path].values()))
        assert operation["security"] == [{"bearer": []}, {"apiKey": []}]
        assert "error" in operation["responses"]["401"]["content"]["application/json"]["schema"]["properties"]
    assert "/models/{model}/v1/chat/completions" in document["paths"]
