"""Per-carrier approval (issue 15, item 4): +Message goes only to numbers whose carrier — as the
gateway reports it, never as the number's prefix suggests — approved the official account; the
others get SMS with the reason ``carrier_not_approved``. The carrier is kept on the delivery and on
the contact, and the monitor and the dashboard split delivered, read and fell back by carrier.

The sandbox carrier runs as a real process over HTTP; the engine tests run a real Celery worker
(``engine``/``worker`` fixtures) or the priority lane's unit of work in-process."""

import asyncio
from collections import Counter
from datetime import timedelta

import aiohttp
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Carrier, CarrierReview, GatewayAccount, ReviewStatus, Role
from campaigns.models import CampaignStatus, Contact
from core import throttle
from core.carriers import carrier_approved, carrier_for_operator
from messaging.counters import counters_add, counters_fold
from messaging.engine.dispatch import send_single
from messaging.gateways import gateway_for
from messaging.gateways.base import NormalizedEvent
from messaging.models import Channel, Delivery, DeliveryStatus, FallbackReason, Metric
from messaging.receipts import normalized_events_apply
from messaging.runs import campaign_start
from messaging.services import message_send
from messaging.stats import campaign_stats
from messaging.tasks import sweep
from sandbox.profiles import PORTED_SHARE, ProfileMix
from tests.accounts.factories import OrganizationFactory, approved_account, member
from tests.campaigns.factories import CampaignFactory
from tests.messaging.conftest import sandbox, sandbox_server  # noqa: F401
from tests.messaging.engine import engine, receiver, wait_until, worker  # noqa: F401
from tests.messaging.factories import DeliveryFactory

AGENT, BEARER, CLIENT_TOKEN = "agent-carrier", "bearer-carrier", "client-carrier"


def run(call):
    async def main():
        async with aiohttp.ClientSession() as session:
            return await call(session)

    return asyncio.run(main())


def docomo_only(account):
    """The account as approved by docomo alone: au pending, SoftBank rejected."""
    now = timezone.now()
    CarrierReview.objects.filter(account=account, carrier=Carrier.AU).update(status=ReviewStatus.PENDING, decided_at=None)
    CarrierReview.objects.filter(account=account, carrier=Carrier.SOFTBANK).update(
        status=ReviewStatus.REJECTED, decided_at=now, reason="審査中の指摘事項あり"
    )
    assert account.approved_carriers == frozenset({Carrier.DOCOMO})


def ported_numbers(sandbox, phones):
    """{phone: the sandbox's view} for ``phones``, asked over its admin API."""
    return {phone: sandbox.get(f"profiles/{phone}") for phone in phones}


# --- The rule and the operator codes ---------------------------------------------------------------


def test_carrier_approval_rule_and_operator_codes():
    assert carrier_for_operator("44010") == "docomo"
    assert carrier_for_operator("440-50") == "au"
    assert carrier_for_operator("44020") == "softbank"
    assert carrier_for_operator("44011") == "rakuten"
    assert carrier_for_operator("SoftBank") == "softbank"
    assert carrier_for_operator(None) == carrier_for_operator("99999") == ""
    docomo = frozenset({"docomo"})
    assert carrier_approved("docomo", docomo)
    assert not carrier_approved("au", docomo)
    assert not carrier_approved("rakuten", docomo)
    # A number whose carrier the gateway did not name passes only if every carrier approved.
    assert not carrier_approved("", docomo)
    assert carrier_approved("", frozenset({"docomo", "au", "softbank"}))


# --- The sandbox: every number has a carrier, some are ported ---------------------------------------


