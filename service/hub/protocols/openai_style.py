"""What the OpenAI-style protocols share: sampling parameters, n, and choices."""

from service.errors import UpstreamError
from service.hub.messages import UpstreamReply
from service.hub.protocols.base import InferenceCall, json_answer


def sampling_parameters(call: InferenceCall, n: int, seed: int | None) -> dict:
    """Map the documented args to OpenAI-style parameters."""
    args = call.args
    parameters = {"max_tokens": args.get("max_new_tokens", 128), "n": n}
    if not call.sampling:
        parameters["temperature"] = 0.0  # greedy decoding in OpenAI terms
    else:
        if args.get("temperature") is not None:
            parameters["temperature"] = args["temperature"]
        if args["top_p"] < 1.0:
            parameters["top_p"] = args["top_p"]
    if seed is not None:
        parameters["seed"] = seed
    return parameters


def choices(reply: UpstreamReply, n: int) -> list:
    """Return up to `n` choices from an answer (some servers ignore `n`), or raise upstream_error."""
    document = json_answer(reply)
    found = document.get("choices") if isinstance(document, dict) else None
    if not isinstance(found, list) or not found or not all(isinstance(choice, dict) for choice in found):
        raise UpstreamError("the upstream answer has no choices")
    return found[:n]


def openai_base(call: InferenceCall, default_base: str) -> str:
    """Return the /v1 base for a model: its own server's, or the default route's."""
    return f"{call.target.url}/v1" if call.target.url else default_base
