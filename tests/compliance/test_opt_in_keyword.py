"""The opt-in keyword (issue 15, item 7): admins set it (e.g. 登録); a person who texts it gets a
consent record with method "reply keyword" whose evidence is the inbound message, and one
confirmation — once, and again only after an opt-out; the consent then lets promotions through."""

from datetime import time

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import GatewayKind, Role
from audit.models import AuditEvent
from campaigns.models import Classification, Consent, ConsentMethod, Contact
from campaigns.optout import OPT_IN_WORDING_VERSION, opt_in_keyword_set
from messaging import tasks
from messaging.gateways.base import NormalizedEvent
from messaging.inbox import inbound_apply
from messaging.models import ConversationMessage, Delivery
from messaging.services import message_send
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member

pytestmark = pytest.mark.django_db

PHONE = "+819012345678"
LEGAL = "株式会社テスト商事"


@pytest.fixture
def world():
    organization = OrganizationFactory()
    organization.quiet_hours_start = organization.quiet_hours_end = time(0, 0)
    organization.save()
    rbm = GatewayAccountFactory(organization=organization, kind=GatewayKind.RBM)
    cm = GatewayAccountFactory(organization=organization, kind=GatewayKind.CM, credentials={"callback_secret": "s"})
    account = approved_account(organization, legal_name=LEGAL, rcs_gateway=rbm, sms_gateway=cm)
    return {"organization": organization, "account": account, "rbm": rbm, "cm": cm,
            "admin": member(organization, Role.ADMIN, username="optin-admin"),
            "marketer": member(organization, Role.MARKETER, username="optin-marketer")}


@pytest.fixture(autouse=True)
def _queued_only(monkeypatch):
    monkeypatch.setattr(tasks.send_message, "delay", lambda *args, **kwargs: None)
    monkeypatch.setattr(tasks.send_message, "apply_async", lambda *args, **kwargs: None)


def text_event(world, text, event_id, phone=PHONE, provider="rbm"):
    gateway = world["rbm"] if provider == "rbm" else world["cm"]
    return NormalizedEvent(provider=provider, event_id=event_id, kind="inbound_text",
                           channel="rcs" if provider == "rbm" else "sms", phone=phone, text=text,
                           gateway_id=gateway.pk, occurred_at=timezone.now(), raw={"messageId": event_id})


def confirmations(phone=PHONE):
    return Delivery.objects.filter(client_reference__startswith="optin:", contact__phone=phone)


def test_opt_in_keyword_reply_records_consent_with_the_message_as_evidence_and_confirms(world,
                                                                                      django_capture_on_commit_callbacks):
    opt_in_keyword_set(world["organization"], "登録", actor=world["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        inbound_apply([text_event(world, "　登録 ", "msg:optin-1", provider="cm")])
    contact = Contact.objects.get(organization=world["organization"], phone=PHONE)
    consent = Consent.objects.get(contact=contact)
    inbound = ConversationMessage.objects.get(provider_event_id="msg:optin-1")
    assert consent.method == ConsentMethod.KEYWORD and consent.get_method_display() == "Reply keyword"
    assert consent.revoked_at is None and consent.wording_version == OPT_IN_WORDING_VERSION
    assert "msg:optin-1" in consent.evidence and "登録" in consent.evidence and f"message {inbound.pk}" in consent.evidence
    assert world["account"].display_name in consent.source
    [confirmation] = confirmations()
    assert confirmation.classification == Classification.TRANSACTION
    assert "配信登録を受け付けました" in confirmation.sms_text and world["account"].display_name in confirmation.sms_text
    assert inbound.conversation.messages.filter(direction="out", delivery=confirmation).exists()
    assert AuditEvent.objects.filter(action="consent.granted", target_id=str(contact.pk),
                                     details__method="keyword").count() == 1

    inbound_apply([text_event(world, "登録", "msg:optin-2")])  # already in: nothing new
    assert Consent.objects.filter(contact=contact).count() == 1 and confirmations().count() == 1

    name = world["account"].legal_name
    delivery = message_send(organization=world["organization"], official_account=world["account"], phone=PHONE,
                            content={"text": f"{name} セール 停止と返信で配信停止"},
                            sms_text=f"{name} セール 停止と返信で配信停止", classification=Classification.PROMOTION)
    assert delivery.consent_id == consent.pk


def test_opt_in_keyword_after_an_opt_out_subscribes_again(world):
    opt_in_keyword_set(world["organization"], "ｔｏｕｒｏｋｕ", actor=world["admin"])  # stored as NFKC: touroku
    assert world["organization"].opt_in_keyword == "touroku"
    inbound_apply([text_event(world, "TOUROKU", "msg:a")])
    inbound_apply([text_event(world, "停止", "msg:b")])
    contact = Contact.objects.get(phone=PHONE)
    assert contact.opted_out_at is not None and not Consent.objects.filter(contact=contact, revoked_at=None).exists()
    inbound_apply([text_event(world, "touroku", "msg:c")])
    contact.refresh_from_db()
    assert contact.opted_out_at is None
    assert Consent.objects.filter(contact=contact, revoked_at=None, method="keyword").count() == 1
    assert Consent.objects.filter(contact=contact).count() == 2 and confirmations().count() == 2


def test_opt_in_keyword_is_per_organization_and_off_when_empty(world):
    inbound_apply([text_event(world, "登録", "msg:off")])  # no keyword set
    other = OrganizationFactory()
    opt_in_keyword_set(other, "登録")
    inbound_apply([text_event(world, "登録", "msg:other")])  # another organization's keyword
    inbound_apply([text_event(world, "登録します", "msg:close")])
    assert not Consent.objects.exists() and not confirmations().exists()
    assert ConversationMessage.objects.filter(direction="in").count() == 3


def test_opt_in_keyword_setting_is_for_admins_refuses_opt_out_words_and_is_audited(client, world):
    from django.conf import settings

    url = reverse("accounts:opt_in_keyword")
    client.force_login(world["marketer"])
    assert client.post(url, {"keyword": "登録"}).status_code == 403
    client.force_login(world["admin"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    refused = client.post(url, {"keyword": "ＳＴＯＰ"})
    assert refused.status_code == 400 and "An opt-out keyword cannot be the opt-in keyword." in refused.content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    refused = client.post(url, {"keyword": "配信停止"}).content.decode()
    assert "配信停止のキーワードは登録キーワードにできません。" in refused
    world["organization"].refresh_from_db()
    assert world["organization"].opt_in_keyword == ""
    response = client.post(url, {"keyword": " 登録 "}, follow=True)
    world["organization"].refresh_from_db()
    assert world["organization"].opt_in_keyword == "登録"
    assert "登録" in response.content.decode()
    event = AuditEvent.objects.get(action="settings.opt_in_keyword")
    assert event.actor == world["admin"] and event.details == {"before": "", "after": "登録"}
    page = client.get(reverse("accounts:quiet_hours")).content.decode()
    assert 'value="登録"' in page
    with translation.override("en"):
        assert "opt-in keyword" in str(world["organization"]._meta.get_field("opt_in_keyword").verbose_name)
