"""The capability cache: answers kept per gateway account for the TTL, in Redis or in the process."""

import time

import pytest

from messaging import throttle


@pytest.fixture(params=["redis", "in-process"])
def backend(request, settings):
    if request.param == "in-process":
        settings.REDIS_URL = ""
    elif not settings.REDIS_URL:
        pytest.fail("the tests run with REDIS_URL set")
    throttle._redis_client = None
    throttle._local_cache.clear()
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
