"""What every protocol shares: the call description and answer checks."""

import re
from dataclasses import dataclass

from service.catalog import LanguagePair, ModelTarget
from service.errors import UpstreamError
from service.hub.messages import HUB_TOKEN, UpstreamReply

_PLACEHOLDER = re.compile(r"\{(text|source_language|target_language|src|tgt)\}")


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
        return self.task_type == "text-to-image" or bool(self.args.get("do_sample", True))

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


TEXT_TASKS = ("text-translation", "text-completion", "text-to-text")
IMAGE_TASKS = ("text-to-image",)


class Protocol:
    """What every protocol declares: the tasks it can serve, and whether it asks for `n` at once."""

    tasks: tuple = ()
    asks_for_n = False

    def serves(self, target: ModelTarget, task_type: str) -> bool:
        """Tell whether this protocol can serve `task_type` for `target`."""
        return task_type in self.tasks

    def tasks_for(self, target: ModelTarget) -> list:
        """Name the tasks this protocol can serve for `target`."""
        return [task for task in (*TEXT_TASKS, *IMAGE_TASKS) if self.serves(target, task)]


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