def test_carrier_approval_sandbox_gives_every_number_a_stable_carrier_some_ported():
    mix, again = ProfileMix(), ProfileMix()
    phones = [f"+8190{n:08d}" for n in range(3000)]
    carriers = {phone: mix.carrier_for(phone) for phone in phones}
    assert carriers == {phone: again.carrier_for(phone) for phone in phones}  # stable across restarts
    assert set(carriers.values()) == {"docomo", "au", "softbank", "rakuten"}
    rcs_plus_message = [p for p in phones if mix.profile_for(p).carrier == ""]
    ported = [p for p in rcs_plus_message if mix.ported(p)]
    assert abs(len(ported) / len(rcs_plus_message) - PORTED_SHARE) < 0.03
    assert all(carriers[p] != ProfileMix.home_carrier(p) for p in ported)
    assert all(carriers[p] == "au" for p in phones if mix.profile_for(p).name == "au_iphone_native_rcs")
    assert all(carriers[p] == "rakuten" for p in phones if mix.profile_for(p).name == "rakuten_sms_only")


def test_carrier_approval_capability_answers_carry_the_carrier_over_http(sandbox):  # noqa: F811
    sandbox.register_rbm(agent_id=AGENT, bearer_token=BEARER, client_token=CLIENT_TOKEN)
    sandbox.configure(profile_mix={"android_plus_message": 3, "iphone_no_app": 1})
    phones = [f"+8180{n:08d}" for n in range(200)]
    views = ported_numbers(sandbox, phones)
    assert any(view["ported"] for view in views.values())
    rbm = gateway_for(GatewayAccount(kind="rbm", base_url=sandbox.url, credentials={
        "agent_id": AGENT, "bearer_token": BEARER, "client_token": CLIENT_TOKEN}))

    answers = run(lambda s: rbm.capability_answers(s, phones))

    assert set(answers) == {phone for phone, view in views.items() if view["rcs_capable"]}
    assert answers == {phone: views[phone]["carrier"] for phone in answers}  # ported ones included
    assert run(lambda s: rbm.capabilities(s, phones)) == set(answers)


def test_carrier_approval_cm_delivery_report_names_the_carrier():
    cm = gateway_for(GatewayAccount(kind="cm", base_url="http://127.0.0.1:1", credentials={"product_token": "p"}))
    body = (
        b'{"messages":{"msg":[{"received":"2026-12-03T10:00:00","to":"0081901234567","reference":"r1",'
        b'"status":{"code":2},"operator":"44020","channel":"SMS"}]}}'
    )
    [event] = cm.parse_events(body)
    assert event.kind == "delivered" and event.carrier == "softbank"


# --- One decision for every path ---------------------------------------------------------------------


def send_alert(engine, phone):  # noqa: F811
    text = "カードのご利用確認です。"
    return message_send(organization=engine.organization, official_account=engine.account,
                        phone=phone, content={"text": text}, sms_text=text)


def test_carrier_approval_single_messages_go_by_sms_to_carriers_that_did_not_approve(engine):  # noqa: F811
    """The priority lane (API messages, test sends, inbox replies) meets the same decision: a
    number on au gets SMS with carrier_not_approved, one on docomo +Message; a capable number
    whose carrier the gateway did not name gets SMS too, as not every carrier approved."""
    docomo_only(engine.account)
    engine.sandbox.configure(
        profile_mix={"android_plus_message": 1},
        carrier_overrides={"+819070000001": "docomo", "+819070000002": "au"},
    )
    on_docomo, on_au, unnamed = "+819070000001", "+819070000002", "+819070000003"
    throttle.cache_capabilities(engine.rbm.pk, {unnamed: True})  # capable, carrier not reported
    deliveries = [send_alert(engine, phone) for phone in (on_docomo, on_au, unnamed)]

    for delivery in deliveries:
        send_single(delivery.pk)

    rows = {d.contact.phone: d for d in Delivery.objects.select_related("contact").filter(
        pk__in=[d.pk for d in deliveries])}
    assert (rows[on_docomo].channel, rows[on_docomo].fallback_reason, rows[on_docomo].carrier) == ("rcs", "", "docomo")
    assert (rows[on_au].channel, rows[on_au].fallback_reason, rows[on_au].carrier) == (
        "sms", FallbackReason.CARRIER_NOT_APPROVED, "au")
    assert (rows[unnamed].channel, rows[unnamed].fallback_reason) == ("sms", FallbackReason.CARRIER_NOT_APPROVED)
    assert Contact.objects.get(organization=engine.organization, phone=on_au).carrier == "au"
    for phone, channel in ((on_docomo, "rcs"), (on_au, "sms"), (unnamed, "sms")):
        box = engine.sandbox.wait_for(lambda p=phone: engine.sandbox.inbox(p), timeout=10)
        assert [(m["channel"], m["count"]) for m in box] == [(channel, 1)]


