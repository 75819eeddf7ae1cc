"""The classic `{"inputs", "parameters"}` protocol of hf-inference, Endpoints and TGI."""

from service.hub.messages import UpstreamReply, UpstreamRequest
from service.hub.protocols.base import (
    IMAGE_TASKS,
    TEXT_TASKS,
    InferenceCall,
    Protocol,
    credential_of,
    generation_parameters,
    json_answer,
    require_text,
)
from service.hub.protocols.images import image_from_reply
from service.errors import UpstreamError

_IMAGE_PARAMETERS = ("negative_prompt", "guidance_scale", "num_inference_steps", "width", "height", "seed")


class HfInferenceProtocol(Protocol):
    """One result per call: several results mean several calls."""

    tasks = (*TEXT_TASKS, *IMAGE_TASKS)

    def build(self, call: InferenceCall, settings, seed: int | None, n: int) -> UpstreamRequest:
        """Build the request for one result."""
        url = call.target.url or f"{settings.hf_api_base}/{call.target.id}"
        payload = {"inputs": call.decorated_inputs(), "parameters": self._parameters(call, seed)}
        headers = {"x-use-cache": "false"} if call.sampling else {}
        if call.task_type == "text-to-image":
            headers["Accept"] = "image/png"
        wants_image = call.task_type == "text-to-image"
        return UpstreamRequest(url=url, payload=payload, headers=headers, wants_image=wants_image, credential=credential_of(call.target))

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        """Read the one result of an answer (`n` is always 1 here)."""
        if call.task_type == "text-to-image":
            return [image_from_reply(reply)]
        document = json_answer(reply)
        item = document[0] if isinstance(document, list) and document else document
        if not isinstance(item, dict):
            raise UpstreamError("the upstream answer is not a list of results")
        if call.task_type == "text-translation":
            return [require_text(item.get("translation_text"), "translation_text")]
        text = require_text(item.get("generated_text"), "generated_text")
        return [self._without_echoed_prompt(call, text)]

    def _parameters(self, call: InferenceCall, seed: int | None) -> dict:
        """Map the documented args to this task's parameters."""
        args = dict(call.args, seed=seed)
        if call.task_type == "text-to-image":
            return {name: args[name] for name in _IMAGE_PARAMETERS if args.get(name) is not None}
        if call.task_type == "text-translation":
            return self._translation_parameters(call, args)
        parameters = generation_parameters(args)
        if call.task_type == "text-completion":
            parameters["return_full_text"] = args["return_full_text"]
        return parameters

    def _translation_parameters(self, call: InferenceCall, args: dict) -> dict:
        """Translation nests generation under generate_parameters (no seed there)."""
        parameters = {"generate_parameters": generation_parameters(args, include_seed=False)}
        if call.target.send_lang_codes and call.pair:
            parameters["src_lang"] = call.target.lang_codes.get(call.pair.source, call.pair.source)
            parameters["tgt_lang"] = call.target.lang_codes.get(call.pair.target, call.pair.target)
        return parameters

    def _without_echoed_prompt(self, call: InferenceCall, text: str) -> str:
        """Drop the prompt some models (gpt2) echo when return_full_text is false."""
        if call.task_type == "text-completion" and not call.args.get("return_full_text") and text.startswith(call.inputs):
            return text[len(call.inputs):]
        return text
