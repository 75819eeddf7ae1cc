"""Model liveness: which providers serve each configured model, from the Hub's model API, and
what state each Space target is in (running, sleeping, building, error), from its Spaces API.

Looked up for `GET /api/models` and the operator command only, with a short cache; the
inference path never waits on it.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from service.catalog import Catalog, ModelTarget
from service.clock import SYSTEM_CLOCK, Clock
from service.errors import GatewayError, ModelNotFound
from service.hub.client import HubClient
from service.hub.messages import UpstreamRequest
from service.hub.providers import provider_of
from service.hub.providers.gradio import PROTOCOL as GRADIO
from service.hub.providers.gradio import app_base
from service.pipeline.context import outside_request

LOOKUP_SECONDS = 5.0
_LOOKUP_THREADS = 8
# What the Hub's inferenceProviderMapping says of a provider, as /api/models shows it: an
# entry whose latest health check failed is degraded, not live.
_SHOWN_STATUS = {"live": "live", "staging": "staging", "error": "degraded"}
# A Space's runtime stage, as the Hub's Spaces API names it, and as /api/models shows it.
_SPACE_STATUS = {
    "RUNNING": "running",
    "SLEEPING": "sleeping",
    "PAUSED": "paused",
    "STOPPED": "stopped",
    "BUILDING": "building",
    "RUNNING_BUILDING": "building",
    "APP_STARTING": "building",
    "RUNNING_APP_STARTING": "building",
    "BUILD_ERROR": "error",
    "RUNTIME_ERROR": "error",
    "CONFIG_ERROR": "error",
    "NO_APP_FILE": "error",
}
# Cache keys of Spaces, apart from models' ids.
_SPACE_KEY = "space:"


@dataclass(frozen=True)
class ModelProviders:
    """What the Hub said about one model: provider -> status, or why it could not say."""

    providers: dict
    error: str | None = None


class LivenessChecker:
    """Looks up and caches each model's inference providers."""

    def __init__(self, settings, catalog: Catalog, client: HubClient, clock: Clock = SYSTEM_CLOCK):
        self.settings = settings
        self.catalog = catalog
        self.client = client
        self.clock = clock
        self._cache = {}
        self._lock = threading.Lock()

    def report(self) -> list:
        """Describe every task and pair with its targets and their live status."""
        lookups = self._lookup_all(self._looked_up_ids() | self._looked_up_spaces())
        return [
            {"route": label, "targets": [self._describe(target, lookups.get(lookup_key(target))) for target in targets]}
            for label, targets in self.catalog.all_routes()
        ]

    def _looked_up_ids(self) -> set:
        """Return the Hub ids worth asking about (self-hosted models are not on the Hub's providers)."""
        return {
            target.id
            for _, targets in self.catalog.all_routes()
            for target in targets
            if not target.url and target.protocol != GRADIO
        }

    def _looked_up_spaces(self) -> set:
        """Return the cache keys of the Spaces the routes name (a Gradio app of one's own has no state on the Hub)."""
        return {
            lookup_key(target)
            for _, targets in self.catalog.all_routes()
            for target in targets
            if target.protocol == GRADIO and not target.url
        }

    def _lookup_all(self, model_ids: set) -> dict:
        """Look up every stale model concurrently; serve the rest from the cache."""
        now = self.clock.monotonic()
        with self._lock:
            fresh = {mid: entry for mid, (expires, entry) in self._cache.items() if expires > now and mid in model_ids}
        stale = sorted(model_ids - set(fresh))
        if stale:
            with ThreadPoolExecutor(min(_LOOKUP_THREADS, len(stale))) as pool:
                found = dict(zip(stale, pool.map(self._lookup, stale), strict=True))
            with self._lock:
                for model_id, entry in found.items():
                    self._cache[model_id] = (now + self.settings.liveness_cache_seconds, entry)
            fresh.update(found)
        return fresh

    def _lookup(self, model_id: str) -> ModelProviders:
        """Ask the Hub which providers serve one model, or what stage one Space is in."""
        if model_id.startswith(_SPACE_KEY):
            return self._lookup_space(model_id.removeprefix(_SPACE_KEY))
        document = self._ask_hub(f"models/{model_id}?expand[]=inferenceProviderMapping")
        if isinstance(document, ModelProviders):
            return document
        return ModelProviders(parse_provider_mapping(document.get("inferenceProviderMapping")))

    def _lookup_space(self, space: str) -> ModelProviders:
        """Ask the Hub's Spaces API for one Space's runtime stage (kept in `providers` as `stage`)."""
        document = self._ask_hub(f"spaces/{space}/runtime")
        if isinstance(document, ModelProviders):
            return document
        stage = document.get("stage")
        if not isinstance(stage, str):
            return ModelProviders({}, error="upstream_error")
        return ModelProviders({"stage": stage})

    def _ask_hub(self, path: str) -> dict | ModelProviders:
        """GET one document of the Hub's API: a JSON object, or why the Hub could not say."""
        # Public models and Spaces are listed without a token; gated ones need it when it is set.
        url = f"{self.settings.hf_hub_api_base}/{path}"
        request = UpstreamRequest(url=url, payload=None, method="GET", credential_required=False)
        try:
            reply = self.client.call(request, outside_request("liveness", LOOKUP_SECONDS, self.clock.monotonic))
        except ModelNotFound:
            return ModelProviders({}, error="not_found")
        except GatewayError as exc:
            return ModelProviders({}, error=exc.error_type)
        document = reply.json()
        return document if isinstance(document, dict) else ModelProviders({}, error="upstream_error")

    def _describe(self, target: ModelTarget, lookup: ModelProviders | None) -> dict:
        """Describe one target and its status."""
        provider = provider_of(target)
        entry = {"key": target.key, "model": target.id, "protocol": target.protocol, "provider": provider or "auto"}
        if target.url:
            return {**entry, "status": "self-hosted", "url": target.url}
        if target.protocol == GRADIO:  # a Space: not a model the Hub's providers serve
            return {**entry, **space_status(lookup), "url": app_base(target)}
        if lookup is None or lookup.error:
            return {**entry, "status": (lookup.error if lookup else None) or "unknown", "providers": {}}
        return {**entry, "status": target_status(provider, lookup.providers), "providers": lookup.providers}


