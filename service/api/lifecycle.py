"""A request's life around its view, registered in one place, in the order it runs.

Before the view:
  1. start_context     the request id (nginx's X-Request-ID when sane, else new) and the
                       request's context, before anything can fail;
  2. answer_preflight  a browser's CORS preflight to a surface answered here, with no key
                       asked, no ticket taken and nothing counted (service/api/cors.py);
  3. identify_caller   the caller's key; a call to a surface (API_PREFIXES) without a valid one
                       is refused here;
  4. count_in_flight   a call to a surface counts as in flight until its teardown (a
                       streamed answer until its body closes).
After the view (or the error handler), on every answer:
  5. record_metrics    the request by task, model and status, and its duration;
  6. settle_ledger     an inference's admission settled and its ledger row written (a
                       streamed answer's when its body closes: its slot held until then);
  7. log_access        the one access line;
  8. allow_origin      a surface's answer names an origin of CORS_ORIGINS that asked, errors
                       included;
  9. send_request_id   X-Request-ID on the answer, errors included.
At teardown, however the request ended:
  10. leave_in_flight

The context made in step 1 is the one the surface hands to the pipeline; nothing below the
surfaces reaches for it.
"""

import re
import uuid

from flask import Flask, g, request

from service.api import cors
from service.api.gateway import gateway
from service.catalog.tasks import TASKS
from service.errors import Unauthorized
from service.keys.admission import Ticket
from service.keys.keyring import OPEN_ACCESS, UNAUTHORIZED_MESSAGE, presented_key
from service.pipeline.context import RequestContext
from service.store.contract import utc_day
from service.telemetry import metrics
from service.telemetry.logs import write_access_line

# The paths of the surfaces that serve callers: a key is asked for, and requests are counted.
API_PREFIXES = ("/api/", "/models/", "/pipeline/", "/v1/")
UNKNOWN_TASK_BLUEPRINT = "unknown_task"
TASKS_BY_PATH = {task.path: name for name, task in TASKS.items()}
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# The status a stream that began (200) and then failed is booked under.
STREAM_FAILED = 502


def current_context() -> RequestContext | None:
    """Return this request's context, None before it started."""
    return g.get("context")


def current_request_id() -> str | None:
    """Return this request's id, None outside a request."""
    context = current_context()
    return context.request_id if context else None


def start_context() -> None:
    offered = request.headers.get("X-Request-ID", "")
    g.context = RequestContext(offered if _SAFE_ID.fullmatch(offered) else uuid.uuid4().hex)


def answer_preflight():
    if request.path.startswith(API_PREFIXES) and cors.is_preflight(request):
        return cors.preflight_answer(gateway().settings.cors_origins, request)
    return None


def identify_caller() -> None:
    keyring = gateway().keyring
    context = current_context()
    if not keyring.required:
        context.client_key = OPEN_ACCESS
        return
    if not request.path.startswith(API_PREFIXES):
        return
    key = keyring.identify(presented_key(request.headers))
    if key is None:
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    context.client_key = key


def count_in_flight() -> None:
    if request.path.startswith(API_PREFIXES):
        metrics.request_started()
        g.counted_in_flight = True


def record_metrics(response):
    context = current_context()
    if request.path.startswith(API_PREFIXES) and context is not None and not cors.is_preflight(request):
        # A request its key's limits refused took no ticket and called no model, whatever it asked for.
        called = context.model if context.ticket is not None else None
        model = metrics.model_label(called, gateway().catalog)
        metrics.record_request(task_label(context), model, response.status_code, context.seconds)
    return response


def task_label(context: RequestContext) -> str:
    """The task, else the endpoint's own path (/api/models, /api/usage), else `unknown`: an unknown
    task or path, whose name a caller chose and which must not become a label."""
    if context.task is not None:
        return context.task.name
    rule = request.url_rule
    if rule is None:  # no route matched: a served task asked with another method (405) is still that task
        return TASKS_BY_PATH.get(request.path.rstrip("/"), metrics.UNKNOWN)
    if rule.endpoint.startswith(UNKNOWN_TASK_BLUEPRINT + "."):
        return metrics.UNKNOWN
    return rule.rule


def settle_ledger(response):
    context = current_context()
    if context is None or context.task is None:
        return response
    objects = gateway()
    if context.streamed and response.status_code == 200:
        # A stream holds its slot until it ends, and its tokens are known only then. Its body
        # outlives the request's teardown: it stays counted in flight until the body closes.
        counted = g.pop("counted_in_flight", False)
        response.call_on_close(lambda: end_stream(objects, context, counted))
        return response
    confirm = _settle(objects, context, response.status_code)
    response.call_on_close(confirm)  # the store's reply is awaited once the answer has gone
    return response


def end_stream(objects, context: RequestContext, counted_in_flight: bool) -> None:
    """What a streamed answer's end settles: its ledger row and slot, and the in-flight count."""
    try:
        settle_stream(objects, context)()
    finally:
        if counted_in_flight:
            metrics.request_finished()


def settle_stream(objects, context: RequestContext):
    """Settle a streamed answer once its body has closed: whole, cut by an error event, or left
    by its caller (booked under the error the stream ended with)."""
    return _settle(objects, context, 200 if context.error_type is None else STREAM_FAILED, delivered=True)


def _settle(objects, context: RequestContext, status: int, delivered: bool | None = None):
    ticket = context.ticket or Ticket((context.client_key or OPEN_ACCESS).name, utc_day(objects.admission.clock.time()))
    entry = context.usage_entry(status, ticket.day, objects.catalog)
    return objects.admission.settle(ticket, delivered=status == 200 if delivered is None else delivered, usage=entry)


def log_access(response):
    context = current_context()
    fields = {
        "request_id": context.request_id if context else "-",
        "method": request.method,
        "path": request.path,
        "task": context.task.name if context and context.task else "-",
        "model": (context.model if context else None) or "-",
        "status": response.status_code,
        "upstream_attempts": context.usage.attempts if context else 0,
        "duration_ms": round(context.seconds * 1000, 1) if context else 0.0,
    }
    write_access_line(fields)
    return response


def allow_origin(response):
    if request.path.startswith(API_PREFIXES):
        cors.add_origin_headers(gateway().settings.cors_origins, request, response)
    return response


def send_request_id(response):
    response.headers["X-Request-ID"] = current_request_id() or ""
    return response


def leave_in_flight(exc=None) -> None:
    if g.pop("counted_in_flight", False):
        metrics.request_finished()


BEFORE = (start_context, answer_preflight, identify_caller, count_in_flight)
AFTER = (record_metrics, settle_ledger, log_access, allow_origin, send_request_id)
TEARDOWN = (leave_in_flight,)


def register_lifecycle(app: Flask) -> None:
    """Register every hook, in the order above."""
    for hook in BEFORE:
        app.before_request(hook)
    for hook in reversed(AFTER):  # Flask runs after-request hooks last registered first
        app.after_request(hook)
    for hook in TEARDOWN:
        app.teardown_request(hook)