def test_carrier_approval_provider_fallback_is_not_used_for_a_partly_approved_account(engine):  # noqa: F811
    """CM's own RCS→SMS fallback does not know the reviews: for an account not approved by every
    carrier the message goes as SMS only, with the reason."""
    docomo_only(engine.account)
    engine.cm.provider_fallback = True
    engine.cm.save(update_fields=["provider_fallback"])
    engine.account.rcs_gateway = None
    engine.account.save(update_fields=["rcs_gateway"])
    engine.sandbox.configure(profile_mix={"android_plus_message": 1}, carrier_overrides={"+819070000011": "docomo"})
    delivery = send_alert(engine, "+819070000011")

    send_single(delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.channel, delivery.fallback_reason) == ("sms", FallbackReason.CARRIER_NOT_APPROVED)
    box = engine.sandbox.wait_for(lambda: engine.sandbox.inbox("+819070000011"), timeout=10)
    assert [m["channel"] for m in box] == ["sms"]


def test_carrier_approval_campaign_through_the_real_engine_with_ported_numbers(engine, worker):  # noqa: F811
    """A campaign from an account approved by docomo only, through a real worker: +Message reaches
    exactly the numbers the sandbox has on docomo — a number ported to docomo from another carrier
    included, a docomo-prefix number ported away excluded — and everyone else gets one SMS with
    carrier_not_approved. The counters split delivered, read and fell back by carrier."""
    docomo_only(engine.account)
    engine.sandbox.configure(profile_mix={"android_plus_message": 1})
    audience = engine.audience(120, first=7140)  # two blocks of a hundred: SoftBank and docomo
    phones = list(audience.contacts.values_list("phone", flat=True))
    views = ported_numbers(engine.sandbox, phones)
    carriers = {phone: view["carrier"] for phone, view in views.items()}
    ported_in = [p for p, v in views.items() if v["ported"] and v["carrier"] == "docomo"]
    ported_out = [p for p, v in views.items() if v["ported"] and ProfileMix.home_carrier(p) == "docomo"]
    if not ported_in or not ported_out:  # make sure both kinds are there, whatever the hash gave
        extra = {}
        for phone in phones:
            home = ProfileMix.home_carrier(phone)
            if not ported_in and home != "docomo":
                extra[phone], ported_in = "docomo", [phone]
            elif not ported_out and home == "docomo" and phone not in extra:
                extra[phone], ported_out = "softbank", [phone]
        engine.sandbox.configure(carrier_overrides=extra)
        carriers.update(extra)
    assert set(carriers.values()) >= {"docomo", "au", "softbank"}
    campaign = engine.campaign(audience, ttl=60)
    worker()

    campaign_start(campaign)

    def settled():
        sweep.apply()
        deliveries = Delivery.objects.filter(campaign=campaign)
        return deliveries.count() == len(phones) and not deliveries.filter(status__lt=DeliveryStatus.DELIVERED).exists()

    wait_until(settled, timeout=90, interval=1)
    rows = {d.contact.phone: d for d in Delivery.objects.select_related("contact").filter(campaign=campaign)}
    for phone, carrier in carriers.items():
        row = rows[phone]
        assert row.carrier == carrier, phone
        if carrier == "docomo":
            assert (row.channel, row.fallback_reason) == (Channel.RCS, ""), phone
        else:
            assert (row.channel, row.fallback_reason) == (Channel.SMS, FallbackReason.CARRIER_NOT_APPROVED), phone
        box = engine.sandbox.inbox(phone)
        assert [(m["channel"], m["count"]) for m in box] == [(row.channel, 1)], phone
    assert rows[ported_in[0]].channel == Channel.RCS
    assert rows[ported_out[0]].channel == Channel.SMS
    contacts = dict(Contact.objects.filter(phone__in=phones).values_list("phone", "carrier"))
    assert contacts == carriers

    expected = Counter(carriers.values())

    def split_matches():
        counters_fold()
        split = {row["carrier"]: row for row in campaign_stats(campaign)["by_carrier"]}
        docomo = split.get("docomo", {})
        ok = docomo.get("delivered") == docomo.get("read") == expected["docomo"] and docomo.get("fell_back") == 0
        for carrier in ("au", "softbank"):
            row = split.get(carrier, {})
            ok = ok and row.get("fell_back") == expected[carrier] == row.get("delivered") and row.get("read") == 0
        return ok and split

    split = wait_until(split_matches, timeout=30, interval=1)
    stats = campaign_stats(campaign)
    assert stats["fallback_by_reason"] == {FallbackReason.CARRIER_NOT_APPROVED: len(phones) - expected["docomo"]}
    assert set(split) == {"docomo", "au", "softbank"}


