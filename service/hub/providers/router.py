"""Chat through the router's OpenAI-style route: any provider it knows, or one of its policies.

`provider` pins one (`novita`, `together`...) as `<model>:<provider>`; a policy lets the
router choose: `fastest` (its default), `cheapest` or `preferred` (the order set in the
account's settings). Without `provider` the router uses its default. A model with its own `url`
is reached at `<url>/v1/chat/completions` instead.
"""

import json
from dataclasses import replace

from service.catalog.tasks import CHAT_COMPLETION
from service.errors import UnreadableAnswer, UpstreamError
from service.hub.messages import UpstreamReply, UpstreamRequest
from service.hub.providers.helper import InferenceCall
from service.hub.providers.openai_style import ChatHelper, choices, counted_tokens
from service.hub.status import raise_for_event

POLICIES = ("fastest", "cheapest", "preferred")
# The OpenAI chat parameters a caller's conversation carries to the router, as it takes them.
CHAT_PARAMETERS = frozenset(
    {
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "response_format",
        "tools",
        "tool_choice",
    }
)


def policy_of(provider: str | None) -> str | None:
    """Return the router policy a `provider` value names (`fastest` or `:fastest`), else None."""
    name = (provider or "").removeprefix(":")
    return name if name in POLICIES else None


class RouterChat(ChatHelper):
    """The router's `/v1/chat/completions`, the provider (or policy) after the model id."""

    provider = "router"

    def describe(self) -> str:
        return "protocol openai-chat"

    def route(self, call: InferenceCall) -> str:
        return "/chat/completions"

    def model_name(self, call: InferenceCall) -> str:
        target = call.target
        if target.url:  # a server of one's own knows the model by its own name
            return target.provider_model or target.id
        suffix = policy_of(target.provider) or target.provider
        return f"{target.id}:{suffix}" if suffix else target.id


class RouterChatCompletion(RouterChat):
    """A caller's own conversation on the router's chat route: its messages and its OpenAI
    parameters sent as given, its choices answered whole (message and finish_reason)."""

    tasks = (CHAT_COMPLETION.name,)

    def serves(self, target, task_type: str) -> bool:
        return task_type == CHAT_COMPLETION.name

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        """The messages, `n` and the seed of this call, and the caller's other parameters."""
        parameters = {name: value for name, value in call.args.items() if name in CHAT_PARAMETERS}
        if not call.sampling:
            parameters.pop("seed", None)  # one greedy answer, repeated: the seed changes nothing
        elif seed is not None:
            parameters["seed"] = seed
        return {"model": self.model_name(call), "messages": list(call.inputs), **parameters, "n": n}

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int) -> list:
        """Read up to `n` choices: each its message (role, content and whatever else it holds) and finish_reason."""
        results = []
        for choice in choices(reply, n):
            message = choice.get("message")
            if not isinstance(message, dict) or not isinstance(message.get("content", ""), (str, type(None))):
                raise UpstreamError("the upstream answer has no message at choices[].message")
            result = {"message": message, "finish_reason": choice.get("finish_reason")}
            if choice.get("logprobs") is not None:
                result["logprobs"] = choice["logprobs"]
            results.append(result)
        return results

    def stream_request(self, call: InferenceCall) -> UpstreamRequest:
        """The request for one streamed choice, its usage asked for whatever the caller asked:
        the ledger books a stream's tokens from it."""
        request = self.request(call, call.args.get("seed"), 1)
        payload = {**request.payload, "stream": True, "stream_options": {"include_usage": True}}
        return replace(request, payload=payload, headers={**request.headers, "Accept": "text/event-stream"})

    def stream_chunk(self, data: str) -> tuple[dict | None, tuple[int, int] | None]:
        """Read one event of the stream: its chunk's choices (None for a chunk without any, such
        as the usage chunk) and the usage it reports (None when it reports none)."""
        raise_for_event(data)
        try:
            document = json.loads(data)
        except ValueError as exc:
            raise UnreadableAnswer("the upstream sent a stream event that is not JSON") from exc
        if not isinstance(document, dict) or not isinstance(document.get("choices", []), list):
            raise UnreadableAnswer("the upstream sent a stream event that is not a chat.completion.chunk")
        usage = document.get("usage")
        tokens = counted_tokens(usage) if isinstance(usage, dict) else None
        found = [choice for choice in document.get("choices") or [] if isinstance(choice, dict)]
        return ({"choices": found} if found else None), tokens
