"""The ASGI receipt receiver (messaging/receipt_server.py), driven as uvicorn drives it.

Each test calls the real app with an ASGI scope, ``receive`` and ``send`` on an asyncio loop; the app
does its database work on its own thread, so these tests use real transactions.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

import pytest
from django.db import connections, transaction
from django.db.backends.signals import connection_created

from accounts.models import GatewayAccount
from messaging.models import Channel, DeliveryStatus, ProviderEvent
from messaging.receipt_server import MAX_BODY, ReceiptReceiver, receipt_receiver
from messaging.webhook_intake import _gateways as webhook_gateways
from tests.messaging.factories import DeliveryFactory
from tests.messaging.test_webhooks import (  # noqa: F401  (fixtures)
    CLIENT_TOKEN,
    SECRET,
    cm_account,
    cm_report,
    delivered,
    eager_tasks,
    rbm_account,
    signed,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def apply_in_process(settings, eager_tasks):  # noqa: F811
    """Apply tasks run where they are enqueued (nothing goes to a broker), one per commit."""
    settings.WEBHOOK_ENQUEUE_INTERVAL = 0


def _close_thread_connections():
    connections.close_all()


@pytest.fixture
def receiver():
    webhook_gateways.clear()
    app = ReceiptReceiver()
    yield app
    app._db.submit(_close_thread_connections).result()
    app._db.shutdown(wait=True)


@pytest.fixture
def production_app():
    """config.asgi.application, which routes /messaging/webhooks/ to the module's receipt_receiver."""
    from config.asgi import application

    webhook_gateways.clear()
    yield application
    receipt_receiver._db.submit(_close_thread_connections).result()
    webhook_gateways.clear()


# -- driving the app ------------------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self):
        return json.loads(self.body)


async def call(app, path, body=b"", *, method="POST", headers=(), chunk_size=None, on_start=None) -> Answer:
    if isinstance(body, str):
        body = body.encode()
    chunks = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)] if chunk_size else [body]
    incoming = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks or [b""])
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start" and on_start is not None:
            await on_start()
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), timeout=60)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return Answer(sent[0]["status"], dict(sent[0]["headers"]), sent[1].get("body", b""))


def run(coroutine):
    return asyncio.run(coroutine)


def rbm_path(account) -> str:
    return f"/messaging/webhooks/rbm/{account.pk}/"


def cm_path(account, secret=SECRET) -> str:
    return f"/messaging/webhooks/cm/{account.pk}/{secret}/"


def goog(signature: str):
    return [(b"x-goog-signature", signature.encode())]


def signed_data(data: bytes, token: str = CLIENT_TOKEN) -> tuple[bytes, str]:
    """A Pub/Sub push envelope around arbitrary ``message.data`` bytes, correctly signed."""
    body = json.dumps({"message": {"data": base64.b64encode(data).decode(), "messageId": "9"}}).encode()
    return body, base64.b64encode(hmac.new(token.encode(), data, hashlib.sha512).digest()).decode()


def stored():
    return sorted(ProviderEvent.objects.values_list("provider", "event_id"))


def _stored_from_another_thread():
    try:
        return stored()
    finally:
        connections.close_all()


# -- 1. stored, then answered ---------------------------------------------------------------------
def test_signed_rbm_receipt_is_stored_before_the_200(receiver, rbm_account):
    delivery = DeliveryFactory(channel=Channel.RCS, status=DeliveryStatus.SENT)
    body, signature = signed(delivered(event_id="ev-1", message_id=str(delivery.uuid)))
    seen_when_answering = []

    async def on_start():
        seen_when_answering.append(await asyncio.to_thread(_stored_from_another_thread))

    answer = run(call(receiver, rbm_path(rbm_account), body, headers=goog(signature), on_start=on_start))

    assert answer.status == 200
    assert seen_when_answering == [[("rbm", "ev-1")]]  # committed before the status line went out
    event = ProviderEvent.objects.get()
    assert event.payload["kind"] == "delivered"
    assert event.payload["message_id"] == str(delivery.uuid)
    assert event.payload["gateway_id"] == rbm_account.pk


