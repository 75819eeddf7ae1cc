"""POST /models/<model>/v1/chat/completions: the router's per-model chat route, where the path
names the model. Its errors are in the Hub's shape, as the router answers them there."""

from flask import Blueprint

from service.api.openai_api.chat import serve_chat

bp = Blueprint("openai_per_model", __name__)


@bp.post("/models/<path:model>/v1/chat/completions")
def per_model_chat(model: str):
    """A chat completion of the model the path names."""
    return serve_chat(path_model=model)
