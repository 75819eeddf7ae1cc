"""The model catalog: which models serve each task, read from config/models.toml."""

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from service.catalog.tasks import (
    CHAT_COMPLETION,
    FEATURE_EXTRACTION,
    FORWARDED_TASKS,
    TASK_TYPES,
    TEXT_TO_TEXT,
    TRANSLATION,
)
from service.errors import InvalidRequest, UnknownTask

# A Hub id is `name` or `org/name`. Anything that could change the host or the path
# (a scheme, `..`, `@`, `%`, backslashes, spaces, non-ASCII look-alikes) fails here.
_MODEL_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,95})(?:/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,95}))?")
_PAIR = re.compile(r"([a-z]{2,3})2([a-z]{2,3})")
_VARIABLE = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
# What may follow a Hub id on the router's chat route: a provider (`novita`) or a policy (`fastest`).
_PROVIDER_SUFFIX = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
CHAT_PROTOCOL = "openai-chat"
MAX_MODEL_NAME_LENGTH = 128
# The same rule for documents (OpenAPI): anchored, and without `..` anywhere.
MODEL_NAME_PATTERN = rf"^(?!.*\.\.){_MODEL_ID.pattern}$"


class CatalogError(ValueError):
    """The model configuration file is invalid."""


@dataclass(frozen=True)
class ModelTarget:
    """One model the service can call, and how to speak to it."""

    key: str
    id: str
    protocol: str = "hf-inference"
    url: str | None = None
    provider: str | None = None
    provider_model: str | None = None
    input_template: str | None = None
    lang_codes: dict = field(default_factory=dict)
    send_lang_codes: bool = False
    prompts: dict = field(default_factory=dict)
    token_env: str | None = None  # with `url`: the variable holding that server's token
    keep_thinking: bool = False  # keep a reasoning model's <think> block in its answers
    keys: frozenset = frozenset()  # the keys its table set, for the provider helper to check
    options: dict = field(default_factory=dict)  # keys only its helper reads (a Gradio app's `api_name`)

    def __hash__(self):
        return hash(self.key)


@dataclass(frozen=True)
class LanguagePair:
    """A translation direction such as zh2en."""

    name: str
    source: str
    target: str


@dataclass(frozen=True)
class Route:
    """What one request resolved to: the models to try in order, and the pair if any."""

    task_type: str
    targets: tuple
    pair: LanguagePair | None = None
    named: bool = False  # the caller named the model (`model_name`), rather than the chain


def is_valid_model_name(name: str) -> bool:
    """Tell whether a caller-supplied model name is a safe Hub id or alias."""
    return len(name) <= MAX_MODEL_NAME_LENGTH and _MODEL_ID.fullmatch(name) is not None and ".." not in name


