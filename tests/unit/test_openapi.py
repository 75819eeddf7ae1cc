"""The OpenAPI document: valid, generated from the validation schemas, and true to the answers."""

import json
import re
import tomllib

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

from harness.paths import README
from service import create_app
from service.api.schemas import ARGS_SCHEMAS
from service.catalog import TASK_TYPES, Catalog, is_valid_model_name
from tests.support.app import API, TEST_CATALOG, make_settings, post

RECORDED_JPEG = b"\xff\xd8\xff\xe0 a tiny jpeg"


@pytest.fixture
def document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def readme_error_rows() -> list:
    """Return (status, error_type) of every row of the README's error table."""
    return [
        (int(status), error_type)
        for status, error_type in re.findall(r"^\| (\d{3}) \| (\w+) \|", README.read_text(), re.M)
    ]


def component(document, reference: dict) -> dict:
    """Follow a local $ref (an inline object is itself)."""
    if "$ref" not in reference:
        return reference
    node = document
    for part in reference["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return node


def validator_for(document, schema: dict) -> OAS30Validator:
    """Return a validator of one schema of the document, its $refs resolved against the whole document."""
    return OAS30Validator({**schema, "components": document["components"]})


def test_document_is_valid_openapi_3(document):
    validate_spec(document)
    assert document["openapi"].startswith("3.0")


def test_document_is_built_once_per_app(app, client):
    first = client.get("/openapi.json").get_json()
    assert app.extensions["gateway.openapi"] is app.extensions["gateway.openapi"]
    assert client.get("/openapi.json").get_json() == first


def test_the_four_tasks_are_the_apps_own_routes(app, document):
    served = {
        rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/infer/") and "<" not in rule.rule
    }
    documented = {path for path in document["paths"] if path.startswith("/api/infer/")}
    assert documented == served == {f"/api/infer/{task}" for task in TASK_TYPES}
    assert all(set(document["paths"][path]) == {"post"} for path in documented)
    assert {"/healthz", "/readyz"} <= set(document["paths"])


@pytest.mark.parametrize("task", TASK_TYPES)
def test_args_are_the_validation_schema_in_both_forms(document, task):
    operation = document["paths"][f"/api/infer/{task}"]["post"]
    body = component(document, operation["requestBody"]["content"]["application/json"]["schema"])
    assert body["required"] == ["inputs"] and body["additionalProperties"] is False
    object_form, string_form = body["properties"]["args"]["oneOf"]
    args = component(document, object_form)
    assert set(args["properties"]) == set(ARGS_SCHEMAS[task].fields)
    assert args["additionalProperties"] is False  # unknown args are refused
    assert string_form["type"] == "string"


def test_bounds_come_from_the_schemas(document):
    schemas = document["components"]["schemas"]
    assert schemas["TextToImageArgs"]["properties"]["num_sentences"]["maximum"] == 4
    assert schemas["TextTranslationArgs"]["properties"]["num_sentences"]["maximum"] == 10
    top_p = schemas["TextCompletionArgs"]["properties"]["top_p"]
    assert (top_p["minimum"], top_p["exclusiveMinimum"], top_p["maximum"]) == (0, True, 1)
    assert "exclusiveMaximum" not in top_p
    assert schemas["TextToTextRequest"]["properties"]["inputs"]["maxLength"] == 10_000


def test_limits_follow_the_settings():
    app = create_app(
        make_settings(max_input_chars=50, api_keys=frozenset({"key-1"})), Catalog(tomllib.loads(TEST_CATALOG))
    )
    document = app.test_client().get("/openapi.json").get_json()
    assert document["components"]["schemas"]["TextToTextRequest"]["properties"]["inputs"]["maxLength"] == 50
    assert document["paths"]["/api/infer/text-to-text"]["post"]["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]


def test_query_parameters(document):
    def parameters(task):
        return {p["name"]: p for p in document["paths"][f"/api/infer/{task}"]["post"]["parameters"]}

    translation = parameters("text-translation")
    assert set(translation) == {"model_name", "model_type"}
    assert translation["model_type"]["schema"]["enum"] == ["en2zh", "zh2de", "zh2en"]  # the test catalog's pairs
    assert translation["model_type"]["schema"]["default"] == "zh2en"
    for task in ("text-completion", "text-to-text", "text-to-image"):
        assert set(parameters(task)) == {"model_name"}
    pattern = re.compile(translation["model_name"]["schema"]["pattern"])
    for name in ("gpt2", "org/model-1.5", "a..b", "http://x", "org/a/b", "x" * 97, "é"):
        assert bool(pattern.search(name)) == is_valid_model_name(name), name


@pytest.mark.parametrize("task", TASK_TYPES)
def test_every_status_of_the_readme_error_table_is_documented(document, task):
    responses = document["paths"][f"/api/infer/{task}"]["post"]["responses"]
    error_types = document["components"]["schemas"]["Error"]["properties"]["error_type"]["enum"]
    usage_responses = document["paths"]["/api/usage"]["get"]["responses"]
    rows = readme_error_rows()
    assert len(rows) >= 14
    for status, error_type in rows:
        # 403 is only for reading usage; every other status may answer an inference call.
        assert str(status) in (usage_responses if status == 403 else responses), status
        assert error_type in error_types
        documented = usage_responses if status == 403 else responses
        assert component(document, documented[str(status)])["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    assert "Retry-After" in component(document, responses["429"])["headers"]


def answer_schema(document, path, status, method="post"):
    response = document["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = component(document, response)
    return response["content"]["application/json"]["schema"]


def test_text_answer_matches_the_document(document, client, mock_hub):
    mock_hub.add("POST", f"{API}/openai-community/gpt2", json=[{"generated_text": "Once upon a time"}])
    response = post(client, "text-completion", {"inputs": "Once", "args": {"num_sentences": 2}})
    assert response.status_code == 200
    validator_for(document, answer_schema(document, "/api/infer/text-completion", 200)).validate(response.get_json())
    image_answer = validator_for(document, answer_schema(document, "/api/infer/text-to-image", 200))
    assert not image_answer.is_valid(response.get_json())  # strings are not images


def test_image_answer_matches_the_document(document, client, mock_hub):
    mock_hub.add(
        "POST", f"{API}/missing/image-model", status=404, json={"error": "Model missing/image-model does not exist"}
    )
    mock_hub.add("POST", f"{API}/CompVis/stable-diffusion-v1-4", body=RECORDED_JPEG, content_type="image/jpeg")
    response = post(client, "text-to-image", {"inputs": "a dress"})
    assert response.status_code == 200, response.get_json()
    validator_for(document, answer_schema(document, "/api/infer/text-to-image", 200)).validate(response.get_json())


@pytest.mark.parametrize(
    "body, status",
    [
        ({"inputs": ""}, 400),
        ({"inputs": "x", "args": {"num_sentence": 3}}, 400),
        ({"inputs": "x", "args": "not json"}, 400),
    ],
)
def test_error_answers_match_the_document(document, client, body, status):
    response = post(client, "text-translation", body)
    assert response.status_code == status
    validator_for(document, answer_schema(document, "/api/infer/text-translation", status)).validate(
        response.get_json()
    )


def test_error_schema_refuses_an_unknown_error_type(document):
    validator = validator_for(document, {"$ref": "#/components/schemas/Error"})
    good = {"code": 400, "error_type": "invalid_request", "message": "m", "request_id": "r"}
    validator.validate(good)
    assert not validator.is_valid({**good, "error_type": "made_up"})


def test_docs_page_references_only_its_own_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    references = re.findall(r'(?:src|href|data-openapi-url)="([^"]+)"', html)
    assert len(references) >= 4
    for reference in references:
        assert reference.startswith("/"), reference
        with client.get(reference) as asset:
            assert asset.status_code == 200 and asset.data, reference
    assert "http://" not in html and "https://" not in html


def test_docs_assets_never_leave_their_folder(client):
    paths = (
        "/docs/assets/../__init__.py",
        "/docs/assets/%2e%2e/__init__.py",
        "/docs/assets/nope.js",
        "/docs/assets/index.html",
        "/docs/assets/swagger-initializer.js",
        "/docs/assets/oauth2-redirect.html",
    )
    for path in paths:
        with client.get(path) as response:
            assert response.status_code == 404
            assert response.get_json()["error_type"] == "not_found"


def test_models_and_metrics_are_documented_and_answer_as_documented(document, client, mock_hub):
    assert {"/api/models", "/metrics", "/healthz", "/readyz"} <= set(document["paths"])
    models = client.get("/api/models")
    schema = document["paths"]["/api/models"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    validator_for(document, component(document, schema) if "$ref" in schema else schema).validate(models.get_json())
    assert "text/plain" in document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


def test_document_is_plain_json(document):
    assert json.loads(json.dumps(document)) == document


@pytest.mark.parametrize("task", TASK_TYPES)
def test_an_answer_of_a_key_with_limits_declares_what_is_left(document, task):
    """A 200 states the key's limits and what is left of them, as a 429 does."""
    responses = document["paths"][f"/api/infer/{task}"]["post"]["responses"]
    for status in ("200", "429"):
        headers = component(document, responses[status])["headers"]
        assert headers["RateLimit-Policy"] == {"$ref": "#/components/headers/RateLimitPolicy"}, status
        assert headers["RateLimit"] == {"$ref": "#/components/headers/RateLimit"}, status
    described = document["components"]["headers"]["RateLimit"]["description"]
    assert '"rpm";r=9;t=61' in described and '"rpm";r=0;t=12' in described
