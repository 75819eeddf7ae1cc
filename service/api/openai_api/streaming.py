"""A chat completion streamed as OpenAI streams one: server-sent events, `data: {chunk}` for
each chunk as the upstream sends it, `data: [DONE]` at the end.

A failure after the first chunk ends the stream with an error event in the route's error
shape (`data: {"error": {...}}`), never with `[DONE]`. A caller who hangs up closes the
generator: the upstream stream is closed with it, and the ledger (api/lifecycle.py) settles
when the body has closed.
"""

import json
import logging

from flask import Response, request

from service.api.answer import limit_headers
from service.api.error_handlers import MAX_MESSAGE_CHARS, ErrorAnswer, shape_for
from service.api.gateway import gateway
from service.errors import GatewayError
from service.pipeline.context import RequestContext
from service.pipeline.inference import InferenceResult

log = logging.getLogger(__name__)
DONE_EVENT = b"data: [DONE]\n\n"
# What a stream whose caller left is booked under (nginx's name for it).
CLIENT_CLOSED = "client_closed_request"
# No proxy may hold the chunks back, nor keep them.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Cache": "MISS"}


def streamed_chat(outcome: InferenceResult, context: RequestContext, created: int, include_usage: bool) -> Response:
    """The answer whose chunks are `outcome.results` (an open pipeline.inference.ChunkStream)."""
    head = {"id": f"chatcmpl-{context.request_id}", "object": "chat.completion.chunk", "created": created}
    head["model"] = outcome.model
    shape, redactor = shape_for(request.path), gateway().redactor  # read now: the body outlives the request
    chunks = outcome.results

    def events():
        sent = 0
        try:
            for chunk in chunks:
                sent += 1
                document = {**head, "choices": [_choice(choice) for choice in chunk["choices"]]}
                if include_usage:
                    document["usage"] = None  # as OpenAI: only the last chunk has it
                yield event(document)
            if include_usage:
                yield event({**head, "choices": [], "usage": _usage(chunks.tokens)})
            yield DONE_EVENT
        except GeneratorExit:
            context.error_type = CLIENT_CLOSED
            raise
        except GatewayError as exc:
            context.error_type = exc.error_type
            yield error_event(
                shape, exc.status_code, exc.error_type, redactor.clip(exc.message, MAX_MESSAGE_CHARS), context
            )
        except Exception:
            log.exception("stream failed request_id=%s", context.request_id)
            context.error_type = "internal_error"
            yield error_event(
                shape, 500, "internal_error", "internal error; quote the request_id when reporting it", context
            )
        finally:
            chunks.close()
            # The access line went out with the headers: this one says how the stream ended.
            log.info(
                "stream ended request_id=%s chunks=%d outcome=%s duration_ms=%.1f",
                context.request_id,
                sent,
                context.error_type or "done",
                context.seconds * 1000,
            )

    headers = {**STREAM_HEADERS, **limit_headers()}
    return Response(events(), status=200, mimetype="text/event-stream", headers=headers)


def event(document: dict) -> bytes:
    """One server-sent event holding `document`."""
    return b"data: " + json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"


def error_event(shape, status: int, error_type: str, message: str, context: RequestContext) -> bytes:
    """The event that ends a failed stream: the error as the route answers errors."""
    _, body = shape(ErrorAnswer(status, error_type, message, None, context.request_id))
    return event(body)


def _choice(choice: dict) -> dict:
    """One choice of a chunk, as OpenAI streams it."""
    return {
        "index": choice.get("index", 0),
        "delta": choice.get("delta") or {},
        "logprobs": choice.get("logprobs"),
        "finish_reason": choice.get("finish_reason"),
    }


def _usage(tokens: tuple[int, int] | None) -> dict:
    """The usage chunk's counts: what the upstream reported (0 when it reported nothing)."""
    prompt, completion = tokens or (0, 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
