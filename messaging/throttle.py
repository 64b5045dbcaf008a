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
_local_cache: dict[tuple, tuple[float, bool]] = {}


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
# Answers live in one Redis hash per gateway account and time window of half the TTL; a lookup reads
# the current and the previous window, so an answer is used for at most the TTL. One HMGET pair and
# one HSET per batch, instead of a command per number.

CAPABILITY_TTL = 3600


def _cap_windows(gateway_id, ttl: int) -> tuple[str, str]:
    window = int(time.time() // (ttl / 2))
    return f"pm:cap:{gateway_id}:{ttl}:{window}", f"pm:cap:{gateway_id}:{ttl}:{window - 1}"


def cached_capabilities(gateway_id, phones: list[str], ttl: int = CAPABILITY_TTL) -> dict[str, bool]:
    """Known answers for ``phones`` (missing ones are not in the result)."""
    client = redis_client()
    if client is not None:
        if not phones:
            return {}
        current, previous = _cap_windows(gateway_id, ttl)
        pipe = client.pipeline(transaction=False)
        pipe.hmget(current, phones)
        pipe.hmget(previous, phones)
        recent, older = pipe.execute()
        known = {}
        for phone, new, old in zip(phones, recent, older, strict=True):
            value = new if new is not None else old
            if value is not None:
                known[phone] = value == b"1"
        return known
    now = time.time()
    known = {}
    for phone in phones:
        entry = _local_cache.get((gateway_id, phone))
        if entry and entry[0] > now:
            known[phone] = entry[1]
    return known


def cache_capabilities(gateway_id, answers: dict[str, bool], ttl: int = CAPABILITY_TTL) -> None:
    if not answers:
        return
    client = redis_client()
    if client is not None:
        current, _previous = _cap_windows(gateway_id, ttl)
        pipe = client.pipeline(transaction=False)
        pipe.hset(current, mapping={phone: b"1" if capable else b"0" for phone, capable in answers.items()})
        pipe.expire(current, ttl)
        pipe.execute()
        return
    expires = time.time() + ttl
    for phone, capable in answers.items():
        _local_cache[(gateway_id, phone)] = (expires, capable)
