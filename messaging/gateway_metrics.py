"""Gateway request metrics shared by every process: request counts by outcome, latency histograms,
throttle waits.

The requests are made in Celery workers (two queues, maybe on several machines) and the scrape is
answered by a web process, so per-process counters would not add up. Each process keeps what it
observed in a small buffer and adds it to one Redis hash (``pm:metrics:gateway``) with HINCRBY /
HINCRBYFLOAT at most once a second, at the end of every send step (``Sender.run``) and at exit;
``messaging.metrics`` reads the hash at scrape time. The values only grow (Prometheus counters).
Without REDIS_URL (the embedded default) nothing is recorded and the families are absent.

Labels are bounded: the gateway kind (rbm, cm), the operation (a fixed list) and the outcome (a
fixed list of HTTP statuses, a status class, or a transport error); never a number or a message.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections import Counter

from core import throttle

KEY = "pm:metrics:gateway"
FLUSH_SECONDS = 1.0
# Seconds; a request to a carrier takes milliseconds to a few seconds (the timeout is 10 s).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_KEPT_STATUSES = {200, 400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504}
# Transport failures, as the adapters name them in GatewayError.code.
TRANSPORT_ERRORS = ("timeout", "connect_timeout", "connect_error", "transport")

_lock = threading.Lock()
_counts: Counter = Counter()
_sums: Counter = Counter()
_last_flush = time.monotonic()


def outcome_label(status: int | None = None, error: str = "") -> str:
    """One bounded label for how a request ended: a kept HTTP status, its class, or the transport error."""
    if status is None:
        return error if error in TRANSPORT_ERRORS else "transport"
    return str(status) if status in _KEPT_STATUSES else f"{status // 100}xx"


def _bucket(seconds: float) -> str:
    for bound in BUCKETS:
        if seconds <= bound:
            return repr(bound)
    return "+Inf"


def request_observed(gateway: str, operation: str, seconds: float, outcome: str) -> None:
    """One HTTP request to a carrier: its duration and how it ended."""
    with _lock:
        _counts[f"req|{gateway}|{operation}|{outcome}"] += 1
        _counts[f"bucket|{gateway}|{operation}|{_bucket(seconds)}"] += 1
        _sums[f"seconds|{gateway}|{operation}"] += seconds
    _flush_if_due()


def throttle_wait_observed(gateway: str, seconds: float) -> None:
    """A send waited ``seconds`` for its slot in the account's token bucket (or a 429 pause)."""
    if seconds <= 0:
        return
    with _lock:
        _counts[f"waits|{gateway}"] += 1
        _sums[f"wait_seconds|{gateway}"] += seconds
    _flush_if_due()


def _flush_if_due() -> None:
    if time.monotonic() - _last_flush >= FLUSH_SECONDS:
        flush()


def flush() -> None:
    """Add the buffered observations to the shared hash. A Redis failure drops them: metrics never
    stop a send."""
    global _last_flush
    with _lock:
        counts, sums = dict(_counts), dict(_sums)
        _counts.clear()
        _sums.clear()
        _last_flush = time.monotonic()
    client = throttle.redis_client()
    if client is None or not (counts or sums):
        return
    try:
        pipe = client.pipeline(transaction=False)
        for field, value in counts.items():
            pipe.hincrby(KEY, field, value)
        for field, value in sums.items():
            pipe.hincrbyfloat(KEY, field, value)
        pipe.execute()
    except Exception:  # noqa: BLE001 — a monitoring write must never fail the work it measures
        return


def snapshot() -> dict[str, float]:
    """Everything recorded by every process so far (field → value); empty without Redis."""
    client = throttle.redis_client()
    if client is None:
        return {}
    return {field.decode(): float(value) for field, value in client.hgetall(KEY).items()}


atexit.register(flush)
