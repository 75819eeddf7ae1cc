"""The stack the design fixes, doing nothing but forwarding: Flask and requests under the same
gunicorn gevent worker, in front of the same upstream. `python -m bench` measures the gateway
beside it (bench/baseline.py), so the figure says what the gateway's own work costs.

It takes the gateway's translation call and sends the upstream exactly the request the gateway
sends for it (bench/workload.py), with no validation, limits, ledger, cache or retries.
"""

import json
import os

import requests
from flask import Flask, Response, request

from bench import workload

UPSTREAM = os.environ["HF_API_BASE"].removesuffix("/hf-inference/models")
FORWARDED = workload.translation_direct()

app = Flask(__name__)
session = requests.Session()


@app.post("/api/infer/text-translation")
def translate() -> Response:
    """Forward the translation and answer in the gateway's shape."""
    inputs = request.get_json(force=True)["inputs"]
    payload = json.loads(FORWARDED.body)
    payload["inputs"] = f"<2en> {inputs}"
    reply = session.post(UPSTREAM + FORWARDED.path, json=payload, headers=FORWARDED.headers, timeout=30)
    reply.raise_for_status()
    result = [item["translation_text"] for item in reply.json()]
    body = json.dumps({"code": 0, "message": "ok", "result": result}, ensure_ascii=False)
    return Response(body, content_type="application/json")


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}
