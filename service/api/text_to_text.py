"""POST /api/infer/text-to-text: Answer an instruction or transform a text."""

from flask import Blueprint

from service.api.inference_view import serve_inference

bp = Blueprint("text_to_text", __name__)


@bp.post("/api/infer/text-to-text", strict_slashes=False)
def infer():
    """Answer an instruction or transform a text."""
    return serve_inference("text-to-text")
