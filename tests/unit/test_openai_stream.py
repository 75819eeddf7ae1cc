"""Streamed chat completions (`stream: true`): the events the caller reads, the request the router
gets, errors before and after the first chunk, the ledger and the key's slot at the stream's end,
and the stream's time bounds and hang-ups against the loopback upstream's real streams."""

import hashlib
import json
import socket
import threading

import pytest
from prometheus_client import REGISTRY

from harness.upstream import Step, chat_stream, sse_event
from service.app import create_app
from service.catalog import Catalog
from service.errors import UpstreamTimeout
from service.hub import transport
from service.hub.deadline import Deadline
from service.hub.messages import UpstreamRequest
from tests.support.app import ROUTER, TEST_CATALOG, make_app, make_settings

CHAT = f"{ROUTER}/chat/completions"
CATALOG = TEST_CATALOG + '\n[tasks.chat-completion]\ntargets = ["missing/chat", "chat-model"]\n'
HELLO = [{"role": "user", "content": "Hello!"}]
KEY = "stream-caller-key"
COMPLETION = {
    "id": "upstream-id",
    "model": "org/chat-model",
    "choices": [{"message": {"role": "assistant", "content": "Hi there, friend!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
}


def sse(*items) -> bytes:
    return b"".join(sse_event(item) for item in items)


def upstream_stream(include_usage=True) -> bytes:
    return sse(*chat_stream(COMPLETION, include_usage))


@pytest.fixture
def app(clock):
    return make_app(make_settings(api_keys=frozenset({KEY})), CATALOG, clock)


@pytest.fixture
def client(app):
    return app.test_client()


def post(client, body, path="/v1/chat/completions", key=KEY, buffered=True):
    headers = {"Authorization": f"Bearer {key}"}
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers, buffered=buffered)


def stream_body(**fields) -> dict:
    return {"model": "chat-model", "messages": HELLO, "stream": True, **fields}


def events_of(answer) -> list:
    """The data of each event the caller got, JSON decoded but for [DONE]."""
    text = answer.get_data(as_text=True)
    assert text.endswith("\n\n")
    events = []
    for block in text.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def content_of(events) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for event in events
        if isinstance(event, dict)
        for choice in event.get("choices", [])
    )


def sent(mock_hub, index=-1):
    return json.loads(mock_hub.calls[index].request.body)


# --- the happy path --------------------------------------------------------------------


def test_a_stream_answers_openais_chunks_and_done_with_no_buffering(client, mock_hub):
    mock_hub.post(CHAT, body=upstream_stream(), content_type="text/event-stream")
    answer = post(client, stream_body(max_tokens=12))
    assert answer.status_code == 200
    assert answer.mimetype == "text/event-stream"
    assert answer.headers["Cache-Control"] == "no-cache" and answer.headers["X-Accel-Buffering"] == "no"
    assert answer.headers["X-Request-ID"] and answer.headers["X-Cache"] == "MISS"
    events = events_of(answer)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert content_of(chunks) == "Hi there, friend!"
    request_id = answer.headers["X-Request-ID"]
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk" and chunk["id"] == f"chatcmpl-{request_id}"
        assert chunk["model"] == "org/chat-model" and "usage" not in chunk  # not asked: no usage at all
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # Usage is asked upstream whatever the caller asked: the ledger books it.
    upstream = sent(mock_hub)
    assert upstream["stream"] is True and upstream["stream_options"] == {"include_usage": True}
    assert upstream["max_tokens"] == 12 and upstream["n"] == 1
    assert mock_hub.calls[0].request.headers["Accept"] == "text/event-stream"


def test_include_usage_ends_the_stream_with_the_upstreams_usage(client, mock_hub):
    mock_hub.post(CHAT, body=upstream_stream(), content_type="text/event-stream")
    events = events_of(post(client, stream_body(stream_options={"include_usage": True})))
    *chunks, usage, done = events
    assert done == "[DONE]"
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    assert all(chunk["usage"] is None for chunk in chunks)


def test_usage_reported_on_the_last_content_chunk_is_taken_too(client, mock_hub):
    last = {"choices": [{"index": 0, "delta": {"content": "!"}, "finish_reason": "stop"}]}
    last["usage"] = {"prompt_tokens": 3, "completion_tokens": 1}
    body = sse({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}, last, "[DONE]")
    mock_hub.post(CHAT, body=body, content_type="text/event-stream")
    *_, usage, done = events_of(post(client, stream_body(stream_options={"include_usage": True})))
    assert usage["usage"]["total_tokens"] == 4 and done == "[DONE]"


def test_the_per_model_route_streams_the_model_its_path_names(client, mock_hub):
    mock_hub.post(CHAT, body=upstream_stream(), content_type="text/event-stream")
    answer = post(
        client, {"model": "dummy", "messages": HELLO, "stream": True}, path="/models/org/id/v1/chat/completions"
    )
    assert content_of(events_of(answer)) == "Hi there, friend!"
    assert sent(mock_hub)["model"] == "org/id"


def test_a_stream_falls_back_along_the_chain_before_its_first_chunk(client, mock_hub):
    mock_hub.post(CHAT, status=404, json={"error": "Model missing/chat does not exist"})
    mock_hub.post(CHAT, body=upstream_stream(), content_type="text/event-stream")
    answer = post(client, {"messages": HELLO, "stream": True})  # the task's chain
    events = events_of(answer)
    assert content_of(events) == "Hi there, friend!" and events[0]["model"] == "org/chat-model"
    assert [sent(mock_hub, index)["model"] for index in (0, 1)] == ["missing/chat", "org/chat-model:novita"]


# --- refusals and errors before the first chunk ------------------------------------------


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "chat-model", "messages": HELLO, "stream_options": {"include_usage": True}}, "stream_options"),
        (stream_body(stream_options={"include_usage": "yes"}), "stream_options"),
        (stream_body(stream_options={"continuous_usage_stats": True}), "stream_options"),
        (stream_body(n=3), "n"),
    ],
)
def test_bad_stream_fields_are_refused_before_any_call(client, mock_hub, body, param):
    answer = post(client, body)
    assert answer.status_code == 400 and answer.get_json()["error"]["param"] == param
    assert not mock_hub.calls


