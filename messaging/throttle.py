"""The global send-rate limit per gateway account, and the capability cache.

Celery's ``rate_limit`` is per worker; a carrier's limit is per account. The limit lives in Redis, so
every worker process on every machine shares it. It is a reservation scheduler (GCRA): each send
takes the next free slot, slots are 1/rate seconds apart, and a sender waits for its slot. Any
one-second window therefore holds at most ``rate`` sends. A 429 with Retry-After pushes the next
free slot into the future, pausing the whole account.

On the embedded default (no REDIS_URL) the same interface keeps its state in the process; the
embedded run has a single bulk worker process, so the limit still holds.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings

_RESERVE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', key) or '0')
if tat < now then tat = now end
redis.call('SET', key, tostring(tat + interval * count), 'PX', math.ceil((tat + interval * count - now) * 1000) + 60000)
return tostring(tat)
"""

_PAUSE = """
local key = KEYS[1]
local until_ts = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', key) or '0')
if tat < until_ts then
  redis.call('SET', key, tostring(until_ts), 'PX', 3600000)
end
return 1
"""

# Measured request arrival jitters by a few milliseconds; keep a small margin under the limit.
SAFETY = 0.97

_redis_client = None
_local_lock = threading.Lock()
_local_tat: dict[str, float] = {}
_local_cache: dict[str, tuple[float, bool]] = {}


def redis_client():
    global _redis_client
    if not settings.REDIS_URL:
        return None
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL)
    return _redis_client


def _key(gateway_id) -> str:
    return f"pm:bucket:{gateway_id}"


def reserve(gateway_id, rate_per_second: float, count: int) -> list[float]:
    """Reserve ``count`` consecutive send slots; returns the wall-clock time of each slot."""
    interval = 1.0 / (rate_per_second * SAFETY)
    now = time.time()
    client = redis_client()
    if client is not None:
        start = float(client.eval(_RESERVE, 1, _key(gateway_id), repr(now), repr(interval), count))
    else:
        with _local_lock:
            start = max(_local_tat.get(_key(gateway_id), 0.0), now)
            _local_tat[_key(gateway_id)] = start + interval * count
    return [start + i * interval for i in range(count)]


def pause(gateway_id, seconds: float) -> None:
    """No slot of this account is handed out for ``seconds`` (a 429's Retry-After)."""
    until_ts = time.time() + seconds
    client = redis_client()
    if client is not None:
        client.eval(_PAUSE, 1, _key(gateway_id), repr(until_ts))
    else:
        with _local_lock:
            _local_tat[_key(gateway_id)] = max(_local_tat.get(_key(gateway_id), 0.0), until_ts)


def reset(gateway_id) -> None:
    client = redis_client()
    if client is not None:
        client.delete(_key(gateway_id))
    _local_tat.pop(_key(gateway_id), None)


# -- capability cache --------------------------------------------------------------------------

CAPABILITY_TTL = 3600


def _cap_key(gateway_id, phone) -> str:
    return f"pm:cap:{gateway_id}:{phone}"


def cached_capabilities(gateway_id, phones: list[str]) -> dict[str, bool]:
    """Known answers for ``phones`` (missing ones are not in the result)."""
    client = redis_client()
    if client is not None:
        values = client.mget([_cap_key(gateway_id, p) for p in phones]) if phones else []
        return {phone: value == b"1" for phone, value in zip(phones, values, strict=True) if value is not None}
    now = time.time()
    known = {}
    for phone in phones:
        entry = _local_cache.get(_cap_key(gateway_id, phone))
        if entry and entry[0] > now:
            known[phone] = entry[1]
    return known


def cache_capabilities(gateway_id, answers: dict[str, bool], ttl: int = CAPABILITY_TTL) -> None:
    if not answers:
        return
    client = redis_client()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        for phone, capable in answers.items():
            pipe.set(_cap_key(gateway_id, phone), b"1" if capable else b"0", ex=ttl)
        pipe.execute()
        return
    expires = time.time() + ttl
    for phone, capable in answers.items():
        _local_cache[_cap_key(gateway_id, phone)] = (expires, capable)


def forget_capabilities(gateway_id, phones: list[str]) -> None:
    client = redis_client()
    if client is not None and phones:
        client.delete(*[_cap_key(gateway_id, p) for p in phones])
    for phone in phones:
        _local_cache.pop(_cap_key(gateway_id, phone), None)
