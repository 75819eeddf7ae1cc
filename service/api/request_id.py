"""The request id: taken from nginx's X-Request-ID when sane, else new."""

import re
import uuid

from flask import request

from service.pipeline import context

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def begin_request() -> None:
    """Start the request's context with its id, before anything can fail."""
    offered = request.headers.get("X-Request-ID", "")
    context.begin(offered if _SAFE_ID.fullmatch(offered) else uuid.uuid4().hex)


def request_id() -> str | None:
    """Return this request's id, None outside a request."""
    current = context.current()
    return current.request_id if current else None


def send_request_id(response):
    """Echo the id on every response, errors included."""
    response.headers["X-Request-ID"] = request_id() or ""
    return response
