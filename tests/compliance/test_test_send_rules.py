"""Test sends (issue 15, item 2): only to the organization's confirmed test numbers, with the
campaign's own classification and its rules (consent, opt-out, display rules, quiet hours), a visible
【テスト】 marker in both texts, a per-member hourly limit, and an audit entry for every attempt.
Test numbers are registered by owners and admins and confirmed by a code sent to them."""

import re
from datetime import time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import Role
from audit.models import AuditEvent
from campaigns.models import CampaignStatus, Classification, Contact
from campaigns.optout import OptOutMethod, consent_grant, contact_opt_out
from core.throttle import redis_client
from messaging import testsends
from messaging.models import Delivery
from messaging.models import TestNumber as Number
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member
from tests.campaigns.factories import CampaignFactory

pytestmark = pytest.mark.django_db

LEGAL = "株式会社テスト商事"
PROMO_TEXT = f"{LEGAL}より冬のセールのお知らせ。配信停止は「停止」と返信してください。"
PROMO_SMS = f"【{LEGAL}】冬のセール開催中 配信停止は「停止」と返信"
PHONE = "+819012345678"


@pytest.fixture
def org():
    organization = OrganizationFactory()
    organization.quiet_hours_start = organization.quiet_hours_end = time(0, 0)  # no quiet hours unless set
    organization.save()
    return organization


@pytest.fixture
def account(org):
    return approved_account(org, legal_name=LEGAL, rcs_gateway=GatewayAccountFactory(organization=org))


@pytest.fixture
def users(org):
    return {role: member(org, role, username=f"ts-{role}") for role in Role.values}


@pytest.fixture(autouse=True)
def _fresh_counters():
    client = redis_client()
    assert client is not None, "these tests use the shared Redis counter"
    for name in client.scan_iter("pm:test-send:*"):
        client.delete(name)
    yield


@pytest.fixture(autouse=True)
def _queued_only(monkeypatch):
    """Deliveries are recorded and enqueued on commit; no worker sends them here."""
    from messaging import tasks

    monkeypatch.setattr(tasks.send_message, "delay", lambda *args, **kwargs: None)
    monkeypatch.setattr(tasks.send_message, "apply_async", lambda *args, **kwargs: None)


def login(client, user):
    from django.conf import settings

    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def promotion(org, account, user, **kwargs):
    values = {"organization": org, "official_account": account, "created_by": user,
              "classification": Classification.PROMOTION, "content": {"text": PROMO_TEXT}, "sms_text": PROMO_SMS}
    values.update(kwargs)
    return CampaignFactory(**values)


def sent_code(number) -> str:
    delivery = Delivery.objects.filter(client_reference=f"test-number:{number.pk}").latest("id")
    return re.search(r"(\d{6})", delivery.sms_text).group(1)


def confirmed(org, user, phone=PHONE):
    number = testsends.test_number_register(org, phone, user=user)
    return testsends.test_number_confirm(number, sent_code(number), user=user)


def consented(org, phone=PHONE):
    contact, _created = Contact.objects.get_or_create(organization=org, phone=phone)
    consent_grant(contact, method="web_form", source="https://example.jp/form", wording_version="v1")
    return contact


def test_send_rules_refuse_any_number_but_a_confirmed_test_number(client, org, account, users):
    campaign = promotion(org, account, users[Role.MARKETER])
    consented(org)
    url = reverse("campaigns:test_send", args=[campaign.pk])
    login(client, users[Role.MARKETER])
    body = client.post(url, {"phone": "090-1234-5678"}, HTTP_HX_REQUEST="true").content.decode()
    assert "confirmed test numbers" in body
    Number.objects.create(organization=org, phone=PHONE)  # registered, not confirmed
    other = OrganizationFactory()
    Number.objects.create(organization=other, phone="+819087654321", confirmed_at=timezone.now())
    for phone in ("090-1234-5678", "090-8765-4321"):
        assert "confirmed test numbers" in client.post(url, {"phone": phone}, HTTP_HX_REQUEST="true").content.decode()
    assert not Delivery.objects.exists()
    refusals = AuditEvent.objects.filter(action="campaign.test_refused", organization=org)
    assert refusals.count() == 3
    assert {tuple(event.details["codes"]) for event in refusals} == {("not_test_number",)}
    assert refusals.first().actor == users[Role.MARKETER]
    with translation.override("ja"):
        with pytest.raises(ValidationError) as refused:
            testsends.campaign_test_send(campaign, "09012345678", users[Role.MARKETER])
    assert "テスト" in " ".join(refused.value.messages) and "確認済み" in " ".join(refused.value.messages)


