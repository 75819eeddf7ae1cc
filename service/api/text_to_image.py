"""POST /api/infer/text-to-image: Draw an image from a prompt, returned as base64."""

from flask import Blueprint

from service.api.inference_view import serve_inference

bp = Blueprint("text_to_image", __name__)


@bp.post("/api/infer/text-to-image", strict_slashes=False)
def infer():
    """Draw an image from a prompt, returned as base64."""
    return serve_inference("text-to-image")
