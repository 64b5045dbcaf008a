"""The sandbox carrier's own behaviour: profiles, limits, signed webhooks, faults, hold/release, replies."""

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter

import aiohttp
import pytest
from django.conf import settings as django_settings

from accounts.models import GatewayAccount, GatewayKind
from messaging.gateways import OutboundMessage, gateway_for
from sandbox.app import SandboxApp
from sandbox.profiles import DEFAULT_MIX, ProfileMix
from tests.accounts.factories import GatewayAccountFactory
from tests.messaging.conftest import BASE_DIR, SandboxClient, free_port

AGENT, BEARER, CLIENT_TOKEN = "agent-sb", "bearer-sb", "client-sb"


def run(call):
    async def main():
        async with aiohttp.ClientSession() as session:
            return await call(session)

    return asyncio.run(main())


@pytest.fixture
def rbm(sandbox, webhook_sink):
    sandbox.register_rbm(
        agent_id=AGENT, bearer_token=BEARER, client_token=CLIENT_TOKEN, webhook_url=f"{webhook_sink.url}/rbm/1/"
    )
    account = GatewayAccount(
        kind="rbm",
        base_url=sandbox.url,
        credentials={"agent_id": AGENT, "bearer_token": BEARER, "client_token": CLIENT_TOKEN},
    )
    return gateway_for(account)


def send(gateway, phone, **kwargs):
    outbound = OutboundMessage(
        message_id=kwargs.pop("message_id", str(uuid.uuid4())), phone=phone, content={"text": "テスト"}, **kwargs
    )
    run(lambda s: gateway.send(s, outbound))
    return outbound


def events(sink, gateway):
    """Every accepted callback, verified with the adapter and decoded."""
    found = []
    for item in sink.accepted():
        assert gateway.verify_webhook(item["headers"], item["body"])
        found.append(json.loads(base64.b64decode(json.loads(item["body"])["message"]["data"])))
    return found


def types(sink, gateway, message_id=None):
    return [
        e.get("eventType") or "MESSAGE"
        for e in events(sink, gateway)
        if message_id is None or e.get("messageId") == message_id
    ]


# -- profiles --------------------------------------------------------------------------------------
def test_profiles_are_stable_and_follow_the_mix():
    mix = ProfileMix()
    phones = [f"+8190{n:08d}" for n in range(20_000)]
    first = [mix.profile_for(p).name for p in phones]
    assert first == [ProfileMix().profile_for(p).name for p in phones]
    counts = Counter(first)
    total = sum(DEFAULT_MIX.values())
    for name, weight in DEFAULT_MIX.items():
        assert abs(counts[name] / len(phones) - weight / total) < 0.015, name


def test_profile_mix_and_overrides_over_http(sandbox):
    sandbox.configure(profile_mix={"iphone_no_app": 1})
    assert sandbox.get("profiles/+819031000001")["profile"] == "iphone_no_app"
    sandbox.profile("+819031000001", "never_reads")
    assert sandbox.get("profiles/+819031000001") == {
        "phone": "+819031000001",
        "profile": "never_reads",
        "rcs_capable": True,
        "carrier": ProfileMix().carrier_for("+819031000001"),
        "ported": ProfileMix().ported("+819031000001"),
    }
    sandbox.configure(carrier_overrides={"+819031000001": "softbank"})
    assert sandbox.get("profiles/+819031000001")["carrier"] == "softbank"
    with pytest.raises(AssertionError, match="400"):
        sandbox.configure(profile_mix={"flip_phone": 1})


# -- the admin API is loopback-only ----------------------------------------------------------------
def test_admin_api_refuses_other_peers():
    app = SandboxApp()

    def call(client):
        scope = {"type": "http", "method": "GET", "path": "/_sandbox/tallies", "headers": [], "client": client}
        return asyncio.run(app.route(scope, b""))[0]

    assert call(("10.1.2.3", 50000)) == 403
    assert call(("192.168.0.10", 50000)) == 403
    assert call(None) == 403
    assert call(("127.0.0.1", 50000)) == 200
    assert call(("::1", 50000)) == 200


