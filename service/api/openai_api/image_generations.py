"""POST /v1/images/generations: the text-to-image task, answered as base64 (`b64_json`)."""

from flask import Blueprint

from service.api.answer import SplicedString
from service.api.openai_api.request_bodies import ImageRequestSchema
from service.api.openai_api.surface import answered, begin, check_length, created, model_name_for, read_body, run
from service.api.schemas import ARGS_SCHEMAS, load_or_raise
from service.catalog.tasks import TEXT_TO_IMAGE
from service.errors import InvalidRequest
from service.pipeline.entry import Ask

bp = Blueprint("openai_images", __name__)
_SCHEMA = ImageRequestSchema()
_PASSED = ("negative_prompt", "guidance_scale", "num_inference_steps", "seed")
B64_JSON = "b64_json"


@bp.post("/v1/images/generations")
def generate_images():
    """Draw `n` images of the prompt at `size`, with the model the body names or the task's chain."""
    context = begin(TEXT_TO_IMAGE)
    body = read_body(_SCHEMA)
    if body["response_format"] != B64_JSON:
        raise InvalidRequest(
            "response_format: only b64_json is answered (the gateway keeps no images to link to)",
            errors={"response_format": ["Must be b64_json."]},
        )
    check_length(len(body["prompt"]), "prompt")
    ask = Ask(TEXT_TO_IMAGE, body["prompt"], image_args(body), model_name_for(TEXT_TO_IMAGE, body.get("model")))
    outcome = run(ask, context)
    data = [{B64_JSON: SplicedString(image.base64_pieces)} for image in outcome.results]
    return answered({"created": created(), "data": data}, context, spliced=True)


def image_args(body: dict) -> dict:
    """The task's arguments: `n` images, `size` as width and height, the Hub's extras as given."""
    args = {name: body[name] for name in _PASSED if body.get(name) is not None}
    args["num_sentences"] = body["n"]
    if body.get("size"):
        width, height = (int(side) for side in body["size"].split("x"))
        args["width"], args["height"] = width, height
    try:
        return load_or_raise(ARGS_SCHEMAS[TEXT_TO_IMAGE.name], args)
    except InvalidRequest as exc:
        if exc.errors and {"width", "height"} & set(exc.errors):
            raise InvalidRequest(
                "size: each side must be between 64 and 2048 pixels", errors={"size": ["Out of range."]}
            ) from None
        raise
