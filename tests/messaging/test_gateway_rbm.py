"""The RBM adapter over real HTTP against the sandbox, and its parsers on Google's published shapes."""

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid

import aiohttp
import pytest

from accounts.models import GatewayAccount
from messaging.gateways import NotReachable, OutboundMessage, Permanent, Retryable, SendResult, gateway_for
from messaging.gateways.rbm import render_content_message

AGENT = "agent-test"
BEARER = "bearer-test"
CLIENT_TOKEN = "client-test"


def run(call):
    """Run ``call(session)`` with one shared aiohttp session, as the engine does."""

    async def main():
        async with aiohttp.ClientSession() as session:
            return await call(session)

    return asyncio.run(main())


def rbm_gateway(base_url, **credentials):
    account = GatewayAccount(
        kind="rbm",
        base_url=base_url,
        credentials={"agent_id": AGENT, "bearer_token": BEARER, "client_token": CLIENT_TOKEN, **credentials},
    )
    return gateway_for(account)


@pytest.fixture
def rbm(sandbox):
    sandbox.register_rbm(agent_id=AGENT, bearer_token=BEARER, client_token=CLIENT_TOKEN)
    return rbm_gateway(sandbox.url)


def message(phone, content=None, **kwargs):
    return OutboundMessage(
        message_id=kwargs.pop("message_id", str(uuid.uuid4())),
        phone=phone,
        content=content or {"text": "ご予約ありがとうございます。"},
        **kwargs,
    )


CARD = {
    "title": "秋のセール",
    "description": "全品20%オフ",
    "media": {"url": "https://shop.example.jp/sale.jpg", "height": "MEDIUM"},
    "buttons": [{"type": "open_url", "label": "詳しく見る", "url": "https://shop.example.jp/sale"}],
}
ALL_CHIPS = [
    {"type": "reply", "label": "はい", "postback": "yes"},
    {"type": "open_url", "label": "サイトへ", "url": "https://shop.example.jp/"},
    {"type": "dial", "label": "電話する", "phone": "+81312345678"},
    {"type": "location", "label": "地図", "latitude": 35.681, "longitude": 139.767, "query": "東京駅"},
    {
        "type": "calendar",
        "label": "予定に追加",
        "title": "ご来店予約",
        "start": "2026-12-01T10:00:00+09:00",
        "end": "2026-12-01T11:00:00+09:00",
    },
]
DOCUMENTS = {
    "text": {"text": "こんにちは"},
    "media": {"media": {"url": "https://shop.example.jp/coupon.png", "kind": "image"}},
    "card": {"card": CARD},
    "carousel": {"carousel": {"width": "MEDIUM", "cards": [CARD, {**CARD, "title": "冬のセール"}]}},
    "chips": {"text": "ご来店予定はありますか?", "chips": ALL_CHIPS},
}


def test_capability_single(sandbox, rbm):
    sandbox.profile("+819011110001", "android_plus_message")
    sandbox.profile("+819011110002", "iphone_no_app")
    sandbox.profile("+819011110003", "au_iphone_native_rcs")
    assert run(lambda s: rbm.capability(s, "+819011110001")) is True
    assert run(lambda s: rbm.capability(s, "+819011110002")) is False
    assert run(lambda s: rbm.capability(s, "+819011110003")) is True


def test_capability_batch(sandbox, rbm):
    profiles = {
        "+819011120001": "android_plus_message",
        "+819011120002": "iphone_no_app",
        "+819011120003": "rakuten_sms_only",
        "+819011120004": "data_only_mvno_unreachable",
        "+819011120005": "never_reads",
        "+819011120006": "offline_device",
    }
    sandbox.configure(profile_overrides=profiles)
    reachable = run(lambda s: rbm.capabilities(s, list(profiles)))
    assert reachable == {"+819011120001", "+819011120005", "+819011120006"}


