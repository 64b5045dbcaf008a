"""Liveness and readiness: what /healthz and /readyz report to a load balancer or an orchestrator.

Readiness means this deployment can take work and get it done: the database and the broker answer,
Redis answers when one is configured, the beat scheduler and a worker of each queue showed a
heartbeat within ``READY_HEARTBEAT_SECONDS``, and the receipts waiting to be applied are fewer than
``READY_RECEIPT_BACKLOG_MAX``. Each check reports ``ok`` and a short detail; nothing secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from celery import current_app
from django.conf import settings
from django.db import connection
from django.utils import timezone

from messaging.models import Heartbeat, ProviderEvent

BEAT = "beat"
QUEUES = ("celery", "priority")


def worker_heartbeat_name(queue: str) -> str:
    return f"worker:{queue}"


def heartbeat_record(name: str, detail: str = "") -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"seen_at": timezone.now(), "detail": detail[:200]})


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return connection.vendor


def _broker() -> str:
    with current_app.connection_for_write(connect_timeout=2) as conn:
        conn.connect()
        return conn.transport.driver_name


def _redis() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return "ping"


def _heartbeats() -> dict[str, dict]:
    limit = settings.READY_HEARTBEAT_SECONDS
    now = timezone.now()
    seen = dict(Heartbeat.objects.values_list("name", "seen_at"))
    checks = {}
    for name in (BEAT, *(worker_heartbeat_name(queue) for queue in QUEUES)):
        at = seen.get(name)
        age = (now - at).total_seconds() if at else None
        fresh = age is not None and age <= limit
        checks[name] = {
            "ok": fresh,
            "detail": f"seen {age:.0f} s ago" if age is not None else "never seen",
        }
    return checks


def receipt_backlog() -> int:
    """Events stored but not applied, counted up to the threshold + 1 (a bounded count)."""
    ceiling = settings.READY_RECEIPT_BACKLOG_MAX + 1
    pending = ProviderEvent.objects.filter(applied_at__isnull=True).values("id")[:ceiling]
    return ProviderEvent.objects.filter(id__in=pending).count()


def _check(probe: Callable[[], str]) -> dict:
    started = time.monotonic()
    try:
        detail = probe()
        ok = True
    except Exception as error:  # a readiness probe reports any failure, it never raises
        detail, ok = f"{type(error).__name__}: {str(error)[:120]}", False
    return {"ok": ok, "detail": detail, "ms": round((time.monotonic() - started) * 1000, 1)}


def readiness() -> dict:
    """Every check, and ``ready`` when all pass."""
    checks = {
        "database": _check(_database),
        "broker": _check(_broker),
        "redis": _check(_redis),
    }
    if checks["database"]["ok"]:
        checks.update(_heartbeats())
        backlog = _check(lambda: str(receipt_backlog()))
        if backlog["ok"]:
            backlog["ok"] = int(backlog["detail"]) <= settings.READY_RECEIPT_BACKLOG_MAX
            backlog["detail"] = f"{backlog['detail']} waiting (limit {settings.READY_RECEIPT_BACKLOG_MAX})"
        checks["receipt_backlog"] = backlog
    return {"ready": all(check["ok"] for check in checks.values()), "checks": checks}