def test_completions_are_not_streamed(client, mock_hub):
    answer = post(client, {"model": "text-completion", "prompt": "Hi", "stream": True}, path="/v1/completions")
    assert answer.status_code == 400 and answer.get_json()["error"]["param"] == "stream"
    assert not mock_hub.calls


def test_an_error_status_before_the_stream_is_an_ordinary_error_answer(client, mock_hub):
    mock_hub.post(
        CHAT, status=422, json={"error": "Template error: template not found", "error_type": "template_error"}
    )
    answer = post(client, stream_body())
    assert answer.status_code == 422 and answer.mimetype == "application/json"
    error = answer.get_json()["error"]
    assert error["code"] == "model_rejected_input" and "Template error" in error["message"]


def test_an_error_as_the_first_event_is_an_ordinary_error_answer(client, mock_hub):
    refusal = {
        "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096",
        "error_type": "validation",
    }
    mock_hub.post(CHAT, body=sse(refusal), content_type="text/event-stream")
    answer = post(client, stream_body())
    assert answer.status_code == 422 and "Input validation error" in answer.get_json()["error"]["message"]


def test_a_loading_model_is_waited_for_before_the_stream(client, mock_hub, clock):
    mock_hub.post(CHAT, status=503, json={"error": "Model is currently loading", "estimated_time": 2.0})
    mock_hub.post(CHAT, body=upstream_stream(), content_type="text/event-stream")
    answer = post(client, stream_body())
    assert content_of(events_of(answer)) == "Hi there, friend!"
    assert len(mock_hub.calls) == 2 and clock.sleeps == [2.0]


def test_a_stream_ended_before_its_first_chunk_is_a_502(client, mock_hub):
    mock_hub.post(CHAT, body=b"", content_type="text/event-stream")
    answer = post(client, stream_body())
    assert answer.status_code == 502 and answer.get_json()["error"]["code"] == "upstream_error"


# --- errors after the first chunk ----------------------------------------------------------


