"""Every lifecycle scenario: a fresh loopback upstream, under both worker classes."""

import pytest

from harness.upstream import LoopbackUpstream


@pytest.fixture
def loopback():
    with LoopbackUpstream(latency=0.02) as loopback:
        yield loopback


@pytest.fixture(params=["gevent", "gthread"])
def worker_class(request):
    return request.param
