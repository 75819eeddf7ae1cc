"""Runtime settings: every variable the service reads, declared once, read once per process.

Each field of `Settings` names its environment variable, how it is parsed, and what it means
(`_variable`). `Settings.from_env()` reads them all, after loading `.env`; nothing else in the
service reads the environment. `.env.example` and the configuration docs are checked against
these declarations by the tests (`python -m service settings` prints both).
"""

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS_CONFIG = PROJECT_ROOT / "config" / "models.toml"
WORKER_CLASSES = ("gevent", "gthread")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
HUB_TOKEN = "HF_API_TOKEN"


class SettingsError(ValueError):
    """A variable of the environment is invalid; the message names it and says why."""


def _text(environ, name):
    """A string; blank counts as unset."""
    return environ.get(name, "").strip() or None


def _url(environ, name):
    """A base URL, without its trailing slash."""
    raw = _text(environ, name)
    if raw is not None and not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http(s) URL, got {raw!r}")
    return raw.rstrip("/") if raw else None


def _path(environ, name):
    """A file path."""
    raw = _text(environ, name)
    return Path(raw) if raw else None


def _float_at_least(lowest: float, inclusive: bool, wording: str):
    """A finite number above `lowest` (or equal to it when `inclusive`)."""

    def parse(environ, name):
        raw = _text(environ, name)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        in_range = (value >= lowest if inclusive else value > lowest) and value < float("inf")
        if not in_range:
            raise SettingsError(f"{name} must be {wording}, got {raw!r}")
        return value

    return parse


_positive_float = _float_at_least(0, inclusive=False, wording="a positive number")
_non_negative_float = _float_at_least(0, inclusive=True, wording="a number of at least 0")  # 0 turns a feature off


