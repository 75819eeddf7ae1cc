"""Readiness: configuration loaded, every token the configured models need set, and the store answering."""

from flask import Blueprint

from service.api.gateway import gateway as gateway_objects
from service.errors import NotReady
from service.hub.providers.helper import credential_of

bp = Blueprint("readiness", __name__)


def tokens_needed(catalog) -> dict:
    """Map each token variable the configured models are called with to those models' ids.

    A model on the Hugging Face routes needs HF_API_TOKEN; a model with its own `url` needs
    the variable its `token_env` names, or nothing.
    """
    chains = [*catalog.task_targets.values(), *catalog.pairs.values()]
    targets = [*catalog.models.values(), *(target for chain in chains for target in chain)]
    needed = {}
    for target in targets:
        variable = credential_of(target)
        if variable:
            needed.setdefault(variable, set()).add(target.id)
    return {variable: sorted(ids) for variable, ids in sorted(needed.items())}


@bp.get("/readyz")
def readyz():
    """Say whether the service can serve requests, without calling the upstream."""
    gateway = gateway_objects()
    needed = tokens_needed(gateway.catalog)
    missing = {variable: ids for variable, ids in needed.items() if not gateway.settings.token(variable)}
    if missing:
        first, ids = next(iter(missing.items()))
        raise NotReady(
            f"{first} is not set and {len(ids)} configured models need it: put {first}=<token> in .env and restart",
            errors={variable: [f"Required by: {', '.join(ids)}."] for variable, ids in missing.items()},
        )
    token = "set" if gateway.settings.hf_api_token else "not needed"
    store_available, store = store_check(gateway.store)
    on_disk = gateway.files_on_disk.problem()
    configuration = "loaded" if on_disk is None else f"serving the accepted configuration; on disk: {on_disk}"
    # A failed store (no limits, ledger kept in memory) or a broken file on disk (served from the
    # configuration accepted before) degrades the service, but it still serves.
    return {
        "status": "ready" if store_available and on_disk is None else "degraded",
        "checks": {"configuration": configuration, "token": token, "store": store},
    }


def store_check(guard) -> tuple[bool, str]:
    """Ask the store now: (available, `sqlite: ok` / `redis: unavailable for 12 s (...)` / `off`)."""
    status = guard.status()
    if not guard.enabled:
        return True, status.kind  # STORE=off: nothing kept, nothing to be down
    if status.available:
        return True, f"{status.kind}: ok"
    pending = f"; {status.pending_rows} ledger rows kept in memory" if status.pending_rows else ""
    return False, f"{status.kind}: unavailable for {status.down_seconds:g} s ({status.error}){pending}"
