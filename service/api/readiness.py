"""Readiness: configuration loaded and a token set when a configured model needs one."""

from flask import Blueprint, current_app

from service.errors import GatewayError

bp = Blueprint("readiness", __name__)


class NotReady(GatewayError):
    """The service cannot serve yet: the message says what is missing."""

    status_code = 503
    error_type = "not_ready"


def models_needing_token(catalog) -> list:
    """Name the configured models that call the Hugging Face hosted routes, which need a token.

    A model with its own `url` (a self-hosted TGI, or an endpoint that takes no token) is
    left out: whether that server wants the token is only known by calling it.
    """
    chains = [*catalog.task_targets.values(), *catalog.pairs.values()]
    targets = [*catalog.models.values(), *(target for chain in chains for target in chain)]
    return sorted({target.id for target in targets if not target.url})


@bp.get("/readyz")
def readyz():
    """Say whether the service can serve requests, without calling the upstream."""
    gateway = current_app.extensions["gateway"]
    needing = models_needing_token(gateway.catalog)
    if needing and not gateway.settings.hf_api_token:
        raise NotReady(
            f"HF_API_TOKEN is not set and {len(needing)} configured models call the Hugging Face API: "
            "put HF_API_TOKEN=<token> in .env and restart",
            errors={"HF_API_TOKEN": [f"Required by: {', '.join(needing)}."]},
        )
    token = "set" if gateway.settings.hf_api_token else "not needed"
    return {"status": "ready", "checks": {"configuration": "loaded", "token": token}}
