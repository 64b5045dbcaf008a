"""End to end on the real parts: a message sent through the API goes out on the priority lane (a
real Celery worker process) to the sandbox carrier, its receipts come back to the console, and the
organization's endpoint (a local receiver) gets signed message.* webhooks from the worker."""

import json

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey, Membership, Role, WebhookDelivery
from messaging import outbound_webhooks as ow
from messaging.models import Delivery, DeliveryStatus
from tests.messaging.conftest import sandbox, sandbox_server, webhook_sink  # noqa: F401
from tests.messaging.engine import engine, receiver, wait_until, worker  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


@pytest.fixture(autouse=True)
def _no_enqueue():
    """Here the sends really go to the worker (overrides the package's stub)."""
    return []


def test_api_message_to_signed_webhooks(engine, worker, webhook_sink):
    endpoint = ow.endpoint_create(engine.organization, webhook_sink.url + "/hooks",
                                  ["message.sent", "message.delivered", "message.read", "message.fell_back"])
    engine.sandbox.profile("+819077770001", "android_plus_message")
    worker(queues="celery,priority")
    # A key works only while its creator is a member of the organization.
    Membership.objects.create(organization=engine.organization, user=engine.user, role=Role.OWNER)
    _key, secret = ApiKey.generate(engine.organization, "e2e", ["send"], created_by=engine.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.post("/api/v1/messages/", {
        "to": "090-7777-0001", "official_account": engine.account.pk, "content": {"text": "ご予約を承りました。"},
        "sms_text": "ご予約を承りました。", "client_reference": "e2e-1",
    }, format="json")
    assert response.status_code == 201, response.json()
    message_id = response.json()["id"]
    try:
        wait_until(lambda: Delivery.objects.filter(uuid=message_id, status__gte=DeliveryStatus.DELIVERED).exists(),
                   timeout=60)
    except AssertionError:
        row = Delivery.objects.values("status", "channel", "error_code", "error_reason", "attempts").get(uuid=message_id)
        raise AssertionError(f"not delivered: {row}") from None
    wait_until(lambda: {"message.sent", "message.delivered"} <= {
        json.loads(item["body"])["type"] for item in webhook_sink.accepted()}, timeout=60)
    for item in webhook_sink.accepted():
        headers = {k.lower(): v for k, v in item["headers"].items()}
        assert ow.verify_signature(endpoint.secret, headers["x-plusmessage-signature"], item["body"])
        assert json.loads(item["body"])["data"]["message"]["id"] == message_id
    assert engine.sandbox.inbox("+819077770001")[0]["channel"] in ("rcs", "RCS")
    assert client.get(f"/api/v1/messages/{message_id}/").json()["channel"] == "rcs"
    assert WebhookDelivery.objects.filter(endpoint=endpoint, status="succeeded").count() >= 2
