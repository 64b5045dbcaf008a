"""Opt-out by reply during a running promotion, end to end: every keyword variant, by +Message and by
SMS, arrives as a signed webhook from the sandbox; from then on the person gets nothing promotional —
not the queued rest of a running promotion, not a later one — and exactly one confirmation."""

import pytest

from campaigns.models import Classification, Contact
from messaging.engine.freeze import audience_freeze
from messaging.models import Delivery, DeliveryStatus
from messaging.runs import campaign_start
from tests.messaging.engine import engine, receiver, wait_until, worker  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

KEYWORD_VARIANTS = [
    "配信停止", "停止", "ストップ", "ｽﾄｯﾌﾟ", "STOP", "stop", "Stop", "ＳＴＯＰ", "ｓｔｏｐ", "解除",
    "UNSUBSCRIBE", "unsubscribe", "ＵＮＳＵＢＳＣＲＩＢＥ", "  停止  ", "\u3000配信停止\u3000", "Ｓｔｏｐ ",
]


def _settled(campaign, expected):
    rows = Delivery.objects.filter(campaign=campaign)
    return rows.count() == expected and not rows.filter(status__lt=DeliveryStatus.DELIVERED).exists()


def test_optout_keyword_variants_during_running_promotion_stop_every_further_send(engine, worker):
    sandbox = engine.sandbox
    engine.account.legal_name = "株式会社テスト"
    engine.account.save()
    variants = KEYWORD_VARIANTS
    audience = engine.audience(len(variants) + 3, name="optout-running")
    contacts = list(audience.contacts.order_by("id"))
    leaving, staying = contacts[: len(variants)], contacts[len(variants):]
    # half of the people answer by SMS (CM.com MO), the others by +Message (RBM user message)
    overrides = {c.phone: ("rakuten_sms_only" if i % 2 else "android_plus_message") for i, c in enumerate(contacts)}
    sandbox.configure(profile_overrides=overrides)
    for contact, text in zip(leaving, variants, strict=True):
        sandbox.post("replies", {"phone": contact.phone, "trigger": "delivered", "reply": {"type": "text", "text": text}})

    first = engine.campaign(audience, classification=Classification.PROMOTION)
    running = engine.campaign(audience, classification=Classification.PROMOTION)
    audience_freeze(running)  # its deliveries are queued before anyone opts out
    assert Delivery.objects.filter(campaign=running, status=DeliveryStatus.QUEUED).count() == len(contacts)

    worker()
    campaign_start(first)
    wait_until(
        lambda: Contact.objects.filter(pk__in=[c.pk for c in leaving], opted_out_at__isnull=False).count() == len(leaving),
        timeout=60, interval=0.3,
    )
    assert set(Contact.objects.filter(pk__in=[c.pk for c in leaving]).values_list("opt_out_method", flat=True)) == {
        "keyword"
    }
    assert not Contact.objects.filter(pk__in=[c.pk for c in staying], opted_out_at__isnull=False).exists()

    campaign_start(running)
    later = engine.campaign(audience, classification=Classification.PROMOTION)
    campaign_start(later)
    wait_until(lambda: Delivery.objects.filter(campaign=running, status__in=[
        DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.CANCELLED]).count() == len(contacts),
        timeout=60, interval=0.3)
    wait_until(lambda: _settled(later, len(staying)), timeout=60, interval=0.3)
    cancelled = Delivery.objects.filter(campaign=running, status=DeliveryStatus.CANCELLED, error_code="opted_out")
    assert set(cancelled.values_list("contact_id", flat=True)) == {c.pk for c in leaving}
    assert not Delivery.objects.filter(campaign=later, contact__in=leaving).exists()

    confirmations = {
        d.contact_id: d for d in Delivery.objects.filter(client_reference__startswith="optout:", contact__in=leaving)
    }
    assert set(confirmations) == {c.pk for c in leaving}
    first_ids = dict(Delivery.objects.filter(campaign=first).values_list("contact_id", "uuid"))

    def handset(contact):
        return {m["message_id"].removesuffix("-sms") for m in sandbox.inbox(contact.phone)}

    for contact in leaving:
        expected = {str(first_ids[contact.pk]), str(confirmations[contact.pk].uuid)}
        got = wait_until(lambda c=contact, e=expected: handset(c) == e and handset(c), timeout=30, interval=0.3)
        assert got == expected, (contact.phone, got)
        assert all(m["count"] == 1 for m in sandbox.inbox(contact.phone))
    for contact in staying:
        assert len(handset(contact)) == 3