# -- limits ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [
        {"text": "a" * 3073},
        {"text": "x", "suggestions": [{"reply": {"text": "r", "postbackData": "r"}}] * 12},
        {"text": "x", "suggestions": [{"reply": {"text": "r" * 26, "postbackData": "r"}}]},
        {"text": "x", "suggestions": [{"action": {"text": "a", "postbackData": "a", "openUrlAction": {"url": "javascript:1"}}}]},
        {"richCard": {"carouselCard": {"cardWidth": "MEDIUM", "cardContents": [{"title": "only one"}]}}},
        {"richCard": {"standaloneCard": {"cardContent": {"title": "t" * 201}}}},
        {"text": "x", "contentInfo": {"fileUrl": "https://x.example/a.png"}},
    ],
)
def test_sandbox_answers_400_on_limit_breaches(sandbox, content):
    sandbox.register_rbm(agent_id=AGENT, bearer_token=BEARER, client_token=CLIENT_TOKEN)

    async def post(session):
        url = f"{sandbox.url}/v1/phones/+819031100001/agentMessages?messageId={uuid.uuid4()}&agentId={AGENT}"
        async with session.post(url, json={"contentMessage": content}, headers={"Authorization": f"Bearer {BEARER}"}) as r:
            return r.status, await r.json()

    status, body = run(post)
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    assert sandbox.inbox("+819031100001") == []


def test_cm_rejects_more_than_a_hundred_messages(sandbox):
    sandbox.register_cm(product_token="p", callback_secret="s")
    msg = {"from": "X", "to": [{"number": "00819031200001"}], "body": {"type": "auto", "content": "x"}}

    async def post(session):
        body = {"messages": {"authentication": {"producttoken": "p"}, "msg": [msg] * 101}}
        async with session.post(f"{sandbox.url}/v1.0/message", json=body) as r:
            return r.status

    assert run(post) == 400


# -- signed webhooks -------------------------------------------------------------------------------
def test_delivered_then_read_are_posted_signed(sandbox, rbm, webhook_sink):
    phone = "+819031300001"
    sandbox.profile(phone, "android_plus_message")
    outbound = send(rbm, phone)
    sandbox.wait_for(lambda: len(webhook_sink.accepted()) >= 2)
    assert types(webhook_sink, rbm, outbound.message_id) == ["DELIVERED", "READ"]
    delivered = events(webhook_sink, rbm)[0]
    assert delivered["senderPhoneNumber"] == phone and delivered["agentId"] == AGENT
    assert webhook_sink.accepted()[0]["path"] == "/rbm/1/"


def test_never_reads_sends_only_delivered(sandbox, rbm, webhook_sink):
    phone = "+819031400001"
    sandbox.profile(phone, "never_reads")
    send(rbm, phone)
    sandbox.wait_for(lambda: webhook_sink.accepted())
    time.sleep(0.5)
    assert types(webhook_sink, rbm) == ["DELIVERED"]


def test_offline_device_expires_after_the_ttl(sandbox, rbm, webhook_sink):
    phone = "+819031500001"
    sandbox.profile(phone, "offline_device")
    outbound = send(rbm, phone, ttl_seconds=1)
    sandbox.wait_for(lambda: webhook_sink.accepted(), timeout=5)
    [expired] = events(webhook_sink, rbm)
    assert expired["eventType"] == "TTL_EXPIRATION_REVOKED"
    assert expired["messageId"] == outbound.message_id and expired["phoneNumber"] == phone
    assert sandbox.inbox(phone) == []
    assert run(lambda s: rbm.revoke(s, phone, outbound.message_id)) is False


def test_ttl_revoke_failure_delivers_instead(sandbox, rbm, webhook_sink):
    phone = "+819031500002"
    sandbox.profile(phone, "offline_device")
    sandbox.configure(faults={"ttl_revoke_fail_rate": 1.0})
    send(rbm, phone, ttl_seconds=1)
    sandbox.wait_for(lambda: len(webhook_sink.accepted()) >= 3, timeout=5)
    # The failed revoke and the delivery are posted together by concurrent callback workers, so
    # they may arrive in either order; the read comes a read-latency later.
    first_two, last = types(webhook_sink, rbm)[:2], types(webhook_sink, rbm)[2:]
    assert sorted(first_two) == ["DELIVERED", "TTL_EXPIRATION_REVOKE_FAILED"]
    assert last == ["READ"]
    assert [m["count"] for m in sandbox.inbox(phone)] == [1]


