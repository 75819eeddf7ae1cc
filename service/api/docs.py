"""GET /openapi.json and the /docs page, whose Swagger UI assets come from a package, never a CDN."""

from flask import Blueprint, current_app, render_template_string, url_for
from swagger_ui_bundle import swagger_ui_path

from service.api.openapi import build_openapi

bp = Blueprint("docs", __name__, static_folder=str(swagger_ui_path), static_url_path="/docs/assets")

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
    gateway = state.app.extensions["gateway"]
    state.app.extensions["gateway.openapi"] = build_openapi(gateway.settings, gateway.catalog)


bp.record_once(_build_document)


@bp.get("/openapi.json")
def openapi_json():
    """Return the OpenAPI document."""
    return current_app.extensions["gateway.openapi"]


@bp.get("/docs")
def docs_page():
    """Show the API in Swagger UI, served from the service itself."""
    return render_template_string(_PAGE, asset=lambda name: url_for("docs.static", filename=name))


@bp.get("/docs/swagger-initializer.js")
def initializer():
    """Start Swagger UI on this service's document."""
    return _INITIALIZER, 200, {"Content-Type": "text/javascript; charset=utf-8"}
