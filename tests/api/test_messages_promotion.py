"""POST /api/v1/messages with classification=promotion: the same rules as a campaign — an active
consent (kept on the delivery), the display rules in both texts, quiet hours (accepted, held until
they end, and no claim sends it earlier) — and refusals that record nothing."""

from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.models import Classification, Consent, Contact
from campaigns.optout import consent_grant, consent_revoke
from messaging import tasks
from messaging.engine.claim import deliveries_claim
from messaging.models import Delivery, DeliveryStatus
from messaging.services import message_send
from tests.api.conftest import SMS, TEXT, message_body

pytestmark = pytest.mark.django_db

PHONE = "+819012345678"


def promotion(tenant, **overrides):
    """A promotional body that meets the display rules: formal name and opt-out in both texts."""
    name = tenant.account.legal_name
    body = message_body(
        tenant,
        classification="promotion",
        content={"text": f"【{name}】週末セール開催中！ 配信停止は「停止」と返信"},
        sms_text=f"【{name}】週末セール開催中 配信停止は停止と返信",
    )
    body.update(overrides)
    return body


def consented(tenant, phone=PHONE):
    contact = Contact.objects.create(organization=tenant.organization, phone=phone)
    return contact, consent_grant(contact, method="web_form", source="https://example.jp/form", wording_version="v1")


def no_quiet_hours(organization):
    organization.quiet_hours_start = organization.quiet_hours_end = datetime.min.time()  # an empty window
    organization.save(update_fields=["quiet_hours_start", "quiet_hours_end"])


