"""The demo's upstream: the Hugging Face router and the Hub's model API, as far as the demo's
catalog asks them, answered from recordings on the loopback interface. Nothing goes further."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from service.demo.recordings import CHAT_SUFFIX, HOSTED_PREFIX, Recording, recordings

LOOPBACK = "127.0.0.1"
MODEL_API_PREFIX = "/api/models/"
ROUTER_CHAT = "/v1/chat/completions"
# The Hub's pipeline tag of each demo task, for its model API (liveness and model_name checks).
PIPELINE_TAGS = {
    "text-translation": "translation",
    "text-completion": "text-generation",
    "text-to-text": "text-generation",
    "text-to-image": "text-to-image",
}


class RecordedUpstream:
    """A threaded HTTP server on a free loopback port, replaying the demo's recordings."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer((LOOPBACK, 0), _Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="demo-upstream", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server.server_port}"

    def __enter__(self) -> RecordedUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


def recording_for_call(path: str, body: dict) -> Recording | None:
    """The recording that answers a call of the service: by the model its path or body names."""
    if path == ROUTER_CHAT:
        model = str(body.get("model", "")).split(":", 1)[0]  # the router's `model:provider` form
    elif path.startswith(HOSTED_PREFIX):
        model = path.removeprefix(HOSTED_PREFIX).removesuffix(CHAT_SUFFIX)
    else:
        return None
    return recordings().get(model)


def model_info(model_id: str) -> tuple[int, dict]:
    """The Hub's model API for a demo model: served by hf-inference, live; 404 for any other."""
    recording = recordings().get(model_id)
    if recording is None:
        return 404, {"error": "Repository not found"}
    tag = PIPELINE_TAGS[recording.task]
    mapping = {"hf-inference": {"status": "live", "providerId": model_id, "task": tag}}
    return 200, {"id": model_id, "pipeline_tag": tag, "inferenceProviderMapping": mapping}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = unquote(urlsplit(self.path).path)
        if path.startswith(MODEL_API_PREFIX):
            self._json(*model_info(path.removeprefix(MODEL_API_PREFIX)))
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        path = unquote(urlsplit(self.path).path)
        recording = recording_for_call(path, body if isinstance(body, dict) else {})
        if recording is None:
            model = path.removeprefix(HOSTED_PREFIX)
            self._json(404, {"error": f"Model {model} does not exist (the demo holds no recording of it)"})
            return
        self._send(recording.status, recording.content_type, recording.body)

    def _json(self, status: int, document: dict) -> None:
        self._send(status, "application/json", json.dumps(document).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass  # the service logs every request itself
