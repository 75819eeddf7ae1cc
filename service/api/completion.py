"""POST /api/infer/text-completion: Continue a text."""

from flask import Blueprint

from service.api.inference_view import serve_inference
from service.catalog.tasks import COMPLETION

bp = Blueprint("completion", __name__)


@bp.post(COMPLETION.path, strict_slashes=False)
def infer():
    """Continue a text."""
    return serve_inference(COMPLETION)
