"""The request id: taken from nginx's X-Request-ID when sane, else new."""

import re
import uuid

from flask import g, request

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def assign_request_id() -> None:
    """Pick this request's id before anything can fail."""
    offered = request.headers.get("X-Request-ID", "")
    g.request_id = offered if _SAFE_ID.fullmatch(offered) else uuid.uuid4().hex


def send_request_id(response):
    """Echo the id on every response, errors included."""
    response.headers["X-Request-ID"] = getattr(g, "request_id", "")
    return response
