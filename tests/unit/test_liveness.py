"""Which providers serve each configured model, from the Hub's model API: /api/models and
`python -m service models`; never an inference call."""

import re

import pytest

from service.cli import main as command_line
from service.pipeline.liveness import parse_provider_mapping, target_status
from tests.support.app import TEST_CATALOG, make_app, make_settings

HUB_API = "https://hub-api.test/api"


@pytest.fixture
def app(clock):
    return make_app(make_settings(hf_hub_api_base=HUB_API), TEST_CATALOG, clock)


@pytest.mark.parametrize(
    "mapping, expected",
    [
        ({"hf-inference": {"status": "live", "providerId": "x", "task": "translation"}}, {"hf-inference": "live"}),
        (
            [{"provider": "fal-ai", "status": "staging"}, {"provider": "together", "status": "live"}],
            {"fal-ai": "staging", "together": "live"},
        ),
        (None, {}),
        ("garbage", {}),
    ],
)
def test_provider_mapping_both_forms(mapping, expected):
    assert parse_provider_mapping(mapping) == expected


def test_target_status():
    assert target_status("hf-inference", {"hf-inference": "live"}) == "live"
    assert target_status("hf-inference", {"together": "live"}) == "not_served"
    assert target_status(None, {"together": "live"}) == "live"
    assert target_status(None, {"together": "staging"}) == "not_served"  # the router picks live ones only
    assert target_status(None, {"together": "error", "novita": "staging"}) == "degraded"
    assert target_status("together", {"together": "error"}) == "degraded"
    assert target_status("together", {"together": "staging"}) == "staging"


def hub_model(mock_hub, model_id, mapping, status=200):
    mock_hub.get(
        f"{HUB_API}/models/{model_id}?expand[]=inferenceProviderMapping",
        json={"id": model_id, "inferenceProviderMapping": mapping}
        if status == 200
        else {"error": "Repository not found"},
        status=status,
    )


def test_api_models_lists_routes_with_live_status_and_caches(client, mock_hub):
    hub_model(mock_hub, "Helsinki-NLP/opus-mt-zh-en", {"hf-inference": {"status": "live"}})
    hub_model(mock_hub, "missing/model", None, status=404)
    # Every other model is unknown to the Hub too: no lookup retries, so the shared fake clock
    # (which the lookups' retry waits would move) stays put.
    mock_hub.get(re.compile(re.escape(HUB_API) + "/models/.*"), json={"error": "Repository not found"}, status=404)
    report = client.get("/api/models").get_json()
    routes = {route["route"]: route["targets"] for route in report["routes"]}
    assert routes["text-translation:zh2en"][0]["status"] == "live"
    assert routes["text-translation:zh2de"][0]["status"] == "not_found"
    assert routes["text-to-image"][0]["model"] == "missing/image-model"
    calls = len(mock_hub.calls)
    client.get("/api/models")
    assert len(mock_hub.calls) == calls  # served from the cache
    assert not any("/hf-inference/" in call.request.url for call in mock_hub.calls)  # never calls a model


def test_operator_command_prints_the_table(monkeypatch, tmp_path, mock_hub, capsys):
    config = tmp_path / "models.toml"
    config.write_text(TEST_CATALOG)
    monkeypatch.setenv("MODELS_CONFIG", str(config))
    monkeypatch.setenv("HF_HUB_API_BASE", HUB_API)
    hub_model(mock_hub, "Helsinki-NLP/opus-mt-zh-en", [{"provider": "hf-inference", "status": "live"}])
    mock_hub.get(re.compile(re.escape(HUB_API) + "/models/.*"), json={"error": "Repository not found"}, status=404)
    assert command_line(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ROUTE", "#", "MODEL", "PROTOCOL", "PROVIDER", "STATUS"]
    row = next(line for line in lines if "Helsinki-NLP/opus-mt-zh-en" in line)
    assert row.split()[-1] == "live"
    with pytest.raises(SystemExit) as usage_error:
        command_line(["nonsense"])
    assert usage_error.value.code == 2


def test_liveness_non_json_answer_is_an_error_not_not_served(client, mock_hub):
    mock_hub.get(
        re.compile(re.escape(HUB_API) + "/models/.*"),
        body="<html>maintenance</html>",
        status=200,
        content_type="text/html",
    )
    routes = {route["route"]: route["targets"] for route in client.get("/api/models").get_json()["routes"]}
    assert routes["text-translation:zh2en"][0]["status"] == "upstream_error"