# -- 2. refusals ----------------------------------------------------------------------------------
def test_a_bad_signature_is_403_and_nothing_is_stored(receiver, rbm_account):
    body, signature = signed(delivered(event_id="ev-bad"))
    tampered = {
        "unsigned": (body, []),
        "wrong key": (body, goog(signed(delivered(event_id="ev-bad"), token="guessed")[1])),
        "body changed": (signed(delivered(event_id="ev-bad", message_id="someone-else"))[0], goog(signature)),
        "another event's signature": (body, goog(signed(delivered(event_id="ev-other"))[1])),
        "garbage signature": (body, [(b"x-goog-signature", b"\xff\xfe not base64")]),
        "not an envelope": (b'{"eventId": "ev-bad"}', goog(signature)),
    }
    for case, (tampered_body, headers) in tampered.items():
        answer = run(call(receiver, rbm_path(rbm_account), tampered_body, headers=headers))
        assert answer.status == 403, case
    assert ProviderEvent.objects.count() == 0
    assert run(call(receiver, rbm_path(rbm_account), body, headers=goog(signature))).status == 200  # the control
    assert stored() == [("rbm", "ev-bad")]


def test_an_unknown_gateway_or_the_wrong_kind_is_404(receiver, rbm_account, cm_account):
    body, signature = signed(delivered())
    missing = GatewayAccount.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000
    assert run(call(receiver, f"/messaging/webhooks/rbm/{missing}/", body, headers=goog(signature))).status == 404
    assert run(call(receiver, f"/messaging/webhooks/rbm/{cm_account.pk}/", body, headers=goog(signature))).status == 404
    assert run(call(receiver, cm_path(rbm_account), cm_report())).status == 404
    assert ProviderEvent.objects.count() == 0
    assert run(call(receiver, rbm_path(rbm_account), body, headers=goog(signature))).status == 200  # the control
    assert stored() == [("rbm", "MxEvent1")]


def test_anything_but_post_and_any_other_path_is_404(receiver, rbm_account):
    body, signature = signed(delivered())
    for method in ("GET", "PUT", "PATCH", "HEAD", "DELETE", "OPTIONS"):
        answer = run(call(receiver, rbm_path(rbm_account), body, method=method, headers=goog(signature)))
        assert answer.status == 404, method
    for path in (
        "/messaging/webhooks/",
        "/messaging/webhooks/rbm/",
        "/messaging/webhooks/rbm/{pk}",  # no trailing slash
        "/messaging/webhooks/rbm/x{pk}/",
        "/messaging/webhooks/sms/{pk}/",
        "/messaging/webhooks/rbm/{pk}/extra/more/",
        "/messaging/webhooks/rbm/-{pk}/",
        "/messaging/webhooks/rbm/{pk}/a-secret/",  # RBM takes no secret in the path (as messaging/urls.py)
        "/messaging/webhooks/cm/{pk}/",  # CM needs its callback secret in the path
    ):
        answer = run(call(receiver, path.format(pk=rbm_account.pk), body, headers=goog(signature)))
        assert answer.status == 404, path
    assert ProviderEvent.objects.count() == 0


def test_a_body_over_max_body_is_413(receiver, rbm_account):
    too_big = run(call(receiver, rbm_path(rbm_account), b"x" * (MAX_BODY + 1), chunk_size=64 * 1024))
    assert too_big.status == 413
    at_limit = run(call(receiver, rbm_path(rbm_account), b"x" * MAX_BODY, chunk_size=64 * 1024))
    assert at_limit.status == 403  # read in full, then refused as unsigned
    # A signed receipt padded to just over the limit is refused before anything is parsed.
    body, signature = signed(delivered(event_id="padded"))
    padded = body + b" " * (MAX_BODY + 1 - len(body))
    answer = run(call(receiver, rbm_path(rbm_account), padded, headers=goog(signature), chunk_size=100_000))
    assert answer.status == 413
    assert ProviderEvent.objects.count() == 0


