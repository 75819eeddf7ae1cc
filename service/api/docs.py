"""GET /openapi.json and the /docs page, whose Swagger UI assets come from a package, never a CDN."""

from flask import Blueprint, abort, current_app, render_template_string, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path

from service.api.gateway import gateway_of
from service.api.openapi import build_openapi
from service.api.page import page_headers

bp = Blueprint("docs", __name__)
# The package also ships a stock page pointing at a demo API elsewhere: only what /docs uses is served.
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"})

# Swagger UI needs its own script and style sheet, the document (fetched), and the icons its
# style sheet holds as data: URLs; nothing from another origin, no inline script, no framing.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_HEADERS = page_headers(DOCS_POLICY)

_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>hf-gateway API</title>
    <link rel="stylesheet" type="text/css" href="{{ asset('swagger-ui.css') }}">
    <link rel="icon" type="image/png" href="{{ asset('favicon-32x32.png') }}" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui" data-openapi-url="{{ url_for('docs.openapi_json') }}"></div>
    <script src="{{ asset('swagger-ui-bundle.js') }}" charset="UTF-8"></script>
    <script src="{{ url_for('docs.initializer') }}" charset="UTF-8"></script>
  </body>
</html>
"""

# validatorUrl: null keeps Swagger UI from fetching its badge from validator.swagger.io.
_INITIALIZER = """window.onload = function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
};
"""


def _build_document(state) -> None:
    """Build the OpenAPI document once, when the app is created."""
    gateway = gateway_of(state.app)
    state.app.extensions["gateway.openapi"] = build_openapi(gateway.settings, gateway.catalog, gateway.keyring)


bp.record_once(_build_document)


@bp.get("/openapi.json")
def openapi_json():
    """Return the OpenAPI document."""
    return current_app.extensions["gateway.openapi"]


@bp.get("/docs")
def docs_page():
    """Show the API in Swagger UI, served from the service itself."""
    return render_template_string(_PAGE, asset=lambda name: url_for("docs.asset", name=name)), DOCS_HEADERS


@bp.get("/docs/assets/<name>")
def asset(name):
    """Serve one of Swagger UI's files, from the package, never from a CDN."""
    if name not in ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, name)


@bp.get("/docs/swagger-initializer.js")
def initializer():
    """Start Swagger UI on this service's document."""
    return _INITIALIZER, 200, {"Content-Type": "text/javascript; charset=utf-8"}
