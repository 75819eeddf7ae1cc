"""GET /v1/models (and /v1/models/<id>): the names `model` may take, from the catalog."""

from flask import Blueprint

from service.api.gateway import gateway
from service.catalog.tasks import CHAT_COMPLETION, COMPLETION, FEATURE_EXTRACTION, TEXT_TO_IMAGE
from service.errors import ModelNotFound

bp = Blueprint("openai_models", __name__)
OWNER = "hf-gateway"


@bp.get("/v1/models")
def list_models():
    """Every chain, catalog key, alias and chained Hub id, each once."""
    return {"object": "list", "data": [_entry(name, owner) for name, owner in served_models().items()]}


@bp.get("/v1/models/<path:model>")
def retrieve_model(model: str):
    """One of them, or 404."""
    owner = served_models().get(model)
    if owner is None:
        raise ModelNotFound(f"model {model!r} is not one the catalog names; GET /v1/models lists them")
    return _entry(model, owner)


def served_models() -> dict:
    """name -> owner: chains (the gateway's), keys and chained Hub ids (their provider), aliases."""
    catalog = gateway().catalog
    names = {}
    chains = {
        CHAT_COMPLETION.name: catalog.chat_targets,
        COMPLETION.name: catalog.task_targets[COMPLETION.name],
        TEXT_TO_IMAGE.name: catalog.task_targets[TEXT_TO_IMAGE.name],
        FEATURE_EXTRACTION.name: catalog.embedding_targets,
    }
    for task_name, targets in chains.items():
        if targets:
            names[task_name] = OWNER
    for key, target in catalog.models.items():
        names.setdefault(key, _owner(target))
    for alias in catalog.aliases:
        names.setdefault(alias, OWNER)
    for targets in chains.values():
        for target in targets:
            names.setdefault(target.key, _owner(target))
    return names


def _owner(target) -> str:
    """Who serves a model: its provider, else its protocol's (the router picks for chat)."""
    return target.provider or ("router" if target.protocol == "openai-chat" else "hf-inference")


def _entry(name: str, owner: str) -> dict:
    return {"id": name, "object": "model", "created": 0, "owned_by": owner}