def test_capability_batch_of_ten_thousand(sandbox, rbm):
    sandbox.configure(profile_mix={"android_plus_message": 1, "iphone_no_app": 1})
    phones = [f"+8190{n:08d}" for n in range(10_000)]
    reachable = run(lambda s: rbm.capabilities(s, phones))
    assert 4000 < len(reachable) < 6000
    assert all(sandbox.get(f"profiles/{p}")["rcs_capable"] for p in sorted(reachable)[:20])
    assert sandbox.tallies()["carrier"]["rbm_capability_checks"] == 10_000


@pytest.mark.parametrize("kind", sorted(DOCUMENTS))
def test_send_every_content_kind_reaches_the_handset(sandbox, rbm, kind):
    phone = "+819011130001"
    sandbox.profile(phone, "android_plus_message")
    outbound = message(phone, DOCUMENTS[kind], traffic_type="PROMOTION", ttl_seconds=3600)
    result = run(lambda s: rbm.send(s, outbound))
    assert result == SendResult(outbound.message_id, f"phones/{phone}/agentMessages/{outbound.message_id}")
    inbox = sandbox.wait_for(lambda: sandbox.inbox(phone))
    assert [(m["message_id"], m["channel"], m["count"]) for m in inbox] == [(outbound.message_id, "rcs", 1)]
    assert inbox[0]["content"] == render_content_message(DOCUMENTS[kind])


def test_render_uses_rbm_field_names():
    rendered = render_content_message({"carousel": {"width": "SMALL", "cards": [CARD, CARD]}, "chips": ALL_CHIPS})
    cards = rendered["richCard"]["carouselCard"]
    assert cards["cardWidth"] == "SMALL"
    assert cards["cardContents"][0]["media"] == {
        "height": "MEDIUM",
        "contentInfo": {"fileUrl": "https://shop.example.jp/sale.jpg", "forceRefresh": False},
    }
    assert cards["cardContents"][0]["suggestions"][0]["action"]["openUrlAction"] == {"url": "https://shop.example.jp/sale"}
    reply, url, dial, location, calendar = rendered["suggestions"]
    assert reply == {"reply": {"text": "はい", "postbackData": "yes"}}
    assert url["action"]["openUrlAction"]["url"] == "https://shop.example.jp/"
    assert dial["action"]["dialAction"] == {"phoneNumber": "+81312345678"}
    assert location["action"]["viewLocationAction"] == {
        "latLong": {"latitude": 35.681, "longitude": 139.767},
        "label": "東京駅",
    }
    assert calendar["action"]["createCalendarEventAction"] == {
        "startTime": "2026-12-01T01:00:00Z",
        "endTime": "2026-12-01T02:00:00Z",
        "title": "ご来店予約",
    }
    assert all(s.get("action", s.get("reply"))["postbackData"] for s in rendered["suggestions"])
    standalone = render_content_message({"card": CARD})["richCard"]["standaloneCard"]
    assert standalone["cardOrientation"] == "VERTICAL"
    assert standalone["cardContent"]["title"] == "秋のセール"
    assert render_content_message({"media": {"url": "https://a.example/x.mp4", "kind": "video"}}) == {
        "contentInfo": {"fileUrl": "https://a.example/x.mp4", "forceRefresh": False}
    }


def test_limits_enforced_before_anything_leaves(sandbox, rbm):
    phone = "+819011140001"
    sandbox.profile(phone, "android_plus_message")
    too_long = message(phone, {"text": "あ" * 2731})
    too_many_chips = message(phone, {"text": "x", "chips": [ALL_CHIPS[0]] * 12})
    long_label = message(phone, {"text": "x", "chips": [{**ALL_CHIPS[0], "label": "あ" * 26}]})
    for outbound in (too_long, too_many_chips, long_label):
        with pytest.raises(Permanent):
            run(lambda s, o=outbound: rbm.send(s, o))
    carrier = sandbox.tallies()["carrier"]
    assert carrier.get("rbm_accepted", 0) == 0 and carrier.get("rbm_invalid", 0) == 0


