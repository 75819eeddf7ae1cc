"""zai-org through the router: an asynchronous image generation, polled by its id, then downloaded.

`provider_model` is zai-org's model name (such as `cogview-4-250304`).
"""

from service.errors import UpstreamError
from service.hub.downloads import ImageLink
from service.hub.messages import UpstreamReply, UpstreamRequest
from service.hub.providers.helper import InferenceCall, Poll, ProviderHelper, dig, json_answer

POLL_SECONDS = 2.0
_ROUTE = "/api/paas/v4"


class ZaiTextToImage(ProviderHelper):
    """`/async/images/generations`, then `/async-result/<id>` until SUCCESS or FAIL."""

    provider = "zai-org"
    tasks = ("text-to-image",)
    config_keys = required_keys = frozenset({"provider_model"})

    def route(self, call: InferenceCall) -> str:
        return f"{_ROUTE}/async/images/generations"

    def headers(self, call: InferenceCall) -> dict:
        return {"Accept-Language": "en-US,en"}

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        payload = {"model": call.target.provider_model, "prompt": call.decorated_inputs()}
        if call.args.get("width") and call.args.get("height"):
            payload["size"] = f"{call.args['width']}x{call.args['height']}"
        return payload

    def next_poll(self, call: InferenceCall, reply: UpstreamReply, sent: UpstreamRequest) -> Poll | None:
        """Ask for the result by the task's id while it is processing."""
        document = json_answer(reply)
        if dig(document, "task_status") != "PROCESSING":
            return None
        if sent.method == "GET":  # a poll's answer need not repeat the id: ask the same again
            return Poll(sent, POLL_SECONDS)
        task_id = dig(document, "id")
        if not isinstance(task_id, str) or not task_id.replace("-", "").isalnum():
            raise UpstreamError("the zai-org task has no id to poll")
        return self.poll_at(call, f"{_ROUTE}/async-result/{task_id}", POLL_SECONDS, self.headers(call))

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        document = json_answer(reply)
        url = dig(document, "image_result", 0, "url")
        if dig(document, "task_status") in (None, "SUCCESS") and isinstance(url, str) and url:
            return [ImageLink(url=url, provider=self.provider)]
        raise UpstreamError(f"the zai-org image generation did not succeed: {dig(document, 'task_status')}")


HELPERS = {"zai-org": {"text-to-image": ZaiTextToImage}}
