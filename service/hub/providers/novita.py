"""novita through the router: its own OpenAI-style completions route."""

from service.hub.providers.helper import InferenceCall
from service.hub.providers.openai_style import CompletionsHelper


class NovitaCompletions(CompletionsHelper):
    """`/v3/openai/completions`; `provider_model` is novita's id (meta-llama/llama-3.1-8b-instruct)."""

    provider = "novita"

    def route(self, call: InferenceCall) -> str:
        return "/v3/openai/completions"


HELPERS = {"openai-completions": {"text-completion": NovitaCompletions}}
