"""The OpenAI-style chat protocol (the router's /v1/chat/completions), with prompts from config."""

import re

from service.hub.messages import UpstreamReply, UpstreamRequest
from service.hub.protocols.base import TEXT_TASKS, InferenceCall, Protocol, credential_of, require_text
from service.hub.protocols.openai_style import choices, openai_base, sampling_parameters

_FENCE = re.compile(r"^```[\w-]*\n(.*?)\n?```$", re.DOTALL)
_QUOTES = {'"': '"', "“": "”", "「": "」", "'": "'", "«": "»"}


class OpenAIChatProtocol(Protocol):
    """Chat models serving any text task through a configured prompt."""

    tasks = TEXT_TASKS
    asks_for_n = True

    def serves(self, target, task_type: str) -> bool:
        """Serve text-to-text with the bare input; other text tasks need their prompt configured."""
        return task_type == "text-to-text" or (task_type in self.tasks and task_type in target.prompts)

    def build(self, call: InferenceCall, settings, seed: int | None, n: int) -> UpstreamRequest:
        """Build one chat request asking for `n` answers."""
        base = openai_base(call, settings.hf_router_base)
        model = f"{call.target.id}:{call.target.provider}" if call.target.provider else call.target.id
        payload = {"model": model, "messages": self.messages(call), **sampling_parameters(call, n, seed)}
        return UpstreamRequest(url=f"{base}/chat/completions", payload=payload, credential=credential_of(call.target))

    def parse(self, call: InferenceCall, reply: UpstreamReply, n: int) -> list:
        """Read `n` answers; strip the wrapping when the prompt asked for the bare result."""
        contents = [require_text(_message_content(choice), "choices[].message.content") for choice in choices(reply, n)]
        answers = [bare_answer(content) for content in contents]
        if call.task_type == "text-completion" and call.args.get("return_full_text"):
            return [call.inputs + answer for answer in answers]
        return answers

    def messages(self, call: InferenceCall) -> list:
        """Fill the task's prompt templates from the model's configuration."""
        prompt = call.target.prompts.get(call.task_type, {})
        messages = []
        if prompt.get("system"):
            messages.append({"role": "system", "content": call.fill(prompt["system"])})
        messages.append({"role": "user", "content": call.fill(prompt.get("user", "{text}"))})
        return messages


def _message_content(choice: dict):
    """Return choices[].message.content, or None when the answer is shaped otherwise."""
    message = choice.get("message")
    return message.get("content") if isinstance(message, dict) else None


def bare_answer(content: str) -> str:
    """Remove code fences and one pair of surrounding quotes a chat model may add."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text
