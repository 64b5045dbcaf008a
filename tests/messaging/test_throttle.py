"""The send-rate limit per gateway account and its two lanes, and the capability cache: answers
kept per gateway account for the TTL. Each in Redis and in the process."""

import time

import pytest

from core import throttle


@pytest.fixture(params=["redis", "in-process"])
def backend(request, settings):
    if request.param == "in-process":
        settings.REDIS_URL = ""
    elif not settings.REDIS_URL:
        pytest.fail("the tests run with REDIS_URL set")
    throttle._redis_client = None
    throttle._local_cache.clear()
    throttle._local_tat.clear()
    client = throttle.redis_client()
    if client is not None:
        client.flushdb()
    yield request.param
    throttle._redis_client = None


def test_answers_come_back_and_unknown_numbers_stay_unknown(backend):
    throttle.cache_capabilities(7, {"+819011110001": True, "+819011110002": False})
    known = throttle.cached_capabilities(7, ["+819011110001", "+819011110002", "+819011110003"])
    assert known == {"+819011110001": True, "+819011110002": False}


def test_answers_belong_to_one_gateway_account(backend):
    throttle.cache_capabilities(7, {"+819011110001": True})
    assert throttle.cached_capabilities(8, ["+819011110001"]) == {}


def test_a_newer_answer_replaces_an_older_one(backend):
    throttle.cache_capabilities(7, {"+819011110001": True})
    throttle.cache_capabilities(7, {"+819011110001": False})
    assert throttle.cached_capabilities(7, ["+819011110001"]) == {"+819011110001": False}


def test_answers_expire_after_the_ttl(backend):
    throttle.cache_capabilities(7, {"+819011110001": True}, ttl=2)
    assert throttle.cached_capabilities(7, ["+819011110001"], ttl=2) == {"+819011110001": True}
    time.sleep(2.05)
    assert throttle.cached_capabilities(7, ["+819011110001"], ttl=2) == {}


def test_an_empty_lookup_asks_nothing(backend):
    assert throttle.cached_capabilities(7, []) == {}


# -- the rate limit and its lanes ----------------------------------------------------------------
RATE = 100
FULL = 1 / (RATE * throttle.SAFETY)  # the interval between slots at the whole rate
SHARED = RATE * throttle.SAFETY - 1  # what two lanes share: one slot per second less


@pytest.fixture
def lanes(settings):
    settings.PRIORITY_RATE_SHARE = 0.2
    settings.LANE_IDLE_SECONDS = 0.5
    return settings


def spaced(slots, interval):
    return all(b - a == pytest.approx(interval, abs=2e-6) for a, b in zip(slots, slots[1:], strict=False))


def busiest_second(slots):
    slots = sorted(slots)
    return max(sum(1 for t in slots[i:] if t < start + 1.0) for i, start in enumerate(slots))


def test_a_lane_alone_gets_the_whole_rate(backend, lanes):
    for lane in (throttle.BULK, throttle.PRIORITY):
        throttle.reset(7)
        assert spaced(throttle.reserve(7, RATE, 50, lane), FULL)


def test_slots_follow_on_from_the_last_reservation(backend, lanes):
    first = throttle.reserve(7, RATE, 10)
    second = throttle.reserve(7, RATE, 10)
    assert second[0] == pytest.approx(first[-1] + FULL)


def test_a_single_message_joins_a_running_campaign_after_its_reserved_slots_then_gets_its_share(backend, lanes):
    campaign = throttle.reserve(7, RATE, 100)  # a second of the campaign's slots, reserved ahead
    single = throttle.reserve(7, RATE, 1, throttle.PRIORITY)[0]
    assert single == pytest.approx(campaign[-1] + FULL, abs=FULL)  # not after what the campaign reserves next
    more_singles = throttle.reserve(7, RATE, 10, throttle.PRIORITY)
    assert spaced([single, *more_singles], 1 / (SHARED * 0.2))
    campaign_next = throttle.reserve(7, RATE, 40)
    assert campaign_next[0] == pytest.approx(campaign[-1] + FULL, abs=FULL)  # the campaign is not pushed back
    assert spaced(campaign_next, 1 / (SHARED * 0.8))


def test_two_lanes_together_never_exceed_the_rate(backend, lanes):
    slots = []
    for round_ in range(30):
        slots += throttle.reserve(7, RATE, 25)
        slots += throttle.reserve(7, RATE, 3 if round_ % 2 else 1, throttle.PRIORITY)
    assert busiest_second(slots) <= RATE
    # The campaign gets its 80 % share; the singles use less than their 20 %.
    assert busiest_second(slots) >= 0.8 * RATE


def test_a_campaign_joining_a_busy_priority_lane_waits_for_its_slots(backend, lanes):
    singles = throttle.reserve(7, RATE, 30, throttle.PRIORITY)
    campaign = throttle.reserve(7, RATE, 20)
    assert campaign[0] >= singles[-1]
    assert busiest_second(singles + campaign) <= RATE


def test_a_lane_idle_for_the_window_no_longer_takes_a_share(backend, lanes):
    throttle.reserve(7, RATE, 1, throttle.PRIORITY)
    throttle.reserve(7, RATE, 5)
    assert spaced(throttle.reserve(7, RATE, 5), 1 / (SHARED * 0.8))
    time.sleep(0.6)
    assert spaced(throttle.reserve(7, RATE, 5), FULL)


def test_a_pause_holds_both_lanes(backend, lanes):
    throttle.pause(7, 2.0)
    until = time.time() + 1.9
    assert throttle.reserve(7, RATE, 1)[0] >= until
    assert throttle.reserve(7, RATE, 1, throttle.PRIORITY)[0] >= until


def test_lanes_of_one_account_leave_other_accounts_alone(backend, lanes):
    throttle.reserve(7, RATE, 100)
    throttle.pause(7, 5.0)
    assert throttle.reserve(8, RATE, 1, throttle.PRIORITY)[0] < time.time() + 0.1
