"""What the OpenAI-style routes share: chat and plain completions, several results with `n`.

A provider that speaks OpenAI's API subclasses one of these two helpers and says where its
`route` is under its base URL. A model with its own `url` (vLLM, llama.cpp's server, Ollama, TGI's Messages API)
is reached at `<url>/v1/chat/completions` or `<url>/v1/completions`.
"""

import re

from service.catalog.tasks import TEXT_TASKS
from service.errors import UpstreamError
from service.hub.messages import UpstreamReply
from service.hub.providers.helper import InferenceCall, ProviderHelper, json_answer, require_text

_FENCE = re.compile(r"^```[\w-]*\n(.*?)\n?```$", re.DOTALL)
_QUOTES = {'"': '"', "“": "”", "「": "」", "'": "'", "«": "»"}
# Reasoning models (DeepSeek-R1 and its kin) think aloud first: `<think>…</think>answer`.
_THINKING = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)


def sampling_parameters(call: InferenceCall, n: int, seed: int | None) -> dict:
    """Map the documented args to OpenAI-style parameters."""
    args = call.args
    parameters = {"max_tokens": args.get("max_new_tokens", 128), "n": n}
    if not call.sampling:
        parameters["temperature"] = 0.0  # greedy decoding in OpenAI terms
    else:
        if args.get("temperature") is not None:
            parameters["temperature"] = args["temperature"]
        if args.get("top_p", 1.0) < 1.0:
            parameters["top_p"] = args["top_p"]
    if seed is not None:
        parameters["seed"] = seed
    return parameters


def choices(reply: UpstreamReply, n: int) -> list:
    """Return up to `n` choices from an answer (some servers ignore `n`), or raise upstream_error."""
    document = json_answer(reply)
    found = document.get("choices") if isinstance(document, dict) else None
    if not isinstance(found, list) or not found or not all(isinstance(choice, dict) for choice in found):
        raise UpstreamError("the upstream answer has no choices")
    return found[:n]


def reported_tokens(reply: UpstreamReply) -> tuple[int, int]:
    """The `usage` an OpenAI-style answer reports: (prompt_tokens, completion_tokens), 0 for what it lacks."""
    document = reply.json()
    usage = document.get("usage") if isinstance(document, dict) else None
    return counted_tokens(usage) if isinstance(usage, dict) else (0, 0)


def counted_tokens(usage: dict) -> tuple[int, int]:
    """(prompt_tokens, completion_tokens) of a `usage` object, 0 for what it lacks."""
    counts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return tuple(n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 0 for n in counts)


def without_thinking(text: str) -> str:
    """Drop a reasoning model's leading `<think>…</think>` block, keeping the answer after it."""
    return _THINKING.sub("", text, count=1)


def bare_answer(content: str) -> str:
    """Remove code fences and one pair of surrounding quotes a chat model may add."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text


class ChatHelper(ProviderHelper):
    """OpenAI-style chat serving the text tasks through prompts from the configuration.

    Text-to-text sends the input as it is; translation and completion need their prompt in
    `prompts.<task>`. A reasoning model's `<think>` block is dropped unless `keep_thinking`.
    """

    tasks = TEXT_TASKS
    asks_for_n = True
    config_keys = frozenset({"prompts", "keep_thinking", "provider_model"})

    def serves(self, target, task_type: str) -> bool:
        """Serve text-to-text with the bare input; other text tasks need their prompt configured."""
        return task_type == "text-to-text" or (task_type in self.tasks and task_type in target.prompts)

    def model_name(self, call: InferenceCall) -> str:
        """Return the `model` field: the provider's own id when configured, else the Hub id."""
        return call.target.provider_model or call.target.id

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        """Ask for `n` answers to the task's prompt."""
        return {"model": self.model_name(call), "messages": self.messages(call), **sampling_parameters(call, n, seed)}

    def messages(self, call: InferenceCall) -> list:
        """Fill the task's prompt templates from the model's configuration."""
        prompt = call.target.prompts.get(call.task_type, {})
        messages = []
        if prompt.get("system"):
            messages.append({"role": "system", "content": call.fill(prompt["system"])})
        messages.append({"role": "user", "content": call.fill(prompt.get("user", "{text}"))})
        return messages

    def url(self, call: InferenceCall) -> str:
        """A model's own server, or the provider's route."""
        if call.target.url:
            return f"{call.target.url}/v1/chat/completions"
        return super().url(call)

    def tokens(self, reply: UpstreamReply) -> tuple[int, int]:
        return reported_tokens(reply)

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int) -> list:
        """Read `n` answers: without thinking, fences or quotes; with the prompt first if asked."""
        contents = [require_text(_message_content(choice), "choices[].message.content") for choice in choices(reply, n)]
        if not call.target.keep_thinking:
            contents = [without_thinking(content) for content in contents]
        answers = [bare_answer(content) for content in contents]
        if call.task_type == "text-completion" and call.args.get("return_full_text"):
            return [call.inputs + answer for answer in answers]
        return answers


class CompletionsHelper(ProviderHelper):
    """OpenAI-style `/v1/completions`: plain continuation, several results in one call with `n`."""

    tasks = ("text-completion",)
    asks_for_n = True
    config_keys = frozenset({"provider_model", "keep_thinking"})

    def url(self, call: InferenceCall) -> str:
        """A model's own server, or the provider's route."""
        if call.target.url:
            return f"{call.target.url}/v1/completions"
        return super().url(call)

    def payload(self, call: InferenceCall, seed: int | None, n: int) -> dict:
        """Ask for `n` continuations of the (decorated) input."""
        payload = {
            "model": call.target.provider_model or call.target.id,
            "prompt": call.decorated_inputs(),
            **sampling_parameters(call, n, seed),
        }
        if call.sampling:
            payload["top_k"] = call.args["top_k"]
        return payload

    def tokens(self, reply: UpstreamReply) -> tuple[int, int]:
        return reported_tokens(reply)

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int) -> list:
        """Read `n` continuations, with the prompt in front when return_full_text asks for it."""
        texts = [require_text(choice.get("text"), "choices[].text") for choice in choices(reply, n)]
        if not call.target.keep_thinking:
            texts = [without_thinking(text) for text in texts]
        if call.args.get("return_full_text"):
            return [call.inputs + text for text in texts]
        return texts


def _message_content(choice: dict):
    """Return choices[].message.content, or None when the answer is shaped otherwise."""
    message = choice.get("message")
    return message.get("content") if isinstance(message, dict) else None
