"""What every provider helper shares: the call it serves, the steps it may override, and small
readers of answers.

A helper is built once per app with its provider's base URL, and does no I/O. It says where
and what to send (`request`: the base URL and the `route` under it, the headers, the payload),
reads the answer (`parse`), and, for providers that answer before they have finished, what to
ask next and when (`next_poll`, usually a GET built by `poll_at`). The Hub client sends
everything, with the deadline, the retries and the download checks.
"""

import re
from dataclasses import dataclass

from service.catalog import CatalogError, LanguagePair, ModelTarget
from service.catalog.tasks import FORWARDED_TASKS, PIPELINE_TASKS
from service.errors import UpstreamError
from service.hub.messages import HUB_TOKEN, UpstreamReply, UpstreamRequest

_PLACEHOLDER = re.compile(r"\{(text|source_language|target_language|src|tgt)\}")
# Keys any model entry may have; each helper adds the ones it takes.
COMMON_KEYS = frozenset({"id", "protocol", "provider", "url", "token_env", "input_template"})


@dataclass(frozen=True)
class InferenceCall:
    """One task to run on one model: the validated input and args."""

    task_type: str
    target: ModelTarget
    inputs: str
    args: dict
    pair: LanguagePair | None = None
    source_language: str | None = None
    target_language: str | None = None

    @property
    def sampling(self) -> bool:
        """Tell whether results are sampled (and so differ between calls)."""
        forwarded = FORWARDED_TASKS.get(self.task_type)
        if forwarded is not None:
            return not forwarded.deterministic
        return PIPELINE_TASKS[self.task_type].makes_images or bool(self.args.get("do_sample", True))

    def fill(self, template: str) -> str:
        """Fill {text}, {source_language}, {target_language}, {src} and {tgt} in a template."""
        codes = self.target.lang_codes
        values = {
            "text": self.inputs,
            "source_language": self.source_language or "",
            "target_language": self.target_language or "",
            "src": codes.get(self.pair.source, self.pair.source) if self.pair else "",
            "tgt": codes.get(self.pair.target, self.pair.target) if self.pair else "",
        }
        # One pass, so text containing "{tgt}" is never expanded a second time.
        return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)

    def decorated_inputs(self) -> str:
        """Return the input with the model's configured decoration (e.g. a `<2en>` prefix)."""
        template = self.target.input_template
        return self.fill(template) if template else self.inputs


@dataclass(frozen=True)
class Poll:
    """A provider that has not finished yet: what to ask next, and how long to wait first."""

    request: UpstreamRequest
    after_seconds: float


