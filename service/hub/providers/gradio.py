"""A Gradio app as a target: a Space on the Hub (`space = "owner/name"`) or an app of your own (`url`).

The call is Gradio's HTTP API: `POST <app>/gradio_api/call/<api_name>` with `{"data": [...]}`
answers `{"event_id"}`; `GET <app>/gradio_api/call/<api_name>/<event_id>` then answers an event
stream that ends with `event: complete` (`data:` the outputs) or `event: error` (`data:`
`{"error": <message or null>}`). `inputs` says,
by position, which of the task's inputs and args fill the function's inputs; `output` which
output is the result: a text, or an image file left on the app's own host.
"""

import json
import re
from urllib.parse import quote, urlsplit

from service.catalog import CatalogError, ModelTarget
from service.catalog.tasks import COMPLETION, TEXT_TO_IMAGE, TEXT_TO_TEXT, TRANSLATION
from service.errors import ModelUnavailable, UpstreamError
from service.hub.downloads import ImageLink
from service.hub.messages import HUB_TOKEN, UpstreamReply, UpstreamRequest
from service.hub.providers.helper import InferenceCall, Poll, ProviderHelper, json_answer

PROTOCOL = "gradio"
_SAMPLING = ("seed", "do_sample", "top_k", "top_p", "temperature", "max_new_tokens")
# What each task can put in a function's inputs: its text, its languages, its args.
GIVES = {
    TRANSLATION.name: ("text", "source_language", "target_language", "src", "tgt", *_SAMPLING),
    COMPLETION.name: ("text", *_SAMPLING, "return_full_text"),
    TEXT_TO_TEXT.name: ("text", *_SAMPLING),
    TEXT_TO_IMAGE.name: ("text", "seed", "negative_prompt", "guidance_scale", "num_inference_steps", "width", "height"),
}
_KNOWN = frozenset().union(*GIVES.values())
_SPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_API_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}")
_END_EVENTS = ("complete", "error")


def space_host(space: str) -> str:
    """The host a Space is served at: `owner/name` in lower case, `/`, `.` and `_` as `-`, on hf.space."""
    return re.sub(r"[/._]", "-", space.lower()) + ".hf.space"


def app_base(target: ModelTarget) -> str:
    """Where a target's app is: its own `url`, else its Space's host."""
    return target.url or f"https://{space_host(target.options['space'])}"


def parse_events(body: bytes) -> list:
    """Read an event stream into (event, data) pairs; `data` is the raw text of its data lines."""
    events = []
    for block in body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data or name != "message":
            events.append((name, "\n".join(data)))
    return events


def final_event(reply: UpstreamReply) -> tuple:
    """The stream's `complete` or `error` event, its data parsed; an UpstreamError when it has none."""
    for name, data in reversed(parse_events(reply.body)):
        if name in _END_EVENTS:
            try:
                return name, json.loads(data) if data else None
            except ValueError:
                raise UpstreamError(f"the Gradio app sent {name} data that is not JSON") from None
    raise UpstreamError("the Gradio app's event stream ended without a result or an error")


def function_failed(data) -> ModelUnavailable:
    """The app's function raised (`null` data: without a message): the target's failure, so the
    chain falls back to its next target and the breaker counts it."""
    detail = data.get("error") if isinstance(data, dict) else data
    detail = detail if isinstance(detail, str) and detail else "it gave no message"
    return ModelUnavailable(f"the Gradio app's function failed: {detail}")