class Catalog:
    """Tasks, translation pairs, languages and model entries from one TOML file."""

    def __init__(self, document: dict):
        self.languages = dict(document.get("languages", {}))
        self.models = {key: _model_entry(key, raw) for key, raw in document.get("models", {}).items()}
        self.aliases = dict(document.get("aliases", {}))
        self.download_hosts = {
            name: tuple(table.get("download_hosts", ())) for name, table in document.get("providers", {}).items()
        }
        tasks = document.get("tasks", {})
        self.task_targets = {task: self._targets(tasks.get(task, {}).get("targets", []), task) for task in TASK_TYPES}
        translation = tasks.get(TRANSLATION.name, {})
        self.default_pair = translation.get("default_pair", "zh2en")
        self.pairs = {name: self._targets(chain, name) for name, chain in translation.get("pairs", {}).items()}
        # Chat's chain: its own when configured, else the chat models of text-to-text's.
        chat = tasks.get(CHAT_COMPLETION.name, {}).get("targets")
        if chat is None:
            chat = [t for t in self.task_targets[TEXT_TO_TEXT.name] if t.protocol == CHAT_PROTOCOL]
        else:
            chat = self._targets(chat, CHAT_COMPLETION.name)
        self.chat_targets = tuple(_as_chat(target) for target in chat)
        embeddings = tasks.get(FEATURE_EXTRACTION.name, {}).get("targets", [])
        self.embedding_targets = self._targets(embeddings, FEATURE_EXTRACTION.name)
        self._check()

    @classmethod
    def from_file(cls, path: Path) -> "Catalog":
        """Load and check the catalog from a TOML file."""
        try:
            with open(path, "rb") as handle:
                return cls(tomllib.load(handle))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CatalogError(f"cannot read model configuration {path}: {exc}") from exc

    def route(self, task_type: str, model_name: str | None, model_type: str | None) -> Route:
        """Resolve a request's task, model_name and model_type to the models to try."""
        if task_type in FORWARDED_TASKS:
            return self.forwarded_route(task_type, model_name)
        if task_type == CHAT_COMPLETION.name:
            return self.chat_route(model_name)
        if task_type == FEATURE_EXTRACTION.name:
            return self.embedding_route(model_name)
        if task_type not in TASK_TYPES:
            raise UnknownTask(task_type, TASK_TYPES)
        pair = self.pair(model_type) if task_type == TRANSLATION.name else None
        if model_name:
            return Route(task_type, (self.target(model_name),), pair, named=True)
        targets = self.pairs[pair.name] if pair else self.task_targets[task_type]
        return Route(task_type, targets, pair)

    def chat_route(self, model_name: str | None) -> Route:
        """Resolve a chat request: the model named, else chat's chain."""
        if model_name:
            return Route(CHAT_COMPLETION.name, (self.chat_target(model_name),), named=True)
        if not self.chat_targets:
            raise InvalidRequest(
                "model_name: no chat chain is configured ([tasks.chat-completion] targets); name a model",
                errors={"model_name": ["No chat chain is configured."]},
            )
        return Route(CHAT_COMPLETION.name, self.chat_targets)

    def embedding_route(self, model_name: str | None) -> Route:
        """Resolve an embedding request: the model named, else the configured chain."""
        if model_name:
            return Route(FEATURE_EXTRACTION.name, (self.target(model_name),), named=True)
        if not self.embedding_targets:
            raise InvalidRequest(
                "model_name: no embedding chain is configured ([tasks.feature-extraction] targets); name a model",
                errors={"model_name": ["No embedding chain is configured."]},
            )
        return Route(FEATURE_EXTRACTION.name, self.embedding_targets)

    def chat_target(self, model_name: str) -> ModelTarget:
        """Return the model a chat request names: a key, an alias or a Hub id, optionally followed
        by `:<provider>` or `:<policy>` (`:fastest`, `:cheapest`, `:preferred`) for the router."""
        name, colon, suffix = model_name.partition(":")
        if colon and not _PROVIDER_SUFFIX.fullmatch(suffix):
            raise InvalidRequest(
                "model_name: after `:` comes a provider (`novita`) or a policy (`fastest`, `cheapest`, `preferred`)",
                errors={"model_name": ["Not a valid provider or policy."]},
            )
        target = _as_chat(self.target(name))
        return replace(target, key=f"{target.key}:{suffix}", provider=suffix) if colon else target

    def forwarded_route(self, task_type: str, model_name: str | None) -> Route:
        """A task the Hub's API forwards runs on the model the caller named: no chain serves it."""
        if not model_name:
            raise InvalidRequest(
                "model: no chain serves a forwarded task; name its model in the path",
                errors={"model": ["Name a model."]},
            )
        return Route(task_type, (self.target(model_name),), named=True)

    def pair(self, model_type: str | None) -> LanguagePair:
        """Return the configured translation pair for a model_type such as zh2en."""
        name = model_type or self.default_pair
        if name not in self.pairs:
            supported = ", ".join(sorted(self.pairs))
            raise InvalidRequest(
                f"model_type: unsupported translation direction {name!r}; supported: {supported}",
                errors={"model_type": [f"Must be one of: {supported}."]},
            )
        source, target = _PAIR.fullmatch(name).groups()
        return LanguagePair(name, source, target)

    def target(self, model_name: str) -> ModelTarget:
        """Return the model entry for a caller's model_name: a key, an alias or a Hub id."""
        if not is_valid_model_name(model_name):
            raise InvalidRequest(
                "model_name: must be a Hugging Face model id (`name` or `org/name`) or a configured alias",
                errors={"model_name": ["Not a valid model id."]},
            )
        key = self.aliases.get(model_name, model_name)
        return self.models.get(key) or ModelTarget(key=key, id=key)

    def all_routes(self):
        """Yield (label, targets) for every task and translation pair, for listings."""
        for task in TASK_TYPES:
            if task == TRANSLATION.name:
                for name, targets in sorted(self.pairs.items()):
                    yield f"{task}:{name}", targets
            else:
                yield task, self.task_targets[task]

    def tasks_naming(self, model_id: str) -> frozenset:
        """The tasks whose configured chains name a target of this Hub id."""
        return frozenset(
            label.split(":")[0] for label, targets in self.all_routes() if any(t.id == model_id for t in targets)
        )

    def token_variables(self) -> set:
        """Name the variables holding the tokens of models with their own server."""
        return {model.token_env for model in self.models.values() if model.token_env}

    def language_name(self, code: str) -> str:
        """Return the human name of a language code, for prompts."""
        return self.languages.get(code, code)

    def _targets(self, chain, owner: str) -> tuple:
        """Turn a list of model keys, aliases or ids into model entries."""
        if isinstance(chain, str):
            chain = [chain]
        targets = []
        for name in chain:
            if not isinstance(name, str) or not is_valid_model_name(name):
                raise CatalogError(f"{owner}: {name!r} is not a model id or key")
            key = self.aliases.get(name, name)
            targets.append(self.models.get(key) or ModelTarget(key=key, id=key))
        return tuple(targets)

    def _check(self):
        """Fail at start-up on a configuration that could only fail later."""
        for task in TASK_TYPES:
            if task != TRANSLATION.name and not self.task_targets[task]:
                raise CatalogError(f"tasks.{task}.targets must name at least one model")
        if not self.pairs:
            raise CatalogError("tasks.text-translation.pairs must define at least one pair")
        for name in self.pairs:
            if not _PAIR.fullmatch(name):
                raise CatalogError(f"translation pair {name!r} must look like zh2en")
        if self.default_pair not in self.pairs:
            raise CatalogError(f"default_pair {self.default_pair!r} is not a configured pair")
        for alias, key in self.aliases.items():
            if not is_valid_model_name(alias) or not is_valid_model_name(key):
                raise CatalogError(f"alias {alias!r} -> {key!r} is not a valid model name")


