"""Chat through the router's OpenAI-style route: any provider it knows, or one of its policies.

`provider` pins one (`novita`, `together`...) as `<model>:<provider>`; a policy lets the
router choose: `fastest` (its default), `cheapest` or `preferred` (the order set in the
account's settings). Without `provider` the router uses its default. A model with its own `url`
is reached at `<url>/v1/chat/completions` instead.
"""

from service.hub.providers.helper import InferenceCall
from service.hub.providers.openai_style import ChatHelper

POLICIES = ("fastest", "cheapest", "preferred")


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
