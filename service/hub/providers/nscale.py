"""nscale through the router: OpenAI-style images answering `b64_json`."""

from service.hub.images import image_from_reply
from service.hub.messages import UpstreamReply
from service.hub.providers.helper import InferenceCall, ProviderHelper, set_args


class NscaleTextToImage(ProviderHelper):
    """`/v1/images/generations` with a `size`; `provider_model` is nscale's id."""

    provider = "nscale"
    tasks = ("text-to-image",)
    config_keys = required_keys = frozenset({"provider_model"})
    makes_images = True

    def route(self, call: InferenceCall) -> str:
        return "/v1/images/generations"

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        args = dict(call.args, seed=seed)
        payload = {
            "prompt": call.decorated_inputs(),
            "model": call.target.provider_model,
            "response_format": "b64_json",
            **set_args(args, ("negative_prompt", "seed", "num_inference_steps", "guidance_scale")),
        }
        if args.get("width") and args.get("height"):
            payload["size"] = f"{args['width']}x{args['height']}"
        return payload

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        return [image_from_reply(reply)]


HELPERS = {"openai-images": {"text-to-image": NscaleTextToImage}}