def test_duplicate_webhooks_when_asked(sandbox, rbm, webhook_sink):
    phone = "+819031600001"
    sandbox.profile(phone, "never_reads")
    sandbox.configure(faults={"duplicate_webhook_rate": 1.0})
    send(rbm, phone)
    sandbox.wait_for(lambda: len(webhook_sink.accepted()) >= 2)
    first, second = events(webhook_sink, rbm)
    assert first == second and first["eventType"] == "DELIVERED"
    assert [m["count"] for m in sandbox.inbox(phone)] == [1]  # the person still got it once


def test_out_of_order_webhooks_when_asked(sandbox, rbm, webhook_sink):
    phone = "+819031700001"
    sandbox.profile(phone, "android_plus_message")
    sandbox.configure(faults={"out_of_order_rate": 1.0})
    send(rbm, phone)
    sandbox.wait_for(lambda: len(webhook_sink.accepted()) >= 2)
    assert types(webhook_sink, rbm) == ["READ", "DELIVERED"]


def test_failed_callbacks_are_retried(sandbox, rbm, webhook_sink):
    phone = "+819031800001"
    sandbox.profile(phone, "never_reads")
    webhook_sink.statuses = [503, 503]
    send(rbm, phone)
    sandbox.wait_for(lambda: webhook_sink.accepted(), timeout=5)
    assert [item["status"] for item in webhook_sink.received] == [503, 503, 200]
    stats = sandbox.get("webhooks")
    assert (stats["acknowledged"], stats["retried"], stats["posted"]) == (1, 2, 3)


def test_hold_then_release_posts_everything_and_counts_it(sandbox, rbm, webhook_sink):
    sandbox.configure(profile_mix={"android_plus_message": 1}, hold=True)
    phones = [f"+8190318{n:05d}" for n in range(20)]
    for phone in phones:
        send(rbm, phone)
    sandbox.wait_for(lambda: sandbox.get("webhooks")["held"] == 40, timeout=5)
    assert webhook_sink.received == []
    assert all(sandbox.inbox(p) for p in phones)  # the handsets have them; only the receipts wait
    stats = sandbox.post("release", {"concurrency": 8, "wait": True})
    assert stats["released_now"] == 40 and stats["held"] == 0 and stats["hold"] is False
    assert stats["release"] == {**stats["release"], "released": 40, "done": 40, "acknowledged": 40, "finished": True}
    assert len(webhook_sink.accepted()) == 40


# -- scripted replies ------------------------------------------------------------------------------
def test_scripted_replies_after_read(sandbox, rbm, webhook_sink):
    phone = "+819031900001"
    sandbox.profile(phone, "android_plus_message")
    sandbox.post("replies", {"phone": phone, "trigger": "read", "reply": {"type": "text", "text": "配信停止"}})
    send(rbm, phone)
    sandbox.wait_for(lambda: "MESSAGE" in types(webhook_sink, rbm))
    reply = [e for e in events(webhook_sink, rbm) if "text" in e][0]
    assert reply["text"] == "配信停止" and reply["senderPhoneNumber"] == phone
    [parsed] = rbm.parse_events(webhook_sink.accepted()[-1]["body"])
    assert parsed.kind == "inbound_text"


@pytest.mark.parametrize(
    "reply, kind",
    [
        ({"type": "postback", "postback": "coupon:yes", "text": "はい"}, "inbound_postback"),
        ({"type": "location", "latitude": 35.68, "longitude": 139.76}, "inbound_location"),
        ({"type": "file", "url": "https://rcs.example/photo.jpg", "mime": "image/jpeg"}, "inbound_file"),
    ],
)
def test_replies_now(sandbox, rbm, webhook_sink, reply, kind):
    phone = "+819032000001"
    sandbox.profile(phone, "never_reads")
    send(rbm, phone)
    sandbox.wait_for(lambda: webhook_sink.accepted())
    sandbox.post("replies", {"phone": phone, "trigger": "now", "reply": reply})
    sandbox.wait_for(lambda: len(webhook_sink.accepted()) >= 2)
    [parsed] = rbm.parse_events(webhook_sink.accepted()[-1]["body"])
    assert parsed.kind == kind and parsed.phone == phone


