"""/healthz answers without touching anything; /readyz is 200 only while the database, the broker,
Redis, the beat scheduler, a worker of each queue and the receipt backlog are all fine."""

import socket
from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone

from messaging.health import BEAT, QUEUES, heartbeat_record, worker_heartbeat_name
from messaging.models import Heartbeat, ProviderEvent
from tests.messaging.engine import beat, wait_until, worker  # noqa: F401


def all_heartbeats_fresh():
    for name in (BEAT, *(worker_heartbeat_name(queue) for queue in QUEUES)):
        heartbeat_record(name)


@pytest.fixture
def refused_url():
    """A loopback address bound but not listening: every connection to it is refused at once."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"redis://127.0.0.1:{bound.getsockname()[1]}/0"


def test_healthz_answers_without_the_database(client):
    # No django_db mark: touching the database here would fail the test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_503_until_beat_and_workers_show_a_heartbeat(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["beat"] == {"ok": False, "detail": "never seen"}
    assert body["checks"]["worker:priority"]["ok"] is False

    all_heartbeats_fresh()
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["ready"] is True


@pytest.mark.django_db
def test_readyz_a_stale_heartbeat_is_not_ready(client, settings):
    all_heartbeats_fresh()
    old = timezone.now() - timedelta(seconds=settings.READY_HEARTBEAT_SECONDS + 5)
    Heartbeat.objects.filter(name=worker_heartbeat_name("celery")).update(seen_at=old)
    response = client.get("/readyz")
    assert response.status_code == 503
    check = response.json()["checks"]["worker:celery"]
    assert check["ok"] is False and check["detail"].startswith("seen ")


@pytest.mark.django_db
def test_readyz_receipt_backlog_above_the_limit_is_not_ready(client, settings):
    settings.READY_RECEIPT_BACKLOG_MAX = 2
    all_heartbeats_fresh()
    ProviderEvent.objects.bulk_create(
        [ProviderEvent(provider="rbm", event_id=f"e{i}", payload={}) for i in range(2)]
    )
    assert client.get("/readyz").status_code == 200
    ProviderEvent.objects.create(provider="rbm", event_id="e3", payload={})
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["receipt_backlog"] == {
        "ok": False, "detail": "3 waiting (limit 2)", "ms": response.json()["checks"]["receipt_backlog"]["ms"],
    }


@pytest.mark.django_db
def test_readyz_broker_down_is_not_ready(client, refused_url, monkeypatch):
    all_heartbeats_fresh()
    monkeypatch.setattr(current_app.conf, "broker_write_url", refused_url)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


@pytest.mark.django_db
def test_readyz_redis_down_is_not_ready(client, settings, refused_url):
    all_heartbeats_fresh()
    settings.REDIS_URL = refused_url
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False
    assert "ConnectionError" in response.json()["checks"]["redis"]["detail"]


def test_readyz_real_beat_and_workers_make_it_ready(client, worker, beat):
    """The real processes: beat sends a heartbeat to each queue, workers of both queues record it."""
    worker(name="bulk", queues="celery")
    worker(name="priority", queues="priority")

    def ready():
        return client.get("/readyz").status_code == 200

    wait_until(ready, timeout=90, interval=1)
    names = set(Heartbeat.objects.values_list("name", flat=True))
    assert names == {"beat", "worker:celery", "worker:priority"}
