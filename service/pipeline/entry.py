"""The one call every HTTP surface makes into the pipeline.

A surface reads its wire format into an `Ask` (the task, the model or route the caller named,
the validated inputs and arguments, whether the answer is streamed) and hands it in with the
request's context, which names the caller. It gets back an `InferenceResult` or one of the
errors of service/errors.py, and writes either in its own wire format. A streamed ask (chat
only) gets its result once the first chunk has come: its `results` are the chunks
(inference.ChunkStream), which the surface iterates and closes.
"""

from dataclasses import dataclass

from service.catalog import Catalog
from service.catalog.tasks import ForwardedTask, Task
from service.clock import SYSTEM_CLOCK, Clock
from service.hub.deadline import Deadline
from service.keys.admission import Admission
from service.pipeline.context import RequestContext
from service.pipeline.inference import InferenceResult, InferenceRunner
from service.usage.labels import model_label


@dataclass(frozen=True)
class Ask:
    """What a caller asks of the pipeline, whatever surface it came through."""

    task: Task
    inputs: str | tuple | bytes  # the text; for chat, the conversation's messages; for embeddings,
    # the texts; for a forwarded task, the body as it came
    args: dict  # validated against the task's argument schema (api/schemas.py)
    model_name: str | None = None  # a catalog key, alias or Hub id; None for the task's route
    model_type: str | None = None  # a translation pair such as zh2en
    stream: bool = False


class Pipeline:
    """Runs an `Ask`: its route, admission against the caller's limits, then the route's
    targets through the cache, the breakers, fan-out and fallback, within the task's deadline."""

    def __init__(
        self, catalog: Catalog, settings, admission: Admission, runner: InferenceRunner, clock: Clock = SYSTEM_CLOCK
    ):
        self.catalog = catalog
        self.clock = clock
        self.settings = settings
        self.admission = admission
        self.runner = runner

    def _stream_end(self, context: RequestContext) -> Deadline:
        """When a streamed answer must have ended: STREAM_MAX_SECONDS from the request's start.
        The context is marked streamed, so that its ledger row waits for the stream's end."""
        context.streamed = True
        return Deadline(max(0.0, self.settings.stream_max_seconds - context.seconds), clock=self.clock.monotonic)

    def infer(self, ask: Ask, context: RequestContext) -> InferenceResult:
        """Answer `ask` for the caller `context.client_key`; the context records what it took."""
        context.task = ask.task
        route = self.catalog.route(ask.task.name, ask.model_name, ask.model_type)
        self.runner.check_serves(route, stream=ask.stream)
        context.model = route.targets[0].id
        context.input_chars = input_chars(ask.inputs)
        deadline_seconds = self.deadline_of(ask.task)
        results = ask.args["num_sentences"]
        model = model_label(context.model, self.catalog)
        context.ticket = self.admission.admit(context.client_key, ask.task, results, deadline_seconds, model)
        context.deadline = Deadline(deadline_seconds, clock=self.clock.monotonic)
        stream_end = self._stream_end(context) if ask.stream else None
        outcome = self.runner.run(route, ask.inputs, ask.args, context, stream_end=stream_end)
        context.model = outcome.model
        context.results = len(outcome.results)
        return outcome

    def deadline_of(self, task: Task) -> float:
        """The task's deadline; a forwarded task with a file in or out (an image to classify, speech
        to transcribe or to make) waits as long as an image is drawn."""
        if isinstance(task, ForwardedTask) and task.files:
            return self.settings.image_deadline
        return self.settings.deadline_for(task.name)

    def task_of(self, model_name: str) -> Task:
        """The task of a model named without one (the Hub's `POST /models/<id>`): see
        ModelTasks.task_of."""
        return self.runner.model_tasks.task_of(self.catalog.target(model_name))


def input_chars(inputs: str | tuple | bytes) -> int:
    """The characters a caller sent: the text, the texts, or the text of a conversation's messages;
    a forwarded body's bytes."""
    if isinstance(inputs, (str, bytes)):
        return len(inputs)
    return sum(_content_chars(item.get("content") if isinstance(item, dict) else item) for item in inputs)


def _content_chars(content) -> int:
    """A message's text: a string, or the `text` of its parts."""
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(
            len(part["text"]) for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return 0
