"""The Hub's request bodies read into the pipeline's `Ask`: `{"inputs", "parameters", "options"}`
on `/models/<model>` and `/pipeline/<task>/<model>`, OpenAI's completion body on
`/models/<model>/v1/completions`.

The clients' parameter names map onto the gateway's args (api/schemas.py), which validate them
as they validate the native API's. A parameter the gateway cannot pass on is refused with the
sentence transformers answers for unused generation kwargs, which huggingface_hub's
`text_generation` reads to send the call again without them.
"""

from dataclasses import dataclass

import marshmallow as ma

from service.api.gateway import gateway
from service.api.schemas import ARGS_SCHEMAS, StrictBoolean, load_or_raise
from service.catalog.tasks import COMPLETION, TEXT_TO_IMAGE, TEXT_TO_TEXT, TRANSLATION, Task
from service.errors import InvalidRequest
from service.pipeline.context import CacheDirectives

SAMPLING = {name: name for name in ("do_sample", "top_k", "top_p", "temperature", "max_new_tokens", "seed")}
# Per task: the client's parameter name -> the gateway's arg.
TEXT_GENERATION_NAMES = {**SAMPLING, "return_full_text": "return_full_text", "num_return_sequences": "num_sentences"}
TEXT2TEXT_NAMES = {**SAMPLING, "num_return_sequences": "num_sentences"}
TRANSLATION_NAMES = {**SAMPLING, "num_return_sequences": "num_sentences"}
IMAGE_NAMES = {
    name: name for name in ("negative_prompt", "guidance_scale", "num_inference_steps", "width", "height", "seed")
}
NAMES = {
    COMPLETION.name: TEXT_GENERATION_NAMES,
    TEXT_TO_TEXT.name: TEXT2TEXT_NAMES,
    TRANSLATION.name: TRANSLATION_NAMES,
    TEXT_TO_IMAGE.name: IMAGE_NAMES,
}
# Values that ask for nothing the gateway does not do anyway: accepted and dropped.
NOTHING_ASKED = {"stop": ([],), "details": (False,), "return_full_text": (False,), "stream": (False,)}
# Tasks whose generation parameters may also come in `generate_parameters` (the Hub's form).
NESTED_GENERATION = (TRANSLATION.name, TEXT_TO_TEXT.name)
LANGUAGES = ("src_lang", "tgt_lang")
# OpenAI's completion body: its names -> the gateway's args; `model` is the path's business.
COMPLETION_BODY_NAMES = {**TEXT_GENERATION_NAMES, "max_tokens": "max_new_tokens", "n": "num_sentences"}
COMPLETION_BODY_IGNORED = ("model",)
UNUSED_MESSAGE = "The following `model_kwargs` are not used by the model: {names}"


class OptionsSchema(ma.Schema):
    """The Hub's `options`: use_cache=false skips the answer cache; the gateway always waits for a
    loading model within its deadline, so wait_for_model changes nothing."""

    class Meta:
        unknown = ma.RAISE

    use_cache = StrictBoolean()
    wait_for_model = StrictBoolean()


class HubBodySchema(ma.Schema):
    """The Hub's body for the JSON tasks."""

    class Meta:
        unknown = ma.RAISE

    inputs = ma.fields.Raw(required=True)
    parameters = ma.fields.Dict(keys=ma.fields.String(), load_default=dict, allow_none=True)
    options = ma.fields.Nested(OptionsSchema, load_default=dict, allow_none=True)
    stream = StrictBoolean()


@dataclass(frozen=True)
class HubCall:
    """What one Hub-style body asks: the input, the gateway's args, the pair named by language
    codes (translation), and the cache directives its options add."""

    inputs: str
    args: dict
    model_type: str | None = None
    stream: bool = False
    cache_directives: CacheDirectives = CacheDirectives()


def read_hub_body(task: Task, document: dict, cache_control: str | None) -> HubCall:
    """Read `{"inputs", "parameters", "options"}` for `task`, validated as the native API validates."""
    body = load_or_raise(HubBodySchema(), document)
    parameters = {name: value for name, value in (body["parameters"] or {}).items() if value is not None}
    model_type = language_pair(parameters) if task.name == TRANSLATION.name else None
    if task.name in NESTED_GENERATION:
        parameters = merged_generation_parameters(parameters)
    args = gateway_args(task, parameters, NAMES[task.name])
    inputs = validated_inputs(body["inputs"])
    directives = cache_directives(cache_control, body["options"] or {})
    return HubCall(inputs, args, model_type, bool(body.get("stream")), directives)