def test_not_reachable_on_send(sandbox, rbm):
    phone = "+819011150001"
    sandbox.profile(phone, "rakuten_sms_only")
    with pytest.raises(NotReachable) as caught:
        run(lambda s: rbm.send(s, message(phone)))
    assert caught.value.code == "404"
    assert sandbox.inbox(phone) == []


def test_idempotent_resend_reaches_the_handset_once(sandbox, rbm):
    phone = "+819011160001"
    sandbox.profile(phone, "android_plus_message")
    outbound = message(phone)
    first = run(lambda s: rbm.send(s, outbound))
    second = run(lambda s: rbm.send(s, outbound))
    assert first.message_id == second.message_id == outbound.message_id
    sandbox.wait_for(lambda: sandbox.inbox(phone))
    time.sleep(0.3)
    inbox = sandbox.inbox(phone)
    assert len(inbox) == 1 and inbox[0]["count"] == 1
    assert sandbox.tallies()["carrier"]["rbm_duplicates"] == 1


def test_timeout_after_the_request_left_is_outcome_unknown_and_resend_is_deduplicated(sandbox, rbm):
    phone = "+819011170001"
    sandbox.profile(phone, "android_plus_message")
    sandbox.configure(faults={"timeout_next": 1, "timeout_seconds": 2.0, "timeout_mode": "after_accept"})
    rbm.timeout_seconds = 0.5
    outbound = message(phone)
    with pytest.raises(Retryable) as caught:
        run(lambda s: rbm.send(s, outbound))
    assert caught.value.outcome_unknown is True
    assert run(lambda s: rbm.send(s, outbound)).message_id == outbound.message_id
    sandbox.wait_for(lambda: sandbox.inbox(phone))
    time.sleep(0.3)
    assert [m["count"] for m in sandbox.inbox(phone)] == [1]


def test_timeout_before_the_carrier_accepted_leaves_nothing_behind(sandbox, rbm):
    phone = "+819011170002"
    sandbox.profile(phone, "android_plus_message")
    sandbox.configure(faults={"timeout_next": 1, "timeout_seconds": 1.0, "timeout_mode": "before_accept"})
    rbm.timeout_seconds = 0.3
    outbound = message(phone)
    with pytest.raises(Retryable) as caught:
        run(lambda s: rbm.send(s, outbound))
    assert caught.value.outcome_unknown is True  # the client cannot tell the two timeouts apart
    time.sleep(0.8)
    assert sandbox.inbox(phone) == []
    run(lambda s: rbm.send(s, outbound))
    sandbox.wait_for(lambda: sandbox.inbox(phone))
    assert [m["count"] for m in sandbox.inbox(phone)] == [1]


def test_connection_refused_is_retryable_and_known_not_sent():
    with socket_closed_port() as port:
        gateway = rbm_gateway(f"http://127.0.0.1:{port}")
        with pytest.raises(Retryable) as caught:
            run(lambda s: gateway.send(s, message("+819011180001")))
    assert caught.value.outcome_unknown is False


def test_server_errors_are_retryable(sandbox, rbm):
    phone = "+819011190001"
    sandbox.profile(phone, "android_plus_message")
    sandbox.configure(faults={"fail_next": 1, "error_status": 503})
    with pytest.raises(Retryable) as caught:
        run(lambda s: rbm.send(s, message(phone)))
    assert caught.value.code == "503" and not caught.value.outcome_unknown
    assert run(lambda s: rbm.send(s, message(phone)))


def test_429_carries_retry_after_and_honouring_it_succeeds(sandbox, rbm):
    phone = "+819011200001"
    sandbox.profile(phone, "android_plus_message")
    sandbox.configure(rate_limit={"rate": 1, "burst": 1})
    run(lambda s: rbm.send(s, message(phone)))
    with pytest.raises(Retryable) as caught:
        run(lambda s: rbm.send(s, message(phone)))
    assert caught.value.code == "429"
    assert caught.value.retry_after >= 1
    time.sleep(caught.value.retry_after)
    assert run(lambda s: rbm.send(s, message(phone)))
    assert sandbox.tallies()["carrier"]["throttled"] == 1


