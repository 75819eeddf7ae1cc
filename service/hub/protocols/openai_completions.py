"""The OpenAI-style `/v1/completions` protocol (vLLM on hf-inference, TGI, providers)."""

from service.hub.messages import UpstreamReply, UpstreamRequest
from service.hub.protocols.base import InferenceCall, require_text
from service.hub.protocols.openai_style import choices, openai_base, sampling_parameters


class OpenAICompletionsProtocol:
    """Plain text continuation; several results in one call with `n`."""

    asks_for_n = True

    def build(self, call: InferenceCall, settings, seed: int | None, n: int) -> UpstreamRequest:
        """Build one request asking for `n` completions."""
        base = openai_base(call, f"{settings.hf_api_base}/{call.target.id}/v1")
        payload = {"model": call.target.id, "prompt": call.decorated_inputs(), **sampling_parameters(call, n, seed)}
        if call.sampling:
            payload["top_k"] = call.args["top_k"]
        return UpstreamRequest(url=f"{base}/completions", payload=payload)

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int) -> list:
        """Read `n` completions, with the prompt in front when return_full_text asks for it."""
        texts = [require_text(choice.get("text"), "choices[].text") for choice in choices(reply, n)]
        if call.args.get("return_full_text"):
            return [call.inputs + text for text in texts]
        return texts