def test_a_malformed_body_is_400(receiver, rbm_account, cm_account):
    for data in (b"not json", b"[1, 2]", b'"a string"', b"null"):
        body, signature = signed_data(data)  # a valid, signed envelope around a payload that is not an event
        assert run(call(receiver, rbm_path(rbm_account), body, headers=goog(signature))).status == 400, data
    for body in ("not json", '{"hello": 1}', "[1]", '[{"messages": {"msg": []}}, 2]'):
        assert run(call(receiver, cm_path(cm_account), body)).status == 400, body
    assert ProviderEvent.objects.count() == 0


# -- 3. the RBM registration handshake ------------------------------------------------------------
def test_the_handshake_is_answered_as_the_django_view_answers_it(client, receiver, rbm_account):
    for token, secret in ((CLIENT_TOKEN, "98765"), ("guessed", "98765"), (CLIENT_TOKEN, 42), ("", "98765")):
        payload = json.dumps({"clientToken": token, "secret": secret})
        view = client.post(rbm_path(rbm_account), data=payload, content_type="application/json")
        answer = run(call(receiver, rbm_path(rbm_account), payload))
        assert answer.status == view.status_code, (token, secret)
        if (token, secret) == (CLIENT_TOKEN, "98765"):
            assert answer.status == 200
            assert answer.json() == view.json() == {"secret": "98765"}
            assert answer.headers[b"content-type"] == view["Content-Type"].encode() == b"application/json"
        else:
            assert answer.status == 403, (token, secret)
    assert ProviderEvent.objects.count() == 0


# -- 4. CM.com status callbacks -------------------------------------------------------------------
def test_a_cm_status_callback_with_the_url_secret_is_stored(receiver, cm_account):
    assert run(call(receiver, cm_path(cm_account), cm_report())).status == 200
    [event] = ProviderEvent.objects.all()
    assert (event.provider, event.payload["kind"], event.payload["channel"]) == ("cm", "delivered", "sms")
    assert event.payload["message_id"] == "ref-1-sms"
    assert event.payload["gateway_id"] == cm_account.pk


def test_a_cm_status_callback_with_a_wrong_secret_is_403(receiver, cm_account):
    for secret in ("guessed-secret", SECRET + "x", SECRET[:-1], SECRET.upper()):
        assert run(call(receiver, cm_path(cm_account, secret), cm_report())).status == 403, secret
    assert ProviderEvent.objects.count() == 0