def _positive_int(environ, name):
    """A positive integer."""
    raw = _text(environ, name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) <= 0:
        raise SettingsError(f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


def _port(environ, name):
    """A TCP port."""
    value = _positive_int(environ, name)
    if value is not None and value > 65535:
        raise SettingsError(f"{name} must be a port number (1-65535), got {value}")
    return value


def _choice(*choices):
    """One of a few words, case-insensitive."""

    def parse(environ, name):
        raw = _text(environ, name)
        if raw is None:
            return None
        if raw.lower() not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return raw.lower()

    return parse


def _api_keys(environ, name):
    """Client keys from API_KEYS (comma separated) and a plain API_KEYS_FILE (one per line).

    A `.toml` key file holds named keys and digests instead: service/keys/keyfile.py reads it.
    """
    keys = {key.strip() for key in environ.get(name, "").split(",")}
    keys_file = _text(environ, "API_KEYS_FILE")
    if keys_file and not keys_file.endswith(".toml"):
        try:
            lines = Path(keys_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise SettingsError(f"API_KEYS_FILE: cannot read {keys_file}: {reason}") from None
        keys.update(line.strip() for line in lines if not line.lstrip().startswith("#"))
    return frozenset(key for key in keys if key) or None


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origins(environ, name):
    """Web origins, comma separated, each as a browser sends it in `Origin`: scheme, host and a
    port other than the scheme's own, lower case, nothing after (`https://app.example.com`)."""
    raw = _text(environ, name)
    if raw is None:
        return None
    return frozenset(_origin(name, item.strip()) for item in raw.split(",") if item.strip()) or None


def _origin(name: str, text: str) -> str:
    refused = SettingsError(
        f"{name} lists origins such as https://app.example.com (scheme, host, optional port; no path), got {text!r}"
    )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise refused from None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        raise refused
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise refused
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    scheme = parts.scheme.lower()
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else "")


def _variable(name: str, default, parse, doc: str, group: str, shown=None):
    """Declare a setting: its variable, its default, its parser, what it means and its group.

    `shown` is how the default is written in the docs when it is not a plain value.
    """
    metadata = {"variable": name, "parse": parse, "doc": doc, "group": group, "shown": shown}
    if isinstance(default, (dict, list, set)):
        return field(default_factory=lambda: default, metadata=metadata)
    return field(default=default, metadata=metadata)


UPSTREAM, DEADLINES, LIMITS, SERVING, LOGS, CLIENTS, STORE, CACHE = (
    "Upstream",
    "Deadlines",
    "Limits and concurrency",
    "Serving",
    "Logs",
    "Client keys",
    "Shared store",
    "Cache and circuit breakers",
)
STORES = ("sqlite", "redis", "off")
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment, typed and defaulted."""

    hf_api_token: str | None = _variable(
        HUB_TOKEN, None, _text, "your Hugging Face token; never logged, never defaulted", UPSTREAM, shown="none"
    )
    hf_api_base: str = _variable(
        "HF_API_BASE",
        "https://router.huggingface.co/hf-inference/models",
        _url,
        "the hosted route for `hf-inference` models",
        UPSTREAM,
    )
    hf_router_base: str = _variable(
        "HF_ROUTER_BASE",
        "https://router.huggingface.co/v1",
        _url,
        "the router's OpenAI-style base, for `openai-chat`",
        UPSTREAM,
    )
    hf_providers_base: str = _variable(
        "HF_PROVIDERS_BASE",
        "https://router.huggingface.co",
        _url,
        "the router's root, for provider routes (`/fal-ai/…`, `/replicate/…`, `/together/…`)",
        UPSTREAM,
    )
    hf_hub_api_base: str = _variable(
        "HF_HUB_API_BASE", "https://huggingface.co/api", _url, "the Hub's model API, for liveness", UPSTREAM
    )
    liveness_cache_seconds: float = _variable(
        "LIVENESS_CACHE_SECONDS", 300.0, _positive_float, "how long a liveness answer is reused", UPSTREAM
    )
    model_task_lookup_seconds: float = _variable(
        "MODEL_TASK_LOOKUP_SECONDS",
        2.0,
        _positive_float,
        "how long a request naming a Hub id the catalog does not place waits for the Hub's model API "
        "to say which task the model serves (asked once per id, then kept for LIVENESS_CACHE_SECONDS)",
        UPSTREAM,
    )
    model_task_unknown: str = _variable(
        "MODEL_TASK_UNKNOWN",
        "call",
        _choice("call", "refuse"),
        "when the Hub cannot say in time which task a named model serves: `call` it anyway "
        "(counted in hf_gateway_model_task_unknown_total and logged), or `refuse` with `503`",
        UPSTREAM,
    )
    models_config: Path = _variable(
        "MODELS_CONFIG",
        DEFAULT_MODELS_CONFIG,
        _path,
        "the model configuration file",
        UPSTREAM,
        shown="`config/models.toml`",
    )
    text_deadline: float = _variable(
        "TEXT_DEADLINE_SECONDS",
        30.0,
        _positive_float,
        "deadline of the text tasks, every attempt and wait included",
        DEADLINES,
    )
    image_deadline: float = _variable(
        "IMAGE_DEADLINE_SECONDS", 90.0, _positive_float, "deadline of text-to-image", DEADLINES
    )
    stream_idle_seconds: float = _variable(
        "STREAM_IDLE_SECONDS",
        30.0,
        _positive_float,
        "longest gap between two chunks of a streamed answer; longer ends the stream with an error event",
        DEADLINES,
    )
    stream_max_seconds: float = _variable(
        "STREAM_MAX_SECONDS",
        600.0,
        _positive_float,
        "longest a streamed answer may run, from the request's start; longer ends it with an error event",
        DEADLINES,
    )
    connect_timeout: float = _variable(
        "UPSTREAM_CONNECT_TIMEOUT", 5.0, _positive_float, "connect timeout of one upstream attempt", DEADLINES
    )
    body_timeout: float = _variable(
        "BODY_TIMEOUT_SECONDS",
        15.0,
        _positive_float,
        "time a caller has to send its whole request body; later is `408` and the connection is closed",
        DEADLINES,
    )
    max_input_chars: int = _variable("MAX_INPUT_CHARS", 10_000, _positive_int, "longest `inputs`", LIMITS)
    max_body_bytes: int = _variable(
        "MAX_BODY_BYTES", 1024 * 1024, _positive_int, "largest request body, whatever its framing (`413` above)", LIMITS
    )
    max_image_bytes: int = _variable(
        "MAX_IMAGE_BYTES", 20 * 1024 * 1024, _positive_int, "largest image accepted from upstream", LIMITS
    )
    fanout_concurrency: int = _variable(
        "FANOUT_CONCURRENCY",
        10,
        _positive_int,
        "upstream calls one request makes at once for `num_sentences` (10 sends them all at once)",
        LIMITS,
    )
    upstream_pool_size: int = _variable(
        "UPSTREAM_POOL_SIZE",
        1024,
        _positive_int,
        "keep-alive connections per upstream host and worker; when all are busy a call waits for one "
        "within its deadline (then `504`), never more connections",
        LIMITS,
    )
    fanout_workers: int = _variable(
        "FANOUT_WORKERS",
        1024,
        _positive_int,
        "fan-out calls in flight per worker (threads, or greenlets under gevent); more wait their turn",
        LIMITS,
    )
    host: str = _variable("HOST", "0.0.0.0", _text, "where gunicorn listens", SERVING)
    port: int = _variable("PORT", 8098, _port, "the port gunicorn listens on", SERVING)
    pidfile: Path | None = _variable(
        "PIDFILE",
        None,
        _path,
        "the file gunicorn's master writes its pid to (for `kill -HUP` and upgrades, docs/deployment.md); "
        "relative to the project folder; the folder it goes in must exist",
        SERVING,
        shown="none",
    )
    worker_class: str = _variable(
        "WORKER_CLASS",
        "gevent",
        _choice(*WORKER_CLASSES),
        "`gevent`: each worker holds thousands of waiting requests as greenlets; `gthread`: a thread per "
        "request in flight (`GUNICORN_THREADS`)",
        SERVING,
    )
    workers: int = _variable(
        "WEB_CONCURRENCY",
        os.cpu_count() or 1,
        _positive_int,
        "gunicorn worker processes",
        SERVING,
        shown="number of cores",
    )
    worker_connections: int = _variable(
        "WORKER_CONNECTIONS",
        2048,
        _positive_int,
        "connections one worker holds at once (gevent: requests in flight and kept-alive connections)",
        SERVING,
    )
    threads: int = _variable(
        "GUNICORN_THREADS",
        64,
        _positive_int,
        "threads per worker, the requests it serves at once (gthread only)",
        SERVING,
    )
    max_requests: int = _variable(
        "MAX_REQUESTS", 20_000, _positive_int, "recycle a worker after this many requests (±10% jitter)", SERVING
    )
    keepalive: int = _variable(
        "KEEPALIVE_SECONDS",
        75,
        _positive_int,
        "keep-alive towards nginx: how long a connection may wait for the first byte of its next request",
        SERVING,
    )
    header_timeout: float = _variable(
        "HEADER_TIMEOUT_SECONDS",
        5.0,
        _positive_float,
        "time a request's headers have to arrive whole once its first byte has; later is `408` and the "
        "connection is closed",
        SERVING,
    )
    forwarded_allow_ips: str = _variable(
        "FORWARDED_ALLOW_IPS", "127.0.0.1", _text, "front proxies whose `X-Forwarded-*` headers are trusted", SERVING
    )
    log_level: str = _variable("LOG_LEVEL", "info", _choice(*LOG_LEVELS), "log level", LOGS)
    log_format: str = _variable(
        "LOG_FORMAT",
        "text",
        _choice(*LOG_FORMATS),
        "`json`: the service's lines and gunicorn's own (access log included) as one JSON object per line",
        LOGS,
    )
    access_log: str | None = _variable(
        "ACCESS_LOG",
        None,
        _text,
        "gunicorn's own access log (`-` for stderr); the service already logs one line per request",
        LOGS,
        shown="off",
    )
    api_keys: frozenset = _variable(
        "API_KEYS",
        frozenset(),
        _api_keys,
        "client keys, comma separated; when any key is configured, every `/api/` call needs one",
        CLIENTS,
        shown="none",
    )
    api_keys_file: Path | None = _variable(
        "API_KEYS_FILE",
        None,
        _path,
        "a key file: `.toml` for named keys with limits and admin rights (docs/keys.md), any other name for "
        "one key per line",
        CLIENTS,
        shown="none",
    )
    cors_origins: frozenset = _variable(
        "CORS_ORIGINS",
        frozenset(),
        _origins,
        "web origins whose pages may call the API from a browser, comma separated, each exactly as the browser "
        "sends it (`https://app.example.com`); any other origin gets no CORS headers (docs/browsers.md)",
        CLIENTS,
        shown="none",
    )
    store: str = _variable(
        "STORE",
        "sqlite",
        _choice(*STORES),
        "where per-key limits, the usage ledger, the answer cache and the circuit breakers live: `sqlite` "
        "(one host, under `DATA_DIR`), `redis` (several hosts, `REDIS_URL`), or `off` (none of them)",
        STORE,
    )
    data_dir: Path = _variable(
        "DATA_DIR",
        DEFAULT_DATA_DIR,
        _path,
        "the directory of the SQLite store (`gateway.sqlite3`); must be writable by the service",
        STORE,
        shown="`data`",
    )
    redis_url: str | None = _variable(
        "REDIS_URL",
        None,
        _text,
        "the Redis server of `STORE=redis`, e.g. `redis://127.0.0.1:6379/0` (`rediss://` for TLS)",
        STORE,
        shown="none",
    )
    store_timeout: float = _variable(
        "STORE_TIMEOUT_SECONDS",
        0.25,
        _positive_float,
        "longest wait for one store operation; past it the request is served without the store",
        STORE,
    )
    cache_ttl: float = _variable(
        "CACHE_TTL_SECONDS",
        86_400.0,
        _non_negative_float,
        "how long a deterministic answer (`do_sample: false`, or a `seed`) is kept in the store; 0 keeps none",
        CACHE,
    )
    cache_max_entries: int = _variable(
        "CACHE_MAX_ENTRIES", 100_000, _positive_int, "answers kept at most; past it the oldest go", CACHE
    )
    cache_max_bytes: int = _variable(
        "CACHE_MAX_BYTES",
        256 * 1024 * 1024,
        _positive_int,
        "bytes of answers kept at most; past it the oldest go",
        CACHE,
    )
    cache_max_entry_bytes: int = _variable(
        "CACHE_MAX_ENTRY_BYTES",
        4 * 1024 * 1024,
        _positive_int,
        "a larger answer (several large images) is not kept",
        CACHE,
    )
    breaker_failures: int = _variable(
        "BREAKER_FAILURES",
        5,
        _positive_int,
        "failures of a target in a row (503, 504, 5xx, timeouts, broken connections) that open its breaker",
        CACHE,
    )
    breaker_open_seconds: float = _variable(
        "BREAKER_OPEN_SECONDS",
        30.0,
        _positive_float,
        "how long an open breaker skips its target; then one request probes it",
        CACHE,
    )
    breaker_window_seconds: float = _variable(
        "BREAKER_WINDOW_SECONDS",
        60.0,
        _positive_float,
        "failures further apart than this from the first of a row start a new row",
        CACHE,
    )
    breaker_probe_seconds: float = _variable(
        "BREAKER_PROBE_SECONDS",
        10.0,
        _positive_float,
        "the longest the one probe of an open breaker may wait for its answer (less when the request "
        "has less time left); a probe slower than this fails: keep it above the slowest model's healthy answer",
        CACHE,
    )
    breaker_min_keys: int = _variable(
        "BREAKER_MIN_KEYS",
        2,
        _positive_int,
        "with client keys, failures from at least this many keys (or all the keys, when fewer are "
        "configured) open or reopen a breaker, so no single key can open one for the others",
        CACHE,
    )
    # The environment as read, for the tokens models name with `token_env` (never printed).
    environ: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False, compare=False)

    @property
    def longest_deadline(self) -> float:
        """The longest time one request may spend waiting for the upstream."""
        return max(self.text_deadline, self.image_deadline)

    def deadline_for(self, task_type: str) -> float:
        """Return the deadline in seconds that applies to one task."""
        return self.image_deadline if task_type == "text-to-image" else self.text_deadline

    def token(self, variable: str) -> str | None:
        """Return the token held by `variable` (HF_API_TOKEN or a model's `token_env`), None if unset."""
        if variable == HUB_TOKEN:
            return self.hf_api_token
        return (self.environ.get(variable) or "").strip() or None

    @property
    def open_files_needed(self) -> int:
        """File descriptors one worker may need: its clients, its upstream pool, and some to spare."""
        clients = self.worker_connections if self.worker_class == "gevent" else self.threads + self.worker_connections
        return clients + self.upstream_pool_size + 256

    def __repr__(self) -> str:
        # The token must never reach a log line through a stray repr().
        token = "set" if self.hf_api_token else "unset"
        return f"Settings(hf_api_base={self.hf_api_base!r}, hf_api_token=<{token}>, ...)"

    @classmethod
    def from_env(cls, environ=None) -> "Settings":
        """Build settings from the environment, after loading `.env` if present."""
        if environ is None:
            load_dotenv_file()
            environ = os.environ
        values = {}
        for declared in variables():
            value = declared.metadata["parse"](environ, declared.metadata["variable"])
            if value is not None:
                values[declared.name] = value
        settings = cls(**values, environ=MappingProxyType(dict(environ)))
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that contradict each other, naming them."""
        if self.store == "redis" and not self.redis_url:
            raise SettingsError("STORE=redis needs REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://")
        for name, value in (("UPSTREAM_POOL_SIZE", self.upstream_pool_size), ("FANOUT_WORKERS", self.fanout_workers)):
            if value < self.fanout_concurrency:
                raise SettingsError(
                    f"{name} ({value}) must be at least FANOUT_CONCURRENCY ({self.fanout_concurrency}): "
                    "one request could never have all its calls in flight"
                )


DOTENV_FILE = PROJECT_ROOT / ".env"
# The variables the last read of `.env` put into this process's environment: a later read (a
# reload) updates or removes them; every other variable is the process's own and `.env` never
# overrides it.
_names_from_dotenv: frozenset = frozenset()


def environ_with_dotenv(environ, path: Path = DOTENV_FILE) -> tuple[dict, frozenset]:
    """Return `environ` with `.env` as the file is now, and the names the file supplied."""
    values = dotenv_values(path) if path.exists() else {}
    merged = {name: value for name, value in environ.items() if name not in _names_from_dotenv}
    supplied = frozenset(name for name, value in values.items() if value is not None and name not in merged)
    merged.update({name: values[name] for name in supplied})
    return merged, supplied


def load_dotenv_file(path: Path = DOTENV_FILE) -> None:
    """Load `.env` into the environment, replacing what an earlier read of it put there."""
    global _names_from_dotenv
    merged, supplied = environ_with_dotenv(os.environ, path)
    for name in _names_from_dotenv - supplied:
        os.environ.pop(name, None)
    for name in supplied:
        os.environ[name] = merged[name]
    _names_from_dotenv = supplied


def variables() -> list:
    """Return the declared fields, in the order of the docs."""
    return [declared for declared in fields(Settings) if "variable" in declared.metadata]
