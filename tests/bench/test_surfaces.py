"""The surfaces' comparison: each pair of calls must do the same upstream work, or the ratio of
their added latencies would compare different work."""

import json

import pytest

from bench import surfaces, workload
from bench.baseline import interleaved_latencies
from bench.latency import KeepAliveClient
from bench.service import start_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(loopback, tmp_path_factory):
    """The service as the benchmark starts it, in front of the session's loopback upstream."""
    with start_service(loopback, tmp_path_factory.mktemp("surfaces"), "surfaces") as server:
        yield server


def upstream_work(upstream, port: int, call: workload.Call) -> tuple:
    """Send `call` to `port` and return what the upstream received for it: path, JSON body and
    whether its cache was refused."""
    upstream.reset_log()
    client = KeepAliveClient(port)
    try:
        client.send(call)
    finally:
        client.close()
    upstream.wait_idle()
    (received,) = upstream.requests
    return received.path, received.json, received.headers.get("x-use-cache")


@pytest.mark.parametrize("name", sorted(surfaces.PAIRS))
def test_native_and_surface_calls_make_exactly_the_direct_call(service, upstream, name):
    native, surface, direct = surfaces.PAIRS[name]

    through_native = upstream_work(upstream, service.port, native())
    through_surface = upstream_work(upstream, service.port, surface())
    straight = upstream_work(upstream, upstream.port, direct())

    assert through_native == through_surface == straight
    assert straight[1] == json.loads(direct().body)


def test_surface_figures_cover_every_pair():
    calls = surfaces.surface_calls()

    assert len(calls) == 2 * len(surfaces.PAIRS)
    assert {call.path.split("?")[0] for call in calls} == {
        "/api/infer/text-translation",
        "/models/madlad400",
        "/api/infer/text-to-text",
        "/v1/chat/completions",
    }


def test_targets_on_one_port_share_one_connection(upstream):
    call = workload.translation_direct()

    times = interleaved_latencies({"first": (upstream.port, call), "second": (upstream.port, call)}, 3)

    assert {name: len(samples) for name, samples in times.items()} == {"first": 3, "second": 3}
    assert len(upstream.requests) == 2 + 6  # one warm-up call each, then three rounds
    assert len({received.client_port for received in upstream.requests}) == 1
