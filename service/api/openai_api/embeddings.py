"""POST /v1/embeddings: the feature-extraction task, one vector per text, as floats.

The openai SDK asks for `encoding_format: base64` unless told otherwise, and decodes only
the vectors it gets as strings: floats reach its callers unchanged, so floats are always
answered."""

from flask import Blueprint

from service.api.openai_api.request_bodies import EmbeddingRequestSchema
from service.api.openai_api.surface import answered, begin, check_length, model_name_for, read_body, run, usage_of
from service.catalog.tasks import FEATURE_EXTRACTION
from service.pipeline.entry import Ask

bp = Blueprint("openai_embeddings", __name__)
_SCHEMA = EmbeddingRequestSchema()
# One call embeds every text, and the same texts always get the same vectors (cached).
_ARGS = {"num_sentences": 1, "do_sample": False}


@bp.post("/v1/embeddings")
def embeddings():
    """Embed the texts with the model the body names, or along the configured chain."""
    context = begin(FEATURE_EXTRACTION)
    body = read_body(_SCHEMA)
    texts = body["input"]
    check_length(sum(len(text) for text in texts), "input")
    ask = Ask(FEATURE_EXTRACTION, texts, dict(_ARGS), model_name_for(FEATURE_EXTRACTION, body.get("model")))
    outcome = run(ask, context)
    vectors = outcome.results[0]["embeddings"]
    usage = usage_of(context)
    document = {
        "object": "list",
        "data": [{"object": "embedding", "index": index, "embedding": vector} for index, vector in enumerate(vectors)],
        "model": outcome.model,
        "usage": {"prompt_tokens": usage["prompt_tokens"], "total_tokens": usage["total_tokens"]},
    }
    return answered(document, context)
