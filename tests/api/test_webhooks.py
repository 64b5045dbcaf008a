"""Outbound webhooks against a local receiver: what is emitted (and what is not), the signature,
retries with back-off, giving up after the window, disabling a failing endpoint, secret rotation."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from messaging import outbound_webhooks as ow
from messaging import tasks
from messaging.gateways.base import NormalizedEvent
from messaging.models import Delivery, DeliveryStatus
from messaging.signals import delivery_status_changed, inbound_received
from tests.campaigns.factories import CampaignFactory, ContactFactory
from tests.messaging.conftest import webhook_sink  # noqa: F401
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _receivers():
    ow.connect_receivers()


@pytest.fixture
def scheduled(monkeypatch):
    """Retries the worker would schedule: (delivery id, countdown)."""
    calls = []
    monkeypatch.setattr(tasks.deliver_webhook, "apply_async",
                        lambda args, countdown=None, **kw: calls.append((args[0], countdown)))
    monkeypatch.setattr(tasks.deliver_webhook, "delay", lambda *args: calls.append((args[0], 0)))
    return calls


def single_message(tenant, **fields):
    contact = ContactFactory(organization=tenant.organization)
    return DeliveryFactory(organization=tenant.organization, campaign=None, contact=contact,
                           official_account=tenant.account, client_reference="ref-1", **fields)


def test_message_events_only_for_messages_sent_on_their_own(tenant, webhook_sink, scheduled,
                                                            django_assert_num_queries):
    endpoint = ow.endpoint_create(tenant.organization, webhook_sink.url + "/hook", ["message.delivered"])
    single = single_message(tenant, channel="rcs", status=DeliveryStatus.DELIVERED)
    campaign = CampaignFactory(organization=tenant.organization, official_account=tenant.account,
                               created_by=tenant.owner)
    bulk = [DeliveryFactory(organization=tenant.organization, campaign=campaign) for _ in range(3)]
    with django_assert_num_queries(0):  # a campaign batch costs nothing here
        delivery_status_changed.send(sender=None, change="delivered",
                                     deliveries=[(d.pk, campaign.pk, "rcs") for d in bulk])
    delivery_status_changed.send(sender=None, change="read", deliveries=[(single.pk, None, "rcs")])  # not subscribed
    delivery_status_changed.send(sender=None, change="delivered",
                                 deliveries=[(single.pk, None, "rcs"), *[(d.pk, campaign.pk, "rcs") for d in bulk]])
    rows = list(WebhookDelivery.objects.all())
    assert len(rows) == 1 and rows[0].endpoint == endpoint and rows[0].event_type == "message.delivered"
    assert rows[0].payload["data"]["message"]["id"] == str(single.uuid)
    assert rows[0].payload["data"]["message"]["client_reference"] == "ref-1"


def test_delivery_is_signed_over_the_raw_body_with_a_timestamp(tenant, webhook_sink, scheduled):
    endpoint = ow.endpoint_create(tenant.organization, webhook_sink.url + "/hook", ["message.fell_back"])
    single = single_message(tenant, channel="sms", fallback_reason="not_capable", status=DeliveryStatus.SENT)
    delivery_status_changed.send(sender=None, change="fell_back", deliveries=[(single.pk, None, "sms")])
    delivery = WebhookDelivery.objects.get()
    assert ow.webhook_attempt(delivery.pk) == "succeeded"
    [received] = webhook_sink.received
    headers = {k.lower(): v for k, v in received["headers"].items()}
    assert headers["x-plusmessage-event"] == "message.fell_back"
    assert headers["x-plusmessage-delivery"] == str(delivery.event_id)
    signature = headers["x-plusmessage-signature"]
    assert ow.verify_signature(endpoint.secret, signature, received["body"])
    assert not ow.verify_signature(endpoint.secret, signature, received["body"] + b" ")
    assert not ow.verify_signature("whsec_wrong", signature, received["body"])
    assert not ow.verify_signature(endpoint.secret, signature, received["body"], now=timezone.now().timestamp() + 600)
    payload = json.loads(received["body"])
    assert payload["type"] == "message.fell_back" and payload["data"]["message"]["fallback_reason"] == "not_capable"
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 1
    assert WebhookAttempt.objects.get().status_code == 200


def test_failures_are_retried_with_growing_jittered_waits_and_logged(tenant, webhook_sink, scheduled):
    ow.endpoint_create(tenant.organization, webhook_sink.url + "/hook", ["inbound.received"])
    webhook_sink.statuses = [500, 503, 502]
    event = NormalizedEvent(provider="rbm", event_id="ev-1", kind="inbound_text", channel="rcs",
                            phone="+819012345678", text="停止しないで", gateway_id=tenant.rbm.pk)
    inbound_received.send(sender=None, events=[event])
    delivery = WebhookDelivery.objects.get()
    waits = []
    for _ in range(3):
        assert ow.webhook_attempt(delivery.pk) == "retry"
        waits.append(scheduled[-1][1])
        assert ow.webhook_attempt(delivery.pk) == "skipped"  # not due yet
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert 5 <= waits[0] <= 10 and 10 <= waits[1] <= 20 and 20 <= waits[2] <= 40
    assert ow.webhook_attempt(delivery.pk) == "succeeded"
    assert [a.status_code for a in WebhookAttempt.objects.order_by("id")] == [500, 503, 502, 200]
    assert len(webhook_sink.received) == 4
    body = json.loads(webhook_sink.received[-1]["body"])
    assert body["data"]["inbound"]["text"] == "停止しないで" and body["data"]["inbound"]["from"] == "+819012345678"
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.failing_since is None and endpoint.consecutive_failures == 0


def test_back_off_spans_more_than_a_day_before_giving_up(tenant, webhook_sink, scheduled):
    total, attempt = 0.0, 0
    while total < 24 * 3600:
        attempt += 1
        total += ow.backoff_seconds(attempt)
        assert attempt < 100
    assert ow.retry_window() >= timedelta(hours=24)
    ow.endpoint_create(tenant.organization, "http://127.0.0.1:9/refused", ["message.failed"])
    single = single_message(tenant, status=DeliveryStatus.FAILED)
    delivery_status_changed.send(sender=None, change="failed", deliveries=[(single.pk, None, "rcs")])
    delivery = WebhookDelivery.objects.get()
    assert ow.webhook_attempt(delivery.pk) == "retry"
    assert "ConnectionRefused" in WebhookAttempt.objects.get().error or WebhookAttempt.objects.get().error
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now(), created_at=timezone.now() - ow.retry_window())
    assert ow.webhook_attempt(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 2


def test_an_endpoint_that_keeps_failing_is_disabled_and_the_organization_told(tenant, webhook_sink, scheduled,
                                                                             settings, mailoutbox):
    settings.WEBHOOK_DISABLE_AFTER_SECONDS = 0
    settings.WEBHOOK_DISABLE_MIN_FAILURES = 3
    tenant.owner.email = "owner@example.jp"
    tenant.owner.save()
    endpoint = ow.endpoint_create(tenant.organization, webhook_sink.url + "/hook", ["message.sent"])
    webhook_sink.statuses = [500] * 10
    single = single_message(tenant, status=DeliveryStatus.SENT, channel="rcs")
    for _ in range(3):
        delivery_status_changed.send(sender=None, change="sent", deliveries=[(single.pk, None, "rcs")])
    for delivery in WebhookDelivery.objects.all():
        ow.webhook_attempt(delivery.pk)
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at and "3 failed attempts" in endpoint.disabled_reason
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["owner@example.jp"]
    delivery_status_changed.send(sender=None, change="sent", deliveries=[(single.pk, None, "rcs")])
    assert WebhookDelivery.objects.count() == 3  # nothing new for a disabled endpoint
    ow.endpoint_enable(endpoint)
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.disabled_at is None and endpoint.consecutive_failures == 0


def test_rotation_signs_with_both_secrets_for_a_while(tenant, webhook_sink, scheduled):
    endpoint = ow.endpoint_create(tenant.organization, webhook_sink.url + "/hook", ["message.read"])
    old = endpoint.secret
    ow.endpoint_rotate_secret(endpoint)
    assert endpoint.secret != old
    single = single_message(tenant, status=DeliveryStatus.READ, channel="rcs")
    delivery_status_changed.send(sender=None, change="read", deliveries=[(single.pk, None, "rcs")])
    ow.webhook_attempt(WebhookDelivery.objects.get().pk)
    received = webhook_sink.received[-1]
    signature = {k.lower(): v for k, v in received["headers"].items()}["x-plusmessage-signature"]
    assert signature.count("v1=") == 2
    assert ow.verify_signature(old, signature, received["body"])
    assert ow.verify_signature(endpoint.secret, signature, received["body"])
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    endpoint.refresh_from_db()
    assert endpoint.signing_secrets() == [endpoint.secret]


def test_the_readme_verification_snippet_works(tenant):
    """The integration guide's few lines of Python, run as written."""
    import hashlib
    import hmac
    import time

    secret, body = "whsec_test", b'{"type":"message.delivered"}'
    header = ow.signature_header([secret], body)

    def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
        fields = dict(part.split("=", 1) for part in header.split(",") if not part.startswith("v1="))
        signatures = [part[3:] for part in header.split(",") if part.startswith("v1=")]
        timestamp = int(fields["t"])
        if abs(time.time() - timestamp) > tolerance:
            return False
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return any(hmac.compare_digest(expected, signature) for signature in signatures)

    assert verify(secret, header, body) and not verify("other", header, body)
    assert Delivery.objects.count() == 0
