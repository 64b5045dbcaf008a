"""The global send-rate limit per gateway account, and the capability cache.

Celery's ``rate_limit`` is per worker; a carrier's limit is per account. The limit lives in Redis, so
every worker process on every machine shares it. It is a reservation scheduler (GCRA): each send
takes the next free slot, slots are 1/rate seconds apart, and a sender waits for its slot. Any
one-second window therefore holds at most ``rate`` sends. A 429 with Retry-After pauses the whole
account: no slot is handed out before it ends.

Two lanes share an account's rate: ``bulk`` (campaigns) and ``priority`` (single messages: the API,
test sends, inbox replies). A lane alone gets the whole rate. While both send, the priority lane gets
``PRIORITY_RATE_SHARE`` of it and the campaigns the rest, so a fraud alert is not queued behind a
coupon blast's reserved slots. A lane that starts while the other is sending takes its first slot
after the other's last reserved one (slots reserved at the full rate must not overlap new ones);
that wait is about a second, the horizon a campaign's chains reserve ahead. A lane counts as sending
while its last slot is less than ``LANE_IDLE_SECONDS`` old. Where the lanes meet, a one-second
window can hold a slot or two more than the lanes' rates say; one slot per second kept back while
they share, and the 3 % margin, keep it under the carrier's limit.

On the embedded default (no REDIS_URL) the same interface keeps its state in the process: the
embedded run's bulk worker process keeps its own rate, and so does its priority worker process.
"""

from __future__ import annotations

import threading
import time

import redis
from django.conf import settings

BULK, PRIORITY = "bulk", "priority"

# KEYS: this lane's next free slot, the other lane's, the account's pause. ARGV: now, the rate (slots
# per second), count, this lane's share while the other sends, the idle window. Mirrors _plan.
_RESERVE = """
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local share = tonumber(ARGV[4])
local idle = tonumber(ARGV[5])
local own = tonumber(redis.call('GET', KEYS[1]) or '0')
local other = tonumber(redis.call('GET', KEYS[2]) or '0')
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
local start = math.max(own, now, paused)
local interval = 1 / rate
if other > now - idle then
  if own <= now - idle then start = math.max(start, other) end
  interval = 1 / (math.max(rate - 1, rate / 2) * share)
end
local tat = start + interval * count
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now + idle) * 1000) + 60000)
return {string.format('%.6f', start), string.format('%.9f', interval)}
"""

