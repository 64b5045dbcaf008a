"""The health of each gateway account, shared by every process: is it up, or "down" since when.

A gateway is down after ``GATEWAY_FAILOVER_ERRORS`` failed requests in a row (5xx, timeouts,
connection errors: the caller decides what counts; a 429 is pacing, not a failure). While it is
down, ``route`` answers "backup"; once every ``GATEWAY_FAILOVER_COOLOFF_SECONDS`` it answers
"probe" to exactly one caller, whose batch tries the primary again. A success (a probe's, or any
other request's) brings it back up. The transitions are atomic: ``record_failure`` answers "down"
and ``record_success`` answers "recovered" to one caller only, which audits the switch.

Also kept here per gateway: the CM batch size, halved on each 429 (down to 1) and grown back
gradually on success.

State lives in Redis when REDIS_URL is set (every worker on every machine sees the same state);
without it (the embedded default) in the process, like ``core.throttle``.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings

from core.throttle import redis_client

UP, DOWN, RECOVERED = "up", "down", "recovered"
PRIMARY, BACKUP, PROBE = "primary", "backup", "probe"

# KEYS: failures in a row, down since, next probe. ARGV: now, threshold, cool-off.
_FAILURE = """
local failures = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 86400)
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SET', KEYS[3], ARGV[1] + ARGV[3])
  return 0
end
if failures >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[1])
  redis.call('SET', KEYS[3], ARGV[1] + ARGV[3])
  return 1
end
return 0
"""

# KEYS: failures in a row, down since, next probe.
_SUCCESS = """
redis.call('DEL', KEYS[1], KEYS[3])
return redis.call('DEL', KEYS[2])
"""

# KEYS: down since, next probe. ARGV: now, cool-off. 0 up, 1 down, 2 probe (this caller only).
_ROUTE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local probe_at = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) >= probe_at then
  redis.call('SET', KEYS[2], ARGV[1] + ARGV[2])
  return 2
end
return 1
"""

# KEYS: batch size. ARGV: max, "shrink" or "grow".
_BATCH = """
local size = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
local max = tonumber(ARGV[1])
if ARGV[2] == 'shrink' then size = math.max(1, math.floor(size / 2))
elseif size < max then size = math.min(max, size + math.max(1, math.floor(size / 4))) end
redis.call('SET', KEYS[1], size, 'EX', 3600)
return size
"""

_lock = threading.Lock()
_local: dict[str, float] = {}


def _keys(gateway_id) -> tuple[str, str, str]:
    return f"pm:health:{gateway_id}:failures", f"pm:health:{gateway_id}:down", f"pm:health:{gateway_id}:probe"


def record_failure(gateway_id) -> str:
    """One more failed request in a row; DOWN for the one caller whose failure took it down."""
    now = time.time()
    threshold = max(1, settings.GATEWAY_FAILOVER_ERRORS)
    cooloff = settings.GATEWAY_FAILOVER_COOLOFF_SECONDS
    failures, down, probe = _keys(gateway_id)
    client = redis_client()
    if client is not None:
        took_down = client.eval(_FAILURE, 3, failures, down, probe, repr(now), threshold, repr(cooloff))
        return DOWN if took_down else UP
    with _lock:
        _local[failures] = _local.get(failures, 0) + 1
        if down in _local:
            _local[probe] = now + cooloff
            return UP
        if _local[failures] >= threshold:
            _local[down], _local[probe] = now, now + cooloff
            return DOWN
        return UP


def record_success(gateway_id) -> str:
    """A request went through: the failures in a row start again; RECOVERED for the one caller
    that brought a down gateway back."""
    keys = _keys(gateway_id)
    client = redis_client()
    if client is not None:
        return RECOVERED if client.eval(_SUCCESS, 3, *keys) else UP
    with _lock:
        _local.pop(keys[0], None)
        _local.pop(keys[2], None)
        return RECOVERED if _local.pop(keys[1], None) is not None else UP


def route(gateway_id) -> str:
    """PRIMARY while the gateway is up; BACKUP while it is down, except PROBE for the one caller
    per cool-off whose batch tries it again."""
    now = time.time()
    cooloff = settings.GATEWAY_FAILOVER_COOLOFF_SECONDS
    _failures, down, probe = _keys(gateway_id)
    client = redis_client()
    if client is not None:
        answer = int(client.eval(_ROUTE, 2, down, probe, repr(now), repr(cooloff)))
    else:
        with _lock:
            if down not in _local:
                answer = 0
            elif now >= _local.get(probe, 0.0):
                _local[probe] = now + cooloff
                answer = 2
            else:
                answer = 1
    return (PRIMARY, BACKUP, PROBE)[answer]


def down_since(gateway_id) -> float | None:
    """When the gateway went down (a Unix time), or None while it is up."""
    _failures, down, _probe = _keys(gateway_id)
    client = redis_client()
    if client is not None:
        value = client.get(down)
        return float(value) if value is not None else None
    return _local.get(down)


def batch_size(gateway_id, largest: int) -> int:
    """The number of messages per request for this gateway now (``largest`` unless a 429 shrank it)."""
    key = f"pm:health:{gateway_id}:batch"
    client = redis_client()
    value = client.get(key) if client is not None else _local.get(key)
    return max(1, min(largest, int(value))) if value is not None else largest


def batch_resize(gateway_id, largest: int, *, shrink: bool) -> int:
    """Halve the batch size after a 429 (down to 1), or grow it back by a quarter after a success."""
    key = f"pm:health:{gateway_id}:batch"
    client = redis_client()
    if client is not None:
        return int(client.eval(_BATCH, 1, key, largest, "shrink" if shrink else "grow"))
    with _lock:
        size = int(_local.get(key, largest))
        if shrink:
            size = max(1, size // 2)
        elif size < largest:
            size = min(largest, size + max(1, size // 4))
        _local[key] = size
        return size


def reset(gateway_id) -> None:
    keys = [*_keys(gateway_id), f"pm:health:{gateway_id}:batch"]
    client = redis_client()
    if client is not None:
        client.delete(*keys)
    with _lock:
        for key in keys:
            _local.pop(key, None)
