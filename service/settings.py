"""Runtime settings, read from the environment once per process."""

import os
from dataclasses import dataclass
from pathlib import Path

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS_CONFIG = PROJECT_ROOT / "config" / "models.toml"


def _float(environ, name, default):
    """Read a positive float variable, falling back to its default when unset."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    value = float(raw)
    if not value > 0:
        raise ValueError(f"{name} must be a positive number, got {raw!r}")
    return value


def _int(environ, name, default):
    """Read a positive integer variable, falling back to its default when unset."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    value = int(raw)
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


def _text(environ, name, default):
    """Read a string variable; blank counts as unset."""
    return environ.get(name, "").strip() or default


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment, typed and defaulted."""

    hf_api_token: str | None = None
    hf_api_base: str = "https://router.huggingface.co/hf-inference/models"
    hf_router_base: str = "https://router.huggingface.co/v1"
    hf_providers_base: str = "https://router.huggingface.co"
    hf_hub_api_base: str = "https://huggingface.co/api"
    liveness_cache_seconds: float = 300.0
    models_config: Path = DEFAULT_MODELS_CONFIG
    text_deadline: float = 30.0
    image_deadline: float = 90.0
    connect_timeout: float = 5.0
    max_input_chars: int = 10_000
    max_body_bytes: int = 1024 * 1024
    max_image_bytes: int = 20 * 1024 * 1024
    fanout_concurrency: int = 10  # the most num_sentences allows: every call at once
    upstream_pool_size: int = 128  # the worker's 64 threads plus as many fan-out calls
    api_keys: frozenset = frozenset()

    @property
    def longest_deadline(self) -> float:
        """The longest time one request may spend waiting for the upstream."""
        return max(self.text_deadline, self.image_deadline)

    def deadline_for(self, task_type: str) -> float:
        """Return the deadline in seconds that applies to one task."""
        return self.image_deadline if task_type == "text-to-image" else self.text_deadline

    def __repr__(self) -> str:
        # The token must never reach a log line through a stray repr().
        token = "set" if self.hf_api_token else "unset"
        return f"Settings(hf_api_base={self.hf_api_base!r}, hf_api_token=<{token}>, ...)"

    @classmethod
    def from_env(cls, environ=None) -> "Settings":
        """Build settings from the environment, after loading `.env` if present."""
        if environ is None:
            load_dotenv(PROJECT_ROOT / ".env", override=False)
            environ = os.environ
        return cls(
            hf_api_token=environ.get("HF_API_TOKEN", "").strip() or None,
            hf_api_base=_text(environ, "HF_API_BASE", cls.hf_api_base).rstrip("/"),
            hf_router_base=_text(environ, "HF_ROUTER_BASE", cls.hf_router_base).rstrip("/"),
            hf_providers_base=_text(environ, "HF_PROVIDERS_BASE", cls.hf_providers_base).rstrip("/"),
            hf_hub_api_base=_text(environ, "HF_HUB_API_BASE", cls.hf_hub_api_base).rstrip("/"),
            liveness_cache_seconds=_float(environ, "LIVENESS_CACHE_SECONDS", cls.liveness_cache_seconds),
            models_config=Path(_text(environ, "MODELS_CONFIG", str(DEFAULT_MODELS_CONFIG))),
            text_deadline=_float(environ, "TEXT_DEADLINE_SECONDS", cls.text_deadline),
            image_deadline=_float(environ, "IMAGE_DEADLINE_SECONDS", cls.image_deadline),
            connect_timeout=_float(environ, "UPSTREAM_CONNECT_TIMEOUT", cls.connect_timeout),
            max_input_chars=_int(environ, "MAX_INPUT_CHARS", cls.max_input_chars),
            max_image_bytes=_int(environ, "MAX_IMAGE_BYTES", cls.max_image_bytes),
            fanout_concurrency=_int(environ, "FANOUT_CONCURRENCY", cls.fanout_concurrency),
            upstream_pool_size=_int(environ, "UPSTREAM_POOL_SIZE", cls.upstream_pool_size),
            api_keys=_api_keys(environ),
        )


def _api_keys(environ) -> frozenset:
    """Collect client API keys from API_KEYS (comma separated) and API_KEYS_FILE."""
    keys = {key.strip() for key in environ.get("API_KEYS", "").split(",")}
    keys_file = environ.get("API_KEYS_FILE", "").strip()
    if keys_file:
        lines = Path(keys_file).read_text(encoding="utf-8").splitlines()
        keys.update(line.strip() for line in lines if not line.lstrip().startswith("#"))
    return frozenset(key for key in keys if key)
