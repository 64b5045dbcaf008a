"""The CM.com adapter over real HTTP against the sandbox, and its parsers on CM.com's published shapes."""

import asyncio
import json
import time
import uuid

import aiohttp
import pytest

from accounts.models import GatewayAccount
from messaging.gateways import OutboundMessage, Permanent, Retryable, SendResult, gateway_for
from messaging.gateways.base import sms_leg_id
from messaging.gateways.cm import render_rich_content

TOKEN = "product-test"
SECRET = "secret-test"


def run(call):
    async def main():
        async with aiohttp.ClientSession() as session:
            return await call(session)

    return asyncio.run(main())


def cm_gateway(base_url, **credentials):
    account = GatewayAccount(
        kind="cm", base_url=base_url, credentials={"product_token": TOKEN, "callback_secret": SECRET, **credentials}
    )
    return gateway_for(account)


@pytest.fixture
def cm(sandbox, webhook_sink):
    sandbox.register_cm(product_token=TOKEN, callback_secret=SECRET, webhook_url=f"{webhook_sink.url}/cm/1/{SECRET}/")
    return cm_gateway(sandbox.url)


def sms(phone, text="【デモ商店】ご予約ありがとうございます。停止はhttps://x.example/s", **kwargs):
    return OutboundMessage(
        message_id=kwargs.pop("message_id", sms_leg_id(str(uuid.uuid4()))),
        phone=phone,
        sms_text=text,
        sms_sender="DEMOSHOP",
        **kwargs,
    )


def reports(sink):
    found = []
    for item in sink.accepted():
        document = json.loads(item["body"])
        if "messages" in document:
            found.extend(document["messages"]["msg"])
    return found


def test_send_batch_is_one_request_with_a_result_per_message(sandbox, cm, webhook_sink):
    profiles = {
        "+819021000001": "android_plus_message",
        "+819021000002": "rakuten_sms_only",
        "+819021000003": "data_only_mvno_unreachable",
    }
    sandbox.configure(profile_overrides=profiles)
    messages = [sms(phone) for phone in profiles]
    results = run(lambda s: cm.send_batch(s, messages))
    assert results == [SendResult(m.message_id, m.message_id) for m in messages]
    assert sandbox.tallies()["carrier"]["cm_requests"] == 1
    got = webhook_sink_wait(sandbox, webhook_sink, 3)
    codes = {r["reference"]: (r["status"]["code"], r["channel"]) for r in got}
    assert codes == {
        messages[0].message_id: (2, "SMS"),
        messages[1].message_id: (2, "SMS"),
        messages[2].message_id: (3, "SMS"),
    }
    assert [(m["channel"], m["count"]) for m in sandbox.inbox("+819021000001")] == [("sms", 1)]
    assert sandbox.inbox("+819021000003") == []
    assert all(item["path"] == f"/cm/1/{SECRET}/" for item in webhook_sink.accepted())


def webhook_sink_wait(sandbox, sink, count):
    return sandbox.wait_for(lambda: len(reports(sink)) >= count and reports(sink))


def test_more_than_a_hundred_messages_are_split_into_requests_of_a_hundred(sandbox, cm):
    sandbox.configure(profile_mix={"rakuten_sms_only": 1})
    messages = [sms(f"+8180{n:08d}") for n in range(150)]
    results = run(lambda s: cm.send_batch(s, messages))
    assert all(isinstance(r, SendResult) for r in results)
    assert sandbox.tallies()["carrier"]["cm_requests"] == 2


def test_per_message_errors_do_not_fail_the_batch(sandbox, cm):
    sandbox.configure(profile_mix={"rakuten_sms_only": 1})
    good, empty, long = sms("+819021100001"), sms("+819021100002", text=""), sms("+819021100003", text="あ" * 661)
    results = run(lambda s: cm.send_batch(s, [good, empty, long]))
    assert isinstance(results[0], SendResult)
    assert isinstance(results[1], Permanent) and results[1].code == "empty_sms"
    assert isinstance(results[2], Permanent) and results[2].code == "sms_too_long"
    assert sandbox.tallies()["carrier"]["cm_accepted"] == 1


