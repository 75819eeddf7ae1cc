"""The one call every HTTP surface makes into the pipeline.

A surface reads its wire format into an `Ask` (the task, the model or route the caller named,
the validated inputs and arguments, whether the answer is streamed) and hands it in with the
request's context, which names the caller. It gets back an `InferenceResult` or one of the
errors of service/errors.py, and writes either in its own wire format.
"""

from dataclasses import dataclass

from service.catalog import Catalog
from service.catalog.tasks import TASKS, Task
from service.errors import InvalidRequest, ModelNotFound, ModelUnavailable
from service.hub.deadline import Deadline
from service.keys.admission import Admission
from service.pipeline.context import RequestContext
from service.pipeline.inference import InferenceResult, InferenceRunner
from service.pipeline.model_tasks import TASK_OF_HUB_TASK
from service.usage.labels import model_label


@dataclass(frozen=True)
class Ask:
    """What a caller asks of the pipeline, whatever surface it came through."""

    task: Task
    inputs: str
    args: dict  # validated against the task's argument schema (api/schemas.py)
    model_name: str | None = None  # a catalog key, alias or Hub id; None for the task's route
    model_type: str | None = None  # a translation pair such as zh2en
    stream: bool = False


class Pipeline:
    """Runs an `Ask`: its route, admission against the caller's limits, then the route's
    targets through the cache, the breakers, fan-out and fallback, within the task's deadline."""

    def __init__(self, catalog: Catalog, settings, admission: Admission, runner: InferenceRunner):
        self.catalog = catalog
        self.settings = settings
        self.admission = admission
        self.runner = runner

    def infer(self, ask: Ask, context: RequestContext) -> InferenceResult:
        """Answer `ask` for the caller `context.client_key`; the context records what it took."""
        if ask.stream:
            raise InvalidRequest("stream: answers are not streamed; leave stream out or false")
        context.task = ask.task
        route = self.catalog.route(ask.task.name, ask.model_name, ask.model_type)
        self.runner.check_serves(route)
        context.model = route.targets[0].id
        context.input_chars = len(ask.inputs)
        deadline_seconds = self.settings.deadline_for(ask.task.name)
        results = ask.args["num_sentences"]
        model = model_label(context.model, self.catalog)
        context.ticket = self.admission.admit(context.client_key, ask.task, results, deadline_seconds, model)
        context.deadline = Deadline(deadline_seconds)
        outcome = self.runner.run(route, ask.inputs, ask.args, context)
        context.model = outcome.model
        context.results = len(outcome.results)
        return outcome

    def task_of(self, model_name: str) -> Task:
        """The task of a model named without one: the catalog's, where its chains place the model
        in exactly one task, else the one the model's `pipeline_tag` on the Hub names (asked once
        per id and kept, as for the check of a named model)."""
        target = self.catalog.target(model_name)
        placed = self.catalog.tasks_naming(target.id)
        if len(placed) == 1:
            return TASKS[next(iter(placed))]
        answer = self.runner.model_tasks.hub_tasks(target.id)
        if not answer.known:
            raise ModelUnavailable(
                f"cannot tell in time which task model {target.id} is for (the Hub's model API did not "
                "answer); try again shortly, or name the task",
                retry_after=self.settings.model_task_lookup_seconds,
            )
        if answer.pipeline_tag is None:
            raise ModelNotFound(f"model {target.id} is not on the Hub, or names no task there; name the task")
        task = TASK_OF_HUB_TASK.get(answer.pipeline_tag)
        if task is None:
            served = ", ".join(TASK_OF_HUB_TASK)
            raise InvalidRequest(
                f"model {target.id} is a {answer.pipeline_tag} model (on the Hub); the gateway serves {served}",
                errors={"model": [f"Is for {answer.pipeline_tag}, not one of: {served}."]},
            )
        return TASKS[task]
