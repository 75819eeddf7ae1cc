"""Text-to-image through the router's providers, each answering in its own shape."""

from service.errors import ModelUnavailable, UpstreamError
from service.hub.downloads import ImageLink
from service.hub.messages import UpstreamReply, UpstreamRequest
from service.hub.protocols.base import IMAGE_TASKS, InferenceCall, Protocol, json_answer
from service.hub.protocols.images import image_from_reply

_COMMON = ("negative_prompt", "guidance_scale", "num_inference_steps", "seed")


def _set(args: dict, names) -> dict:
    """Return the args among `names` the caller set."""
    return {name: args[name] for name in names if args.get(name) is not None}


class FalAiProtocol(Protocol):
    """fal-ai: `{"prompt"}` answers `{"images": [{"url"}]}`; the image is then downloaded."""

    tasks = IMAGE_TASKS

    def build(self, call: InferenceCall, settings, seed: int | None, n: int) -> UpstreamRequest:
        """Build the request for one image."""
        args = dict(call.args, seed=seed)
        payload = {"prompt": call.decorated_inputs(), **_set(args, _COMMON)}
        if args.get("width") and args.get("height"):
            payload["image_size"] = {"width": args["width"], "height": args["height"]}
        return UpstreamRequest(url=f"{settings.hf_providers_base}/fal-ai/{call.target.provider_model}", payload=payload)

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        """Return the link to the image."""
        document = json_answer(reply)
        try:
            url = document["images"][0]["url"]
        except (KeyError, IndexError, TypeError):
            raise UpstreamError("the fal-ai answer holds no image URL") from None
        return [_link(url, "fal-ai")]


class ReplicateProtocol(Protocol):
    """replicate: a prediction (201) whose `output` is the image URL, asked with `Prefer: wait`."""

    tasks = IMAGE_TASKS

    def build(self, call: InferenceCall, settings, seed: int | None, n: int) -> UpstreamRequest:
        """Build the prediction request for one image."""
        args = dict(call.args, seed=seed)
        payload = {"input": {"prompt": call.decorated_inputs(), **_set(args, _COMMON + ("width", "height"))}}
        model = call.target.provider_model
        base = f"{settings.hf_providers_base}/replicate/v1"
        if ":" in model:  # owner/name:version pins one version
            payload["version"] = model.split(":", 1)[1]
            url = f"{base}/predictions"
        else:
            url = f"{base}/models/{model}/predictions"
        return UpstreamRequest(url=url, payload=payload, headers={"Prefer": "wait"})

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        """Return the link to the image, or ask for a retry while it is still processing."""
        document = json_answer(reply)
        if not isinstance(document, dict):
            raise UpstreamError("the replicate answer is not a prediction")
        output = document.get("output")
        url = output[0] if isinstance(output, list) and output else output
        if isinstance(url, str):
            return [_link(url, "replicate")]
        if document.get("status") in ("starting", "processing"):
            raise ModelUnavailable("the replicate prediction had not finished", retry_after=5, retryable=True)
        raise UpstreamError(f"the replicate prediction failed: {document.get('error') or document.get('status')}")


class OpenAIImagesProtocol(Protocol):
    """together and nscale: OpenAI-style `/v1/images/generations` answering base64."""

    tasks = IMAGE_TASKS

    def build(self, call: InferenceCall, settings, seed: int | None, n: int) -> UpstreamRequest:
        """Build the request for one image."""
        args = dict(call.args, seed=seed)
        provider = call.target.provider
        payload = {"prompt": call.decorated_inputs(), "model": call.target.provider_model, **_set(args, ("negative_prompt", "seed"))}
        if provider == "together":
            payload.update(response_format="base64", **_renamed(args, {"num_inference_steps": "steps", "guidance_scale": "guidance", "width": "width", "height": "height"}))
        else:
            payload.update(response_format="b64_json", **_renamed(args, {"num_inference_steps": "num_inference_steps", "guidance_scale": "guidance_scale"}))
            if args.get("width") and args.get("height"):
                payload["size"] = f"{args['width']}x{args['height']}"
        return UpstreamRequest(url=f"{settings.hf_providers_base}/{provider}/v1/images/generations", payload=payload)

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        """Decode the base64 image."""
        return [image_from_reply(reply)]


def _renamed(args: dict, names: dict) -> dict:
    """Return the set args under the provider's names for them."""
    return {provider_name: args[name] for name, provider_name in names.items() if args.get(name) is not None}


def _link(url, provider: str) -> ImageLink:
    """Check the URL is a string before it goes anywhere near a download."""
    if not isinstance(url, str) or not url:
        raise UpstreamError(f"the {provider} answer holds no image URL")
    return ImageLink(url=url, provider=provider)
