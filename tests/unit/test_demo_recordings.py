"""The demo's answers are recordings, not text written for it: each entry of
service/demo/recordings.json is an entry of tests/recordings, unchanged, with its source."""

import json

import pytest

from harness.paths import REPO_ROOT
from service.demo import __main__ as launcher
from service.demo.recordings import RECORDINGS, recordings
from service.demo.upstream import model_info, recording_for_call

TEST_RECORDINGS = [REPO_ROOT / "tests" / "recordings" / name for name in ("recordings.json", "providers.json")]


def test_every_demo_answer_is_a_recording_of_the_tests_unchanged():
    recorded = [entry for path in TEST_RECORDINGS for entry in json.loads(path.read_text(encoding="utf-8"))]
    demo = json.loads(RECORDINGS.read_text(encoding="utf-8"))
    assert demo and all({k: v for k, v in entry.items() if k != "task"} in recorded for entry in demo)
    assert all(
        entry["source"].startswith(("huggingface/huggingface_hub@", "huggingface/huggingface.js@")) for entry in demo
    )


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


def test_zh2en_is_answered_in_english():
    assert json.loads(recordings()["facebook/mbart-large-50-many-to-many-mmt"].body) == [
        {"translation_text": "Hello world"}
    ]


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
