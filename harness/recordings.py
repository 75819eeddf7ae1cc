"""The real upstream exchanges the tests replay, kept inside the repository (tests/recordings/)."""

from __future__ import annotations

import base64
import json
from functools import cache

from harness.paths import RECORDINGS_DIR

# The hosted route's answers, the router's other providers, then hf-inference's pipeline routes
# (see tests/recordings/README.md).
HOSTED_FILE = "recordings.json"
PROVIDERS_FILE = "providers.json"
RECORDING_FILES = (HOSTED_FILE, PROVIDERS_FILE)


@cache
def load(name: str) -> tuple:
    """Return the entries of one recordings file, by its path under tests/recordings/."""
    return tuple(json.loads((RECORDINGS_DIR / name).read_text(encoding="utf-8")))


def hosted() -> tuple:
    """Return the hosted route's recorded exchanges."""
    return load(HOSTED_FILE)


def providers() -> tuple:
    """Return the router providers' recorded exchanges."""
    return load(PROVIDERS_FILE)


def response_body(entry: dict) -> bytes:
    """Return the recorded response body as bytes, text or binary alike."""
    response = entry["response"]
    if "body_base64" in response:
        return base64.b64decode(response["body_base64"])
    return response.get("body_text", "").encode("utf-8")


def recorded_body(uri_suffix: str, name: str = HOSTED_FILE, binary: bool = True) -> bytes:
    """Return the body answered to the first request whose URI ends with `uri_suffix`."""
    for entry in load(name):
        if entry["request"]["uri"].endswith(uri_suffix) and (not binary or "body_base64" in entry["response"]):
            return response_body(entry)
    raise LookupError(f"no recording in {name} answers a URI ending with {uri_suffix}")


def from_clients(provider: str) -> tuple:
    """Return one provider's exchanges recorded by the client libraries (tests/recordings/huggingface_js/)."""
    return load(f"huggingface_js/{provider}.json")


def json_body(entry: dict):
    """Return the recorded response body parsed as JSON."""
    return json.loads(response_body(entry))
