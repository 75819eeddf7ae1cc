"""Which task a model the caller names can serve, known before any call is made (and paid for).

A hosted hf-inference route runs a model's own pipeline whatever it is sent: an image model
asked for text generation runs, bills, and answers an image the text task cannot read. So a
Hub id a caller names (`?model_name=`, or an alias) is checked first:

- the catalog places it when a configured chain names it: a text model there never serves
  text-to-image, nor an image model a text task;
- otherwise the Hub's model API says (`pipeline_tag` and the tasks of its inference providers),
  asked once per id and kept for LIVENESS_CACHE_SECONDS. A request waits for that answer at
  most MODEL_TASK_LOOKUP_SECONDS, and only the first lookup of an id is waited for: later ones
  refresh the kept answer in the background while requests use it.

A model that cannot serve the task is refused with `400`, naming what it serves. When the Hub
cannot say in time, MODEL_TASK_UNKNOWN decides: call (the default) or refuse with `503`; either
is counted in a metric and logged. Models on their own server and the other protocols are left
to their provider helpers, which declare their tasks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from service.catalog import Catalog, ModelTarget
from service.catalog.tasks import (
    FEATURE_EXTRACTION,
    FORWARDED_TASKS,
    PIPELINE_TASKS,
    TASKS,
    TEXT_TASKS,
    Task,
    forwarded_task,
)
from service.errors import GatewayError, InvalidRequest, ModelNotFound, ModelUnavailable
from service.hub.client import HubClient
from service.hub.messages import HUB_TOKEN, UpstreamRequest
from service.pipeline.context import outside_request
from service.telemetry import metrics

log = logging.getLogger(__name__)

LOOKUP_SECONDS = 5.0  # one lookup's own deadline, however long requests wait for it
RETRY_FAILED_SECONDS = 30.0  # a lookup that failed is tried again (in the background) after this
MAX_KEPT_IDS = 4096  # ids remembered; the oldest go first, so no caller can grow it without bound
MAX_LOOKUPS = 8  # lookups in flight at once per worker; more ids are "not known in time"
# The Hub's tasks (pipeline tags, and the providers' tasks) whose answers each of the
# service's tasks reads on the hosted route: translation answers translation_text, read by
# text-translation only; text generation answers generated_text, read by every text task.
HUB_TASKS_SERVING = {
    "translation": ("text-translation",),
    "text2text-generation": TEXT_TASKS,
    "text-generation": TEXT_TASKS,
    "conversational": TEXT_TASKS,
    "text-to-image": ("text-to-image",),
    "feature-extraction": (FEATURE_EXTRACTION.name,),
    "sentence-similarity": (FEATURE_EXTRACTION.name,),
}
HOSTED_PROTOCOL = "hf-inference"
# The service's task that is each of these Hub tasks: what a model of that pipeline tag does
# when it is named without a task (the Hub's own API, `POST /models/<id>`).
TASK_OF_HUB_TASK = {
    "translation": "text-translation",
    "text-generation": "text-completion",
    "text2text-generation": "text-to-text",
    "text-to-image": "text-to-image",
}


@dataclass(frozen=True)
class HubTasks:
    """What the Hub says a model is for: its tasks (empty when it names none), or that it could not say."""

    tasks: frozenset = frozenset()
    known: bool = True
    pipeline_tag: str | None = field(default=None, compare=False)  # the model's own task, among `tasks`

    def serves(self) -> tuple:
        """The service's tasks the model can serve."""
        return tuple(
            task for task in PIPELINE_TASKS if any(task in HUB_TASKS_SERVING.get(hub, ()) for hub in self.tasks)
        )


NOT_KNOWN = HubTasks(known=False)


@dataclass
class _Kept:
    answer: HubTasks
    fresh_until: float


def hub_tasks_of(document) -> HubTasks:
    """Read a model's tasks from the Hub's model API answer: pipeline_tag and each provider's task."""
    if not isinstance(document, dict):
        return NOT_KNOWN
    tasks = {document.get("pipeline_tag")}
    mapping = document.get("inferenceProviderMapping")
    entries = mapping.values() if isinstance(mapping, dict) else mapping if isinstance(mapping, list) else ()
    tasks.update(entry.get("task") for entry in entries if isinstance(entry, dict))
    tag = document.get("pipeline_tag")
    return HubTasks(
        frozenset(task for task in tasks if isinstance(task, str) and task),
        pipeline_tag=tag if isinstance(tag, str) and tag else None,
    )


