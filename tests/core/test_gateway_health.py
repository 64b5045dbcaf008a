"""A gateway's health (down after failures in a row, one probe per cool-off, recovered by a
success) and its CM batch size after 429s: each in Redis and in the process."""

import pytest

from core import gateway_health, throttle


@pytest.fixture(params=["redis", "in-process"])
def backend(request, settings):
    if request.param == "in-process":
        settings.REDIS_URL = ""
    elif not settings.REDIS_URL:
        pytest.fail("the tests run with REDIS_URL set")
    settings.GATEWAY_FAILOVER_ERRORS = 3
    settings.GATEWAY_FAILOVER_COOLOFF_SECONDS = 60
    throttle._redis_client = None
    gateway_health._local.clear()
    client = throttle.redis_client()
    if client is not None:
        client.flushdb()
    yield request.param
    throttle._redis_client = None


def test_a_gateway_goes_down_once_after_failures_in_a_row(backend):
    assert [gateway_health.record_failure(7) for _ in range(2)] == ["up", "up"]
    assert gateway_health.route(7) == "primary"
    assert gateway_health.down_since(7) is None
    assert gateway_health.record_failure(7) == "down"
    assert gateway_health.record_failure(7) == "up"  # already down: only one caller saw the switch
    assert gateway_health.down_since(7) is not None
    assert gateway_health.route(7) == "backup"
    assert gateway_health.route(8) == "primary"  # health is per gateway account


def test_a_success_starts_the_count_again(backend):
    gateway_health.record_failure(7)
    gateway_health.record_failure(7)
    assert gateway_health.record_success(7) == "up"  # it was not down
    assert gateway_health.record_failure(7) == "up"
    assert gateway_health.route(7) == "primary"


def test_after_the_cool_off_one_caller_probes_and_a_success_brings_it_back(backend, settings):
    settings.GATEWAY_FAILOVER_COOLOFF_SECONDS = 0
    for _ in range(3):
        gateway_health.record_failure(7)
    settings.GATEWAY_FAILOVER_COOLOFF_SECONDS = 60
    assert gateway_health.route(7) == "probe"
    assert gateway_health.route(7) == "backup"  # one probe per cool-off
    assert gateway_health.record_success(7) == "recovered"
    assert gateway_health.record_success(7) == "up"
    assert gateway_health.route(7) == "primary"
    assert gateway_health.down_since(7) is None


def test_a_failed_probe_keeps_it_down_for_another_cool_off(backend, settings):
    settings.GATEWAY_FAILOVER_COOLOFF_SECONDS = 0
    for _ in range(3):
        gateway_health.record_failure(7)
    assert gateway_health.route(7) == "probe"
    settings.GATEWAY_FAILOVER_COOLOFF_SECONDS = 60
    assert gateway_health.record_failure(7) == "up"
    assert gateway_health.route(7) == "backup"


def test_a_429_halves_the_batch_down_to_one_and_successes_grow_it_back(backend):
    assert gateway_health.batch_size(7, 100) == 100
    sizes = [gateway_health.batch_resize(7, 100, shrink=True) for _ in range(8)]
    assert sizes == [50, 25, 12, 6, 3, 1, 1, 1]
    assert gateway_health.batch_size(7, 100) == 1
    assert gateway_health.batch_size(8, 100) == 100
    grown = [gateway_health.batch_resize(7, 100, shrink=False) for _ in range(3)]
    assert grown == [2, 3, 4]  # gradually, by a quarter (at least one)
    for _ in range(30):
        gateway_health.batch_resize(7, 100, shrink=False)
    assert gateway_health.batch_size(7, 100) == 100