def test_send_rules_keep_the_promotion_checks_and_mark_both_texts(org, account, users):
    marketer = users[Role.MARKETER]
    confirmed(org, users[Role.ADMIN])
    draft = promotion(org, account, marketer, status=CampaignStatus.DRAFT)
    with pytest.raises(ValidationError) as refused:
        testsends.campaign_test_send(draft, PHONE, marketer)
    assert [error.code for error in refused.value.error_dict["to"]] == ["no_consent"]
    contact = consented(org)
    delivery = testsends.campaign_test_send(draft, "090-1234-5678", marketer)
    assert delivery.classification == Classification.PROMOTION
    assert delivery.consent_id is not None and delivery.campaign_id is None
    assert delivery.content["text"] == f"【テスト】{PROMO_TEXT}"
    assert delivery.sms_text == f"【テスト】{PROMO_SMS}"
    event = AuditEvent.objects.get(action="campaign.test_sent")
    assert event.actor == marketer and event.target_id == str(draft.pk)
    assert event.details["delivery"] == str(delivery.uuid) and event.details["classification"] == "promotion"

    no_name = promotion(org, account, marketer, sms_text="冬のセール開催中 配信停止は「停止」と返信")
    with pytest.raises(ValidationError) as refused:
        testsends.campaign_test_send(no_name, PHONE, marketer)
    assert {error.code for errors in refused.value.error_dict.values() for error in errors} == {"display_rules"}

    contact_opt_out(contact, OptOutMethod.CONSOLE, "test", confirm=False)
    with pytest.raises(ValidationError) as refused:
        testsends.campaign_test_send(draft, PHONE, marketer)
    assert [error.code for error in refused.value.error_dict["to"]] == ["opted_out"]
    assert Delivery.objects.filter(client_reference__startswith="test:").count() == 1


