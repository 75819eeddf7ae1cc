"""Metrics: every inference request and upstream attempt is counted once, under the right labels."""

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from harness.keys import bearer, write_key_file
from tests.support.app import API, TEST_CATALOG, make_app, make_settings, post
from tests.support.documents import OPERATIONS, section

GPT2 = f"{API}/openai-community/gpt2"
OK = [{"generated_text": " and so on"}]
LOADING = {"error": "Model openai-community/gpt2 is currently loading", "estimated_time": 2.0}


def sample(name: str, **labels) -> float:
    """Read one sample of the process's registry, 0 when it was never recorded."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests_counted(task="text-completion", model="openai-community/gpt2", status="200") -> float:
    return sample("hf_gateway_requests_total", task=task, model=model, status=status)


def attempts(outcome: str, reason: str = "") -> float:
    return sample("hf_gateway_upstream_attempts_total", outcome=outcome, reason=reason)


class Delta:
    """Snapshot chosen samples, then report how much each moved."""

    def __init__(self, **readers):
        self.readers = readers
        self.before = {name: read() for name, read in readers.items()}

    def __call__(self) -> dict:
        return {name: read() - self.before[name] for name, read in self.readers.items()}


def complete(client, query=""):
    return post(client, "text-completion", {"inputs": "Once upon a time"}, query=query)


def upstream_seconds_count() -> float:
    return sample("hf_gateway_upstream_attempt_duration_seconds_count")


def test_success_counts_the_request_and_one_successful_attempt(client, mock_hub):
    mock_hub.post(GPT2, json=OK)
    delta = Delta(
        requests=requests_counted,
        durations=lambda: sample("hf_gateway_request_duration_seconds_count", task="text-completion"),
        success=lambda: attempts("success"),
        upstream=upstream_seconds_count,
    )
    assert complete(client).status_code == 200
    assert delta() == {"requests": 1, "durations": 1, "success": 1, "upstream": 1}


def test_a_retried_503_counts_the_retry_by_reason_then_the_success(client, mock_hub, clock):
    mock_hub.post(GPT2, json=LOADING, status=503)
    mock_hub.post(GPT2, json=OK)
    delta = Delta(
        retry=lambda: attempts("retry", "model_unavailable"),
        success=lambda: attempts("success"),
        upstream=upstream_seconds_count,
        requests=requests_counted,
    )
    assert complete(client).status_code == 200
    assert delta() == {"retry": 1, "success": 1, "upstream": 2, "requests": 1}


def test_retries_until_the_deadline_end_in_one_give_up(client, mock_hub, clock):
    mock_hub.post(GPT2, body="<h1>502 Bad Gateway</h1>", status=502, content_type="text/html")
    delta = Delta(
        retry=lambda: attempts("retry", "upstream_error"),
        give_up=lambda: attempts("give_up", "upstream_error"),
        upstream=upstream_seconds_count,
        requests=lambda: requests_counted(status="502"),
    )
    assert complete(client).status_code == 502
    moved = delta()
    assert moved["retry"] >= 1 and moved["give_up"] == 1 and moved["requests"] == 1
    assert moved["upstream"] == len(mock_hub.calls) == moved["retry"] + 1


def test_a_model_not_configured_is_labelled_other(client, mock_hub):
    mock_hub.post(
        f"{API}/someone/unknown-model", json={"error": "Model someone/unknown-model does not exist"}, status=404
    )
    delta = Delta(
        other=lambda: requests_counted(model="other", status="404"),
        named=lambda: requests_counted(model="someone/unknown-model", status="404"),
        give_up=lambda: attempts("give_up", "model_not_found"),
    )
    assert complete(client, query="?model_name=someone/unknown-model").status_code == 404
    assert delta() == {"other": 1, "named": 0, "give_up": 1}


def test_a_configured_model_keeps_its_name_after_a_fallback(client, mock_hub):
    image = b"\xff\xd8\xff\xe0 jpeg"
    mock_hub.post(f"{API}/missing/image-model", json={"error": "Model missing/image-model does not exist"}, status=404)
    mock_hub.post(f"{API}/CompVis/stable-diffusion-v1-4", body=image, content_type="image/jpeg")
    delta = Delta(
        served=lambda: requests_counted("text-to-image", "CompVis/stable-diffusion-v1-4", "200"),
        give_up=lambda: attempts("give_up", "model_not_found"),
        success=lambda: attempts("success"),
    )
    assert post(client, "text-to-image", {"inputs": "a dress"}).status_code == 200
    assert delta() == {"served": 1, "give_up": 1, "success": 1}


@pytest.mark.parametrize(
    "body, status, task",
    [
        ('{"inputs": ""}', 400, "text-completion"),
        ("not json", 400, "text-completion"),
        ('{"inputs": "' + "x" * (1024 * 1024 + 10) + '"}', 413, "text-completion"),
    ],
)
def test_caller_errors_are_counted_without_upstream_attempts(client, mock_hub, body, status, task):
    delta = Delta(
        requests=lambda: requests_counted(task=task, model="none", status=str(status)),
        upstream=upstream_seconds_count,
    )
    assert post(client, "text-completion", body).status_code == status
    assert delta() == {"requests": 1, "upstream": 0}


def test_unknown_task_is_counted_without_its_name(client):
    delta = Delta(requests=lambda: requests_counted(task="unknown", model="none", status="404"))
    assert post(client, "made-up-task", {"inputs": "x"}).status_code == 404
    assert delta() == {"requests": 1}
    assert "made-up-task" not in client.get("/metrics").get_data(as_text=True)


def all_requests_counted() -> float:
    return sum(
        s.value for family in REGISTRY.collect() for s in family.samples if s.name == "hf_gateway_requests_total"
    )


def test_health_and_scrapes_are_not_inference_requests(client):
    delta = Delta(requests=all_requests_counted)
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert delta() == {"requests": 0}


def test_in_flight_is_one_during_a_request_and_zero_after(client, mock_hub):
    seen = []

    def answer(request):
        seen.append(sample("hf_gateway_requests_in_flight"))
        return 200, {}, '[{"generated_text": " and so on"}]'

    mock_hub.add_callback("POST", GPT2, callback=answer, content_type="application/json")
    before = sample("hf_gateway_requests_in_flight")
    assert complete(client).status_code == 200
    assert seen == [before + 1]
    assert sample("hf_gateway_requests_in_flight") == before


def test_an_unexpected_error_is_counted_as_500_and_leaves_flight(app, client, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(app.extensions["gateway"].runner, "run", explode)
    before = sample("hf_gateway_requests_in_flight")
    delta = Delta(errors=lambda: requests_counted(status="500"))
    assert complete(client).status_code == 500
    assert delta() == {"errors": 1}
    assert sample("hf_gateway_requests_in_flight") == before


def test_metrics_endpoint_speaks_prometheus_text_with_every_family(client, mock_hub):
    mock_hub.post(GPT2, json=OK)
    complete(client)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(response.get_data(as_text=True))}
    assert {
        "hf_gateway_requests",
        "hf_gateway_request_duration_seconds",
        "hf_gateway_requests_in_flight",
        "hf_gateway_upstream_attempts",
        "hf_gateway_upstream_attempt_duration_seconds",
    } <= names


def test_metrics_endpoint_answers_openmetrics_when_asked(client):
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.content_type.startswith("application/openmetrics-text")
    assert response.get_data(as_text=True).rstrip().endswith("# EOF")


@pytest.mark.parametrize("path", ["/api/models", "/api/usage"])
def test_the_apis_other_endpoints_are_counted_as_themselves_not_as_an_unknown_task(client, path):
    counted = {
        "itself": lambda: sum(requests_counted(task=path, model="none", status=s) for s in ("200", "503")),
        "unknown": lambda: sum(
            requests_counted(task=t, model="none", status=s) for t in ("unknown", "none") for s in ("200", "503")
        ),
    }
    delta = Delta(**counted)
    assert client.get(path).status_code in (200, 503)  # /api/usage: 503 without a store
    assert delta() == {"itself": 1, "unknown": 0}


def test_a_served_task_asked_with_the_wrong_method_is_counted_as_that_task(client):
    delta = Delta(requests=lambda: requests_counted(task="text-translation", model="none", status="405"))
    assert client.get("/api/infer/text-translation").status_code == 405
    assert delta() == {"requests": 1}


def test_an_unknown_path_under_the_api_is_counted_as_unknown(client):
    delta = Delta(requests=lambda: requests_counted(task="unknown", model="none", status="404"))
    assert client.get("/api/nothing-here").status_code == 404
    assert delta() == {"requests": 1}


def test_a_request_refused_by_its_keys_limit_names_no_model(tmp_path, clock, mock_hub):
    mock_hub.post(GPT2, json=OK)
    key_file = write_key_file(tmp_path / "keys.toml", {"slow": {"secret": "secret-slow", "rpm": 1}})
    settings = make_settings(api_keys_file=key_file, store="sqlite", data_dir=tmp_path / "data")
    limited = make_app(settings, TEST_CATALOG, clock).test_client()
    delta = Delta(
        served=lambda: requests_counted(status="200"),
        refused=lambda: requests_counted(model="none", status="429"),
        refused_as_the_model=lambda: requests_counted(status="429"),
    )
    statuses = [
        post(limited, "text-completion", {"inputs": "Once"}, headers=bearer("secret-slow")).status_code
        for _ in range(2)
    ]
    assert statuses == [200, 429]
    assert delta() == {"served": 1, "refused": 1, "refused_as_the_model": 0}
    assert len(mock_hub.calls) == 1


def documented_series() -> dict:
    """The metrics table of docs/operations.md: series name -> (type, labels)."""
    rows = {}
    for line in section(OPERATIONS, "Metrics").splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`hf_gateway_"):
            labels = frozenset(label.strip("` ") for label in cells[2].split(",") if label.strip())
            rows[cells[0].strip("`")] = (cells[1], labels)
    return rows


def defined_series() -> dict:
    """Every metric family the service defines: series name (counters with their _total) -> (type, labels)."""
    from service.telemetry import metrics

    series = {}
    for family in vars(metrics.families()).values():
        name = family._name + "_total" if family._type == "counter" else family._name
        series[name] = (family._type, frozenset(family._labelnames))
    return series


def test_the_documented_metrics_are_exactly_the_ones_exposed(client):
    defined = defined_series()
    assert documented_series() == defined
    listed = {family.name for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))}
    assert {name.removesuffix("_total") for name in defined} <= listed  # /metrics lists every one