def lookup_key(target: ModelTarget) -> str:
    """What a target's state is looked up and kept under: its Space, else its model id."""
    if target.protocol == GRADIO and not target.url:
        return _SPACE_KEY + target.options["space"]
    return target.id


def space_status(lookup: ModelProviders | None) -> dict:
    """A Space's state as /api/models shows it: running, sleeping, building, error, ..., with the
    Hub's own stage name; why not, when the Hub could not say."""
    if lookup is None or lookup.error:
        return {"status": (lookup.error if lookup else None) or "unknown"}
    stage = lookup.providers["stage"]
    return {"status": _SPACE_STATUS.get(stage, stage.lower()), "stage": stage}


def target_status(provider: str | None, providers: dict) -> str:
    """Return live, staging or degraded for the target's provider, or not_served.

    When the router picks the provider, it picks among live ones (and those whose latest
    health check failed: degraded); staging providers are not picked.
    """
    if provider is None:
        for status in ("live", "error"):
            if status in providers.values():
                return _SHOWN_STATUS[status]
        return "not_served"
    status = providers.get(provider)
    return "not_served" if status is None else _SHOWN_STATUS.get(status, status)


def parse_provider_mapping(mapping) -> dict:
    """Read provider -> status from either form the Hub has used (object or list)."""
    if isinstance(mapping, dict):
        items = [{"provider": name, **(value if isinstance(value, dict) else {})} for name, value in mapping.items()]
    elif isinstance(mapping, list):
        items = [item for item in mapping if isinstance(item, dict)]
    else:
        return {}
    return {str(item.get("provider")): str(item.get("status", "unknown")) for item in items if item.get("provider")}
