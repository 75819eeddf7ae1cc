"""Provider helpers, one small module per provider, found by (provider, protocol, task).

A model entry's `protocol` says which API family it is called with, and its `provider` who
serves it. Adding a provider is one module (its helper classes, each declaring the tasks it
serves and the configuration keys it takes), one line in PROVIDERS, and its tests: see
docs/providers.md. `Providers` builds every helper once per app, with its base URL.
"""

from service.catalog import Catalog, CatalogError, ModelTarget
from service.catalog.tasks import CHAT_COMPLETION, FEATURE_EXTRACTION, TASK_TYPES
from service.hub.providers import (
    fal_ai,
    featherless_ai,
    gradio,
    hf_inference,
    novita,
    nscale,
    replicate,
    router,
    together,
    wavespeed,
    zai_org,
)
from service.hub.providers.helper import COMMON_KEYS, ProviderHelper

# provider -> protocol -> task -> helper class
PROVIDERS = {
    "hf-inference": hf_inference.HELPERS,
    "fal-ai": fal_ai.HELPERS,
    "replicate": replicate.HELPERS,
    "together": together.HELPERS,
    "nscale": nscale.HELPERS,
    "novita": novita.HELPERS,
    "featherless-ai": featherless_ai.HELPERS,
    "wavespeed": wavespeed.HELPERS,
    "zai-org": zai_org.HELPERS,
    "gradio": gradio.HELPERS,
}
# Chat goes through the router whoever serves it: `provider` only follows the model id.
CHAT_PROTOCOL = "openai-chat"
# The provider a protocol means when a model entry names none.
DEFAULT_PROVIDERS = {
    "hf-inference": "hf-inference",
    "openai-completions": "hf-inference",
    "fal-ai": "fal-ai",
    "replicate": "replicate",
    "wavespeed": "wavespeed",
    "zai-org": "zai-org",
    "gradio": "gradio",
}
PROTOCOLS = (*DEFAULT_PROVIDERS, "openai-images", CHAT_PROTOCOL)
# Providers the Hugging Face router stopped serving on 2026-07-01.
REMOVED_PROVIDERS = frozenset({"black-forest-labs", "clarifai", "hyperbolic", "nebius", "nvidia", "sambanova"})


def provider_of(target: ModelTarget) -> str | None:
    """Return who serves a target: its provider, the protocol's own, or None when the router picks."""
    if target.protocol == CHAT_PROTOCOL:
        return None if router.policy_of(target.provider) else target.provider
    return target.provider or DEFAULT_PROVIDERS.get(target.protocol)


class Providers:
    """Every provider's helpers, built once with their base URLs: `hf-inference` at its hosted
    route, chat at the router's OpenAI-style base, any other provider at `<router root>/<name>`."""

    def __init__(self, providers_base: str, hf_inference_base: str, router_base: str):
        bases = {name: f"{providers_base}/{name}" for name in PROVIDERS} | {"hf-inference": hf_inference_base}
        self._helpers = {name: _built(families, bases[name]) for name, families in PROVIDERS.items()}
        self._chat = router.RouterChat(router_base)
        self._conversation = router.RouterChatCompletion(router_base)

    @classmethod
    def from_settings(cls, settings) -> "Providers":
        """Build the helpers at the bases the settings name."""
        return cls(settings.hf_providers_base, settings.hf_api_base, settings.hf_router_base)

    def helper_for(self, target: ModelTarget, task_type: str) -> ProviderHelper | None:
        """Return the helper that serves `task_type` for `target`, None when none can."""
        if task_type == CHAT_COMPLETION.name:
            return self._conversation if target.protocol == CHAT_PROTOCOL else None
        if target.protocol == CHAT_PROTOCOL:
            helper = self._chat
        else:
            helper = self._helpers.get(provider_of(target) or "", {}).get(target.protocol, {}).get(task_type)
        return helper if helper is not None and helper.serves(target, task_type) else None

    def tasks_served(self, target: ModelTarget) -> list:
        """Name the tasks a target can serve as configured."""
        return [task for task in TASK_TYPES if self.helper_for(target, task) is not None]

    def check_model(self, target: ModelTarget) -> None:
        """Refuse at start a model entry no helper could serve: unknown or removed protocol or
        provider, keys its helper does not take, keys it needs and lacks."""
        provider = provider_of(target)
        if target.protocol not in PROTOCOLS:
            raise CatalogError(
                f"models.{target.key}.protocol must be one of {', '.join(PROTOCOLS)}, got {target.protocol!r}"
            )
        if (target.provider or "") in REMOVED_PROVIDERS:
            raise CatalogError(
                f"models.{target.key}: provider {target.provider} was removed from the Hugging Face router on 2026-07-01"
            )
        if target.protocol != CHAT_PROTOCOL and target.protocol not in PROVIDERS.get(provider or "", {}):
            offering = sorted(name for name, families in PROVIDERS.items() if target.protocol in families)
            raise CatalogError(
                f"models.{target.key}: protocol {target.protocol} needs provider = one of {', '.join(offering)}"
            )
        helpers = {self.helper_for(target, task) for task in TASK_TYPES} - {None}
        if not helpers:
            raise CatalogError(f"models.{target.key}: serves no task as configured (a chat model needs prompts.<task>)")
        taken = COMMON_KEYS.union(*(helper.config_keys for helper in helpers))
        unknown = sorted(target.keys - taken)
        if unknown:
            raise CatalogError(
                f"models.{target.key}: {', '.join(unknown)} not taken by protocol {target.protocol} "
                f"(provider {provider or 'chosen by the router'}); it takes: {', '.join(sorted(taken))}"
            )
        for helper in helpers:
            helper.check(target)

    def check(self, catalog: Catalog) -> None:
        """Check every configured model, and that each chain's targets can serve their task."""
        for target in catalog.models.values():
            self.check_model(target)
        other_chains = (
            (CHAT_COMPLETION.name, catalog.chat_targets),
            (FEATURE_EXTRACTION.name, catalog.embedding_targets),
        )
        for label, targets in (*catalog.all_routes(), *other_chains):
            task_type = label.split(":")[0]
            for target in targets:
                if self.helper_for(target, task_type) is None:
                    raise CatalogError(f"{label}: {self.cannot_serve(target, task_type)}")

    def cannot_serve(self, target: ModelTarget, task_type: str) -> str:
        """Say that a model cannot serve a task, and which tasks it can."""
        serves = self.tasks_served(target)
        return (
            f"model {target.key!r} ({target.id}, protocol {target.protocol}) cannot serve {task_type}; "
            f"it serves: {', '.join(serves) or 'no task as configured'}"
        )


def _built(families: dict, base_url: str) -> dict:
    """Build each helper class of one provider once, at the provider's base URL."""
    instances = {}
    for tasks in families.values():
        for helper_class in tasks.values():
            if helper_class not in instances:
                instances[helper_class] = helper_class(base_url)
    return {protocol: {task: instances[cls] for task, cls in tasks.items()} for protocol, tasks in families.items()}