def test_send_rules_quiet_hours_hold_a_promotion_but_not_a_transactional_test(org, account, users):
    marketer = users[Role.MARKETER]
    confirmed(org, users[Role.OWNER])
    consented(org)
    local = timezone.localtime()
    org.quiet_hours_start = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    org.quiet_hours_end = (local + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    org.save()
    held = testsends.campaign_test_send(promotion(org, account, marketer), PHONE, marketer)
    assert held.not_before is not None and held.not_before > timezone.now()
    notice = CampaignFactory(organization=org, official_account=account, created_by=marketer,
                             classification=Classification.TRANSACTION, content={"card": {"title": "発送のお知らせ"}},
                             sms_text="ご注文の商品を発送しました")
    sent = testsends.campaign_test_send(notice, PHONE, marketer)
    assert sent.not_before is None and sent.classification == Classification.TRANSACTION
    assert sent.content["card"]["title"] == "【テスト】発送のお知らせ"


def test_send_rules_limit_each_member_per_hour(org, account, users, settings, monkeypatch):
    settings.TEST_SEND_LIMIT_PER_HOUR = 2
    monkeypatch.setattr(testsends.time, "time", lambda: 1_800_000_000.0)  # one window, whatever the clock
    confirmed(org, users[Role.ADMIN])  # the admin's code counts against the admin, not the marketer
    consented(org)
    campaign = promotion(org, account, users[Role.MARKETER])
    for _ in range(2):
        testsends.campaign_test_send(campaign, PHONE, users[Role.MARKETER])
    with pytest.raises(ValidationError) as refused:
        testsends.campaign_test_send(campaign, PHONE, users[Role.MARKETER])
    assert [error.code for error in refused.value.error_dict["phone"]] == ["rate_limited"]
    assert "2 test sends per hour" in refused.value.messages[0]
    testsends.campaign_test_send(campaign, PHONE, users[Role.OWNER])  # another member has their own limit
    assert Delivery.objects.filter(client_reference=f"test:{campaign.pk}").count() == 3
    assert AuditEvent.objects.filter(action="campaign.test_refused", details__codes=["rate_limited"]).count() == 1


def test_send_rules_test_number_is_confirmed_by_the_code_sent_to_it(org, account, users):
    admin = users[Role.ADMIN]
    number = testsends.test_number_register(org, "090-1111-2222", label="広報 山田", user=admin)
    code_delivery = Delivery.objects.get(client_reference=f"test-number:{number.pk}")
    assert code_delivery.classification == Classification.TRANSACTION and code_delivery.contact.phone == number.phone
    code = sent_code(number)
    number.refresh_from_db()
    assert code not in number.code_hash and len(number.code_hash) == 64 and number.confirmed_at is None
    with pytest.raises(ValidationError) as refused:
        testsends.test_number_send_code(number, user=admin)  # at most one code a minute
    assert refused.value.error_dict["code"][0].code == "too_soon"

    wrong = "000000" if code != "000000" else "111111"
    for _ in range(testsends.CODE_MAX_ATTEMPTS):
        with pytest.raises(ValidationError):
            testsends.test_number_confirm(number, wrong, user=admin)
    with pytest.raises(ValidationError) as refused:
        testsends.test_number_confirm(number, code, user=admin)  # the right code, too late
    assert refused.value.error_dict["code"][0].code == "too_many_attempts"

    Number.objects.filter(pk=number.pk).update(code_sent_at=timezone.now() - timedelta(minutes=2))
    number.refresh_from_db()
    testsends.test_number_send_code(number, user=admin)
    new_code = sent_code(number)
    Number.objects.filter(pk=number.pk).update(code_expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ValidationError) as refused:
        testsends.test_number_confirm(number, new_code, user=admin)
    assert refused.value.error_dict["code"][0].code == "expired"
    Number.objects.filter(pk=number.pk).update(code_expires_at=timezone.now() + timedelta(minutes=5))
    testsends.test_number_confirm(number, f" {new_code} ", user=admin)
    number.refresh_from_db()
    assert number.confirmed_at is not None and number.code_hash == ""
    actions = list(AuditEvent.objects.filter(target_type="messaging.testnumber").values_list("action", flat=True))
    assert sorted(actions) == sorted(["test_number.registered", "test_number.code_sent", "test_number.code_sent",
                                      "test_number.confirmed"])


def test_send_rules_test_number_pages_are_for_owners_and_admins_of_the_organization(client, org, account, users):
    url = reverse("accounts:test_numbers")
    for role in (Role.MARKETER, Role.OPERATOR, Role.VIEWER):
        assert login(client, users[role]).post(url, {"phone": "090-1111-2222"}).status_code == 403
    assert not Number.objects.exists()
    login(client, users[Role.ADMIN])
    response = client.post(url, {"phone": "050-1111-2222"})
    assert "050 numbers are IP phones" in response.content.decode() and not Number.objects.exists()
    response = client.post(url, {"phone": "090-1111-2222", "label": "山田"}, follow=True)
    assert "A code was sent to 090-1111-2222" in response.content.decode()
    number = Number.objects.get()
    confirm = reverse("accounts:test_number_confirm", args=[number.pk])
    wrong = "000000" if sent_code(number) != "000000" else "111111"
    assert "This code is not right" in client.post(confirm, {"code": wrong}, follow=True).content.decode()
    assert "is confirmed" in client.post(confirm, {"code": sent_code(number)}, follow=True).content.decode()
    foreign = Number.objects.create(organization=OrganizationFactory(), phone=PHONE)
    for name in ("test_number_confirm", "test_number_resend", "test_number_remove"):
        assert client.post(reverse(f"accounts:{name}", args=[foreign.pk]), {"code": "123456"}).status_code == 404
    client.post(reverse("accounts:test_number_remove", args=[number.pk]))
    assert list(Number.objects.all()) == [foreign]
    assert AuditEvent.objects.filter(action="test_number.removed", organization=org).count() == 1


def test_send_rules_view_sends_to_a_confirmed_number_only_for_composers(client, org, account, users):
    confirmed(org, users[Role.ADMIN])
    consented(org)
    campaign = promotion(org, account, users[Role.MARKETER])
    url = reverse("campaigns:test_send", args=[campaign.pk])
    Number.objects.create(organization=org, phone="+819099990000")  # not confirmed: not offered
    assert login(client, users[Role.VIEWER]).post(url, {"phone": "09012345678"}).status_code == 403
    for page in ("campaigns:detail", "campaigns:edit"):
        body = login(client, users[Role.MARKETER]).get(reverse(page, args=[campaign.pk])).content.decode()
        assert f'<option value="{PHONE}">' in body and "+819099990000" not in body
        assert "1 confirmed test number." in body
    response = login(client, users[Role.MARKETER]).post(url, {"phone": "090-1234-5678"}, HTTP_HX_REQUEST="true")
    assert "Test message sent to 090-1234-5678" in response.content.decode()
    delivery = Delivery.objects.get(client_reference=f"test:{campaign.pk}")
    assert delivery.sms_text.startswith("【テスト】") and delivery.classification == Classification.PROMOTION
