"""/metrics: who may read it, and that each family reports what really happened — in this process's
database and broker, and in another process that called a gateway."""

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
import redis
from celery import current_app
from django.conf import settings as django_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import (
    GatewayAccount,
    GatewayKind,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)
from campaigns.models import CampaignStatus, ImportJob, ImportStatus
from messaging import gateway_metrics
from messaging.counters import counters_add, counters_fold
from messaging.gateways import OutboundMessage, Retryable, SendResult, gateway_for
from messaging.health import QUEUES
from messaging.models import ProviderEvent
from tests.accounts.factories import GatewayAccountFactory, OfficialAccountFactory, UserFactory
from tests.campaigns.factories import CampaignFactory, ContactListFactory
from tests.messaging.conftest import sandbox, sandbox_server  # noqa: F401

BASE_DIR = Path(__file__).resolve().parents[2]
ELSEWHERE = "203.0.113.7"  # TEST-NET-3: never in the default allowed networks


def scrape(client, **extra):
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def samples(text) -> dict:
    """{(sample name, frozenset of labels): value} of a scrape."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels):
    return found[(name, frozenset(labels.items()))]


@pytest.fixture
def clean_gateway_metrics():
    gateway_metrics.flush()
    redis.Redis.from_url(django_settings.REDIS_URL).delete(gateway_metrics.KEY)
    yield
    redis.Redis.from_url(django_settings.REDIS_URL).delete(gateway_metrics.KEY)


@pytest.fixture
def empty_queues():
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)

    def drop():  # kombu's Redis transport keeps a queue as a list, plus one list per priority step
        for queue in QUEUES:
            broker.delete(queue, *(f"{queue}\x06\x16{step}" for step in range(1, 10)))

    drop()
    yield
    drop()


# -- access ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_loopback_is_allowed_by_default_and_another_address_gets_404(client):
    assert client.get("/metrics").status_code == 200  # the test client's address is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR=ELSEWHERE).status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


@pytest.mark.django_db
def test_configured_networks_replace_loopback(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.21.3.4").status_code == 404
    assert client.get("/metrics").status_code == 404


@pytest.mark.django_db
def test_a_forwarded_header_does_not_let_a_client_in(client):
    response = client.get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_bearer_token_lets_any_address_in(client, settings):
    settings.METRICS_TOKEN = "scrape-token-Qm7xV2pL"
    assert client.get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer scrape-token-Qm7xV2pL").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer scrape-token-wrong").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="scrape-token-Qm7xV2pL").status_code == 404


@pytest.mark.django_db
def test_no_token_configured_accepts_no_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
def test_only_get(client):
    assert client.post("/metrics").status_code == 405


# -- families from the database and the broker ----------------------------------------------------


@pytest.mark.django_db
def test_deliveries_by_channel_status_and_gateway_from_folded_and_pending_counters(client):
    rbm = GatewayAccountFactory(kind=GatewayKind.RBM)
    cm = GatewayAccountFactory(organization=rbm.organization, kind=GatewayKind.CM)
    account = OfficialAccountFactory(organization=rbm.organization, rcs_gateway=rbm, sms_gateway=cm)
    campaign = CampaignFactory(organization=rbm.organization, official_account=account)
    counters_add(Counter({(campaign.id, "rcs", "sent", ""): 2, (campaign.id, "sms", "sent", ""): 1}))
    counters_fold()
    counters_add(Counter({
        (campaign.id, "rcs", "sent", ""): 1,
        (campaign.id, "rcs", "delivered", ""): 2,
        (campaign.id, "sms", "fell_back", "not_capable"): 1,
        (campaign.id, "", "targeted", ""): 10,
    }))

    found = samples(scrape(client))
    assert value(found, "plusmessage_deliveries_total", channel="rcs", status="sent", gateway="rbm") == 3
    assert value(found, "plusmessage_deliveries_total", channel="sms", status="sent", gateway="cm") == 1
    assert value(found, "plusmessage_deliveries_total", channel="rcs", status="delivered", gateway="rbm") == 2
    assert value(found, "plusmessage_deliveries_total", channel="sms", status="fell_back", gateway="cm") == 1
    assert not [key for key in found if key[0] == "plusmessage_deliveries_total" and ("status", "targeted") in key[1]]


@pytest.mark.django_db
def test_queue_depths_come_from_the_broker(client, empty_queues):
    for _ in range(3):
        current_app.send_task("messaging.tasks.heartbeat", args=["metrics-test"], queue="priority")
    current_app.send_task("messaging.tasks.heartbeat", args=["metrics-test"], queue="celery")

    found = samples(scrape(client))
    assert value(found, "plusmessage_queue_depth", queue="priority") == 3
    assert value(found, "plusmessage_queue_depth", queue="celery") == 1


@pytest.mark.django_db
def test_receipt_backlog_oldest_pending_and_lag_from_carrier_time(client):
    now = timezone.now()
    waiting = ProviderEvent.objects.create(
        provider="rbm", event_id="e-1", payload={"kind": "delivered", "occurred_at": (now - timedelta(seconds=40)).isoformat()}
    )
    applied = ProviderEvent.objects.create(
        provider="rbm", event_id="e-2", payload={"kind": "read", "occurred_at": (now - timedelta(seconds=25)).isoformat()}
    )
    ProviderEvent.objects.create(provider="cm", event_id="e-3", payload={"kind": "delivered"})  # no carrier time
    ProviderEvent.objects.filter(pk=waiting.pk).update(received_at=now - timedelta(seconds=30))
    ProviderEvent.objects.filter(pk=applied.pk).update(received_at=now - timedelta(seconds=5), applied_at=now)

    found = samples(scrape(client))
    assert value(found, "plusmessage_receipt_backlog") == 2
    assert 30 <= value(found, "plusmessage_receipt_oldest_pending_seconds") < 120
    assert value(found, "plusmessage_receipt_lag_samples") == 2
    assert value(found, "plusmessage_receipt_lag_seconds", quantile="1") == pytest.approx(20, abs=0.01)
    assert value(found, "plusmessage_receipt_lag_seconds", quantile="0.5") == pytest.approx(15, abs=0.01)


@pytest.mark.django_db
def test_campaign_progress_only_for_running_and_paused_campaigns(client):
    approver = UserFactory()
    running = CampaignFactory(status=CampaignStatus.RUNNING, approved_by=approver, approved_at=timezone.now())
    done = CampaignFactory(status=CampaignStatus.COMPLETED, approved_by=approver, approved_at=timezone.now())
    for campaign in (running, done):
        counters_add(Counter({
            (campaign.id, "", "targeted", ""): 10,
            (campaign.id, "rcs", "sent", ""): 4,
            (campaign.id, "rcs", "failed", "400"): 1,
        }))

    found = samples(scrape(client))
    assert value(found, "plusmessage_campaigns", status="running") == 1
    assert value(found, "plusmessage_campaigns", status="completed") == 1
    assert value(found, "plusmessage_campaign_targeted", campaign=str(running.id)) == 10
    assert value(found, "plusmessage_campaign_processed", campaign=str(running.id)) == 5
    assert value(found, "plusmessage_campaign_progress_ratio", campaign=str(running.id)) == 0.5
    assert ("plusmessage_campaign_targeted", frozenset({("campaign", str(done.id))})) not in found


@pytest.mark.django_db
def test_webhook_delivery_failures(client):
    endpoint = WebhookEndpoint.objects.create(
        organization=OfficialAccountFactory().organization, url="https://hooks.example.jp/in",
        events=["message.sent"], secret="whsec_test",
    )
    WebhookDelivery.objects.create(
        endpoint=endpoint, event_type="message.sent", payload={}, status=WebhookDeliveryStatus.FAILED, attempts=8
    )
    WebhookDelivery.objects.create(endpoint=endpoint, event_type="message.sent", payload={}, attempts=2)
    WebhookDelivery.objects.create(endpoint=endpoint, event_type="message.sent", payload={})
    WebhookDelivery.objects.create(
        endpoint=endpoint, event_type="message.sent", payload={}, status=WebhookDeliveryStatus.SUCCEEDED, attempts=1
    )

    found = samples(scrape(client))
    assert value(found, "plusmessage_webhook_deliveries", status="failed") == 1
    assert value(found, "plusmessage_webhook_deliveries", status="pending") == 2
    assert value(found, "plusmessage_webhook_deliveries", status="succeeded") == 1
    assert value(found, "plusmessage_webhook_deliveries_retrying") == 1


@pytest.mark.django_db
def test_import_job_durations(client):
    contact_list = ContactListFactory()
    start = timezone.now() - timedelta(hours=1)
    for status, seconds in ((ImportStatus.DONE, 3), (ImportStatus.DONE, 120), (ImportStatus.FAILED, 10)):
        ImportJob.objects.create(
            organization=contact_list.organization, contact_list=contact_list, original_name="contacts.csv",
            file_format="csv", status=status, started_at=start, finished_at=start + timedelta(seconds=seconds),
        )
    ImportJob.objects.create(
        organization=contact_list.organization, contact_list=contact_list, original_name="contacts.csv",
        file_format="csv", status=ImportStatus.RUNNING, started_at=start,
    )

    found = samples(scrape(client))
    assert value(found, "plusmessage_import_jobs", status="running") == 1
    assert value(found, "plusmessage_import_jobs", status="done") == 2
    name = "plusmessage_import_job_duration_seconds"
    assert value(found, f"{name}_bucket", status="done", le="5.0") == 1
    assert value(found, f"{name}_bucket", status="done", le="300.0") == 2
    assert value(found, f"{name}_count", status="done") == 2
    assert value(found, f"{name}_sum", status="done") == 123
    assert value(found, f"{name}_count", status="failed") == 1


@pytest.mark.django_db
def test_every_source_answered(client):
    found = samples(scrape(client))
    sources = {dict(labels)["source"]: v for (name, labels), v in found.items() if name == "plusmessage_metrics_source_up"}
    assert sources == dict.fromkeys(
        ["deliveries", "queues", "receipts", "campaigns", "webhooks", "imports", "gateways"], 1
    )


# -- gateway requests recorded by another process --------------------------------------------------

GATEWAY_CALLS = textwrap.dedent(
    """
    import sys, time, uuid
    import django
    django.setup()
    from accounts.models import GatewayAccount
    from messaging.engine.send import _at_slot, process_sender
    from messaging.gateways import NotReachable, OutboundMessage, gateway_for

    # Above STRICT_RATE_BELOW: one wait for the slot, however late the process wakes.
    account = GatewayAccount(kind="rbm", base_url=sys.argv[1], rate_per_second=5000,
                             credentials={"agent_id": "agent-test", "bearer_token": "bearer-test"})
    rbm = gateway_for(account)
    sender = process_sender.open()
    sender.run(rbm.send(sender.session, OutboundMessage(
        message_id=str(uuid.uuid4()), phone="+819011140001", content={"text": "ご予約ありがとうございます。"})))
    try:
        sender.run(rbm.send(sender.session, OutboundMessage(
            message_id=str(uuid.uuid4()), phone="+819011140002", content={"text": "ご予約ありがとうございます。"})))
    except NotReachable:
        pass
    sender.run(_at_slot(time.time() + 0.05, account, "bulk"))
    print("done")
    """
)


@pytest.mark.django_db
def test_gateway_requests_made_in_another_process_show_up(client, sandbox, clean_gateway_metrics):  # noqa: F811
    sandbox.register_rbm(agent_id="agent-test", bearer_token="bearer-test", client_token="client-test")
    sandbox.profile("+819011140001", "android_plus_message")
    sandbox.profile("+819011140002", "iphone_no_app")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "REDIS_URL": django_settings.REDIS_URL}
    result = subprocess.run(
        [sys.executable, "-c", GATEWAY_CALLS, sandbox.url], cwd=BASE_DIR, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]

    found = samples(scrape(client))
    assert value(found, "plusmessage_gateway_requests_total", gateway="rbm", operation="send", outcome="200") == 1
    assert value(found, "plusmessage_gateway_requests_total", gateway="rbm", operation="send", outcome="404") == 1
    latency = "plusmessage_gateway_request_duration_seconds"
    assert value(found, f"{latency}_count", gateway="rbm", operation="send") == 2
    assert value(found, f"{latency}_bucket", gateway="rbm", operation="send", le="+Inf") == 2
    assert 0 < value(found, f"{latency}_sum", gateway="rbm", operation="send") < 20
    assert value(found, "plusmessage_gateway_throttle_waits_total", gateway="rbm") == 1
    assert 0 < value(found, "plusmessage_gateway_throttle_wait_seconds_total", gateway="rbm") <= 0.05
    text = scrape(client)
    assert "819011140001" not in text and "ご予約" not in text


@pytest.fixture
def refused_url():
    """A loopback address bound but not listening: every connection to it is refused at once."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