def test_revoke_before_delivery(sandbox, rbm):
    phone = "+819011210001"
    sandbox.profile(phone, "offline_device")
    outbound = message(phone, ttl_seconds=3600)
    run(lambda s: rbm.send(s, outbound))
    assert run(lambda s: rbm.revoke(s, phone, outbound.message_id)) is True
    assert run(lambda s: rbm.revoke(s, phone, outbound.message_id)) is False
    assert sandbox.inbox(phone) == []


def test_revoke_after_delivery_is_refused(sandbox, rbm):
    phone = "+819011220001"
    sandbox.profile(phone, "android_plus_message")
    outbound = message(phone)
    run(lambda s: rbm.send(s, outbound))
    sandbox.wait_for(lambda: sandbox.inbox(phone))
    assert run(lambda s: rbm.revoke(s, phone, outbound.message_id)) is False
    assert [m["count"] for m in sandbox.inbox(phone)] == [1]


def test_wrong_bearer_token_is_permanent(sandbox):
    sandbox.register_rbm()
    gateway = rbm_gateway(sandbox.url, bearer_token="wrong")
    with pytest.raises(Permanent) as caught:
        run(lambda s: gateway.send(s, message("+819011230001")))
    assert caught.value.code == "401"


# -- webhooks: signature, handshake and parsing on Google's published shapes ----------------------
def envelope(payload: dict, token: str = CLIENT_TOKEN) -> tuple[bytes, dict]:
    data = json.dumps(payload).encode()
    body = json.dumps(
        {
            "message": {
                "data": base64.b64encode(data).decode(),
                "messageId": "2070443601311540",
                "publishTime": "2021-02-26T13:44:29.123456789Z",
            },
            "subscription": "projects/rbm-agent-test/subscriptions/rbm-agent-subscription",
        }
    ).encode()
    signature = base64.b64encode(hmac.new(token.encode(), data, hashlib.sha512).digest()).decode()
    return body, {"X-Goog-Signature": signature}


def test_verify_webhook_signature():
    gateway = rbm_gateway("http://127.0.0.1:1")
    body, headers = envelope({"senderPhoneNumber": "+819012345678", "eventType": "READ", "eventId": "e1"})
    assert gateway.verify_webhook(headers, body) is True
    assert gateway.verify_webhook({"x-goog-signature": headers["X-Goog-Signature"]}, body) is True
    assert gateway.verify_webhook({}, body) is False
    _, other = envelope({"senderPhoneNumber": "+819012345678", "eventType": "READ", "eventId": "e2"})
    assert gateway.verify_webhook(other, body) is False
    _, wrong_key = envelope({"senderPhoneNumber": "+819012345678", "eventType": "READ", "eventId": "e1"}, "x")
    assert gateway.verify_webhook(wrong_key, body) is False
    assert gateway.verify_webhook(headers, b"not json") is False


def test_handshake_echoes_the_secret_only_for_our_client_token():
    gateway = rbm_gateway("http://127.0.0.1:1")
    good = json.dumps({"clientToken": CLIENT_TOKEN, "secret": "1234567890"}).encode()
    assert gateway.handshake(good) == {"secret": "1234567890"}
    assert gateway.handshake(json.dumps({"clientToken": "other", "secret": "1"}).encode()) is None
    assert gateway.handshake(envelope({"eventType": "READ"})[0]) is None


