"""The service's own app, with every answer labelled as recorded (gunicorn's app in demo mode)."""

from __future__ import annotations

import json

from flask import Flask, Response, request

from service import create_app
from service.demo.recordings import recordings

DEMO_HEADER = "X-Demo"
DEMO_HEADER_VALUE = "recorded answers: no model is called"
DEMO_MESSAGE = "a recorded answer (demo mode): not a live model; it answers the recorded input, whatever you sent"
WRITTEN_MESSAGE = "a written answer (demo mode): no model was asked; it answers the input shown, whatever you sent"
INFERENCE_PREFIX = "/api/infer/"


def create_demo_app() -> Flask:
    """The service's app; each response says it is the demo's, each success what it replays."""
    app = create_app()
    app.after_request(label_as_recorded)
    return app


def label_as_recorded(response: Response) -> Response:
    response.headers[DEMO_HEADER] = DEMO_HEADER_VALUE
    if request.path.startswith(INFERENCE_PREFIX) and response.status_code == 200 and response.is_json:
        answer = json.loads(response.get_data())
        response.set_data(json.dumps(labelled(answer), ensure_ascii=False, separators=(",", ":")) + "\n")
    return response


def labelled(answer: dict) -> dict:
    """The answer with its message saying it is recorded (or written for the demo), and where
    it comes from."""
    recording = recordings().get(answer.get("model", ""))
    if recording is None:
        return {**answer, "message": DEMO_MESSAGE, "recorded": {}}
    recorded = {"source": recording.source, "recorded_input": recording.recorded_input}
    if recording.written:
        return {**answer, "message": WRITTEN_MESSAGE, "recorded": {**recorded, "written": True}}
    return {**answer, "message": DEMO_MESSAGE, "recorded": recorded}