def read_completion_body(task: Task, document: dict, cache_control: str | None) -> HubCall:
    """Read OpenAI's completion body (`prompt`, `max_tokens`...) for a text task."""
    if "prompt" not in document:
        raise InvalidRequest("prompt: Missing data for required field.", errors={"prompt": ["Missing data."]})
    parameters = {
        name: value
        for name, value in document.items()
        if name not in ("prompt", "stream", *COMPLETION_BODY_IGNORED) and value is not None
    }
    stream = document.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream: Not a valid boolean.", errors={"stream": ["Not a valid boolean."]})
    names = {name: arg for name, arg in COMPLETION_BODY_NAMES.items() if arg in ARGS_SCHEMAS[task.name].fields}
    args = gateway_args(task, parameters, names)
    directives = cache_directives(cache_control, {})
    return HubCall(
        validated_inputs(document["prompt"], "prompt"), args, stream=bool(stream), cache_directives=directives
    )


def gateway_args(task: Task, parameters: dict, names: dict) -> dict:
    """Rename the client's parameters to the gateway's args and validate them; refuse any the
    gateway cannot pass, all of them named at once."""
    unused = [
        name for name, value in parameters.items() if name not in names and value not in NOTHING_ASKED.get(name, ())
    ]
    if unused:
        raise InvalidRequest(
            UNUSED_MESSAGE.format(names=unused), errors={name: ["Not used by the model."] for name in unused}
        )
    args = {names[name]: value for name, value in parameters.items() if name in names}
    return load_or_raise(ARGS_SCHEMAS[task.name], args, prefix="parameters")


def merged_generation_parameters(parameters: dict) -> dict:
    """Lift `generate_parameters` (the Hub's nesting for translation and text2text) beside the
    others; a name given in both places with two values is refused."""
    nested = parameters.pop("generate_parameters", None) or {}
    if not isinstance(nested, dict):
        raise InvalidRequest(
            "parameters.generate_parameters: Must be an object.",
            errors={"parameters": {"generate_parameters": ["Must be an object."]}},
        )
    for name, value in nested.items():
        if value is None:
            continue
        if name in parameters and parameters[name] != value:
            raise InvalidRequest(
                f"parameters.{name}: given twice with different values, once in generate_parameters",
                errors={"parameters": {name: ["Given twice with different values."]}},
            )
        parameters[name] = value
    return parameters


def language_pair(parameters: dict) -> str | None:
    """Turn `src_lang`/`tgt_lang` (removed from `parameters`) into a pair such as zh2en; codes with a
    region or script (`zh_CN`, `en-US`) name their language."""
    given = {name: parameters.pop(name) for name in LANGUAGES if name in parameters}
    if not given:
        return None
    if len(given) == 1 or not all(isinstance(code, str) and code for code in given.values()):
        raise InvalidRequest(
            "parameters: src_lang and tgt_lang go together, as language codes such as zh and en",
            errors={"parameters": {name: ["Give both, as language codes."] for name in LANGUAGES}},
        )
    source, target = (given[name].replace("-", "_").split("_")[0].lower() for name in LANGUAGES)
    pair = f"{source}2{target}"
    if pair not in gateway().catalog.pairs:
        supported = ", ".join(sorted(gateway().catalog.pairs))
        raise InvalidRequest(
            f"parameters: no translation from {given['src_lang']!r} to {given['tgt_lang']!r} is configured; "
            f"configured: {supported}",
            errors={"parameters": {"src_lang": [f"With tgt_lang, must make one of: {supported}."]}},
        )
    return pair


def validated_inputs(inputs, field: str = "inputs") -> str:
    """Check the input as the native API checks it: a non-blank string within MAX_INPUT_CHARS."""
    if not isinstance(inputs, str):
        raise InvalidRequest(f"{field}: Must be a string.", errors={field: ["Must be a string."]})
    try:
        return load_or_raise(gateway().body_schema, {"inputs": inputs})["inputs"]
    except InvalidRequest as exc:
        if field == "inputs":
            raise
        raise InvalidRequest(exc.message.replace("inputs", field, 1), errors={field: exc.errors["inputs"]}) from None


def cache_directives(cache_control: str | None, options: dict) -> CacheDirectives:
    """The caller's Cache-Control, and `options.use_cache=false`, which skips the lookup."""
    directives = CacheDirectives.from_header(cache_control)
    if options.get("use_cache") is False:
        return CacheDirectives(lookup=False, keep=directives.keep)
    return directives