@pytest.mark.parametrize(
    "payload, expected",
    [
        (
            {
                "senderPhoneNumber": "+819012345678",
                "eventType": "DELIVERED",
                "eventId": "MxH3SAVw8Kcm4PXc0bPgXeCQ",
                "messageId": "4fa14fa4-3d0a-4d10-8d59-8d7e57b8b8b8",
                "sendTime": "2021-02-26T13:44:29.101456789Z",
                "agentId": "agent-test",
            },
            {"kind": "delivered", "event_id": "MxH3SAVw8Kcm4PXc0bPgXeCQ", "message_id": "4fa14fa4-3d0a-4d10-8d59-8d7e57b8b8b8"},
        ),
        (
            {"senderPhoneNumber": "+819012345678", "eventType": "READ", "eventId": "MxR", "messageId": "m1",
             "sendTime": "2021-02-26T13:44:29Z", "agentId": "agent-test"},
            {"kind": "read", "event_id": "MxR", "message_id": "m1"},
        ),
        (
            {"senderPhoneNumber": "+819012345678", "eventType": "IS_TYPING", "eventId": "MxT",
             "sendTime": "2021-02-26T13:44:29Z", "agentId": "agent-test"},
            {"kind": "is_typing", "event_id": "MxT"},
        ),
        (
            {"senderPhoneNumber": "+819012345678", "messageId": "MxU1", "sendTime": "2021-02-26T13:44:29Z",
             "agentId": "agent-test", "text": "配信停止"},
            {"kind": "inbound_text", "event_id": "msg:MxU1", "text": "配信停止"},
        ),
        (
            {"senderPhoneNumber": "+819012345678", "messageId": "MxU2", "sendTime": "2021-02-26T13:44:29Z",
             "agentId": "agent-test",
             "suggestionResponse": {"postbackData": "yes", "text": "はい", "type": "REPLY"}},
            {"kind": "inbound_postback", "postback": "yes", "text": "はい"},
        ),
        (
            {"senderPhoneNumber": "+819012345678", "messageId": "MxU3", "sendTime": "2021-02-26T13:44:29Z",
             "agentId": "agent-test", "location": {"latitude": 35.68, "longitude": 139.76}},
            {"kind": "inbound_location", "latitude": 35.68, "longitude": 139.76},
        ),
        (
            {"senderPhoneNumber": "+819012345678", "messageId": "MxU4", "sendTime": "2021-02-26T13:44:29Z",
             "agentId": "agent-test",
             "userFile": {"thumbnail": {"mimeType": "image/jpeg", "fileSizeBytes": 10, "fileUri": "https://t"},
                          "payload": {"mimeType": "image/jpeg", "fileSizeBytes": 100,
                                      "fileUri": "https://rcs.example/f.jpg", "fileName": "f.jpg"}}},
            {"kind": "inbound_file", "file_url": "https://rcs.example/f.jpg", "file_mime": "image/jpeg"},
        ),
        (
            {"phoneNumber": "+819012345678", "messageId": "m2", "agentId": "agent-test",
             "eventType": "TTL_EXPIRATION_REVOKED", "eventId": "MxS1", "sendTime": "2021-02-26T13:44:29Z"},
            {"kind": "ttl_revoked", "message_id": "m2", "phone": "+819012345678"},
        ),
        (
            {"phoneNumber": "+819012345678", "messageId": "m3", "agentId": "agent-test",
             "eventType": "TTL_EXPIRATION_REVOKE_FAILED", "eventId": "MxS2", "sendTime": "2021-02-26T13:44:29Z"},
            {"kind": "ttl_revoke_failed", "message_id": "m3"},
        ),
    ],
)
def test_parse_events(payload, expected):
    gateway = rbm_gateway("http://127.0.0.1:1")
    body, _ = envelope(payload)
    [event] = gateway.parse_events(body)
    assert event.provider == "rbm" and event.channel == "rcs"
    assert event.phone == "+819012345678"
    assert event.occurred_at is not None and event.occurred_at.year == 2021
    for key, value in expected.items():
        assert getattr(event, key) == value, key


def test_parse_rejects_what_is_not_an_envelope():
    gateway = rbm_gateway("http://127.0.0.1:1")
    with pytest.raises(ValueError):
        gateway.parse_events(b'{"message": {"data": "***"}}')
    with pytest.raises(ValueError):
        gateway.parse_events(b"[]")


class socket_closed_port:
    """A port nothing listens on."""

    def __enter__(self):
        import socket

        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        return self.port

    def __exit__(self, *exc):
        return False
