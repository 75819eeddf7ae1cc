"""The OpenAI-style `/v1/completions` protocol (vLLM on hf-inference, TGI, providers)."""

from service.hub.messages import UpstreamReply, UpstreamRequest
from service.hub.protocols.base import InferenceCall, Protocol, credential_of, require_text
from service.hub.protocols.openai_style import choices, openai_base, sampling_parameters


# Providers serve completion at their own OpenAI-style routes behind the router.
PROVIDER_COMPLETION_ROUTES = {
    "featherless-ai": "/v1/completions",
    "together": "/v1/completions",
    "novita": "/v3/openai/completions",
}


class OpenAICompletionsProtocol(Protocol):
    """Plain text continuation; several results in one call with `n`."""

    tasks = ("text-completion",)
    asks_for_n = True

    def build(self, call: InferenceCall, settings, seed: int | None, n: int) -> UpstreamRequest:
        """Build one request asking for `n` completions."""
        target = call.target
        payload = {"model": target.provider_model or target.id, "prompt": call.decorated_inputs(), **sampling_parameters(call, n, seed)}
        if call.sampling:
            payload["top_k"] = call.args["top_k"]
        return UpstreamRequest(url=self._url(call, settings), payload=payload, credential=credential_of(target))

    def _url(self, call: InferenceCall, settings) -> str:
        """Return the completions route: the model's own server, a provider's, or hf-inference's."""
        provider = call.target.provider
        if provider and provider != "hf-inference" and not call.target.url:
            route = PROVIDER_COMPLETION_ROUTES.get(provider, "/v1/completions")
            return f"{settings.hf_providers_base}/{provider}{route}"
        return f"{openai_base(call, f'{settings.hf_api_base}/{call.target.id}/v1')}/completions"

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int) -> list:
        """Read `n` completions, with the prompt in front when return_full_text asks for it."""
        texts = [require_text(choice.get("text"), "choices[].text") for choice in choices(reply, n)]
        if call.args.get("return_full_text"):
            return [call.inputs + text for text in texts]
        return texts
