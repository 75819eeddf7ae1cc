"""POST /api/infer/text-translation: Translate text between the configured language pairs."""

from flask import Blueprint

from service.api.inference_view import serve_inference
from service.catalog.tasks import TRANSLATION

bp = Blueprint("translation", __name__)


@bp.post(TRANSLATION.path, strict_slashes=False)
def infer():
    """Translate text between the configured language pairs."""
    return serve_inference(TRANSLATION)
