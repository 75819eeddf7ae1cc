"""fal-ai through the router: `{"prompt"}` answers `{"images": [{"url"}]}`; the image is then downloaded."""

from service.errors import UpstreamError
from service.hub.downloads import ImageLink
from service.hub.messages import UpstreamReply
from service.hub.providers.helper import InferenceCall, ProviderHelper, dig, json_answer, set_args

_COMMON = ("negative_prompt", "guidance_scale", "num_inference_steps", "seed")


class FalAiTextToImage(ProviderHelper):
    """One image per call, at fal-ai's model route (`provider_model`, such as `fal-ai/flux/dev`)."""

    provider = "fal-ai"
    tasks = ("text-to-image",)
    config_keys = required_keys = frozenset({"provider_model"})

    def route(self, call: InferenceCall) -> str:
        return f"/{call.target.provider_model}"

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        args = dict(call.args, seed=seed)
        payload = {"prompt": call.decorated_inputs(), **set_args(args, _COMMON)}
        if args.get("width") and args.get("height"):
            payload["image_size"] = {"width": args["width"], "height": args["height"]}
        return payload

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        url = dig(json_answer(reply), "images", 0, "url")
        if not isinstance(url, str) or not url:
            raise UpstreamError("the fal-ai answer holds no image URL")
        return [ImageLink(url=url, provider=self.provider)]


HELPERS = {"fal-ai": {"text-to-image": FalAiTextToImage}}