def test_cm_sms_reply(sandbox, webhook_sink):
    sandbox.register_cm(product_token="p", callback_secret="s", webhook_url=f"{webhook_sink.url}/cm/")
    account = GatewayAccount(kind="cm", base_url=sandbox.url, credentials={"product_token": "p", "callback_secret": "s"})
    cm = gateway_for(account)
    phone = "+819032100001"
    sandbox.profile(phone, "rakuten_sms_only")
    sandbox.post("replies", {"phone": phone, "trigger": "delivered", "reply": {"type": "text", "text": "停止"}})
    outbound = OutboundMessage(message_id="x-sms", phone=phone, sms_text="テスト", sms_sender="DEMO")
    run(lambda s: cm.send(s, outbound))
    sandbox.wait_for(lambda: len(webhook_sink.accepted()) >= 2)
    parsed = [event for item in webhook_sink.accepted() for event in cm.parse_events(item["body"])]
    assert {(e.kind, e.text) for e in parsed} == {("delivered", ""), ("inbound_text", "停止")}


# -- tallies, inbox summary, reset -----------------------------------------------------------------
def test_tallies_inbox_summary_and_reset(sandbox, rbm):
    sandbox.configure(profile_mix={"android_plus_message": 1})
    outbound = send(rbm, "+819032200001")
    send(rbm, "+819032200001", message_id=outbound.message_id)
    sandbox.wait_for(lambda: sandbox.inbox("+819032200001"))
    tallies = sandbox.tallies()
    assert tallies["carrier"]["rbm_accepted"] == 1 and tallies["carrier"]["rbm_duplicates"] == 1
    summary = sandbox.get("inboxes")
    assert (summary["handsets"], summary["messages"], summary["duplicate_count"], summary["both_channels_count"]) == (
        1, 1, 0, 0
    )
    sandbox.post("reset")
    assert sandbox.inbox("+819032200001") == []
    assert sandbox.tallies()["carrier"] == {}


# -- runsandbox reads the gateway accounts that point at it ----------------------------------------
@pytest.mark.django_db(transaction=True)
def test_runsandbox_registers_gateway_accounts_from_the_database(webhook_sink):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rbm_account = GatewayAccountFactory(
        kind=GatewayKind.RBM, base_url=base,
        credentials={"agent_id": "db-agent", "bearer_token": "db-bearer", "client_token": "db-client"},
    )
    GatewayAccountFactory(kind=GatewayKind.RBM, base_url="http://127.0.0.1:1", credentials={"bearer_token": "x", "client_token": "y"})
    db = django_settings.DATABASES["default"]
    env = dict(os.environ, DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runsandbox", "--port", str(port), "--public-base-url", webhook_sink.url],
        cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = SandboxClient(base)
        client.wait_for(lambda: _answers(client), timeout=30)
        [registered] = client.get("gateways")["gateways"]
        assert registered == {
            "kind": "rbm",
            "gateway_id": rbm_account.pk,
            "agent_id": "db-agent",
            "webhook_url": f"{webhook_sink.url}/messaging/webhooks/rbm/{rbm_account.pk}/",
        }
        # An account created after start-up is picked up when its token is first used.
        cm_account = GatewayAccountFactory(
            kind=GatewayKind.CM, base_url=base, credentials={"product_token": "db-product", "callback_secret": "db-s"}
        )
        account = GatewayAccount(kind="cm", base_url=base, credentials=cm_account.credentials)
        outbound = OutboundMessage(message_id="late-sms", phone="+819032300001", sms_text="テスト", sms_sender="DEMO")
        assert run(lambda s: gateway_for(account).send(s, outbound)).message_id == "late-sms"
        client.wait_for(lambda: webhook_sink.accepted(), timeout=10)
        assert webhook_sink.accepted()[0]["path"] == f"/messaging/webhooks/cm/{cm_account.pk}/db-s/"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(client):
    try:
        return client.get("health")
    except (OSError, AssertionError):
        return None
