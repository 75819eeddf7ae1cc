"""POST /api/infer/text-to-text: Answer an instruction or transform a text."""

from flask import Blueprint

from service.api.inference_view import serve_inference
from service.catalog.tasks import TEXT_TO_TEXT

bp = Blueprint("text_to_text", __name__)


@bp.post(TEXT_TO_TEXT.path, strict_slashes=False)
def infer():
    """Answer an instruction or transform a text."""
    return serve_inference(TEXT_TO_TEXT)