class ProviderHelper:
    """How one provider serves one kind of call, in small steps a provider overrides.

    `provider` names it as the Hub's model API does (for liveness); `tasks` are the gateway
    tasks it can serve; `config_keys` the model-entry keys it takes beyond COMMON_KEYS, and
    `required_keys` those it cannot do without. `base_url` is where its routes start (the
    router's root and the provider's name, such as `https://router.huggingface.co/fal-ai`).
    """

    provider = ""
    tasks: tuple = ()
    config_keys = frozenset()
    required_keys = frozenset()
    asks_for_n = False  # several results in one call (OpenAI's `n`), or one call per result
    sends_seed = True  # a seed reaches the upstream, so a seeded call has one answer
    makes_images = False

    def __init__(self, base_url: str):
        self.base_url = base_url

    def check(self, target: ModelTarget) -> None:
        """Refuse, at start, a model entry this helper needs something of and cannot find."""
        missing = sorted(self.required_keys - target.keys)
        if missing:
            raise CatalogError(f"models.{target.key}: {self.describe()} needs {', '.join(missing)}")

    def describe(self) -> str:
        """Name the helper in messages."""
        return f"provider {self.provider}"

    def serves(self, target: ModelTarget, task_type: str) -> bool:
        """Tell whether this helper can serve `task_type` for `target` as configured."""
        return task_type in self.tasks

    def request(self, call: InferenceCall, seed: int | None, n: int) -> UpstreamRequest:
        """Build the request for `n` results (one unless asks_for_n), with `seed`."""
        return UpstreamRequest(
            url=self.url(call),
            payload=self.payload(call, seed, n),
            headers=self.headers(call),
            wants_image=self.makes_images,
            credential=self.credential(call),
        )

    def credential(self, call: InferenceCall) -> str | None:
        """Name the variable whose token the call is sent with (None: no token)."""
        return credential_of(call.target)

    def url(self, call: InferenceCall) -> str:
        """Return where the request goes: the route under the base URL."""
        return f"{self.base_of(call)}{self.route(call)}"

    def base_of(self, call: InferenceCall) -> str:
        """Return where the call's routes start: the provider's base URL, or the target's own app."""
        return self.base_url

    def route(self, call: InferenceCall) -> str:
        """Return the request's path under the base URL (`/v1/images/generations`)."""
        raise NotImplementedError

    def headers(self, call: InferenceCall) -> dict:
        """Return the headers the provider needs besides auth and the request id."""
        return {}

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        """Return the JSON body."""
        raise NotImplementedError

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int) -> list:
        """Read the results: strings, hub Images, or ImageLinks to download."""
        raise NotImplementedError

    def tokens(self, reply: UpstreamReply) -> tuple[int, int]:
        """The (prompt, completion) tokens the answer says it used; (0, 0) when it does not say."""
        return (0, 0)

    def next_poll(self, call: InferenceCall, reply: UpstreamReply, sent: UpstreamRequest) -> Poll | None:
        """Return what to ask next when the provider has not finished (`reply` answered `sent`); None when it has."""
        return None

    def poll_at(self, call: InferenceCall, route: str, after_seconds: float, headers: dict | None = None) -> Poll:
        """Ask, after `after_seconds`, with a GET of `route` under the base URL, sent with the
        call's own credential (the Hub token on the router's routes)."""
        request = UpstreamRequest(
            url=f"{self.base_of(call)}{route}",
            payload=None,
            method="GET",
            headers=headers or {},
            credential=self.credential(call),
        )
        return Poll(request, after_seconds)


def credential_of(target: ModelTarget) -> str | None:
    """Name the token a target is called with: the Hub's on its routes; on a model's own
    server, its `token_env` (or none): the Hub token never goes to a host that is not the Hub's."""
    return target.token_env if target.url else HUB_TOKEN


def json_answer(reply: UpstreamReply):
    """Return the parsed JSON body of a success answer, or raise upstream_error."""
    document = reply.json()
    if document is None:
        raise UpstreamError(f"the upstream answered HTTP {reply.status} with a body that is not JSON")
    return document


def require_text(value, where: str) -> str:
    """Check that a field of the answer is a string."""
    if not isinstance(value, str):
        raise UpstreamError(f"the upstream answer has no text at {where}")
    return value


def set_args(args: dict, names) -> dict:
    """Return the args among `names` the caller set."""
    return {name: args[name] for name in names if args.get(name) is not None}


def renamed(args: dict, names: dict) -> dict:
    """Return the set args under the provider's own names for them."""
    return {provider_name: args[name] for name, provider_name in names.items() if args.get(name) is not None}


def generation_parameters(args: dict, include_seed: bool = True) -> dict:
    """Map the documented args to TGI/transformers generation parameters, only what is set."""
    parameters = {"do_sample": args["do_sample"], "max_new_tokens": args["max_new_tokens"]}
    if args["do_sample"]:
        parameters["top_k"] = args["top_k"]
        # TGI rejects top_p == 1.0; 1.0 means no nucleus filtering, so leave it out.
        if args["top_p"] < 1.0:
            parameters["top_p"] = args["top_p"]
        if args.get("temperature") is not None:
            parameters["temperature"] = args["temperature"]
    if include_seed and args.get("seed") is not None:
        parameters["seed"] = args["seed"]
    return parameters


def dig(document, *path):
    """Return document[path[0]][path[1]]..., or None where the shape differs."""
    for key in path:
        if isinstance(key, int):
            document = document[key] if isinstance(document, list) and -len(document) <= key < len(document) else None
        else:
            document = document.get(key) if isinstance(document, dict) else None
        if document is None:
            return None
    return document