# --- Receipts name the carrier where the capability answer could not ------------------------------


@pytest.mark.django_db
def test_carrier_approval_delivery_report_fills_the_carrier_and_moves_the_fallback_count():
    campaign = CampaignFactory()
    delivery = DeliveryFactory(campaign=campaign, channel=Channel.SMS, fallback_reason=FallbackReason.NOT_CAPABLE,
                               status=DeliveryStatus.SENT, sent_at=timezone.now())
    counters_add(Counter({(campaign.pk, Channel.SMS, Metric.FELL_BACK_ON, ""): 1}))
    event = NormalizedEvent(provider="cm", event_id="sr:1", kind="delivered", channel="sms",
                            message_id=f"{delivery.uuid}-sms", carrier="softbank")

    normalized_events_apply([event])

    delivery.refresh_from_db()
    assert delivery.carrier == "softbank" and delivery.status == DeliveryStatus.DELIVERED
    assert Contact.objects.get(pk=delivery.contact_id).carrier == "softbank"
    split = {row["carrier"]: row for row in campaign_stats(campaign)["by_carrier"]}
    assert split["softbank"]["fell_back"] == 1 and split["softbank"]["delivered"] == 1
    assert "" not in split  # moved, not counted twice


# --- The monitor and the dashboard -----------------------------------------------------------------


@pytest.mark.django_db
def test_carrier_approval_monitor_and_dashboard_show_the_carrier_split(client):
    organization = OrganizationFactory()
    account = approved_account(organization)
    user = member(organization, Role.OPERATOR)
    campaign = CampaignFactory(organization=organization, official_account=account, status=CampaignStatus.RUNNING,
                               approved_by=user, approved_at=timezone.now(), started_at=timezone.now())
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=1)
    counters_add(Counter({
        (campaign.pk, "rcs", Metric.DELIVERED_ON, "docomo"): 40, (campaign.pk, "rcs", Metric.READ_ON, "docomo"): 30,
        (campaign.pk, "sms", Metric.FELL_BACK_ON, "au"): 7, (campaign.pk, "sms", Metric.DELIVERED_ON, "au"): 7,
        (campaign.pk, "rcs", Metric.DELIVERED, ""): 40,
    }), minute)
    stats = campaign_stats(campaign)
    assert stats["delivered"] == 40  # the split is not counted into the totals
    assert [(r["carrier"], r["delivered"], r["read"], r["fell_back"], r["read_rate"]) for r in stats["by_carrier"]] == [
        ("docomo", 40, 30, 0, 75.0), ("au", 7, 0, 7, 0.0),
    ]
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    monitor = client.get(reverse("campaigns:monitor", args=[campaign.pk])).content.decode()
    dashboard = client.get(reverse("dashboard")).content.decode()

    for body in (monitor, dashboard):
        assert 'id="carrier-split"' in body
        assert '<tr data-carrier="docomo">' in body and '<tr data-carrier="au">' in body
        assert "75.0%" in body  # docomo's read rate
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    japanese = client.get(reverse("campaigns:monitor", args=[campaign.pk])).content.decode()
    assert "キャリア別" in japanese
