"""huggingface.js (@huggingface/inference), the version tests/clients/package-lock.json pins,
installed and run by node as a user's script runs it."""

import json

from tests.support.node import CLIENTS, run_node

PINNED = "4.13.30"


def locked_version() -> str:
    lock = json.loads((CLIENTS / "package-lock.json").read_text(encoding="utf-8"))
    return lock["packages"]["node_modules/@huggingface/inference"]["version"]


def test_node_runs_the_pinned_client():
    found = run_node("version.mjs", "http://127.0.0.1:9/models/any")
    assert locked_version() == PINNED and found["version"] == PINNED
    assert found["client"] == "function"
    assert found["methods"] == ["translation", "textGeneration", "textToImage", "chatCompletion"]
    assert int(found["node"].split(".")[0]) >= 18  # the package's engines
    assert found["url"] == "http://127.0.0.1:9/models/any"
