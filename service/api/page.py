"""GET /: the try-it page, and its two files. Plain HTML, CSS and JavaScript from service/web/,
served by the service itself (no CDN), under a Content-Security-Policy that allows no inline
script and no other origin: the page adds no way in that the API does not already have.

Every other HTML answer gets a policy too: its page's own, or else one that allows nothing.
"""

from pathlib import Path

from flask import Blueprint, Response, abort

bp = Blueprint("page", __name__)

WEB = Path(__file__).resolve().parent.parent / "web"
# Three small files, read once: name -> (bytes, type). Nothing else of the directory is served.
FILES = {
    name: ((WEB / name).read_bytes(), mimetype)
    for name, mimetype in (
        ("index.html", "text/html"),
        ("try.js", "text/javascript"),
        ("try.css", "text/css"),
    )
}
ASSETS = frozenset({"try.js", "try.css"})
# Images come back as base64: shown as data: URLs. Everything else from this origin only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# An HTML answer that names no policy of its own (a page added later, a framework's error
# page) may load nothing and be framed by no one.
DEFAULT_HTML_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page_headers(policy: str) -> dict:
    """Return the headers of an HTML page (or one of its files) under `policy`."""
    return {**PAGE_HEADERS, "Content-Security-Policy": policy}


@bp.after_app_request
def every_html_answer_has_a_policy(response: Response) -> Response:
    """Give any HTML answer without a policy the one that allows nothing, framing included."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", DEFAULT_HTML_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def page_file(name: str) -> Response:
    body, mimetype = FILES[name]
    return Response(body, mimetype=mimetype, headers=PAGE_HEADERS)


@bp.get("/")
def try_page():
    """The page: pick a task and a model, send one request, see the answer."""
    return page_file("index.html")


@bp.get("/try/<name>")
def asset(name):
    """The page's script and style sheet."""
    if name not in ASSETS:
        abort(404)
    return page_file(name)