# -- 5. many at once: stored once each, in few commits ---------------------------------------------
@pytest.fixture
def provider_event_inserts():
    """Every INSERT into the provider event table on any new connection: (rows stored, in a transaction)."""
    table = ProviderEvent._meta.db_table
    seen = []

    def count(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith(f"INSERT INTO {table} "):
            seen.append((context["cursor"].rowcount, context["connection"].in_atomic_block))
        return result

    def attach(sender, connection, **kwargs):
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    connection_created.connect(attach, weak=False, dispatch_uid="test_receipt_server_inserts")
    yield seen
    connection_created.disconnect(dispatch_uid="test_receipt_server_inserts")


def test_concurrent_requests_are_each_stored_once_in_few_commits(receiver, rbm_account, provider_event_inserts):
    requests, distinct = 200, 160  # 40 requests repeat an event id already in the burst
    signed_requests = [signed(delivered(event_id=f"burst-{i % distinct}")) for i in range(requests)]

    async def burst():
        return await asyncio.gather(
            *(call(receiver, rbm_path(rbm_account), body, headers=goog(signature)) for body, signature in signed_requests)
        )

    started = time.monotonic()
    answers = run(burst())
    elapsed = time.monotonic() - started

    assert [answer.status for answer in answers] == [200] * requests
    assert stored() == sorted(("rbm", f"burst-{i}") for i in range(distinct))
    assert provider_event_inserts, "the INSERTs were not seen"
    assert len(provider_event_inserts) < requests // 2, (len(provider_event_inserts), elapsed)
    assert not any(in_transaction for _, in_transaction in provider_event_inserts)  # each INSERT is its commit
    assert sum(rows for rows, _ in provider_event_inserts) >= distinct

    # The same event once more, later: answered 200, stored once.
    body, signature = signed_requests[0]
    assert run(call(receiver, rbm_path(rbm_account), body, headers=goog(signature))).status == 200
    assert ProviderEvent.objects.filter(event_id="burst-0").count() == 1
    assert ProviderEvent.objects.count() == distinct


# -- 6. the gateway cache -------------------------------------------------------------------------
def test_the_cached_gateway_is_forgotten_when_the_gateway_is_saved(production_app, rbm_account):
    path = rbm_path(rbm_account)

    def post(event_id, token):
        body, signature = signed(delivered(event_id=event_id), token=token)
        return run(call(production_app, path, body, headers=goog(signature))).status

    assert post("first", CLIENT_TOKEN) == 200  # the adapter is now cached
    rotated = {**rbm_account.credentials, "client_token": "rotated-token"}
    GatewayAccount.objects.filter(pk=rbm_account.pk).update(credentials=rotated)  # no post_save
    assert post("cached", CLIENT_TOKEN) == 200  # still the cached adapter, with the old token
    assert post("too-early", "rotated-token") == 403

    rbm_account.credentials = rotated
    rbm_account.save()  # post_save: the receiver forgets the adapter
    assert post("old-token", CLIENT_TOKEN) == 403
    assert post("new-token", "rotated-token") == 200
    assert stored() == [("rbm", "cached"), ("rbm", "first"), ("rbm", "new-token")]


def test_a_separate_receiver_also_forgets_a_saved_gateway(receiver, rbm_account):
    def post(event_id, token):
        body, signature = signed(delivered(event_id=event_id), token=token)
        return run(call(receiver, rbm_path(rbm_account), body, headers=goog(signature))).status

    assert post("first", CLIENT_TOKEN) == 200
    rbm_account.credentials = {**rbm_account.credentials, "client_token": "rotated-token"}
    rbm_account.save()
    assert post("old-token", CLIENT_TOKEN) == 403


def test_a_gateway_saved_in_a_transaction_is_not_cached_stale(production_app, rbm_account):
    path = rbm_path(rbm_account)

    def post(event_id, token):
        body, signature = signed(delivered(event_id=event_id), token=token)
        return run(call(production_app, path, body, headers=goog(signature))).status

    with transaction.atomic():  # as the admin saves
        rbm_account.credentials = {**rbm_account.credentials, "client_token": "rotated-token"}
        rbm_account.save()
        assert post("during-save", CLIENT_TOKEN) == 200  # the old token is still the committed one
    assert post("after-commit", "rotated-token") == 200


# -- 7. applied to the deliveries -----------------------------------------------------------------
@pytest.mark.parametrize("interval", [0, 0.05])
def test_a_delivered_receipt_moves_a_sent_delivery_to_delivered(receiver, rbm_account, settings, interval):
    settings.WEBHOOK_ENQUEUE_INTERVAL = interval
    delivery = DeliveryFactory(channel=Channel.RCS, status=DeliveryStatus.SENT)
    other = DeliveryFactory(channel=Channel.RCS, status=DeliveryStatus.SENT)
    body, signature = signed(delivered(event_id=f"applied-{interval}", message_id=str(delivery.uuid)))

    assert run(call(receiver, rbm_path(rbm_account), body, headers=goog(signature))).status == 200

    deadline = time.monotonic() + 10
    while not ProviderEvent.objects.filter(applied_at__isnull=False).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    delivery.refresh_from_db()
    other.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.delivered_at is not None
    assert other.status == DeliveryStatus.SENT
    assert ProviderEvent.objects.get().applied_at is not None