class ModelTasks:
    """Checks a named model against the request's task, from the catalog or the Hub's model API."""

    def __init__(self, settings, catalog: Catalog, client: HubClient, clock=time.monotonic):
        self.settings = settings
        self.catalog = catalog
        self.client = client
        self.clock = clock
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._lookups: dict[str, threading.Event] = {}
        self._first_wait_ends: dict[str, float] = {}
        self._lock = threading.Lock()

    def check_configured(self, target: ModelTarget, task_type: str) -> bool:
        """Refuse a named model the configuration says cannot serve `task_type`, asking no one;
        say whether that settles it (False: only the Hub can tell)."""
        if task_type in FORWARDED_TASKS:
            return True  # what the model answers is forwarded as it is, whatever its task
        if target.url or target.protocol != HOSTED_PROTOCOL:
            return True  # its own server, or a protocol whose helpers say what it serves
        if self.settings.token(HUB_TOKEN) is None:
            return True  # no call can be made, nor billed: the request is refused for the token at once
        placed = self.catalog.tasks_naming(target.id)
        if task_type in placed:
            return True
        kind = PIPELINE_TASKS[task_type].result
        if placed and all(PIPELINE_TASKS[task].result != kind for task in placed):
            refuse(target, task_type, sorted(placed), "as configured")
        return False

    def check(self, target: ModelTarget, task_type: str) -> None:
        """Refuse a named model that cannot serve `task_type`, asking the Hub when the configuration
        cannot tell; let through what cannot be told in time (or refuse it: MODEL_TASK_UNKNOWN)."""
        if self.check_configured(target, task_type):
            return
        answer = self.hub_tasks(target.id)
        if not answer.known:
            self._not_known(target, task_type)
        elif answer.tasks and task_type not in answer.serves():
            refuse(target, task_type, sorted(answer.tasks), "on the Hub")

    def task_of(self, target: ModelTarget) -> Task:
        """The task of a model named without one: the catalog's, where its chains place the model
        in exactly one task, else the one its `pipeline_tag` on the Hub names (asked once per id
        and kept, as for the check above): one of the four, else that Hub task forwarded."""
        placed = self.catalog.tasks_naming(target.id)
        if len(placed) == 1:
            return TASKS[next(iter(placed))]
        answer = self.hub_tasks(target.id)
        if not answer.known:
            raise ModelUnavailable(
                f"cannot tell in time which task model {target.id} is for (the Hub's model API did not "
                "answer); try again shortly, or name the task",
                retry_after=self.settings.model_task_lookup_seconds,
            )
        if answer.pipeline_tag is None:
            raise ModelNotFound(f"model {target.id} is not on the Hub, or names no task there; name the task")
        task = TASK_OF_HUB_TASK.get(answer.pipeline_tag)
        return TASKS[task] if task is not None else forwarded_task(answer.pipeline_tag)

    def hub_tasks(self, model_id: str) -> HubTasks:
        """What the Hub says of a model: kept, or asked now (waiting only on an id's first lookup)."""
        now = self.clock()
        with self._lock:
            kept = self._kept.get(model_id)
            if kept is not None and now < kept.fresh_until:
                return kept.answer
            done = self._lookups.get(model_id) or self._start_lookup(model_id, now)
            wait_ends = self._first_wait_ends.get(model_id, now) if kept is None else now
        if done is not None:
            done.wait(max(0.0, wait_ends - now))
        with self._lock:
            kept = self._kept.get(model_id)
        return kept.answer if kept is not None else NOT_KNOWN

    def _start_lookup(self, model_id: str, now: float) -> threading.Event | None:
        """Ask the Hub in the background (called with the lock held); None when too many are out."""
        if len(self._lookups) >= MAX_LOOKUPS:
            return None
        done = self._lookups[model_id] = threading.Event()
        self._first_wait_ends.setdefault(model_id, now + self.settings.model_task_lookup_seconds)
        threading.Thread(target=self._look_up, args=(model_id, done), name="model-task", daemon=True).start()
        return done

    def _look_up(self, model_id: str, done: threading.Event) -> None:
        """Ask, keep the answer, and always free the lookup's place: a lookup that broke in a way
        nobody foresaw is "not known", never a place held for good (MAX_LOOKUPS would fill)."""
        answer = NOT_KNOWN
        try:
            answer = self._ask_hub(model_id)
        except Exception:
            log.exception("model task lookup broke model=%s", model_id)
        finally:
            keep_for = self.settings.liveness_cache_seconds if answer.known else RETRY_FAILED_SECONDS
            with self._lock:
                self._kept[model_id] = _Kept(answer, self.clock() + keep_for)
                self._kept.move_to_end(model_id)
                while len(self._kept) > MAX_KEPT_IDS:
                    self._kept.popitem(last=False)
                self._lookups.pop(model_id, None)
                self._first_wait_ends.pop(model_id, None)
            done.set()

    def _ask_hub(self, model_id: str) -> HubTasks:
        """One question to the Hub's model API, without retries (the next lookup is the retry)."""
        url = (
            f"{self.settings.hf_hub_api_base}/models/{model_id}?expand[]=pipeline_tag&expand[]=inferenceProviderMapping"
        )
        request = UpstreamRequest(url=url, payload=None, method="GET", credential_required=False)
        try:
            reply = self.client.ask_once(request, outside_request("model-task", LOOKUP_SECONDS, self.clock))
        except ModelNotFound:
            return HubTasks()  # not on the Hub: the call itself answers 404, at no cost
        except GatewayError as exc:
            log.info("model task lookup failed model=%s reason=%s", model_id, exc.error_type)
            return NOT_KNOWN
        return hub_tasks_of(reply.json())

    def _not_known(self, target: ModelTarget, task_type: str) -> None:
        """The Hub could not say in time: MODEL_TASK_UNKNOWN decides, counted and logged."""
        decision = self.settings.model_task_unknown
        metrics.count_model_task_unknown(decision)
        log.warning("model task unknown model=%s task=%s decision=%s", target.id, task_type, decision)
        if decision == "refuse":
            raise ModelUnavailable(
                f"cannot tell in time which task model {target.id} serves (the Hub's model API did not "
                "answer); try again shortly",
                retry_after=self.settings.model_task_lookup_seconds,
            )


def refuse(target: ModelTarget, task_type: str, serves: list, source: str) -> None:
    """Answer 400 for a model named for a task it cannot serve, saying what it serves."""
    tasks = ", ".join(serves)
    raise InvalidRequest(
        f"model_name: {target.id} serves {tasks} ({source}), not {task_type}",
        errors={"model_name": [f"Serves {tasks}, not {task_type}."]},
    )