@pytest.mark.django_db
def test_errors_are_counted_by_kind_through_the_adapters(client, sandbox, refused_url, clean_gateway_metrics):  # noqa: F811
    sandbox.register_cm(product_token="product-test", callback_secret="secret-test")
    cm = gateway_for(GatewayAccount(
        kind="cm", base_url=sandbox.url, credentials={"product_token": "product-test", "callback_secret": "secret-test"}
    ))
    rbm = gateway_for(GatewayAccount(kind="rbm", base_url=refused_url, credentials={"agent_id": "a", "bearer_token": "b"}))
    sms = OutboundMessage(message_id=str(uuid.uuid4()), phone="+819011140003", sms_text="【デモ商店】ご予約ありがとうございます。")

    async def calls():
        async with aiohttp.ClientSession() as session:
            sandbox.configure(faults={"fail_next": 1, "error_status": 429})
            first = await cm.send_batch(session, [sms])
            second = await cm.send_batch(session, [sms])
            with pytest.raises(Retryable):
                await rbm.capability(session, "+819011140003")
            return first, second

    first, second = asyncio.run(calls())
    assert isinstance(first[0], Retryable) and first[0].code == "429"
    assert isinstance(second[0], SendResult)
    gateway_metrics.flush()

    found = samples(scrape(client))
    requests = "plusmessage_gateway_requests_total"
    assert value(found, requests, gateway="cm", operation="send_batch", outcome="429") == 1
    assert value(found, requests, gateway="cm", operation="send_batch", outcome="200") == 1
    assert value(found, requests, gateway="rbm", operation="capability", outcome="connect_error") == 1
    assert value(found, "plusmessage_gateway_request_duration_seconds_count", gateway="cm", operation="send_batch") == 2


@pytest.mark.django_db
def test_the_grafana_dashboard_charts_every_family(client, clean_gateway_metrics):
    gateway_metrics.request_observed("rbm", "send", 0.01, "200")
    gateway_metrics.throttle_wait_observed("rbm", 0.01)
    gateway_metrics.flush()
    families = {family.name for family in text_string_to_metric_families(scrape(client))}
    dashboard = json.loads((BASE_DIR / "docs" / "grafana" / "plusmessage.json").read_text())
    expressions = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    assert len(families) == 19
    charted = set(re.findall(r"plusmessage_\w+", expressions))
    suffixes = ("", "_total", "_bucket")
    assert not [name for name in families if not any(name + suffix in charted for suffix in suffixes)]
