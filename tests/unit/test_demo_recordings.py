"""The demo's answers are recordings, but for the one written for zh2en: each other entry of
service/demo/recordings.json is an entry of tests/recordings, unchanged, with its source; the
written one says so, in its answers and on the page. In process, the demo answers 连衣裙 zh2en in
English from models its /api/models shows live."""

import json

import pytest

from harness.paths import REPO_ROOT
from service.demo import __main__ as launcher
from service.demo.recorded_app import DEMO_MESSAGE, WRITTEN_MESSAGE, create_demo_app
from service.demo.recordings import RECORDED_SOURCES, RECORDINGS, recordings
from service.demo.upstream import RecordedUpstream, model_info, recording_for_call

ZH2EN_MODEL = "Helsinki-NLP/opus-mt-zh-en"
TEST_RECORDINGS = [REPO_ROOT / "tests" / "recordings" / name for name in ("recordings.json", "providers.json")]


def test_every_demo_answer_but_the_written_one_is_a_recording_of_the_tests_unchanged():
    recorded = [entry for path in TEST_RECORDINGS for entry in json.loads(path.read_text(encoding="utf-8"))]
    demo = json.loads(RECORDINGS.read_text(encoding="utf-8"))
    from_libraries = [entry for entry in demo if entry["source"].startswith(RECORDED_SOURCES)]
    assert len(from_libraries) == len(demo) - 1
    assert all({k: v for k, v in entry.items() if k != "task"} in recorded for entry in from_libraries)
    [written] = [recording for recording in recordings().values() if recording.written]
    assert written.model == ZH2EN_MODEL and written.source.startswith("hf-gateway demo: written")
    assert {k: v for k, v in demo[0].items() if k != "task"} not in recorded  # nothing recorded is mislabelled


def test_the_demo_holds_an_answer_for_every_task_and_route_of_its_catalog():
    from service.catalog import Catalog

    catalog = Catalog.from_file(launcher.MODELS)
    held = recordings()
    for route, targets in catalog.all_routes():
        assert all(target.id in held for target in targets), route
    assert {recording.task for recording in held.values()} == {
        "text-translation",
        "text-completion",
        "text-to-text",
        "text-to-image",
    }


def test_zh2en_is_answered_in_english_for_the_input_it_was_written_for():
    written = recordings()[ZH2EN_MODEL]
    assert (written.task, written.recorded_input, written.status) == ("text-translation", "连衣裙", 200)
    assert json.loads(written.body) == [{"translation_text": "dress"}]
    assert not recordings()["facebook/mbart-large-50-many-to-many-mmt"].written


@pytest.fixture
def demo_client(monkeypatch, tmp_path):
    """The demo's app on its recorded upstream, in process, with the demo's environment."""
    with RecordedUpstream() as upstream:
        for name, value in launcher.demo_environment({}, upstream.url, "127.0.0.1", "8098", str(tmp_path)).items():
            monkeypatch.setenv(name, value)
        yield create_demo_app().test_client()


def test_the_demo_answers_zh2en_in_english_from_models_shown_live(demo_client):
    answer = demo_client.post("/api/infer/text-translation?model_type=zh2en", json={"inputs": "连衣裙"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert (body["model"], body["result"], body["message"]) == (ZH2EN_MODEL, ["dress"], WRITTEN_MESSAGE)
    assert body["recorded"] == {"source": recordings()[ZH2EN_MODEL].source, "recorded_input": "连衣裙", "written": True}
    routes = {route["route"]: route["targets"] for route in demo_client.get("/api/models").get_json()["routes"]}
    zh2en = routes["text-translation:zh2en"]
    assert [target["model"] for target in zh2en][0] == ZH2EN_MODEL
    assert {target["status"] for route in routes.values() for target in route} == {"live"}


def test_a_recorded_answer_stays_labelled_recorded(demo_client):
    body = demo_client.post("/api/infer/text-translation?model_type=en2de", json={"inputs": "x"}).get_json()
    assert body["message"] == DEMO_MESSAGE and "written" not in body["recorded"]


def test_calls_find_their_recording_by_model_and_nothing_else():
    assert recording_for_call("/hf-inference/models/gpt2", {}).model == "gpt2"
    chat = recording_for_call("/v1/chat/completions", {"model": "meta-llama/Llama-3.1-8B-Instruct:novita"})
    assert chat.task == "text-to-text"
    assert recording_for_call("/hf-inference/models/someone/else", {}) is None
    assert recording_for_call("/elsewhere", {"model": "gpt2"}) is None
    assert model_info("gpt2")[1]["inferenceProviderMapping"]["hf-inference"]["status"] == "live"
    assert model_info("someone/else")[0] == 404


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"HF_API_TOKEN": "hf_real"}, "HF_API_TOKEN is set"),
        ({"HOST": "0.0.0.0"}, "set DEMO_PUBLIC=1"),
        ({"HOST": "10.1.2.3", "DEMO_PUBLIC": "yes"}, "set DEMO_PUBLIC=1"),  # only 1 confirms
    ],
)
def test_the_demo_is_refused_beside_a_token_or_off_loopback(environ, message):
    with pytest.raises(launcher.DemoRefused, match=message):
        launcher.demo_address(environ)


@pytest.mark.parametrize(
    "environ, address",
    [
        ({}, ("127.0.0.1", "8098")),
        ({"HOST": "::1", "PORT": "9000"}, ("::1", "9000")),
        ({"HOST": "localhost"}, ("localhost", "8098")),
        ({"HOST": "0.0.0.0", "DEMO_PUBLIC": "1"}, ("0.0.0.0", "8098")),
        ({"HF_API_TOKEN": ""}, ("127.0.0.1", "8098")),
    ],
)
def test_the_demo_serves_on_loopback_unless_confirmed(environ, address):
    assert launcher.demo_address(environ) == address


def test_the_demo_environment_overrides_what_env_says_of_upstreams_keys_and_store():
    env = launcher.demo_environment(
        {"HF_API_BASE": "https://router.huggingface.co/hf-inference/models", "API_KEYS_FILE": "config/keys.toml"},
        "http://127.0.0.1:5000",
        "127.0.0.1",
        "8098",
        "/tmp/demo-data",
    )
    assert env["HF_API_BASE"] == "http://127.0.0.1:5000/hf-inference/models"
    assert env["HF_ROUTER_BASE"] == "http://127.0.0.1:5000/v1" and env["HF_HUB_API_BASE"] == "http://127.0.0.1:5000/api"
    assert (env["API_KEYS_FILE"], env["DATA_DIR"], env["PIDFILE"]) == ("", "/tmp/demo-data", "")
