"""CPU time by stage of the fan-out engine and the receipt path, for the benchmarks.

Off unless the process runs with ``STAGE_CPU`` set (the benchmarks set it to the process's role:
``worker``, ``web``, ``bulk`` …). Off, ``stage(name)`` returns one shared do-nothing context manager
and ``flush()`` returns at once: the engine pays a settings lookup per stage and batch, nothing per
message.

On, ``with stage(name):`` adds the CPU time of the calling thread (``time.thread_time``: this
thread's own work, not the time spent waiting for the carrier or the database, nor other threads'
work) to a buffer of the process; ``flush()`` adds the buffer to the Redis hash ``KEY`` as
``<role>|<stage>|seconds`` and ``<role>|<stage>|calls``, where the benchmark reads it. Celery
workers flush after every task (config/celery.py), the receipt server after every stored batch.
The PostgreSQL backend's work for a stage is not in it: the benchmarks read the backends' CPU by the
role of the process they serve (devtools/cpu.py). Stages do not nest (an inner one would be counted
twice).
"""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext

from django.conf import settings

from core.throttle import redis_client

KEY = "pm:bench:stage_cpu"
STAGES = ("claim", "capability", "send", "record", "receipt_store", "receipt_apply")

_OFF = nullcontext()
_lock = threading.Lock()
_seconds: dict[str, float] = {}
_calls: dict[str, int] = {}


class _Timed:
    __slots__ = ("name", "started")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.started = time.thread_time()
        return self

    def __exit__(self, *exc_info) -> bool:
        spent = time.thread_time() - self.started
        with _lock:
            _seconds[self.name] = _seconds.get(self.name, 0.0) + spent
            _calls[self.name] = _calls.get(self.name, 0) + 1
        return False


def stage(name: str):
    """A context manager timing the CPU of the block as stage ``name`` (when STAGE_CPU is set)."""
    if not settings.STAGE_CPU:
        return _OFF
    return _Timed(name)


def flush() -> None:
    """Add what this process measured since its last flush to the shared hash. A Redis failure drops
    it: a measurement never fails the work it measures."""
    role = settings.STAGE_CPU
    if not role:
        return
    with _lock:
        seconds, calls = dict(_seconds), dict(_calls)
        _seconds.clear()
        _calls.clear()
    client = redis_client()
    if client is None or not seconds:
        return
    try:
        pipe = client.pipeline(transaction=False)
        for name, value in seconds.items():
            pipe.hincrbyfloat(KEY, f"{role}|{name}|seconds", value)
            pipe.hincrby(KEY, f"{role}|{name}|calls", calls[name])
        pipe.execute()
    except Exception:  # noqa: BLE001 — see the docstring
        return


def read() -> dict[str, dict[str, dict[str, float]]]:
    """Everything flushed so far: role → stage → {"seconds", "calls"}; empty without Redis."""
    client = redis_client()
    if client is None:
        return {}
    found: dict[str, dict[str, dict[str, float]]] = {}
    for field, value in client.hgetall(KEY).items():
        role, name, kind = field.decode().split("|")
        found.setdefault(role, {}).setdefault(name, {"seconds": 0.0, "calls": 0})[kind] = float(value)
    return found


def reset() -> None:
    """Forget what every process flushed (a benchmark starts from zero)."""
    client = redis_client()
    if client is not None:
        client.delete(KEY)
