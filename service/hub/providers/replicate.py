"""replicate through the router: a prediction asked with `Prefer: wait`, polled while it runs.

The prediction answers with its status: `succeeded` with `output` (the image's URL, then
downloaded), `starting` or `processing` (asked again at `urls.get`, through the router, until
the deadline), `failed` or `canceled`.
"""

from urllib.parse import urlsplit

from service.errors import UpstreamError
from service.hub.downloads import ImageLink
from service.hub.messages import UpstreamReply, UpstreamRequest
from service.hub.providers.helper import InferenceCall, Poll, ProviderHelper, json_answer, set_args

_INPUTS = ("negative_prompt", "guidance_scale", "num_inference_steps", "seed", "width", "height")
RUNNING = ("starting", "processing")
POLL_SECONDS = 1.0
_PREDICTIONS_PATH = "/v1/predictions/"


class ReplicateTextToImage(ProviderHelper):
    """One image per prediction; `provider_model` is `owner/name` or `owner/name:version`."""

    provider = "replicate"
    tasks = ("text-to-image",)
    config_keys = required_keys = frozenset({"provider_model"})

    def route(self, call: InferenceCall) -> str:
        model = call.target.provider_model
        return "/v1/predictions" if ":" in model else f"/v1/models/{model}/predictions"

    def headers(self, call: InferenceCall) -> dict:
        return {"Prefer": "wait"}

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        payload = {"input": {"prompt": call.decorated_inputs(), **set_args(dict(call.args, seed=seed), _INPUTS)}}
        if ":" in call.target.provider_model:  # owner/name:version pins one version
            payload["version"] = call.target.provider_model.split(":", 1)[1]
        return payload

    def next_poll(self, call: InferenceCall, reply: UpstreamReply, sent: UpstreamRequest) -> Poll | None:
        """Ask again, through the router, while the prediction runs without an output yet
        (its output URL may come before its status says `succeeded`)."""
        document = json_answer(reply)
        if not isinstance(document, dict) or document.get("status") not in RUNNING or _output_url(document):
            return None
        return self.poll_at(call, f"{_PREDICTIONS_PATH}{_prediction_id(document)}", POLL_SECONDS)

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        document = json_answer(reply)
        if not isinstance(document, dict):
            raise UpstreamError("the replicate answer is not a prediction")
        url = _output_url(document)
        if url and document.get("status") not in ("failed", "canceled"):
            return [ImageLink(url=url, provider=self.provider)]
        raise UpstreamError(
            f"the replicate prediction did not succeed: {document.get('error') or document.get('status')}"
        )


def _output_url(document: dict) -> str | None:
    """Return the prediction's first output URL, None while it has none."""
    output = document.get("output")
    url = output[0] if isinstance(output, list) and output else output
    return url if isinstance(url, str) and url else None


def _prediction_id(document: dict) -> str:
    """Return the prediction's id, from `urls.get` or `id`; refuse anything else."""
    get = document.get("urls", {}).get("get") if isinstance(document.get("urls"), dict) else None
    path = urlsplit(get).path if isinstance(get, str) else ""
    found = path.rsplit(_PREDICTIONS_PATH, 1)[-1] if _PREDICTIONS_PATH in path else document.get("id")
    if not isinstance(found, str) or not found.isalnum():
        raise UpstreamError("the replicate prediction has no id to poll")
    return found


HELPERS = {"replicate": {"text-to-image": ReplicateTextToImage}}