def test_an_error_event_mid_stream_ends_it_with_openais_error_and_no_done(client, mock_hub):
    first = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]}
    failure = {"error": "Request failed during generation: CUDA out of memory", "error_type": "generation"}
    mock_hub.post(CHAT, body=sse(first, failure), content_type="text/event-stream")
    answer = post(client, stream_body())
    assert answer.status_code == 200
    events = events_of(answer)
    assert "[DONE]" not in events and content_of(events) == "Hi"
    error = events[-1]["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "upstream_error" and "CUDA out of memory" in error["message"]
    assert error["type"] == "server_error"


def test_a_stream_cut_without_its_end_is_an_error_event_not_a_whole_answer(client, mock_hub):
    first = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
    mock_hub.post(CHAT, body=sse(first), content_type="text/event-stream")  # no finish_reason, no [DONE]
    events = events_of(post(client, stream_body()))
    assert "[DONE]" not in events and events[-1]["error"]["code"] == "upstream_error"


def test_an_event_that_is_not_json_mid_stream_is_an_error_event(client, mock_hub):
    first = {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}
    mock_hub.post(CHAT, body=sse(first, "not json"), content_type="text/event-stream")
    events = events_of(post(client, stream_body()))
    assert events[-1]["error"]["code"] == "upstream_error" and "[DONE]" not in events


def test_the_per_model_route_ends_a_failed_stream_in_the_hubs_shape(client, mock_hub):
    first = {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}
    failure = {"error": "Request failed during generation", "error_type": "generation"}
    mock_hub.post(CHAT, body=sse(first, failure), content_type="text/event-stream")
    answer = post(client, {"messages": HELLO, "stream": True}, path="/models/org/id/v1/chat/completions")
    error = events_of(answer)[-1]
    assert isinstance(error["error"], str) and "Request failed during generation" in error["error"]


def test_a_secret_in_an_error_event_is_redacted(client, mock_hub):
    from tests.support.app import TOKEN

    first = {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}
    failure = {"error": f"bad token {TOKEN}", "error_type": "generation"}
    mock_hub.post(CHAT, body=sse(first, failure), content_type="text/event-stream")
    text = post(client, stream_body()).get_data(as_text=True)
    assert TOKEN not in text and "bad token" in text


# --- the ledger and the key's slot ---------------------------------------------------------


@pytest.fixture
def metered(tmp_path, clock):
    key_file = tmp_path / "keys.toml"
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    key_file.write_text(
        f'[keys.metered]\nsha256 = "{digest}"\ntokens_per_day = 30\nconcurrency = 1\n', encoding="utf-8"
    )
    settings = make_settings(api_keys_file=key_file, store="sqlite", data_dir=tmp_path / "data")
    return make_app(settings, CATALOG, clock).test_client()


def test_a_streams_tokens_are_booked_at_its_end_though_the_caller_did_not_ask_for_usage(metered, mock_hub):
    mock_hub.post(CHAT, body=upstream_stream(), content_type="text/event-stream")  # 13 tokens each
    assert [post(metered, stream_body()).status_code for _ in range(3)] == [200, 200, 200]  # 26 of 30
    refused = post(metered, stream_body())
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "quota_exceeded"
    assert len(mock_hub.calls) == 3


def test_a_stream_holds_its_keys_slot_until_its_body_closes(metered, mock_hub):
    mock_hub.post(CHAT, body=upstream_stream(), content_type="text/event-stream")
    open_stream = post(metered, stream_body(), buffered=False)
    assert open_stream.status_code == 200
    assert '"concurrency";q=1' in open_stream.headers["RateLimit-Policy"]  # as on a whole answer
    busy = post(metered, stream_body())
    assert busy.status_code == 429 and busy.get_json()["error"]["code"] == "rate_limited"
    assert b"[DONE]" in b"".join(open_stream.response)
    open_stream.close()
    assert post(metered, stream_body()).status_code == 200


# --- real streams: time bounds and hang-ups (the loopback upstream, the real clock) ---------


@pytest.fixture
def live(upstream):
    """An app on the real clock in front of the loopback upstream, with short stream bounds."""
    settings = make_settings(
        api_keys=frozenset({KEY}),
        hf_router_base=f"{upstream.url}/v1",
        text_deadline=5.0,
        stream_idle_seconds=0.4,
        stream_max_seconds=3.0,
    )
    return create_app(settings, Catalog(__import__("tomllib").loads(CATALOG))).test_client()


def chunk(text, finish_reason=None):
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish_reason}]}


def test_a_replayed_stream_through_the_real_transport_has_the_whole_answers_text(live, upstream):
    whole = post(live, {"model": "chat-model", "messages": HELLO}).get_json()
    answer = post(live, stream_body(stream_options={"include_usage": True}))
    events = events_of(answer)
    assert events[-1] == "[DONE]" and events[-2]["usage"] == whole["usage"]
    assert content_of(events) == whole["choices"][0]["message"]["content"]
    assert len(events) > 5  # a chunk a word


def test_an_upstream_silent_past_stream_idle_seconds_ends_with_an_error_event(live, upstream):
    gate = threading.Event()  # never set: the upstream waits for ever after its first chunk
    upstream.script("/v1/chat/completions", Step(events=(chunk("Hi"), chunk("!", "stop"), "[DONE]"), gate=gate))
    events = events_of(post(live, stream_body()))
    assert content_of(events) == "Hi" and "[DONE]" not in events
    error = events[-1]["error"]
    assert error["code"] == "upstream_timeout" and "STREAM_IDLE_SECONDS" in error["message"]
    assert upstream.wait_idle(5.0)  # the gateway hung up on it