class GradioFunction(ProviderHelper):
    """One function of a Gradio app, serving any of the four tasks its `inputs` can be filled for."""

    provider = PROTOCOL
    tasks = tuple(GIVES)
    config_keys = frozenset({"space", "api_name", "inputs", "output", "token"})
    required_keys = frozenset({"api_name"})
    # The seed reaches the app only when `inputs` names it: a seeded call is not known to repeat.
    sends_seed = False

    def describe(self) -> str:
        return "protocol gradio"

    def check(self, target: ModelTarget) -> None:
        """Refuse an entry without an app, a function, or with inputs no task gives."""
        super().check(target)
        where, options = f"models.{target.key}", target.options
        space = options.get("space")
        if (space is None) == (target.url is None):
            raise CatalogError(f'{where}: protocol gradio needs either space = "owner/name" or url, not both')
        if space is not None and not (isinstance(space, str) and _SPACE.fullmatch(space)):
            raise CatalogError(f"{where}.space must be a Space id, owner/name")
        if not (isinstance(options["api_name"], str) and _API_NAME.fullmatch(options["api_name"].lstrip("/"))):
            raise CatalogError(f"{where}.api_name must name a function of the app (`predict`)")
        inputs = options.get("inputs", ["text"])
        if not (isinstance(inputs, list) and inputs and all(isinstance(name, str) for name in inputs)):
            raise CatalogError(f'{where}.inputs must be a list of names, such as ["text", "seed"]')
        unknown = [name for name in inputs if name not in _KNOWN]
        if unknown:
            raise CatalogError(
                f"{where}.inputs: {', '.join(unknown)} given by no task; a task gives: {', '.join(sorted(_KNOWN))}"
            )
        output = options.get("output", 0)
        if not isinstance(output, int) or isinstance(output, bool) or output < 0:
            raise CatalogError(f"{where}.output must be the index of the function's output (0 for the first)")
        token = options.get("token", False)
        if not isinstance(token, bool) or (token and space is None):
            raise CatalogError(f"{where}.token = true sends the Hub token, to a space only (use token_env with url)")

    def serves(self, target: ModelTarget, task_type: str) -> bool:
        """A task serves when it gives every input the function takes (names no task gives are
        refused by `check`, with a message of their own)."""
        gives = GIVES.get(task_type)
        inputs = target.options.get("inputs", ["text"])
        if not isinstance(inputs, list):
            return gives is not None  # refused by `check`
        return gives is not None and all(name in gives or name not in _KNOWN for name in inputs)

    def base_of(self, call: InferenceCall) -> str:
        return app_base(call.target)

    def credential(self, call: InferenceCall) -> str | None:
        """A public app gets no token; a private Space the Hub's (`token = true`) or its `token_env`'s."""
        if call.target.token_env:
            return call.target.token_env
        return HUB_TOKEN if call.target.options.get("token") else None

    def route(self, call: InferenceCall) -> str:
        return f"/gradio_api/call/{self._api_name(call)}"

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        values = {
            **call.args,
            "seed": seed,
            "text": call.decorated_inputs(),
            "source_language": call.source_language,
            "target_language": call.target_language,
            "src": call.fill("{src}") if call.pair else None,
            "tgt": call.fill("{tgt}") if call.pair else None,
        }
        return {"data": [values.get(name) for name in call.target.options.get("inputs", ["text"])]}

    def next_poll(self, call: InferenceCall, reply: UpstreamReply, sent: UpstreamRequest) -> Poll | None:
        """After the submit, read the event's stream: its whole body, which ends at its result.
        A function that raised is the target's failure (not an answer the task cannot read)."""
        if sent.method != "POST":
            name, data = final_event(reply)
            if name == "error":
                raise function_failed(data)
            return None
        event_id = json_answer(reply).get("event_id") if isinstance(reply.json(), dict) else None
        if not isinstance(event_id, str) or not event_id:
            raise UpstreamError("the Gradio app accepted the call without an event_id")
        return self.poll_at(call, f"{self.route(call)}/{quote(event_id, safe='')}", 0.0)

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        name, data = final_event(reply)
        if name == "error":
            raise function_failed(data)
        index = call.target.options.get("output", 0)
        if not isinstance(data, list) or index >= len(data):
            raise UpstreamError(f"the Gradio app answered no output {index}")
        value = data[index]
        if call.task_type == TEXT_TO_IMAGE.name:
            return [self._image_link(call, value)]
        if not isinstance(value, str):
            raise UpstreamError(f"the Gradio app's output {index} is not a text")
        return [value]

    def _image_link(self, call: InferenceCall, value) -> ImageLink:
        """The file an image output names, downloadable from the app's own host only."""
        url = value.get("url") if isinstance(value, dict) else None
        if not isinstance(url, str) or not url:
            raise UpstreamError("the Gradio app's image output names no file URL")
        base = urlsplit(app_base(call.target))
        allowed = base.hostname if call.target.url is None else f"{base.scheme}://{base.netloc}"
        return ImageLink(url=url, provider=self.provider, hosts=(allowed,))

    def _api_name(self, call: InferenceCall) -> str:
        return call.target.options["api_name"].lstrip("/")


HELPERS = {PROTOCOL: {task: GradioFunction for task in GIVES}}
