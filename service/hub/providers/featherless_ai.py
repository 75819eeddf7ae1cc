"""featherless-ai through the router: OpenAI-style completions."""

from service.hub.providers.helper import InferenceCall
from service.hub.providers.openai_style import CompletionsHelper


class FeatherlessCompletions(CompletionsHelper):
    """`/v1/completions`."""

    provider = "featherless-ai"

    def route(self, call: InferenceCall) -> str:
        return "/v1/completions"


HELPERS = {"openai-completions": {"text-completion": FeatherlessCompletions}}
