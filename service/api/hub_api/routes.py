"""The Hub's own API in front of the pipeline: `POST /models/<model>`, `POST /pipeline/<task>/<model>`
and `POST /models/<model>/v1/completions`. Each view reads the Hub's body into an `Ask`, hands
it to the pipeline with the request's context (keys, limits, ledger, cache, breakers, deadline
and fallback are all the pipeline's and the request lifecycle's) and writes the Hub's answer."""

from flask import Blueprint, request

from service.api.body import json_body
from service.api.gateway import gateway
from service.api.hub_api.answers import forwarded_answer, hub_answer
from service.api.hub_api.forwarding import read_forwarded_body
from service.api.hub_api.parameters import HubCall, read_completion_body, read_hub_body
from service.api.lifecycle import current_context
from service.api.openai_api.surface import completion_answer
from service.catalog.tasks import FORWARDED_HUB_TASKS, TASKS, TEXT_TASKS, TRANSLATION, ForwardedTask, Task
from service.errors import InvalidRequest, UnknownTask
from service.pipeline.entry import Ask
from service.pipeline.model_tasks import TASK_OF_HUB_TASK

bp = Blueprint("hub_api", __name__)

# The Hub's task names, as `/pipeline/<task>/` takes them, and the service's task each one is.
HUB_TASKS = {hub_name: TASKS[name] for hub_name, name in TASK_OF_HUB_TASK.items()}
HUB_TASK_NAMES = {task.name: hub_name for hub_name, task in HUB_TASKS.items()}
# On /pipeline/<task>/: the task's configured chain, with its fallback.
DEFAULT_MODEL = "default"


@bp.post("/models/<path:model>/v1/completions")
def complete(model: str):
    """OpenAI's completion of one model, as huggingface.js's textGeneration posts it (the
    body's `model` is that client's URL or anything: the path names the model)."""
    model_name, pair = named_in_models_path(model)
    task = task_of(model_name, pair)
    if task.name not in TEXT_TASKS:
        hub_name = task.hub_name if isinstance(task, ForwardedTask) else HUB_TASK_NAMES[task.name]
        raise InvalidRequest(
            f"model: {model} is for {hub_name or 'another task'}, which answers no completion; POST /models/{model}",
            errors={"model": ["Answers no text."]},
        )
    context = current_context()
    context.task = task
    call = read_completion_body(task, json_body(), request.headers.get("Cache-Control"))
    outcome = run(task, call, model_name, pair)
    return completion_answer(outcome, context)


@bp.post("/models/<path:model>")
def infer_model(model: str):
    """The serverless API's own path: the model's task from the catalog or the Hub."""
    model_name, pair = named_in_models_path(model)
    task = task_of(model_name, pair)
    if isinstance(task, ForwardedTask):
        return forward(task, model_name)
    return infer(task, model_name, pair)


@bp.post("/pipeline/<task_name>/<path:model>")
def infer_pipeline(task_name: str, model: str):
    """The task named in the path; `default` is its configured chain, and for translation a
    configured pair (zh2en) is that pair's chain. The Hub's other tasks are forwarded."""
    forwarded = FORWARDED_HUB_TASKS.get(task_name)
    if forwarded is not None:
        return forward(forwarded, None if model == DEFAULT_MODEL else model)
    task = HUB_TASKS.get(task_name)
    if task is None:
        raise UnknownTask(task_name, (*HUB_TASKS, *FORWARDED_HUB_TASKS), field="task")
    if model == DEFAULT_MODEL:
        return infer(task, None, None)
    if task.name == TRANSLATION.name and model in gateway().catalog.pairs:
        return infer(task, None, model)
    return infer(task, model, None)


def named_in_models_path(model: str) -> tuple[str | None, str | None]:
    """A `/models/<model>` name: a configured translation pair (its chain), else a model."""
    if model in gateway().catalog.pairs:
        return None, model
    return model, None


def task_of(model_name: str | None, pair: str | None) -> Task:
    """The task of a path that names no task: a pair translates; a model's task is the pipeline's word."""
    if pair is not None:
        return TASKS[TRANSLATION.name]
    return gateway().pipeline.task_of(model_name)


def infer(task: Task, model_name: str | None, pair: str | None):
    """Read the Hub's body for `task`, run it, answer in the Hub's shape."""
    context = current_context()
    context.task = task  # an invalid request is still counted under its task
    call = read_hub_body(task, json_body(), request.headers.get("Cache-Control"))
    outcome = run(task, call, model_name, pair)
    return hub_answer(task, outcome, context)


def forward(task: ForwardedTask, model_name: str | None):
    """Forward the body as it came, through the pipeline (keys, limits, ledger, cache, breakers,
    deadline, the upstream's loading and rate limits), and answer what came back."""
    context = current_context()
    context.task = task
    body = read_forwarded_body(request.mimetype or "", request.headers.get("Cache-Control"))
    context.cache_directives = body.cache_directives
    outcome = gateway().pipeline.infer(Ask(task, body.data, body.args(), model_name), context)
    return forwarded_answer(outcome, context)


def run(task: Task, call: HubCall, model_name: str | None, pair: str | None):
    """Hand the call to the pipeline, with the pair the path or the language codes named."""
    if pair is not None and call.model_type is not None and call.model_type != pair:
        raise InvalidRequest(
            f"parameters: src_lang and tgt_lang make {call.model_type}, but the path names {pair}",
            errors={"parameters": {"src_lang": [f"Must make {pair}, as the path does."]}},
        )
    context = current_context()
    context.cache_directives = call.cache_directives
    ask = Ask(task, call.inputs, call.args, model_name, call.model_type or pair, call.stream)
    return gateway().pipeline.infer(ask, context)
