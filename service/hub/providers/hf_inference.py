"""hf-inference: the hosted route's classic `{"inputs", "parameters"}` tasks, the Hub's other
tasks forwarded as they came, and vLLM's OpenAI-style completions on it. The same classic
payloads reach a dedicated Inference Endpoint or a self-hosted TGI through a model's `url`."""

from service.catalog.tasks import FEATURE_EXTRACTION, FORWARDED_TASKS
from service.errors import UpstreamError
from service.hub.images import image_from_reply
from service.hub.messages import RawBody, UpstreamReply, UpstreamRequest
from service.hub.providers.helper import (
    InferenceCall,
    ProviderHelper,
    credential_of,
    generation_parameters,
    json_answer,
    require_text,
    set_args,
)
from service.hub.providers.openai_style import CompletionsHelper

# The tasks a model's hosted route runs by name rather than by the model's own pipeline tag.
PIPELINE_ROUTED = ("feature-extraction", "sentence-similarity")
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_IMAGE_PARAMETERS = ("negative_prompt", "guidance_scale", "num_inference_steps", "width", "height", "seed")


class HfInferenceTask(ProviderHelper):
    """One classic task on hf-inference (or a model's own server): one result per call."""

    provider = "hf-inference"

    def url(self, call: InferenceCall) -> str:
        """The model's own server, or its hosted route."""
        return call.target.url or super().url(call)

    def route(self, call: InferenceCall) -> str:
        return f"/{call.target.id}"

    def headers(self, call: InferenceCall) -> dict:
        """Sampled results must not come from the deployment's cache."""
        return {"x-use-cache": "false"} if call.sampling else {}

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        """The classic body: the (decorated) input and this task's parameters."""
        return {"inputs": call.decorated_inputs(), "parameters": self.parameters(call, dict(call.args, seed=seed))}

    def parameters(self, call: InferenceCall, args: dict) -> dict:
        """Map the documented args to this task's parameters."""
        raise NotImplementedError

    def first_result(self, reply: UpstreamReply) -> dict:
        """Return the one result object of a classic answer (`[{...}]` or `{...}`)."""
        document = json_answer(reply)
        item = document[0] if isinstance(document, list) and document else document
        if not isinstance(item, dict):
            raise UpstreamError("the upstream answer is not a list of results")
        return item


class Translation(HfInferenceTask):
    """translation: sampling args under generate_parameters (the pipeline refuses a seed)."""

    tasks = ("text-translation",)
    config_keys = frozenset({"lang_codes", "send_lang_codes"})
    sends_seed = False

    def parameters(self, call: InferenceCall, args: dict) -> dict:
        parameters = {"generate_parameters": generation_parameters(args, include_seed=False)}
        if call.target.send_lang_codes and call.pair:
            parameters["src_lang"] = call.target.lang_codes.get(call.pair.source, call.pair.source)
            parameters["tgt_lang"] = call.target.lang_codes.get(call.pair.target, call.pair.target)
        return parameters

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        """Read `translation_text`, or `generated_text` (what text2text pipelines answer)."""
        item = self.first_result(reply)
        text = item.get("translation_text", item.get("generated_text"))
        return [require_text(text, "translation_text")]


class TextGeneration(HfInferenceTask):
    """text-generation and text2text-generation: `generated_text`."""

    tasks = ("text-completion", "text-to-text")

    def parameters(self, call: InferenceCall, args: dict) -> dict:
        parameters = generation_parameters(args)
        if call.task_type == "text-completion":
            parameters["return_full_text"] = args["return_full_text"]
        return parameters

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        """Read `generated_text`, dropping the prompt some models (gpt2) echo anyway."""
        text = require_text(self.first_result(reply).get("generated_text"), "generated_text")
        echoed = call.task_type == "text-completion" and not call.args.get("return_full_text")
        return [text[len(call.inputs) :] if echoed and text.startswith(call.inputs) else text]