def test_idempotent_resend_on_reference(sandbox, cm, webhook_sink):
    phone = "+819021200001"
    sandbox.profile(phone, "iphone_no_app")
    outbound = sms(phone)
    run(lambda s: cm.send(s, outbound))
    run(lambda s: cm.send(s, outbound))
    sandbox.wait_for(lambda: sandbox.inbox(phone))
    time.sleep(0.3)
    assert [(m["message_id"], m["count"]) for m in sandbox.inbox(phone)] == [(outbound.message_id, 1)]
    assert sandbox.tallies()["carrier"]["cm_duplicates"] == 1


def test_provider_side_fallback_rcs_or_sms(sandbox, cm, webhook_sink):
    rcs_phone, sms_phone = "+819021300001", "+819021300002"
    sandbox.configure(profile_overrides={rcs_phone: "android_plus_message", sms_phone: "iphone_no_app"})
    content = {"text": "秋のセール", "chips": [{"type": "open_url", "label": "見る", "url": "https://x.example/"}]}
    first = sms(rcs_phone, message_id=str(uuid.uuid4()), content=content, allowed_channels=("RCS", "SMS"))
    second = sms(sms_phone, message_id=str(uuid.uuid4()), content=content, allowed_channels=("RCS", "SMS"))
    run(lambda s: cm.send_batch(s, [first, second]))
    sandbox.wait_for(lambda: sandbox.inbox(rcs_phone) and sandbox.inbox(sms_phone))
    [received_rcs] = sandbox.inbox(rcs_phone)
    [received_sms] = sandbox.inbox(sms_phone)
    assert received_rcs["channel"] == "rcs" and received_rcs["content"] == render_rich_content(content)
    assert received_sms["channel"] == "sms" and received_sms["text"] == first.sms_text
    got = webhook_sink_wait(sandbox, webhook_sink, 3)  # RCS delivered + read, SMS delivered
    assert {(r["reference"], r["channel"], r["status"]["code"]) for r in got} == {
        (first.message_id, "RCS", 2),
        (first.message_id, "RCS", 4),
        (second.message_id, "SMS", 2),
    }


def test_429_for_the_whole_batch_with_retry_after(sandbox, cm):
    sandbox.configure(profile_mix={"rakuten_sms_only": 1}, rate_limit={"rate": 2, "burst": 2})
    results = run(lambda s: cm.send_batch(s, [sms("+819021400001"), sms("+819021400002"), sms("+819021400003")]))
    assert all(isinstance(r, Retryable) and r.code == "429" and r.retry_after >= 1 for r in results)
    assert results[0] is not results[1]
    time.sleep(1.0)
    assert isinstance(run(lambda s: cm.send(s, sms("+819021400004"))), SendResult)


def test_server_error_is_retryable(sandbox, cm):
    sandbox.configure(faults={"fail_next": 1, "error_status": 502})
    with pytest.raises(Retryable):
        run(lambda s: cm.send(s, sms("+819021500001")))


def test_render_rich_content_field_names():
    rendered = render_rich_content(
        {
            "carousel": {
                "cards": [
                    {"title": "A", "description": "a", "media": {"url": "https://x.example/a.png"}},
                    {"title": "B", "description": "b", "buttons": [{"type": "reply", "label": "B", "postback": "b"}]},
                ]
            },
            "chips": [
                {"type": "dial", "label": "電話", "phone": "+81312345678"},
                {"type": "location", "label": "地図", "latitude": 35.6, "longitude": 139.7},
                {"type": "calendar", "label": "予定", "title": "来店", "start": "2026-12-01T10:00:00",
                 "end": "2026-12-01T11:00:00"},
            ],
        }
    )
    [part] = rendered["conversation"]
    first, second = part["carousel"]["cards"]
    assert first["media"] == {"mediaName": "a.png", "mediaUri": "https://x.example/a.png", "mimeType": "image/png"}
    assert second["suggestions"] == [{"label": "B", "postbackdata": "b", "action": "Reply"}]
    dial, location, calendar = rendered["suggestions"]
    assert dial["action"] == "Dial" and dial["dial"] == {"phoneNumber": "+81312345678"}
    assert location["action"] == "ViewLocation" and location["viewLocation"]["latitude"] == "35.6"
    assert calendar["calendar"]["startTime"] == "2026-12-01T01:00:00Z"


