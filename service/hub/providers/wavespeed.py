"""wavespeed through the router: a task submitted, polled at `data.urls.get`, then its output downloaded.

`provider_model` is wavespeed's route for the model (such as `wavespeed-ai/flux-dev`).
"""

from urllib.parse import urlsplit

from service.errors import UpstreamError
from service.hub.downloads import ImageLink
from service.hub.messages import UpstreamReply, UpstreamRequest
from service.hub.providers.helper import InferenceCall, Poll, ProviderHelper, dig, json_answer, set_args

_PARAMETERS = ("negative_prompt", "guidance_scale", "num_inference_steps", "seed")
RUNNING = ("created", "processing")
POLL_SECONDS = 0.5


class WavespeedTextToImage(ProviderHelper):
    """One image per task, at `/api/v3/<provider_model>`."""

    provider = "wavespeed"
    tasks = ("text-to-image",)
    config_keys = required_keys = frozenset({"provider_model"})

    def route(self, call: InferenceCall) -> str:
        return f"/api/v3/{call.target.provider_model}"

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        args = dict(call.args, seed=seed)
        payload = {"prompt": call.decorated_inputs(), **set_args(args, _PARAMETERS)}
        if args.get("width") and args.get("height"):
            payload["size"] = f"{args['width']}*{args['height']}"
        return payload

    def next_poll(self, call: InferenceCall, reply: UpstreamReply, sent: UpstreamRequest) -> Poll | None:
        """Ask for the task's result, through the router, while it is still running."""
        data = dig(json_answer(reply), "data")
        if not isinstance(data, dict) or data.get("status") not in RUNNING:
            return None
        path = urlsplit(str(dig(data, "urls", "get") or "")).path
        if not path.startswith("/api/v3/predictions/"):
            raise UpstreamError("the wavespeed task has no result URL to poll")
        return self.poll_at(call, path, POLL_SECONDS)

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        data = dig(json_answer(reply), "data")
        url = dig(data, "outputs", 0)
        if dig(data, "status") == "completed" and isinstance(url, str) and url:
            return [ImageLink(url=url, provider=self.provider)]
        raise UpstreamError(f"the wavespeed task did not complete: {dig(data, 'error') or dig(data, 'status')}")


HELPERS = {"wavespeed": {"text-to-image": WavespeedTextToImage}}
