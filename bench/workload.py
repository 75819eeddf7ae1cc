"""The requests the benchmark sends: each through the service and the same one straight upstream."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bench.upstream import LARGE_IMAGE_MODEL, LARGE_IMAGE_PATH

INPUTS = "连衣裙"
TRANSLATION_MODEL_PATH = "/hf-inference/models/google/madlad400-3b-mt"  # first choice for zh2en
IMAGE_MODEL_PATH = "/hf-inference/models/stabilityai/stable-diffusion-3-medium-diffusers"
COMPLETION_MODEL_PATH = "/hf-inference/models/openai-community/gpt2"  # what ?model_name=gpt2 calls
TRANSLATION_MODEL = "madlad400"  # the catalog key behind TRANSLATION_MODEL_PATH, with its `<2en>` template
CHAT_MODEL = "llama-3.1-8b-chat"  # the shipped chat model, on the router's chat route
CHAT_MODEL_ID = "meta-llama/Llama-3.1-8B-Instruct"
CHAT_PATH = "/v1/chat/completions"
CHAT_MAX_TOKENS = 128  # what the native API asks for by default, so both surfaces ask the same
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Call:
    """One HTTP request: a path, a JSON body, headers (the host is the client's) and the status it expects."""

    path: str
    body: bytes
    headers: dict = field(default_factory=lambda: dict(JSON_HEADERS))
    status: int = 200


def _json_call(path: str, document: dict, status: int = 200, **headers: str) -> Call:
    """Build a POST of a JSON document."""
    body = json.dumps(document, ensure_ascii=False).encode("utf-8")
    return Call(path, body, {**JSON_HEADERS, **headers}, status)


def translation(num_sentences: int = 1) -> Call:
    """Translate zh to en through the service (sampling, so N results mean N upstream calls)."""
    return _json_call(
        "/api/infer/text-translation?model_type=zh2en", {"inputs": INPUTS, "args": {"num_sentences": num_sentences}}
    )


def translation_direct() -> Call:
    """The upstream call the service makes for `translation()`."""
    return _json_call(
        TRANSLATION_MODEL_PATH,
        {
            "inputs": f"<2en> {INPUTS}",
            "parameters": {"generate_parameters": {"do_sample": True, "top_k": 30, "max_new_tokens": 128}},
        },
        **{"x-use-cache": "false"},
    )


def translation_greedy() -> Call:
    """A greedy translation: one right answer, kept by the cache."""
    return _json_call("/api/infer/text-translation?model_type=zh2en", {"inputs": INPUTS, "args": {"do_sample": False}})


def translation_greedy_direct() -> Call:
    """The upstream call the service makes for `translation_greedy()`."""
    return _json_call(
        TRANSLATION_MODEL_PATH,
        {
            "inputs": f"<2en> {INPUTS}",
            "parameters": {"generate_parameters": {"do_sample": False, "max_new_tokens": 128}},
        },
    )


def text_to_image(model_name: str | None = None) -> Call:
    """Ask the service for one image, from the shipped model or from `model_name`."""
    query = f"?model_name={model_name}" if model_name else ""
    return _json_call(f"/api/infer/text-to-image{query}", {"inputs": INPUTS})


def text_to_image_direct(path: str = IMAGE_MODEL_PATH) -> Call:
    """The upstream call the service makes for `text_to_image()`."""
    return _json_call(
        path, {"inputs": INPUTS, "parameters": {"seed": 1234}}, Accept="image/png", **{"x-use-cache": "false"}
    )


def large_image() -> Call:
    """Ask the service for the 1.5 MB image."""
    return text_to_image(LARGE_IMAGE_MODEL)


def large_image_direct() -> Call:
    """Fetch the 1.5 MB image straight from the upstream."""
    return text_to_image_direct(LARGE_IMAGE_PATH)


def completion(num_sentences: int = 1) -> Call:
    """Continue a text with gpt2: greedy for one result, sampled (one upstream call each) for more."""
    args = {"num_sentences": num_sentences, "do_sample": num_sentences > 1}
    return _json_call("/api/infer/text-completion?model_name=gpt2", {"inputs": INPUTS, "args": args})


def completion_direct(sample: bool = False) -> Call:
    """The upstream call the service makes for one result of `completion()`."""
    parameters = {"do_sample": sample, "max_new_tokens": 128, "return_full_text": False}
    if sample:
        parameters.update(top_k=30, seed=1234)
    return _json_call(
        COMPLETION_MODEL_PATH,
        {"inputs": INPUTS, "parameters": parameters},
        **({"x-use-cache": "false"} if sample else {}),
    )


def text_to_text(model_name: str | None = None) -> Call:
    """An instruction, answered by the shipped chat model (or `model_name`) through the router."""
    query = f"?model_name={model_name}" if model_name else ""
    return _json_call(f"/api/infer/text-to-text{query}", {"inputs": INPUTS})


def translation_of_model() -> Call:
    """Translate zh to en on one named model through the native API: no chain, no fallback."""
    return _json_call(f"/api/infer/text-translation?model_name={TRANSLATION_MODEL}", {"inputs": INPUTS})


def hub_translation() -> Call:
    """The same translation through the Hub's API: `POST /models/<id>`, answered in the Hub's shape."""
    return _json_call(f"/models/{TRANSLATION_MODEL}", {"inputs": INPUTS})


def chat_of_model() -> Call:
    """A chat instruction on the shipped chat model through the native API."""
    return text_to_text(CHAT_MODEL)


def openai_chat() -> Call:
    """The same instruction through the OpenAI API's chat completion."""
    return _json_call(CHAT_PATH, {"model": CHAT_MODEL, "messages": _chat_messages(), "max_tokens": CHAT_MAX_TOKENS})


def chat_direct() -> Call:
    """The router call the service makes for `chat_of_model()` and for `openai_chat()`."""
    return _json_call(
        CHAT_PATH, {"model": CHAT_MODEL_ID, "messages": _chat_messages(), "max_tokens": CHAT_MAX_TOKENS, "n": 1}
    )


def _chat_messages() -> list[dict]:
    """The one user message both chat calls carry."""
    return [{"role": "user", "content": INPUTS}]


def invalid_request() -> Call:
    """A request the service refuses (unknown arg), so the error path runs too."""
    return _json_call("/api/infer/text-translation", {"inputs": INPUTS, "args": {"num_sentence": 2}}, status=400)


def mixed() -> list[Call]:
    """The mix sent for the memory-growth run: every task path the service has, errors included."""
    return [translation(), translation(3), text_to_image(), translation(), invalid_request()]
