"""Types exchanged with the upstream, and reading messages out of its error bodies."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Protocol

from service.hub.deadline import Deadline

_TAG = re.compile(r"<[^>]+>")
# The variable holding the token of the Hugging Face routes.
HUB_TOKEN = "HF_API_TOKEN"


@dataclass
class UpstreamUsage:
    """What one request cost upstream; shared by its fan-out and fallback calls."""

    attempts: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_attempt(self, seconds: float) -> None:
        """Count one upstream attempt and the time it took."""
        with self._lock:
            self.attempts += 1
            self.seconds += seconds

    def record_tokens(self, prompt: int, completion: int) -> None:
        """Add the tokens an answer reports (OpenAI-style `usage`)."""
        with self._lock:
            self.prompt_tokens += prompt
            self.completion_tokens += completion


class CallContext(Protocol):
    """What the Hub client needs of the request it calls for: its id (sent upstream), its
    deadline, and the tally its attempts are added to."""

    request_id: str
    deadline: Deadline | None
    usage: UpstreamUsage


@dataclass(frozen=True)
class UpstreamRequest:
    """One HTTP request to send upstream."""

    url: str
    payload: dict | None
    headers: dict = field(default_factory=dict)
    method: str = "POST"
    wants_image: bool = False
    # Result downloads go to a provider's CDN: the Hub token must never travel there.
    to_hub: bool = True
    # The address a checked download must connect to, whatever the name resolves to later.
    connect_to: str | None = None
    # The variable whose token the request is sent with (HUB_TOKEN for the Hugging Face
    # routes, a model's own `token_env` for its server), None for no token. A required token
    # that is not set fails the request before anything is sent.
    credential: str | None = HUB_TOKEN
    credential_required: bool = True
    # Bytes sent as they are, instead of `payload` as JSON (their Content-Type is in `headers`).
    body: bytes | None = None


@dataclass(frozen=True)
class UpstreamReply:
    """One HTTP answer read from upstream, body complete."""

    status: int
    headers: dict
    body: bytes

    @property
    def content_type(self) -> str:
        """Return the media type without its parameters, lower case."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self):
        """Parse the body as JSON, or return None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None


@dataclass(frozen=True)
class RawBody:
    """A body passed on as it is: an answer the Hub's API forwards back to its caller."""

    data: bytes
    content_type: str


def error_message(reply: UpstreamReply) -> str:
    """Extract a readable message from any of the upstream's error shapes.

    Never cut here: a token the upstream echoed must be whole when it is redacted, which
    happens where the message leaves the service (error_handlers), before it is clipped.
    """
    document = reply.json()
    message = _message_from_document(document) if document is not None else None
    if not message:
        message = reply.headers.get("x-error-message")
    if not message:
        text = reply.body.decode("utf-8", "replace")
        if reply.content_type == "text/html" or text.lstrip().startswith("<"):
            text = " ".join(_TAG.sub(" ", text).split())
        message = text.strip() or f"HTTP {reply.status} with an empty body"
    return " ".join(message.split())


def error_kind(reply: UpstreamReply) -> str | None:
    """Return the upstream's error_type field, when it sent one."""
    document = reply.json()
    if isinstance(document, dict):
        kind = document.get("error_type")
        if isinstance(kind, str):
            return kind
        inner = document.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("type"), str):
            return inner["type"]
    return None


def error_code(reply: UpstreamReply) -> str | None:
    """Return the OpenAI-style error code (`error.code` or `code`), when it is a string."""
    document = reply.json()
    if not isinstance(document, dict):
        return None
    inner = document.get("error")
    code = inner.get("code") if isinstance(inner, dict) else document.get("code")
    return code if isinstance(code, str) else None


def _message_from_document(document) -> str | None:
    """Read a message from any provider's JSON error shape.

    `{"error": str | [str] | {"message"}}` (hf-inference, TGI, OpenAI-style routes),
    `{"message"}`, `{"title", "detail"}` (replicate's problem details), and
    `{"detail": str | [{"loc", "msg"}]}` (fal-ai and other FastAPI-based providers).
    """
    if not isinstance(document, dict):
        return None
    error = document.get("error", document.get("message"))
    if isinstance(error, dict):
        error = error.get("message")
    if isinstance(error, list):
        error = "; ".join(str(item) for item in error)
    if error:
        return str(error)
    return _detail_message(document.get("title"), document.get("detail"))


def _detail_message(title, detail) -> str | None:
    """Read problem details and validation details: a title, and a string or a list of {loc, msg}."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and item.get("msg"):
                where = ".".join(str(part) for part in item.get("loc", []) if part != "body")
                parts.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
            elif isinstance(item, str):
                parts.append(item)
        detail = "; ".join(parts)
    texts = [str(text) for text in (title, detail) if isinstance(text, str) and text]
    return ": ".join(texts) or None
