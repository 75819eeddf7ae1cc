"""Cross-origin calls from browser pages: the origins of CORS_ORIGINS may call the surfaces.

A page on an allowed origin gets its origin back in Access-Control-Allow-Origin on every answer
of a surface, errors included, and may read the headers a client paces itself by. A browser asks
first with a preflight (OPTIONS, no key): it is answered here, before the caller is identified,
so it needs no key, takes no ticket and writes no ledger row. An origin not on the list gets no
Access-Control-* header at all, its preflight included, and the browser refuses the call.

Keys travel as Authorization or X-API-Key headers, never as cookies: no credentials mode.
"""

from flask import Request, Response

ALLOWED_METHODS = "GET, POST"
# What the clients send beyond the CORS-safelisted headers; huggingface.js names itself in
# User-Agent (browsers that let a page set it then ask for it).
ALLOWED_HEADERS = "authorization, content-type, x-api-key, x-request-id, cache-control, user-agent"
# What a client reads of an answer: its id for a report, and the headers to pace itself by.
EXPOSED_HEADERS = "X-Request-ID, Retry-After, RateLimit, RateLimit-Policy, X-Cache"
# Short enough that a change of CORS_ORIGINS reaches browsers within minutes.
MAX_AGE_SECONDS = 600


def is_preflight(request: Request) -> bool:
    """A browser's question whether it may send a cross-origin request (it carries no key)."""
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def preflight_answer(allowed_origins: frozenset, request: Request) -> Response:
    """`204`; what may be sent only when the origin is on the list (else the browser refuses)."""
    answer = Response(status=204)
    if request.headers["Origin"] in allowed_origins:
        answer.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        answer.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        answer.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
    return answer


def add_origin_headers(allowed_origins: frozenset, request: Request, response: Response) -> Response:
    """Name an allowed origin on the answer; every answer says it varies by Origin once any is allowed."""
    if not allowed_origins:
        return response
    response.vary.add("Origin")  # a shared cache must not hand one origin's answer to another
    origin = request.headers.get("Origin")
    if origin in allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return response