def test_a_stream_longer_than_stream_max_seconds_ends_with_an_error_event(live, upstream):
    many = tuple(chunk(".") for _ in range(200))  # 0.2 s apart: within the idle bound, past the whole one
    upstream.script("/v1/chat/completions", Step(events=(*many, "[DONE]"), trickle=0.2))
    events = events_of(post(live, stream_body()))
    assert "[DONE]" not in events and "STREAM_MAX_SECONDS" in events[-1]["error"]["message"]
    assert len(events) < 100


def test_a_connection_cut_mid_stream_is_an_error_event(live, upstream):
    upstream.script(
        "/v1/chat/completions", Step(events=(chunk("Hi"), chunk(" there"), chunk("!", "stop")), cut_after=2)
    )
    events = events_of(post(live, stream_body()))
    assert content_of(events) == "Hi there" and events[-1]["error"]["code"] == "upstream_error"


def test_a_caller_who_hangs_up_closes_the_upstream_stream(live, upstream):
    many = tuple(chunk(".") for _ in range(400))  # 20 s of chunks unless the gateway hangs up
    upstream.script("/v1/chat/completions", Step(events=(*many, "[DONE]"), trickle=0.05))
    answer = post(live, stream_body(), buffered=False)
    first = next(iter(answer.response))
    assert b'"content":"."' in first
    answer.close()  # what the server does when the caller's connection is gone
    assert upstream.wait_idle(5.0)
    (logged,) = upstream.requests_for("/v1/chat/completions")
    assert logged.ended is not None


def test_an_upstream_trickling_a_byte_at_a_time_is_cut_at_the_idle_bound():
    """Each byte comes well within the socket's timeout, but no event completes: the watchdog
    ends the read when the next event is due."""
    first_event = sse(chunk("Hi"))
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    prefix = head + b"%x\r\n%s\r\n" % (len(first_event), first_event)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(prefix)
            while not stop.wait(0.05):
                try:
                    connection.sendall(b"0")  # a chunk-size line that never ends
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    request = UpstreamRequest(url=f"http://127.0.0.1:{listener.getsockname()[1]}/v1/chat/completions", payload={})
    outcome = {}

    def read():
        opened = transport.open_stream(transport.SessionPool(1).get(), request, Deadline(5.0), 1.0, 0.5, Deadline(60.0))
        events = opened.events()
        outcome["first"] = next(events)
        try:
            next(events)
        except UpstreamTimeout as exc:
            outcome["error"] = exc
        finally:
            opened.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10.0)  # a bound on the test, not a measure: without the watchdog it reads for ever
    stop.set()
    listener.close()
    assert not reader.is_alive()
    assert json.loads(outcome["first"])["choices"][0]["delta"]["content"] == "Hi"
    assert "STREAM_IDLE_SECONDS" in outcome["error"].message


def test_a_whole_stream_leaves_its_connection_to_the_next_call(live, upstream):
    for _ in range(2):
        assert events_of(post(live, stream_body()))[-1] == "[DONE]"
    upstream.wait_idle()
    first, second = upstream.requests_for("/v1/chat/completions")
    assert first.client_port == second.client_port  # one kept-alive connection, no new handshake


def test_the_end_of_a_stream_is_logged_with_how_it_ended(client, mock_hub, captured_logs):
    first = {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}
    mock_hub.post(
        CHAT, body=sse(first, {"error": "boom", "error_type": "generation"}), content_type="text/event-stream"
    )
    request_id = post(client, stream_body()).headers["X-Request-ID"]
    (line,) = [record.getMessage() for record in captured_logs.records if "stream ended" in record.getMessage()]
    assert f"request_id={request_id} chunks=1 outcome=upstream_error" in line


def in_flight(client) -> float:
    """The process's in-flight gauge, read from its registry (what /metrics renders from)."""
    return REGISTRY.get_sample_value("hf_gateway_requests_in_flight") or 0.0


def test_a_stream_counts_as_in_flight_until_its_body_closes(client, mock_hub):
    mock_hub.post(CHAT, body=upstream_stream(), content_type="text/event-stream")
    before = in_flight(client)
    open_stream = post(client, stream_body(), buffered=False)
    assert in_flight(client) == before + 1
    b"".join(open_stream.response)
    open_stream.close()
    assert in_flight(client) == before
