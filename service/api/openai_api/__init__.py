"""The OpenAI API in front of the gateway: chat and text completions, image generations,
embeddings and the model list under /v1/, and the router's per-model chat route under /models/<model>/v1/.

Each route reads OpenAI's body into the pipeline's `Ask` and writes its result in OpenAI's
answer; keys, limits, the ledger, the cache, breakers, deadlines and fallback are the
pipeline's and the request lifecycle's, as for every surface. Errors under /v1/ are in
OpenAI's shape (errors.py).
"""

from flask import Blueprint

from service.api.error_handlers import register_error_shape
from service.api.openai_api import chat, completions, embeddings, image_generations, model_list, per_model
from service.api.openai_api.openai_errors import openai_shape, retry_advice

bp = Blueprint("openai", __name__)
for _module in (chat, completions, embeddings, image_generations, model_list, per_model):
    bp.register_blueprint(_module.bp)
bp.after_request(retry_advice)
register_error_shape("/v1/", openai_shape)
