"""POST /v1/completions: the text-completion task, its arguments under OpenAI's names."""

from flask import Blueprint

from service.api.openai_api.request_bodies import CompletionRequestSchema
from service.api.openai_api.surface import (
    begin,
    check_length,
    completion_answer,
    model_name_for,
    read_body,
    run,
)
from service.api.schemas import ARGS_SCHEMAS, load_or_raise
from service.catalog.tasks import COMPLETION
from service.pipeline.entry import Ask

bp = Blueprint("openai_completions", __name__)
_SCHEMA = CompletionRequestSchema()
# OpenAI's names for the text-completion task's arguments.
_ARG_NAMES = {
    "max_tokens": "max_new_tokens",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "n": "num_sentences",
    "echo": "return_full_text",
}


@bp.post("/v1/completions")
def completions():
    """Continue the prompt with the model the body names, or along the task's chain."""
    context = begin(COMPLETION)
    body = read_body(_SCHEMA)
    check_length(len(body["prompt"]), "prompt")
    ask = Ask(COMPLETION, body["prompt"], completion_args(body), model_name_for(COMPLETION, body.get("model")))
    return completion_answer(run(ask, context), context)


def completion_args(body: dict) -> dict:
    """The task's arguments: greedy at temperature 0, else sampled at the temperature given."""
    args = {ours: body[theirs] for theirs, ours in _ARG_NAMES.items() if body.get(theirs) is not None}
    temperature = body.get("temperature")
    if temperature == 0:
        args["do_sample"] = False
    elif temperature is not None:
        args["temperature"] = temperature
    return load_or_raise(ARGS_SCHEMAS[COMPLETION.name], args)
