"""A scriptable loopback stand-in for the Hugging Face inference router.

With nothing scripted it replays the real exchanges recorded in tests/recordings/.
Scripted steps make it misbehave on demand (error statuses, delays, slow, endless or
reset bodies, silence) so that integration, fault and benchmark runs exercise the
service against real response shapes without touching the network.

Run it as a separate process with:
    python -m harness.upstream --port 0 --latency 0.1 --alias PATH=RECORDED_PATH
It prints ``READY <port>`` once it accepts connections and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.paths import RECORDINGS_DIR
from harness.recordings import RECORDING_FILES

LOOPBACK_HOST = "127.0.0.1"

# Framing is recomputed for every answer, so the recorded framing must not leak through.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding", "connection"})
CHAT_SUFFIX = "/v1/chat/completions"
COMPLETIONS_SUFFIX = "/v1/completions"
COMPLETION_SOURCE_PATH = "/hf-inference/models/gpt2"
FEATURE_EXTRACTION_SUFFIX = "/pipeline/feature-extraction"

# The Hub's model API (`GET /api/models/<id>`), as the service asks it for a model's task and
# providers: the pipeline tags of the models the tests and the shipped configuration name.
MODEL_API_PREFIX = "/api/models/"
HUB_PIPELINE_TAGS = {
    "t5-base": "translation",
    "google-t5/t5-base": "translation",
    "Helsinki-NLP/opus-mt-zh-en": "translation",
    "Helsinki-NLP/opus-mt-en-zh": "translation",
    "google/madlad400-3b-mt": "translation",
    "gpt2": "text-generation",
    "openai-community/gpt2": "text-generation",
    "meta-llama/Llama-3.1-8B-Instruct": "text-generation",
    "google/flan-t5-large": "text2text-generation",
    "google/flan-t5-xxl": "text2text-generation",
    "CompVis/stable-diffusion-v1-4": "text-to-image",
    "stabilityai/stable-diffusion-3-medium-diffusers": "text-to-image",
    "stabilityai/stable-diffusion-xl-base-1.0": "text-to-image",
    "black-forest-labs/FLUX.1-schnell": "text-to-image",
    "black-forest-labs/FLUX.1-dev": "text-to-image",
}

STREAM_CHUNK_BYTES = 64 * 1024
TRICKLE_CHUNK_BYTES = 1
ENDLESS_PAUSE_SECONDS = 0.05
POLL_SECONDS = 0.05
FILLER_BYTE = b"x"


def compact_json(value: Any) -> bytes:
    """Encode a value the way the upstream does: compact, UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_json(body: bytes) -> Any:
    """Return the parsed JSON body, or None when the body is empty or not JSON."""
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def inputs_kind(request_body: Any) -> str | None:
    """Name the type of a classic payload's `inputs` (str or list), None when absent."""
    if isinstance(request_body, dict) and "inputs" in request_body:
        return type(request_body["inputs"]).__name__
    return None


def wants_stream(request_body: Any) -> bool:
    """Tell whether a request body asks for a streamed answer."""
    return isinstance(request_body, dict) and bool(request_body.get("stream"))


