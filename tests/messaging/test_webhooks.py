"""Webhook endpoints: verified, stored once per (provider, event id), answered 200, applied after commit."""

import asyncio
import base64
import hashlib
import hmac
import json

import aiohttp
import pytest
from django.urls import reverse

from accounts.models import GatewayKind
from messaging.gateways import OutboundMessage, gateway_for
from messaging.models import Channel, Delivery, DeliveryStatus, ProviderEvent
from tests.accounts.factories import GatewayAccountFactory
from tests.messaging.factories import DeliveryFactory

CLIENT_TOKEN = "client-webhook"
SECRET = "cm-callback-secret"


@pytest.fixture(autouse=True)
def enqueue_per_request(settings):
    """One apply task per request, so a test can count them; the end-to-end tests batch as in production."""
    settings.WEBHOOK_ENQUEUE_INTERVAL = 0


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in-process, so a test sees the task that was enqueued after commit do its work."""
    from config.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def rbm_account(db):
    return GatewayAccountFactory(
        kind=GatewayKind.RBM,
        credentials={"agent_id": "agent-w", "bearer_token": "bearer-w", "client_token": CLIENT_TOKEN},
    )


@pytest.fixture
def cm_account(db):
    return GatewayAccountFactory(
        kind=GatewayKind.CM, credentials={"product_token": "product-w", "callback_secret": SECRET}
    )


def signed(payload: dict, token: str = CLIENT_TOKEN) -> tuple[bytes, str]:
    data = json.dumps(payload).encode()
    body = json.dumps(
        {
            "message": {"data": base64.b64encode(data).decode(), "messageId": "1", "publishTime": "2026-11-26T01:00:00Z"},
            "subscription": "projects/rbm-agent-w/subscriptions/rbm-agent-subscription",
        }
    ).encode()
    return body, base64.b64encode(hmac.new(token.encode(), data, hashlib.sha512).digest()).decode()


def delivered(event_id="MxEvent1", message_id="not-a-delivery"):
    return {
        "senderPhoneNumber": "+819012345678",
        "eventType": "DELIVERED",
        "eventId": event_id,
        "messageId": message_id,
        "sendTime": "2026-11-26T01:00:00.123456789Z",
        "agentId": "agent-w",
    }


def post_rbm(client, account, body, signature=None):
    headers = {"HTTP_X_GOOG_SIGNATURE": signature} if signature is not None else {}
    return client.post(
        reverse("messaging:webhook_rbm", args=[account.pk]), data=body, content_type="application/json", **headers
    )


def test_signed_rbm_event_is_stored_and_applied_after_commit(
    client, rbm_account, eager_tasks, django_capture_on_commit_callbacks
):
    body, signature = signed(delivered())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_rbm(client, rbm_account, body, signature)
    assert response.status_code == 200
    [event] = ProviderEvent.objects.all()
    assert (event.provider, event.event_id) == ("rbm", "MxEvent1")
    assert event.payload["kind"] == "delivered" and event.payload["message_id"] == "not-a-delivery"
    assert len(callbacks) == 1
    event.refresh_from_db()
    assert event.applied_at is not None  # apply_provider_events ran on exactly this event


@pytest.mark.parametrize("tamper", ["unsigned", "wrong_key", "body_changed", "signature_of_other_event"])
def test_bad_signatures_are_refused_and_nothing_is_stored(client, rbm_account, django_capture_on_commit_callbacks, tamper):
    body, signature = signed(delivered())
    if tamper == "unsigned":
        signature = None
    elif tamper == "wrong_key":
        signature = signed(delivered(), token="guessed")[1]
    elif tamper == "body_changed":
        body = signed(delivered(message_id="someone-else"))[0]
    else:
        signature = signed(delivered(event_id="other"))[1]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_rbm(client, rbm_account, body, signature)
    assert response.status_code == 403
    assert ProviderEvent.objects.count() == 0
    assert callbacks == []


def test_replayed_event_is_stored_and_enqueued_once(client, rbm_account, django_capture_on_commit_callbacks):
    body, signature = signed(delivered())
    with django_capture_on_commit_callbacks(execute=False) as first:
        assert post_rbm(client, rbm_account, body, signature).status_code == 200
    with django_capture_on_commit_callbacks(execute=False) as replay:
        assert post_rbm(client, rbm_account, body, signature).status_code == 200
    assert ProviderEvent.objects.count() == 1
    assert len(first) == 1 and replay == []


def test_rbm_handshake(client, rbm_account):
    answer = client.post(
        reverse("messaging:webhook_rbm", args=[rbm_account.pk]),
        data=json.dumps({"clientToken": CLIENT_TOKEN, "secret": "98765"}),
        content_type="application/json",
    )
    assert answer.status_code == 200 and answer.json() == {"secret": "98765"}
    refused = client.post(
        reverse("messaging:webhook_rbm", args=[rbm_account.pk]),
        data=json.dumps({"clientToken": "guess", "secret": "98765"}),
        content_type="application/json",
    )
    assert refused.status_code == 403 and ProviderEvent.objects.count() == 0


def test_unknown_gateway_and_wrong_kind(client, rbm_account, cm_account):
    body, signature = signed(delivered())
    assert post_rbm(client, cm_account, body, signature).status_code == 404
    missing = client.post(reverse("messaging:webhook_rbm", args=[999_999]), data=body, content_type="application/json")
    assert missing.status_code == 404
    assert client.get(reverse("messaging:webhook_rbm", args=[rbm_account.pk])).status_code == 405


def cm_report(reference="ref-1-sms", code=2):
    return json.dumps(
        {
            "messages": {
                "msg": {
                    "received": "2026-11-26T10:00:00",
                    "to": "00819012345678",
                    "reference": reference,
                    "status": {"code": code, "errorCode": None, "errorDescription": None},
                    "channel": "SMS",
                }
            }
        }
    )


def test_cm_callback_with_the_url_secret(client, cm_account, django_capture_on_commit_callbacks):
    url = reverse("messaging:webhook_cm", args=[cm_account.pk, SECRET])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.post(url, data=cm_report(), content_type="application/json").status_code == 200
        assert client.post(url, data=cm_report(), content_type="application/json").status_code == 200
    [event] = ProviderEvent.objects.all()
    assert (event.provider, event.payload["kind"], event.payload["channel"]) == ("cm", "delivered", "sms")
    assert len(callbacks) == 1


def test_cm_callback_with_a_wrong_secret_is_refused(client, cm_account, django_capture_on_commit_callbacks):
    url = reverse("messaging:webhook_cm", args=[cm_account.pk, "guessed-secret"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url, data=cm_report(), content_type="application/json")
    assert response.status_code == 403
    assert ProviderEvent.objects.count() == 0 and callbacks == []


def test_cm_callback_paths_are_not_logged(client, cm_account, caplog):
    for url in (
        reverse("messaging:webhook_cm", args=[cm_account.pk, SECRET]),
        reverse("messaging:webhook_cm", args=[cm_account.pk, "guessed-secret"]),
    ):
        client.get(url)
        client.post(url, data="not json", content_type="application/json")
    assert SECRET not in caplog.text and "guessed-secret" not in caplog.text


def test_cm_callback_that_is_not_a_callback_is_a_400(client, cm_account):
    url = reverse("messaging:webhook_cm", args=[cm_account.pk, SECRET])
    assert client.post(url, data="{\"hello\": 1}", content_type="application/json").status_code == 400
    assert client.post(url, data="not json", content_type="application/json").status_code == 400
    assert ProviderEvent.objects.count() == 0


def test_cm_inbound_message_is_stored(client, cm_account):
    url = reverse("messaging:webhook_cm", args=[cm_account.pk, SECRET])
    mo = {
        "reference": "5b0c1e3a-0000-4000-8000-00000000abcd",
        "from": {"number": "00819012345678", "name": ""},
        "to": {"number": "DEMOSHOP"},
        "message": {"text": "配信停止"},
        "timeUtc": "2026-11-26T01:00:00",
        "channel": "SMS",
    }
    assert client.post(url, data=json.dumps(mo), content_type="application/json").status_code == 200
    [event] = ProviderEvent.objects.all()
    assert event.payload["kind"] == "inbound_text" and event.payload["text"] == "配信停止"


# -- end to end: a real sandbox posts real, signed callbacks to a live console -----------------------
def test_sandbox_receipts_come_back_signed_and_are_applied(sandbox, live_server, eager_tasks, settings):
    settings.WEBHOOK_ENQUEUE_INTERVAL = 0.05
    account = GatewayAccountFactory(
        kind=GatewayKind.RBM,
        base_url=sandbox.url,
        credentials={"agent_id": "agent-e2e", "bearer_token": "bearer-e2e", "client_token": "client-e2e"},
    )
    sandbox.register_rbm(
        agent_id="agent-e2e",
        bearer_token="bearer-e2e",
        client_token="client-e2e",
        gateway_id=account.pk,
        webhook_url=f"{live_server.url}/messaging/webhooks/rbm/{account.pk}/",
    )
    delivery = DeliveryFactory(channel=Channel.RCS, status=DeliveryStatus.SENT)
    phone = delivery.contact.phone
    sandbox.profile(str(phone), "android_plus_message")
    outbound = OutboundMessage(message_id=str(delivery.uuid), phone=str(phone), content={"text": "発送しました"})

    async def send():
        async with aiohttp.ClientSession() as session:
            return await gateway_for(account).send(session, outbound)

    asyncio.run(send())
    sandbox.wait_for(lambda: ProviderEvent.objects.filter(applied_at__isnull=False).count() == 2, timeout=15)
    assert sorted(ProviderEvent.objects.values_list("payload__kind", flat=True)) == ["delivered", "read"]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.READ
    assert sandbox.get("webhooks")["acknowledged"] == 2
    assert [m["count"] for m in sandbox.inbox(str(phone))] == [1]


def test_sandbox_cm_receipts_are_applied(sandbox, live_server, eager_tasks):
    account = GatewayAccountFactory(
        kind=GatewayKind.CM,
        base_url=sandbox.url,
        credentials={"product_token": "product-e2e", "callback_secret": "secret-e2e"},
    )
    sandbox.register_cm(
        product_token="product-e2e",
        callback_secret="secret-e2e",
        gateway_id=account.pk,
        webhook_url=f"{live_server.url}/messaging/webhooks/cm/{account.pk}/secret-e2e/",
    )
    delivery = DeliveryFactory(channel=Channel.SMS, status=DeliveryStatus.SENT)
    phone = str(delivery.contact.phone)
    sandbox.profile(phone, "rakuten_sms_only")
    outbound = OutboundMessage(
        message_id=f"{delivery.uuid}-sms", phone=phone, sms_text="発送しました", sms_sender="DEMO"
    )

    async def send():
        async with aiohttp.ClientSession() as session:
            return await gateway_for(account).send(session, outbound)

    asyncio.run(send())
    sandbox.wait_for(lambda: ProviderEvent.objects.filter(applied_at__isnull=False).exists(), timeout=15)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert Delivery.objects.filter(pk=delivery.pk, delivered_at__isnull=False).exists()
    assert [(m["channel"], m["count"]) for m in sandbox.inbox(phone)] == [("sms", 1)]
