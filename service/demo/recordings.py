"""The demo's answers (recordings.json): copied unchanged from tests/recordings, where each was
taken from the public test suite of a Hugging Face client library (`source`), but one: no
recording translates Chinese, so the zh2en answer is written for the demo, and says so."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

RECORDINGS = Path(__file__).with_name("recordings.json")
# The recordings' model paths, as the service asks them of the hosted route.
HOSTED_PREFIX = "/hf-inference/models/"
CHAT_SUFFIX = "/v1/chat/completions"
# Where the client libraries' recordings come from; any other source was written for the demo.
RECORDED_SOURCES = ("huggingface/huggingface_hub@", "huggingface/huggingface.js@")


@dataclass(frozen=True)
class Recording:
    """One recorded exchange: what was asked, of which model, and what came back."""

    task: str
    model: str
    source: str
    recorded_input: str
    status: int
    content_type: str
    body: bytes

    @property
    def chat(self) -> bool:
        return self.task == "text-to-text"

    @property
    def written(self) -> bool:
        """Written for the demo rather than recorded from a model."""
        return not self.source.startswith(RECORDED_SOURCES)


def model_of(uri: str) -> str:
    """The Hub id a recorded URI asked: /hf-inference/models/<id>[/v1/chat/completions]."""
    path = urlsplit(uri).path.removeprefix(HOSTED_PREFIX)
    return path.removesuffix(CHAT_SUFFIX)


def recorded_input(request_body: dict) -> str:
    """The text the recorded request sent: `inputs`, or the last chat message."""
    if "messages" in request_body:
        return str(request_body["messages"][-1]["content"])
    return str(request_body.get("inputs", ""))


def read(entry: dict) -> Recording:
    response = entry["response"]
    body = base64.b64decode(response["body_base64"]) if "body_base64" in response else response["body_text"].encode()
    return Recording(
        task=entry["task"],
        model=model_of(entry["request"]["uri"]),
        source=entry["source"],
        recorded_input=recorded_input(entry["request"]["body"]),
        status=response["status"],
        content_type=response["headers"].get("content-type", "application/json"),
        body=body,
    )


@lru_cache(maxsize=1)
def recordings() -> dict[str, Recording]:
    """Every recording, by the Hub id of the model that answered it."""
    return {recording.model: recording for recording in map(read, json.loads(RECORDINGS.read_text("utf-8")))}