def requested_n(request_body: Any) -> int:
    """Return the OpenAI-style `n` of a request body, 1 when absent or unusable."""
    n = request_body.get("n") if isinstance(request_body, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 1


class HeaderDict(dict):
    """Request headers keyed by lower-cased name, so that lookups ignore case."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()):
        super().__init__((name.lower(), value) for name, value in items)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


def sse_event(item: Any) -> bytes:
    """One server-sent event: a string as it is (`[DONE]`), anything else as JSON."""
    data = item.encode("utf-8") if isinstance(item, str) else compact_json(item)
    return b"data: " + data + b"\n\n"


def chat_stream(completion: dict, include_usage: bool) -> tuple:
    """A chat completion as an OpenAI-style server streams it: the role, the content a word at a
    time, the finish_reason, the usage chunk when asked, then [DONE]."""
    choice = completion["choices"][0]
    content = choice["message"].get("content") or ""
    head = {"id": completion.get("id", ""), "object": "chat.completion.chunk", "model": completion.get("model")}
    pieces = [piece for piece in content.replace(" ", "\0 ").split("\0") if piece]

    def chunk(delta: dict, finish_reason=None) -> dict:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces]
    events.append(chunk({}, choice.get("finish_reason") or "stop"))
    if include_usage and completion.get("usage"):
        events.append({**head, "choices": [], "usage": completion["usage"]})
    return (*events, "[DONE]")


@dataclass
class Answer:
    """A response ready to send: status, headers and a body given as bytes or a filler size,
    or a stream of server-sent `events`."""

    status: int
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    filler_size: int | None = None
    events: tuple = ()

    @classmethod
    def of_json(cls, status: int, value: Any) -> Answer:
        """Build a JSON answer."""
        return cls(status, "application/json", body=compact_json(value))

    @property
    def length(self) -> int:
        """Return the full body length in bytes."""
        return len(self.body) if self.filler_size is None else self.filler_size

    def chunks(self, chunk_size: int) -> Iterator[bytes]:
        """Yield the body in pieces of at most chunk_size bytes, building filler lazily."""
        if self.filler_size is None:
            view = memoryview(self.body)
            for start in range(0, len(view), chunk_size):
                yield view[start : start + chunk_size]
            return
        block = FILLER_BYTE * chunk_size
        for start in range(0, self.filler_size, chunk_size):
            yield block[: self.filler_size - start]


@dataclass(frozen=True)
class Step:
    """One scripted answer; a Step() with no fields set replays the recording.

    Body: `json` or `body`, or `size` bytes of filler; none of them with status 200 means
    replay (a non-200 status with replay=True overrides the recorded one).
    Delivery: `delay` before the headers, `trickle` seconds between body chunks of
    `chunk_size` bytes (1 when trickling), `endless` keeps sending filler until the client
    leaves, `reset_after` resets the connection after that many body bytes,
    `never_respond` reads the request and stays silent. `repeat` uses the step n times.
    Streams: `events` (dicts, or strings such as "[DONE]") are sent as server-sent events in
    chunked framing, one write each, `trickle` seconds apart; `gate` (a threading.Event) is
    waited for before the second event; `cut_after` resets the connection after that many.
    """

    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    replay: bool | None = None
    trickle: float = 0.0
    chunk_size: int | None = None
    endless: bool = False
    reset_after: int | None = None
    never_respond: bool = False
    size: int | None = None
    repeat: int = 1
    events: tuple = ()
    gate: Any = None
    cut_after: int | None = None

    def __post_init__(self) -> None:
        if self.json is not None and self.body is not None:
            raise ValueError("a Step takes json or body, not both")
        if self.repeat < 1:
            raise ValueError("repeat must be at least 1")

    def wants_replay(self) -> bool:
        """Tell whether this step answers with the replayed recording."""
        if self.replay is not None:
            return self.replay
        has_body = self.json is not None or self.body is not None or self.size is not None
        return not has_body and self.status == 200 and not self.endless and not self.events

    def scripted_answer(self) -> Answer:
        """Build the answer this step describes without looking at any recording."""
        if self.json is not None:
            body, default_type = compact_json(self.json), "application/json"
        elif isinstance(self.body, str):
            body, default_type = self.body.encode("utf-8"), "text/plain; charset=utf-8"
        elif self.body is not None:
            body, default_type = bytes(self.body), "application/octet-stream"
        else:
            body, default_type = b"", None
        if self.size is not None:
            default_type = default_type or "application/octet-stream"
        content_type = self.content_type or default_type
        return Answer(self.status, content_type, dict(self.headers), body, self.size)

    def applied_to(self, answer: Answer) -> Answer:
        """Return a replayed answer with this step's status, content type and headers laid over it."""
        return dataclasses.replace(
            answer,
            status=answer.status if self.status == 200 else self.status,
            content_type=self.content_type or answer.content_type,
            headers={**answer.headers, **self.headers},
        )

    def chunk_bytes(self) -> int:
        """Return how many body bytes to send at a time."""
        if self.chunk_size:
            return self.chunk_size
        return TRICKLE_CHUNK_BYTES if self.trickle or self.endless else STREAM_CHUNK_BYTES


@dataclass
class Recording:
    """One recorded exchange, reduced to what replay needs."""

    method: str
    path: str
    request_body: Any
    status: int
    content_type: str | None
    headers: dict[str, str]
    body: bytes

    @classmethod
    def from_entry(cls, entry: dict) -> Recording:
        """Build a recording from one entry of recordings.json or providers.json."""
        request, response = entry["request"], entry["response"]
        headers = {name.lower(): value for name, value in response.get("headers", {}).items()}
        if "body_base64" in response:
            body = base64.b64decode(response["body_base64"])
        else:
            body = (response.get("body_text") or "").encode("utf-8")
        return cls(
            method=request["method"].upper(),
            path=urlsplit(request["uri"]).path,
            request_body=request.get("body"),
            status=response["status"],
            content_type=headers.pop("content-type", None),
            headers={name: value for name, value in headers.items() if name not in FRAMING_HEADERS},
            body=body,
        )

    def json_body(self) -> Any:
        """Return the parsed response body, None when it is not JSON."""
        return parse_json(self.body) if self.content_type and "json" in self.content_type else None

    def answer(self) -> Answer:
        """Build the answer that replays this recording."""
        return Answer(self.status, self.content_type, dict(self.headers), self.body)


class RecordingIndex:
    """Recorded exchanges looked up by method and URL path, plus the shapes synthesized from them."""

    def __init__(self, recordings: list[Recording]):
        self._by_route: dict[tuple[str, str], list[Recording]] = {}
        for recording in recordings:
            self._by_route.setdefault((recording.method, recording.path), []).append(recording)
        self._chat_completions = [
            body for body in (r.json_body() for r in recordings if self._is_chat_completion(r)) if body
        ]
        self.completion_text = self._completion_text(self._by_route.get(("POST", COMPLETION_SOURCE_PATH), []))

    @classmethod
    def load(cls, directory: Path) -> RecordingIndex:
        """Load every recording file present in a directory."""
        recordings = []
        for name in RECORDING_FILES:
            path = directory / name
            if path.exists():
                entries = json.loads(path.read_text(encoding="utf-8"))
                recordings.extend(Recording.from_entry(entry) for entry in entries)
        if not recordings:
            raise FileNotFoundError(f"no recordings found in {directory}")
        return cls(recordings)

    def find(self, method: str, path: str, request_body: Any) -> Recording | None:
        """Pick the recording that best answers a request: a 200 first, then same kind of inputs."""
        candidates = self._by_route.get((method, path))
        if not candidates:
            return None
        wanted_inputs, wanted_stream = inputs_kind(request_body), wants_stream(request_body)
        return min(
            candidates,
            key=lambda r: (
                r.status != 200,
                inputs_kind(r.request_body) != wanted_inputs,
                wants_stream(r.request_body) != wanted_stream,
            ),
        )

    def find_any_method(self, path: str, request_body: Any) -> Recording | None:
        """Pick the best recording of a path whatever its method (POST first, then GET...)."""
        methods = sorted({method for method, recorded_path in self._by_route if recorded_path == path}, reverse=True)
        return self.find(methods[0], path, request_body) if methods else None

    def chat_completion(self, model: Any) -> dict | None:
        """Return a recorded chat completion, preferably one from the requested model."""
        wanted = str(model or "").partition(":")[0].lower()
        by_model = [body for body in self._chat_completions if str(body.get("model", "")).lower() == wanted]
        modern = [body for body in self._chat_completions if body.get("object") == "chat.completion"]
        for choices in (by_model, modern, self._chat_completions):
            if choices:
                return choices[0]
        return None

    @staticmethod
    def _is_chat_completion(recording: Recording) -> bool:
        """Tell whether a recording is a successful, non-streamed chat completion."""
        return (
            recording.method == "POST"
            and recording.path.endswith("/chat/completions")
            and recording.status == 200
            and "json" in (recording.content_type or "")
        )

    @staticmethod
    def _completion_text(recordings: list[Recording]) -> str:
        """Return recorded gpt2 continuation text, with the echoed prompt removed."""
        texts = []
        for recording in recordings:
            body = recording.json_body()
            if recording.status != 200 or not (isinstance(body, list) and body and "generated_text" in body[0]):
                continue
            prompt = recording.request_body.get("inputs") if isinstance(recording.request_body, dict) else None
            text = body[0]["generated_text"]
            # An answer that echoes its prompt is a full-text answer: the part after it is the continuation.
            if isinstance(prompt, str) and text.startswith(prompt):
                return text[len(prompt) :]
            texts.append(text)
        return texts[0] if texts else ""


class ScriptBook:
    """Scripted steps queued per path, plus a default queue for paths without their own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_path: dict[str, deque[list]] = {}
        self._default: deque[list] = deque()

    def add(self, path: str, steps: Iterable[Step]) -> None:
        """Queue steps for one path."""
        with self._lock:
            self._by_path.setdefault(path, deque()).extend([step, step.repeat] for step in steps)

    def add_default(self, steps: Iterable[Step]) -> None:
        """Queue steps for any path that has no script of its own."""
        with self._lock:
            self._default.extend([step, step.repeat] for step in steps)

    def clear(self) -> None:
        """Forget every queued step."""
        with self._lock:
            self._by_path.clear()
            self._default.clear()

    def next_step(self, path: str) -> Step | None:
        """Consume the next step for a path, None when the path should replay."""
        with self._lock:
            for queue in (self._by_path.get(path), self._default):
                if queue:
                    return self._take(queue)
        return None

    @staticmethod
    def _take(queue: deque[list]) -> Step:
        """Use the head step once, dropping it when its repeats are spent."""
        entry = queue[0]
        entry[1] -= 1
        if entry[1] == 0:
            queue.popleft()
        return entry[0]


@dataclass
class LoggedRequest:
    """One request as the upstream received it.

    `ended` is set once the handler is done, which can be just after the client has read
    the answer: call LoopbackUpstream.wait_idle() before relying on it.
    """

    method: str
    path: str
    query: str
    headers: HeaderDict
    body: bytes
    json: Any
    client_port: int
    started: float
    ended: float | None = None
    status: int | None = None


class RequestLog:
    """Thread-safe record of every request and of how many were being handled at once."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._entries: list[LoggedRequest] = []
        self._in_flight = 0
        self.max_in_flight = 0

    def begin(self, entry: LoggedRequest) -> None:
        """Record a request that is now being handled."""
        with self._changed:
            self._entries.append(entry)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def end(self, entry: LoggedRequest) -> None:
        """Record that a request's handling is over, answered or not."""
        entry.ended = time.monotonic()
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def entries(self) -> list[LoggedRequest]:
        """Return a snapshot of the logged requests."""
        with self._changed:
            return list(self._entries)

    def reset(self) -> None:
        """Forget logged requests and restart the concurrency high-water mark."""
        with self._changed:
            self._entries.clear()
            self.max_in_flight = self._in_flight

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled."""
        with self._changed:
            return self._changed.wait_for(lambda: self._in_flight == 0, timeout)


class _LoopbackServer(ThreadingHTTPServer):
    """The HTTP server: loopback only, many pending connections, quiet about client disconnects."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, upstream: LoopbackUpstream, port: int):
        self.upstream = upstream
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((LOOPBACK_HOST, port), _UpstreamHandler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host name."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def track(self, connection: socket.socket) -> None:
        """Remember an open client connection so that stop() can break it."""
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a client connection that is closing."""
        with self._connections_lock:
            self._connections.discard(connection)

    def break_connections(self) -> None:
        """Shut every open connection down, waking handlers blocked on reads or writes."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Report real errors only: clients leaving and shutdown are normal here."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)) or self.stopping.is_set():
            return
        super().handle_error(request, client_address)


