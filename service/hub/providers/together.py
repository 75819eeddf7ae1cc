"""together through the router: images (OpenAI-style, base64) and plain completions."""

from service.hub.images import image_from_reply
from service.hub.messages import UpstreamReply
from service.hub.providers.helper import InferenceCall, ProviderHelper, renamed, set_args
from service.hub.providers.openai_style import CompletionsHelper


class TogetherTextToImage(ProviderHelper):
    """`/v1/images/generations` answering `{"data": [{"b64_json"}]}`; `provider_model` is together's id."""

    provider = "together"
    tasks = ("text-to-image",)
    config_keys = required_keys = frozenset({"provider_model"})
    makes_images = True

    def route(self, call: InferenceCall) -> str:
        return "/v1/images/generations"

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        args = dict(call.args, seed=seed)
        names = {"num_inference_steps": "steps", "guidance_scale": "guidance", "width": "width", "height": "height"}
        return {
            "prompt": call.decorated_inputs(),
            "model": call.target.provider_model,
            "response_format": "base64",
            **set_args(args, ("negative_prompt", "seed")),
            **renamed(args, names),
        }

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        return [image_from_reply(reply)]


class TogetherCompletions(CompletionsHelper):
    """together's own `/v1/completions`."""

    provider = "together"

    def route(self, call: InferenceCall) -> str:
        return "/v1/completions"


HELPERS = {
    "openai-images": {"text-to-image": TogetherTextToImage},
    "openai-completions": {"text-completion": TogetherCompletions},
}
