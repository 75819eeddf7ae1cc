"""POST /api/infer/text-to-image: Draw an image from a prompt, returned as base64."""

from flask import Blueprint

from service.api.inference_view import serve_inference
from service.catalog.tasks import TEXT_TO_IMAGE

bp = Blueprint("text_to_image", __name__)


@bp.post(TEXT_TO_IMAGE.path, strict_slashes=False)
def infer():
    """Draw an image from a prompt, returned as base64."""
    return serve_inference(TEXT_TO_IMAGE)