def _as_chat(target: ModelTarget) -> ModelTarget:
    """The same model on the chat route: a chat entry as configured; any other by its Hub id
    (and its own server, if it has one), since the router and OpenAI-style servers take any
    model they serve there."""
    if target.protocol == CHAT_PROTOCOL:
        return target
    return ModelTarget(key=target.key, id=target.id, protocol=CHAT_PROTOCOL, url=target.url, token_env=target.token_env)


def _model_entry(key: str, raw: dict) -> ModelTarget:
    """Build one model entry from its TOML table; which keys its provider takes is checked by
    the provider's helper (service/hub/providers)."""
    if not isinstance(raw, dict):
        raise CatalogError(f"models.{key} must be a table")
    model_id = raw.get("id", key)
    if not is_valid_model_name(key) or not isinstance(model_id, str) or not model_id:
        raise CatalogError(f"models.{key}: invalid key or id")
    url = raw.get("url")
    if url is not None and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        raise CatalogError(f"models.{key}.url must be an http(s) URL")
    token_env = raw.get("token_env")
    if token_env is not None and (
        not (url or raw.get("space")) or not isinstance(token_env, str) or not _VARIABLE.fullmatch(token_env)
    ):
        raise CatalogError(f"models.{key}.token_env must name an environment variable (A_TOKEN), with a url or a space")
    for name, kind in _TYPED_KEYS.items():
        if name in raw and not isinstance(raw[name], kind):
            raise CatalogError(f"models.{key}.{name} must be a {_KIND_NAMES[kind]}")
    return ModelTarget(
        key=key,
        id=model_id,
        protocol=raw.get("protocol", "hf-inference"),
        url=url.rstrip("/") if url else None,
        provider=raw.get("provider"),
        provider_model=raw.get("provider_model"),
        input_template=raw.get("input_template"),
        lang_codes=dict(raw.get("lang_codes", {})),
        send_lang_codes=raw.get("send_lang_codes", False),
        prompts=dict(raw.get("prompts", {})),
        token_env=token_env,
        keep_thinking=raw.get("keep_thinking", False),
        keys=frozenset(raw),
        options={name: value for name, value in raw.items() if name not in _FIELDS},
    )


_FIELDS = frozenset(ModelTarget.__dataclass_fields__)


_TYPED_KEYS = {
    "protocol": str,
    "provider": str,
    "provider_model": str,
    "input_template": str,
    "lang_codes": dict,
    "send_lang_codes": bool,
    "prompts": dict,
    "keep_thinking": bool,
}
_KIND_NAMES = {str: "string", dict: "table", bool: "boolean (true or false)"}