def test_request_shape(sandbox):
    gateway = cm_gateway("http://127.0.0.1:1")
    msg = gateway.build_msg(sms("+819012345678", message_id="d-sms", text="テスト"))
    assert msg["to"] == [{"number": "00819012345678"}]
    assert msg["body"] == {"type": "auto", "content": "テスト"}
    assert msg["allowedChannels"] == ["SMS"] and msg["reference"] == "d-sms" and msg["from"] == "DEMOSHOP"
    assert "richContent" not in msg


# -- callbacks -------------------------------------------------------------------------------------
def test_verify_webhook_compares_the_url_secret():
    gateway = cm_gateway("http://127.0.0.1:1")
    assert gateway.verify_webhook({}, b"{}", SECRET) is True
    assert gateway.verify_webhook({}, b"{}", "guess") is False
    assert gateway.verify_webhook({}, b"{}", "") is False
    assert cm_gateway("http://127.0.0.1:1", callback_secret="").verify_webhook({}, b"{}", "") is False


def test_parse_status_reports():
    gateway = cm_gateway("http://127.0.0.1:1")
    single = {
        "messages": {
            "msg": {
                "received": "2026-11-26T10:35:50",
                "to": "00819012345678",
                "reference": "abc-sms",
                "status": {"code": "2", "errorCode": "", "errorDescription": ""},
            }
        }
    }
    [event] = gateway.parse_events(json.dumps(single).encode())
    assert (event.kind, event.channel, event.message_id, event.phone) == ("delivered", "sms", "abc-sms", "+819012345678")
    assert event.event_id == "sr:abc-sms:00819012345678:SMS:2"
    several = {
        "messages": {
            "msg": [
                {"received": "2026-11-26T10:35:50", "to": "00819012345678", "reference": "r1",
                 "status": {"code": 3, "errorCode": 8, "errorDescription": "Unknown subscriber"}, "channel": "SMS"},
                {"received": "2026-11-26T10:35:51", "to": "00819012345678", "reference": "r2",
                 "status": {"code": 4, "errorCode": None, "errorDescription": None}, "channel": "RCS"},
                {"received": "2026-11-26T10:35:52", "to": "00819012345678", "reference": "r3",
                 "status": {"code": 0}, "channel": "SMS"},
            ]
        }
    }
    failed, read = gateway.parse_events(json.dumps(several).encode())
    assert (failed.kind, failed.error_code, failed.error_reason) == ("failed", "8", "Unknown subscriber")
    assert (read.kind, read.channel) == ("read", "rcs")


def test_parse_inbound_messages():
    gateway = cm_gateway("http://127.0.0.1:1")
    base = {
        "reference": "f7f0b6f0-0000-4000-8000-000000000001",
        "messageContext": "",
        "from": {"number": "00819012345678", "name": ""},
        "to": {"number": "DEMOSHOP"},
        "groupings": [],
        "time": "2026-11-26 10:35:50",
        "timeUtc": "2026-11-26T01:35:50",
        "channel": "SMS",
    }
    [text] = gateway.parse_events(json.dumps({**base, "message": {"text": "配信停止"}}).encode())
    assert (text.kind, text.text, text.phone, text.event_id) == (
        "inbound_text", "配信停止", "+819012345678", "mo:f7f0b6f0-0000-4000-8000-000000000001"
    )
    [postback] = gateway.parse_events(
        json.dumps({**base, "channel": "RCS", "message": {"text": "yes", "custom": {"postbackdata": "yes"}}}).encode()
    )
    assert (postback.kind, postback.postback, postback.channel) == ("inbound_postback", "yes", "rcs")
    [location] = gateway.parse_events(
        json.dumps({**base, "message": {"location": {"latitude": "35.6", "longitude": "139.7"}}}).encode()
    )
    assert (location.kind, location.latitude, location.longitude) == ("inbound_location", 35.6, 139.7)
    with pytest.raises(ValueError):
        gateway.parse_events(b'{"hello": 1}')
