"""POST /v1/chat/completions: a conversation through the pipeline's chat task, answered whole
or, with `stream: true`, streamed (streaming.py)."""

from flask import Blueprint

from service.api.openai_api.request_bodies import ChatRequestSchema
from service.api.openai_api.streaming import streamed_chat
from service.api.openai_api.surface import (
    answered,
    begin,
    check_length,
    created,
    model_name_for,
    openai_document,
    read_body,
    run,
)
from service.catalog.tasks import CHAT_COMPLETION
from service.errors import InvalidRequest
from service.hub.providers.router import CHAT_PARAMETERS
from service.pipeline.entry import Ask, input_chars

bp = Blueprint("openai_chat", __name__)
_SCHEMA = ChatRequestSchema()
# Sent to the router as given; max_completion_tokens goes as max_tokens, the name it takes.
_PASSED = CHAT_PARAMETERS - {"max_tokens"}


@bp.post("/v1/chat/completions")
def chat_completions():
    """The model the body names (a key, alias, Hub id with its provider, or the chain)."""
    return serve_chat(path_model=None)


def serve_chat(path_model: str | None):
    """Answer one chat completion; on a per-model route the path names the model, and the
    body's `model` ("dummy", or the URL the Hugging Face clients put there) is ignored."""
    context = begin(CHAT_COMPLETION)
    body = read_body(_SCHEMA, streams=True)
    messages = tuple(body["messages"])
    check_length(input_chars(messages), "messages")
    model = body.get("model") if path_model is None else path_model
    stream = body["stream"]
    if stream and body["n"] != 1:
        raise InvalidRequest(
            "n: a streamed answer has one choice; leave n out or 1", errors={"n": ["Must be 1 with stream."]}
        )
    ask = Ask(CHAT_COMPLETION, messages, chat_args(body), model_name_for(CHAT_COMPLETION, model), stream=stream)
    outcome = run(ask, context)
    if stream:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return streamed_chat(outcome, context, created(), include_usage)
    choices = [chat_choice(index, result) for index, result in enumerate(outcome.results)]
    return answered(openai_document("chat.completion", "chatcmpl", outcome, context, choices), context)


def chat_args(body: dict) -> dict:
    """The chat task's arguments: `n` results, greedy at temperature 0, the rest as given."""
    limit = body.get("max_tokens")
    other = body.get("max_completion_tokens")
    if limit is not None and other is not None and limit != other:
        raise InvalidRequest(
            "max_completion_tokens: given beside max_tokens with another value",
            errors={"max_completion_tokens": ["Disagrees with max_tokens."]},
        )
    args = {name: body[name] for name in sorted(_PASSED) if body.get(name) is not None}
    if limit is not None or other is not None:
        args["max_tokens"] = limit if limit is not None else other
    args["num_sentences"] = body["n"]
    args["do_sample"] = body.get("temperature") != 0
    return args


def chat_choice(index: int, result: dict) -> dict:
    """One choice as OpenAI answers it."""
    choice = {"index": index, "message": result["message"], "finish_reason": result.get("finish_reason") or "stop"}
    choice["logprobs"] = result.get("logprobs")
    return choice