_PAUSE = """
local until_ts = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') < until_ts then
  redis.call('SET', KEYS[1], string.format('%.6f', until_ts), 'PX', 3600000)
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
        _redis_client = redis.Redis.from_url(settings.REDIS_URL)
    return _redis_client


def _key(gateway_id, lane: str = BULK) -> str:
    return f"pm:bucket:{gateway_id}" if lane == BULK else f"pm:bucket:{gateway_id}:{lane}"


def _pause_key(gateway_id) -> str:
    return f"pm:bucket:{gateway_id}:pause"


def _other(lane: str) -> str:
    return PRIORITY if lane == BULK else BULK


def _share(lane: str) -> float:
    share = min(max(settings.PRIORITY_RATE_SHARE, 0.05), 0.95)
    return share if lane == PRIORITY else 1.0 - share


def _plan(now: float, own: float, other: float, paused: float, rate: float, share: float, idle: float):
    """(first slot, interval) for a lane: the in-process twin of the _RESERVE script.

    Two interleaved lanes can each put one slot more into a one-second window than their rates say,
    so together they share one slot per second less than the rate."""
    start = max(own, now, paused)
    interval = 1.0 / rate
    if other > now - idle:
        if own <= now - idle:
            start = max(start, other)
        interval = 1.0 / (max(rate - 1, rate / 2) * share)
    return start, interval


def reserve(gateway_id, rate_per_second: float, count: int, lane: str = BULK) -> list[float]:
    """Reserve ``count`` consecutive send slots in ``lane``; returns the wall-clock time of each slot."""
    rate = rate_per_second * SAFETY
    idle = settings.LANE_IDLE_SECONDS
    now = time.time()
    client = redis_client()
    if client is not None:
        keys = (_key(gateway_id, lane), _key(gateway_id, _other(lane)), _pause_key(gateway_id))
        start, interval = client.eval(_RESERVE, 3, *keys, repr(now), repr(rate), count, repr(_share(lane)), idle)
        start, interval = float(start), float(interval)
    else:
        with _local_lock:
            start, interval = _plan(
                now, _local_tat.get(_key(gateway_id, lane), 0.0), _local_tat.get(_key(gateway_id, _other(lane)), 0.0),
                _local_tat.get(_pause_key(gateway_id), 0.0), rate, _share(lane), idle,
            )
            _local_tat[_key(gateway_id, lane)] = start + interval * count
    return [start + i * interval for i in range(count)]


def pause(gateway_id, seconds: float) -> None:
    """No slot of this account, in either lane, is handed out for ``seconds`` (a 429's Retry-After)."""
    until_ts = time.time() + seconds
    client = redis_client()
    if client is not None:
        client.eval(_PAUSE, 1, _pause_key(gateway_id), repr(until_ts))
    else:
        with _local_lock:
            _local_tat[_pause_key(gateway_id)] = max(_local_tat.get(_pause_key(gateway_id), 0.0), until_ts)


def reset(gateway_id) -> None:
    keys = [_key(gateway_id, BULK), _key(gateway_id, PRIORITY), _pause_key(gateway_id)]
    client = redis_client()
    if client is not None:
        client.delete(*keys)
    for key in keys:
        _local_tat.pop(key, None)


# -- fixed-window counters ---------------------------------------------------------------------
# How many times something happened in the current window (an API key's requests, a member's test
# sends): one INCR and EXPIRE in Redis, shared by every process; in the process without Redis.

_local_counts: dict[str, int] = {}


def window_count(name: str, period: int) -> int:
    """Count one more event under ``name`` in the current ``period``-second window; the count so far.

    ``name`` should carry the window (e.g. ``int(time.time() // period)``), so a new window starts at 0."""
    client = redis_client()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        pipe.incr(name)
        pipe.expire(name, period + 1)
        count, _ok = pipe.execute()
        return int(count)
    with _local_lock:
        if len(_local_counts) > 10000:
            _local_counts.clear()
        _local_counts[name] = _local_counts.get(name, 0) + 1
        return _local_counts[name]


# -- capability cache --------------------------------------------------------------------------
# Answers live in one Redis hash per gateway account and time window of half the TTL; a lookup reads
# the current and the previous window, so an answer is used for at most the TTL. One HMGET pair and
# one HSET per batch, instead of a command per number.

CAPABILITY_TTL = 3600


def _cap_windows(gateway_id, ttl: int) -> tuple[str, str]:
    window = int(time.time() // (ttl / 2))
    return f"pm:cap:{gateway_id}:{ttl}:{window}", f"pm:cap:{gateway_id}:{ttl}:{window - 1}"


# A cached answer is "1" (capable) or "0", followed by ":<carrier>" when the gateway named the
# number's network.


def _encode(answer: bool | tuple[bool, str]) -> bytes:
    capable, carrier = answer if isinstance(answer, tuple) else (answer, "")
    return (("1" if capable else "0") + (f":{carrier}" if carrier else "")).encode()


def _decode(value: bytes) -> tuple[bool, str]:
    capable, _, carrier = value.decode().partition(":")
    return capable == "1", carrier


def cached_capability_answers(gateway_id, phones: list[str], ttl: int = CAPABILITY_TTL) -> dict[str, tuple[bool, str]]:
    """Known answers for ``phones`` as (capable, carrier — "" if the gateway did not say); missing
    ones are not in the result."""
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
                known[phone] = _decode(value)
        return known
    now = time.time()
    known = {}
    for phone in phones:
        entry = _local_cache.get((gateway_id, phone))
        if entry and entry[0] > now:
            known[phone] = _decode(entry[1])
    return known


def cached_capabilities(gateway_id, phones: list[str], ttl: int = CAPABILITY_TTL) -> dict[str, bool]:
    """Known answers for ``phones`` (missing ones are not in the result)."""
    return {phone: capable for phone, (capable, _carrier) in cached_capability_answers(gateway_id, phones, ttl).items()}


def cache_capabilities(gateway_id, answers: dict[str, bool | tuple[bool, str]], ttl: int = CAPABILITY_TTL) -> None:
    """Remember answers: capable or not, or (capable, carrier)."""
    if not answers:
        return
    client = redis_client()
    if client is not None:
        current, _previous = _cap_windows(gateway_id, ttl)
        pipe = client.pipeline(transaction=False)
        pipe.hset(current, mapping={phone: _encode(answer) for phone, answer in answers.items()})
        pipe.expire(current, ttl)
        pipe.execute()
        return
    expires = time.time() + ttl
    for phone, answer in answers.items():
        _local_cache[(gateway_id, phone)] = (expires, _encode(answer))