def quiet_now(organization):
    """Quiet hours from an hour ago to two hours from now (Japan time), whatever the clock says."""
    local = timezone.localtime()
    organization.quiet_hours_start = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    organization.quiet_hours_end = (local + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    organization.save(update_fields=["quiet_hours_start", "quiet_hours_end"])


@pytest.fixture
def deferred(monkeypatch):
    """send_message.apply_async calls (the held message's task and any re-deferral), not enqueued."""
    calls = []
    monkeypatch.setattr(tasks.send_message, "apply_async",
                        lambda args=None, kwargs=None, **options: calls.append((args, options)))
    return calls


def test_api_promotion_without_consent_is_refused_and_records_nothing(api, tenant, _no_enqueue):
    no_quiet_hours(tenant.organization)
    response = api.post("/api/v1/messages/", promotion(tenant), format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "no_consent" and body["field"] == "to"
    Contact.objects.create(organization=tenant.organization, phone=PHONE)  # known, but never consented
    response = api.post("/api/v1/messages/", promotion(tenant), format="json")
    assert response.status_code == 400 and response.json()["code"] == "no_consent"
    japanese = tenant.client(language="ja").post("/api/v1/messages/", promotion(tenant), format="json").json()
    assert japanese["code"] == "no_consent" and "同意" in japanese["message"]
    assert not Delivery.objects.exists() and _no_enqueue == []
    assert Contact.objects.filter(organization=tenant.organization).count() == 1  # no contact made either


def test_api_promotion_with_revoked_consent_is_refused(api, tenant, _no_enqueue):
    no_quiet_hours(tenant.organization)
    _contact, consent = consented(tenant)
    consent_revoke(consent, "console")
    response = api.post("/api/v1/messages/", promotion(tenant), format="json")
    assert response.status_code == 400 and response.json()["code"] == "no_consent"
    assert not Delivery.objects.exists() and _no_enqueue == []


def test_api_promotion_to_an_opted_out_person_is_refused_with_its_code(api, tenant, _no_enqueue):
    no_quiet_hours(tenant.organization)
    contact, _consent = consented(tenant)
    Contact.objects.filter(pk=contact.pk).update(opted_out_at=timezone.now())
    response = api.post("/api/v1/messages/", promotion(tenant), format="json")
    assert response.status_code == 400 and response.json()["code"] == "opted_out"
    assert not Delivery.objects.exists()


@pytest.mark.parametrize(
    "part, overrides, missing",
    [
        ("sms_text", {"sms_text": "週末セール開催中 配信停止は停止と返信"}, "formal name"),
        ("sms_text", {"sms_text": "【{name}】週末セール開催中"}, "opt out"),
        ("content", {"content": {"text": "週末セール開催中！ 配信停止は「停止」と返信"}}, "formal name"),
        ("content", {"content": {"text": "【{name}】週末セール開催中！"}}, "opt out"),
    ],
)
def test_api_promotion_breaking_the_display_rules_is_refused(api, tenant, _no_enqueue, part, overrides, missing):
    no_quiet_hours(tenant.organization)
    consented(tenant)
    name = tenant.account.legal_name
    overrides = {
        key: ({"text": value["text"].format(name=name)} if isinstance(value, dict) else value.format(name=name))
        for key, value in overrides.items()
    }
    response = api.post("/api/v1/messages/", promotion(tenant, **overrides), format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "display_rules" and body["field"] == part
    assert missing in body["message"]
    assert [error["field"] for error in body["errors"]] == [part]
    assert not Delivery.objects.exists() and _no_enqueue == []


def test_api_promotion_that_complies_is_sent_with_the_consent_it_relied_on(api, tenant, _no_enqueue,
                                                                          django_capture_on_commit_callbacks):
    no_quiet_hours(tenant.organization)
    contact, older = consented(tenant)
    latest = consent_grant(contact, method="paper", source="店頭", wording_version="v2")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/messages/", promotion(tenant), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["classification"] == "promotion" and body["scheduled_for"] is None
    delivery = Delivery.objects.get(uuid=body["id"])
    assert delivery.consent_id == latest.pk != older.pk
    assert delivery.not_before is None and delivery.lease_until is None
    assert _no_enqueue == [(delivery.pk,)]


def test_api_promotion_in_quiet_hours_is_held_until_they_end(api, tenant, _no_enqueue, deferred,
                                                            django_capture_on_commit_callbacks):
    quiet_now(tenant.organization)
    consented(tenant)
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/messages/", promotion(tenant), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    delivery = Delivery.objects.get(uuid=body["id"])
    opens = delivery.not_before
    assert opens is not None and opens > before + timedelta(hours=1)
    local = timezone.localtime(opens)
    assert (local.hour, local.minute) == (tenant.organization.quiet_hours_end.hour,
                                          tenant.organization.quiet_hours_end.minute)
    assert body["scheduled_for"] is not None
    assert datetime.fromisoformat(body["scheduled_for"]) == opens
    # Enqueued to run when the window opens, not now.
    assert _no_enqueue == []
    assert len(deferred) == 1 and deferred[0][0] == (delivery.pk,)
    assert deferred[0][1]["countdown"] > 3600

    # The task run early (a redelivered message, a clock ahead): the quiet-hours check of the
    # priority lane holds it — nothing is claimed or sent, and it looks again later (at most
    # QUIET_HOURS_RECHECK_SECONDS from now, so a changed window takes effect).
    assert tasks.send_message(delivery.pk) == "quiet"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED and delivery.attempts == 0 and delivery.sent_at is None
    assert len(deferred) == 2 and deferred[1][0] == (delivery.pk,)
    assert 0 < deferred[1][1]["countdown"] <= settings.QUIET_HOURS_RECHECK_SECONDS

    # Another message of the same account, claimed now, does not take the held one with it.
    transactional = message_send(organization=tenant.organization, official_account=tenant.account,
                                 phone="+819011112222", content=TEXT, sms_text=SMS)
    claimed = deliveries_claim(50, singles_beside=(tenant.account.pk, transactional.pk))
    claimed += deliveries_claim(1, delivery_id=transactional.pk)
    assert [row.id for row in claimed] == [transactional.pk]
    assert deliveries_claim(1, delivery_id=delivery.pk) == []


def test_api_promotion_rules_leave_transactional_messages_alone(api, tenant, _no_enqueue,
                                                                django_capture_on_commit_callbacks):
    quiet_now(tenant.organization)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/messages/", message_body(tenant), format="json")  # no consent, no display
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["scheduled_for"] is None
    delivery = Delivery.objects.get(uuid=body["id"])
    assert delivery.consent_id is None and delivery.not_before is None and delivery.lease_until is None
    assert _no_enqueue == [(delivery.pk,)]


def test_api_promotion_rules_hold_in_the_service_every_single_message_path_calls(tenant, _no_enqueue):
    """Inbox replies, test sends and opt-out confirmations call message_send too: a promotion there
    meets the same checks."""
    no_quiet_hours(tenant.organization)
    send = dict(organization=tenant.organization, official_account=tenant.account, phone=PHONE,
                classification=Classification.PROMOTION)
    name = tenant.account.legal_name
    good = dict(content={"text": f"{name} セール 停止と返信で配信停止"}, sms_text=f"{name} セール STOPで配信停止")
    with pytest.raises(ValidationError) as refused:
        message_send(**send, **good)
    assert refused.value.error_dict["to"][0].code == "no_consent"
    _contact, consent = consented(tenant)
    with pytest.raises(ValidationError) as refused:
        message_send(**send, content=TEXT, sms_text=SMS)
    assert {e.code for errors in refused.value.error_dict.values() for e in errors} == {"display_rules"}
    assert set(refused.value.error_dict) == {"content", "sms_text"}
    assert not Delivery.objects.exists()
    delivery = message_send(**send, **good)
    assert delivery.consent_id == consent.pk and Consent.objects.filter(pk=consent.pk, revoked_at=None).exists()


def test_api_promotion_over_the_frequency_cap_is_refused_transactional_is_not(api, tenant, _no_enqueue):
    """The cap the freeze applies to campaigns holds for single promotions too."""
    no_quiet_hours(tenant.organization)
    consented(tenant)
    tenant.organization.frequency_cap_count, tenant.organization.frequency_cap_days = 2, 7
    tenant.organization.save(update_fields=["frequency_cap_count", "frequency_cap_days"])
    for key in ("cap-1", "cap-2"):
        response = api.post("/api/v1/messages/", promotion(tenant), format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert response.status_code == 201, response.json()
    response = api.post("/api/v1/messages/", promotion(tenant), format="json", HTTP_IDEMPOTENCY_KEY="cap-3")
    assert response.status_code == 400 and response.json()["code"] == "frequency_cap"
    assert Delivery.objects.count() == 2
    transactional = api.post("/api/v1/messages/", message_body(tenant), format="json", HTTP_IDEMPOTENCY_KEY="cap-4")
    assert transactional.status_code == 201