class _UpstreamHandler(BaseHTTPRequestHandler):
    """Answer one connection's requests, scripted or replayed, with keep-alive."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle on, the body would wait for the
    # client's delayed ACK (40 ms on Linux), which no real upstream does.
    disable_nagle_algorithm = True
    server: _LoopbackServer

    def setup(self) -> None:
        """Open the connection's streams and register it for stop()."""
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle holds the
        # body until the client's delayed ACK (40 ms on Linux) on reused connections.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        """Unregister the connection and close its streams."""
        self.server.untrack(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the request log is the record, and test output stays readable."""

    def do_GET(self) -> None:
        """Serve any method the same way: routes are told apart by method and path."""
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        """Read one request, log it, then answer it as scripted or replayed."""
        entry = self._read_request()
        log = self.server.upstream.log
        log.begin(entry)
        try:
            self._answer(entry)
        except OSError:
            # The client left or the server is stopping: nothing more to send.
            self.close_connection = True
        finally:
            log.end(entry)

    def _read_request(self) -> LoggedRequest:
        """Read the request body and describe the request for the log."""
        url = urlsplit(self.path)
        body = self._read_body()
        return LoggedRequest(
            method=self.command,
            path=url.path,
            query=url.query,
            headers=HeaderDict(self.headers.items()),
            body=body,
            json=parse_json(body),
            client_port=self.client_address[1],
            started=time.monotonic(),
        )

    def _read_body(self) -> bytes:
        """Read the whole request body, so that the connection can be kept alive."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked_body(self) -> bytes:
        """Read a chunked request body and its trailers."""
        parts = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(parts)

    def _answer(self, entry: LoggedRequest) -> None:
        """Answer a logged request following the next scripted step, or by replay."""
        upstream = self.server.upstream
        step = upstream.scripts.next_step(entry.path) or Step()
        if not self._pause(upstream.latency):
            return
        if step.never_respond:
            self._wait_for_disconnect()
            return
        answer = upstream.answer_for(entry, step)
        if not self._pause(step.delay):
            return
        entry.status = answer.status
        if step.events:
            self._send_events(step)
        elif answer.events:
            self._send_events(dataclasses.replace(step, events=answer.events))
        elif step.endless:
            self._send_endless(answer, step)
        elif step.reset_after is not None:
            self._send_then_reset(answer, step)
        else:
            self._send_head(answer, answer.length)
            self._write_chunks(answer.chunks(step.chunk_bytes()), step.trickle)

    def _pause(self, seconds: float) -> bool:
        """Sleep unless the server stops first; False means stop answering."""
        if seconds <= 0:
            return True
        if self.server.stopping.wait(seconds):
            self.close_connection = True
            return False
        return True

    def _send_head(self, answer: Answer, content_length: int | None) -> None:
        """Send status and headers; without a length the body ends when the connection closes."""
        self.send_response(answer.status)
        if answer.content_type:
            self.send_header("Content-Type", answer.content_type)
        for name, value in answer.headers.items():
            if name.lower() not in FRAMING_HEADERS:
                self.send_header(name, value)
        if content_length is None:
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(content_length))
        self.end_headers()

    def _write_chunks(self, chunks: Iterable[bytes], pause: float) -> bool:
        """Write body chunks with a pause between them; False if the server stopped first."""
        for number, chunk in enumerate(chunks):
            if number and not self._pause(pause):
                return False
            self.wfile.write(chunk)
        return True

    def _send_events(self, step: Step) -> None:
        """Stream server-sent events in chunked framing, each its own write, as they are made."""
        self.send_response(step.status)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for number, item in enumerate(step.events):
            if number == step.cut_after:
                self._reset_connection()
                return
            if number == 1 and step.gate is not None:
                while not step.gate.wait(POLL_SECONDS):
                    if self.server.stopping.is_set() or self._client_gone():
                        self.close_connection = True
                        return
            if number and not self._pause(step.trickle):
                return
            self._write_chunk(sse_event(item))
        self._write_chunk(b"")

    def _write_chunk(self, data: bytes) -> None:
        """Write one chunk of a chunked body (the empty one ends it)."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _send_endless(self, answer: Answer, step: Step) -> None:
        """Send headers and any scripted body, then filler until the client or server gives up."""
        self._send_head(answer, None)
        self.wfile.write(answer.body)
        filler = FILLER_BYTE * step.chunk_bytes()
        while self._pause(step.trickle or ENDLESS_PAUSE_SECONDS):
            self.wfile.write(filler)

    def _send_then_reset(self, answer: Answer, step: Step) -> None:
        """Promise the full body, send only its first bytes, then reset the connection."""
        self._send_head(answer, answer.length)
        if self._write_chunks(_first_bytes(answer.chunks(step.chunk_bytes()), step.reset_after), step.trickle):
            # Give the partial body time to reach the client, so it sees a body cut short.
            self._pause(POLL_SECONDS)
        self._reset_connection()

    def _reset_connection(self) -> None:
        """Abort the connection with an RST instead of an orderly close."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The buffered reader holds a reference that would otherwise keep the socket open.
        self.rfile.close()
        self.connection.close()

    def _wait_for_disconnect(self) -> None:
        """Stay silent until the client disconnects or the server stops."""
        self.close_connection = True
        while self._pause(POLL_SECONDS) and not self._client_gone():
            pass

    def _client_gone(self) -> bool:
        """Tell whether the client has closed its end of the connection."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True


def _first_bytes(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """Yield chunks until limit bytes have been produced, cutting the last one short."""
    remaining = limit
    for chunk in chunks:
        if remaining <= 0:
            return
        yield chunk[:remaining]
        remaining -= len(chunk)


class LoopbackUpstream:
    """A scriptable stand-in for router.huggingface.co on 127.0.0.1, replaying real recordings."""

    def __init__(self, recordings_dir: str | Path | None = None, latency: float = 0.0, port: int = 0):
        self.recordings = RecordingIndex.load(Path(recordings_dir or RECORDINGS_DIR))
        self.latency = latency
        self.scripts = ScriptBook()
        self.log = RequestLog()
        self._aliases: dict[str, str] = {}
        self.pipeline_tags = dict(HUB_PIPELINE_TAGS)
        self._requested_port = port
        self._server: _LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LoopbackUpstream:
        """Start serving."""
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        """Stop serving."""
        self.stop()

    def start(self) -> LoopbackUpstream:
        """Bind to 127.0.0.1 and serve in a background thread."""
        if self._server is None:
            self._server = _LoopbackServer(self, self._requested_port)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": POLL_SECONDS},
                name=f"loopback-upstream-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, cutting short every delayed, hanging or endless answer."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.break_connections()
        server.server_close()
        self._thread.join(timeout)
        self.log.wait_idle(timeout)

    @property
    def port(self) -> int:
        """Return the port the server listens on."""
        if self._server is None:
            raise RuntimeError("the upstream is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Return the base URL to configure the service with."""
        return f"http://{LOOPBACK_HOST}:{self.port}"

    @property
    def requests(self) -> list[LoggedRequest]:
        """Return every request received since the last reset_log()."""
        return self.log.entries()

    @property
    def max_in_flight(self) -> int:
        """Return the largest number of requests handled at the same moment."""
        return self.log.max_in_flight

    def requests_for(self, path: str) -> list[LoggedRequest]:
        """Return the logged requests for one URL path (query string excluded)."""
        return [entry for entry in self.log.entries() if entry.path == path]

    def reset_log(self) -> None:
        """Forget logged requests and the in-flight high-water mark."""
        self.log.reset()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being handled; False if some still are after timeout."""
        return self.log.wait_idle(timeout)

    def script(self, path: str, *steps: Step) -> None:
        """Queue steps that answer the next requests to path (query string ignored), in order."""
        self.scripts.add(path, steps)

    def script_default(self, *steps: Step) -> None:
        """Queue steps for requests to any path that has no script of its own."""
        self.scripts.add_default(steps)

    def clear_scripts(self) -> None:
        """Drop every queued step, so that every path replays again."""
        self.scripts.clear()

    def alias(self, path: str, recorded_path: str) -> None:
        """Answer requests to path as if they had been sent to recorded_path."""
        self._aliases[path] = recorded_path

    def describe_model(self, model_id: str, pipeline_tag: str) -> None:
        """Make the model API say that `model_id` is a `pipeline_tag` model, served by hf-inference."""
        self.pipeline_tags[model_id] = pipeline_tag

    def answer_for(self, entry: LoggedRequest, step: Step) -> Answer:
        """Build the answer to a request under a step: scripted, or replayed with the step's overrides."""
        if not step.wants_replay():
            return step.scripted_answer()
        return step.applied_to(self.replay_answer(entry.method, entry.path, entry.json))

    def replay_answer(self, method: str, path: str, request_body: Any) -> Answer:
        """Answer from the recordings, synthesizing OpenAI-style routes that were not recorded."""
        if method == "GET" and path.startswith(MODEL_API_PREFIX):
            return self._model_info(path.removeprefix(MODEL_API_PREFIX))
        aliased = path in self._aliases
        path = self._aliases.get(path, path)
        if method == "POST" and path.endswith(COMPLETIONS_SUFFIX):
            return self._completion_answer(request_body)
        recording = self.recordings.find(method, path, request_body)
        if recording is not None and path.endswith(FEATURE_EXTRACTION_SUFFIX) and inputs_kind(request_body) == "list":
            return self._vectors_answer(recording, len(request_body["inputs"]))
        if recording is None and aliased:
            # An alias may name a recording made with another method, e.g. an image a provider serves by GET.
            recording = self.recordings.find_any_method(path, request_body)
        if recording is not None:
            return recording.answer()
        if method == "POST" and path.endswith(CHAT_SUFFIX):
            template = self.recordings.chat_completion(
                request_body.get("model") if isinstance(request_body, dict) else None
            )
            if template is not None and wants_stream(request_body):
                options = request_body.get("stream_options") or {}
                return Answer(
                    200, "text/event-stream", events=chat_stream(template, bool(options.get("include_usage")))
                )
            if template is not None:
                return self._chat_answer(template, requested_n(request_body))
        return self._model_not_found(path)

    @staticmethod
    def _chat_answer(template: dict, n: int) -> Answer:
        """Answer a chat completion with n copies of a recorded choice."""
        choice = template["choices"][0]
        choices = [{**choice, "index": index} for index in range(n)]
        return Answer.of_json(200, {**template, "choices": choices})

    @staticmethod
    def _vectors_answer(recording: Recording, texts: int) -> Answer:
        """Answer a list of texts with the recorded vector of one text, once per text (as the
        route answers a list), when only a string's answer was recorded."""
        vector = recording.json_body()
        if not (isinstance(vector, list) and vector and not isinstance(vector[0], list)):
            return recording.answer()
        return Answer.of_json(recording.status, [vector] * texts)

    def _completion_answer(self, request_body: Any) -> Answer:
        """Answer an OpenAI-style text completion with n copies of recorded gpt2 text."""
        model = request_body.get("model") if isinstance(request_body, dict) else None
        choices = [
            {"index": index, "text": self.recordings.completion_text, "finish_reason": "length"}
            for index in range(requested_n(request_body))
        ]
        return Answer.of_json(
            200,
            {
                "id": "cmpl-replay",
                "object": "text_completion",
                "model": model,
                "choices": choices,
            },
        )

    def _model_info(self, model_id: str) -> Answer:
        """Answer the Hub's model API: the pipeline tag and the hf-inference provider, or 404."""
        tag = self.pipeline_tags.get(model_id)
        if tag is None:
            return Answer.of_json(404, {"error": "Repository not found"})
        mapping = {"hf-inference": {"status": "live", "providerId": model_id, "task": tag}}
        return Answer.of_json(200, {"id": model_id, "pipeline_tag": tag, "inferenceProviderMapping": mapping})

    @staticmethod
    def _model_not_found(path: str) -> Answer:
        """Answer the way the router does for a model it does not know."""
        model = path.split("/models/", 1)[1] if "/models/" in path else path.lstrip("/")
        return Answer.of_json(404, {"error": f"Model {model} does not exist"})


