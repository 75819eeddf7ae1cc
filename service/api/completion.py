"""POST /api/infer/text-completion: Continue a text."""

from flask import Blueprint

from service.api.inference_view import serve_inference

bp = Blueprint("completion", __name__)


@bp.post("/api/infer/text-completion", strict_slashes=False)
def infer():
    """Continue a text."""
    return serve_inference("text-completion")