class TextToImage(HfInferenceTask):
    """text-to-image: the image's bytes, whatever type the deployment picked (PNG is asked)."""

    tasks = ("text-to-image",)
    makes_images = True

    def headers(self, call: InferenceCall) -> dict:
        return {**super().headers(call), "Accept": "image/png"}

    def parameters(self, call: InferenceCall, args: dict) -> dict:
        return set_args(args, _IMAGE_PARAMETERS)

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        return [image_from_reply(reply)]


class FeatureExtraction(HfInferenceTask):
    """feature-extraction on the model's pipeline route, `<model>/pipeline/feature-extraction`, as
    today's clients post it (a sentence-similarity model's own route would run that pipeline
    instead): one vector per text, all texts in one call."""

    tasks = (FEATURE_EXTRACTION.name,)

    def url(self, call: InferenceCall) -> str:
        """The model's own server, else the model's feature-extraction pipeline route."""
        if call.target.url:
            return call.target.url
        return f"{self.base_url}/{call.target.id}/pipeline/{FEATURE_EXTRACTION.name}"

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        """One text as a string (answered with one vector), several as a list (a vector each)."""
        texts = list(call.inputs)
        return {"inputs": texts[0] if len(texts) == 1 else texts}

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        """Read one vector of numbers per text sent."""
        vectors = json_answer(reply)
        if len(call.inputs) == 1 and isinstance(vectors, list) and vectors and all(map(_is_number, vectors)):
            vectors = [vectors]  # one text's vector, as the route answers a string
        if not isinstance(vectors, list) or len(vectors) != len(call.inputs):
            raise UpstreamError("the upstream answer is not one vector per text")
        for vector in vectors:
            if not isinstance(vector, list) or not all(_is_number(value) for value in vector):
                raise UpstreamError(
                    "the upstream answer is not one vector of numbers per text (a model that answers a "
                    "vector per token is no sentence-embedding model)"
                )
        return [{"embeddings": vectors}]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Completions(CompletionsHelper):
    """vLLM's OpenAI-style completions on the hosted route of one model."""

    provider = "hf-inference"

    def route(self, call: InferenceCall) -> str:
        return f"/{call.target.id}/v1/completions"


class Forwarded(HfInferenceTask):
    """A Hub task the gateway does not read, forwarded as it came: the caller's body (JSON or a
    file's bytes) with its Content-Type, the answer kept whole with its own. Feature extraction
    and sentence similarity go to the model's route of that pipeline, as huggingface_hub sends
    them: a model of the one is often tagged the other, and its own route runs its own tag."""

    tasks = tuple(FORWARDED_TASKS)
    sends_seed = False

    def route(self, call: InferenceCall) -> str:
        hub_name = FORWARDED_TASKS[call.task_type].hub_name
        if hub_name in PIPELINE_ROUTED:
            return f"/{call.target.id}/pipeline/{hub_name}"
        return f"/{call.target.id}"

    def request(self, call: InferenceCall, seed: int | None, n: int) -> UpstreamRequest:
        """The body as it came; any answer up to MAX_IMAGE_BYTES (audio, images, a long text's vectors)."""
        headers = {**self.headers(call), "Content-Type": call.args["content_type"], "Accept": "*/*"}
        return UpstreamRequest(
            url=self.url(call),
            payload=None,
            body=call.inputs,
            headers=headers,
            wants_image=True,
            credential=credential_of(call.target),
        )

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int = 1) -> list:
        return [RawBody(reply.body, reply.headers.get("content-type") or DEFAULT_CONTENT_TYPE)]


HELPERS = {
    "hf-inference": {
        **{name: Forwarded for name in FORWARDED_TASKS},
        "text-translation": Translation,
        "text-completion": TextGeneration,
        "text-to-text": TextGeneration,
        "text-to-image": TextToImage,
        FEATURE_EXTRACTION.name: FeatureExtraction,
    },
    "openai-completions": {"text-completion": Completions},
}