def _alias_argument(text: str) -> tuple[str, str]:
    """Parse a PATH=RECORDED_PATH command-line alias."""
    path, separator, recorded_path = text.partition("=")
    if not separator or not path or not recorded_path:
        raise argparse.ArgumentTypeError(f"expected PATH=RECORDED_PATH, got {text!r}")
    return path, recorded_path


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added before every answer")
    parser.add_argument("--recordings-dir", default=None, help="folder holding recordings.json")
    parser.add_argument(
        "--alias",
        type=_alias_argument,
        action="append",
        default=[],
        metavar="PATH=RECORDED_PATH",
        help="answer PATH as if it were RECORDED_PATH",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, announcing the port with a READY line."""
    arguments = parse_arguments(argv)
    stop_requested = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop_requested.set())
    with LoopbackUpstream(arguments.recordings_dir, arguments.latency, arguments.port) as upstream:
        for path, recorded_path in arguments.alias:
            upstream.alias(path, recorded_path)
        print(f"READY {upstream.port}", flush=True)
        while not stop_requested.wait(0.5):
            # Nobody can read this process's request log: left to grow over a long benchmark,
            # its objects made the garbage collector pause answers for 100 ms and more.
            upstream.reset_log()
    return 0


if __name__ == "__main__":
    sys.exit(main())
