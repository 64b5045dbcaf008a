"""Opt-out: keywords in every form, the postback, the signed link page, and what an opt-out does."""

import pytest
from django.test import Client
from django.urls import reverse_lazy

from audit.models import AuditEvent
from campaigns.models import Classification, Consent
from campaigns.optout import (
    OptOutMethod,
    consent_grant,
    contact_opt_out,
    is_opt_out_keyword,
    is_opt_out_postback,
)
from core.signed_links import opt_out_token, opt_out_url
from messaging.models import Conversation, ConversationMessage, Delivery
from tests.accounts.factories import OrganizationFactory, approved_account
from tests.campaigns.factories import ConsentFactory, ContactFactory

KEYWORD_VARIANTS = [
    "配信停止", "停止", "ストップ", "ｽﾄｯﾌﾟ", "STOP", "stop", "Stop", "ＳＴＯＰ", "ｓｔｏｐ", "解除",
    "UNSUBSCRIBE", "unsubscribe", "Unsubscribe", "ＵＮＳＵＢＳＣＲＩＢＥ", "  停止  ", "\u3000配信停止\u3000", "\tSTOP\n",
]


@pytest.mark.parametrize("text", KEYWORD_VARIANTS)
def test_optout_keyword_variants_are_recognised(text):
    assert is_opt_out_keyword(text)


@pytest.mark.parametrize("text", ["停止しないで", "stopp", "", "配信停止は不要です", "ストップウォッチ", "止"])
def test_optout_other_words_are_not_keywords(text):
    assert not is_opt_out_keyword(text)


@pytest.mark.parametrize("postback", ["optout", "OPTOUT", "ｏｐｔｏｕｔ", " opt_out ", "配信停止"])
def test_optout_postback_is_recognised(postback):
    assert is_opt_out_postback(postback)


@pytest.fixture
def person(db):
    organization = OrganizationFactory()
    account = approved_account(organization, legal_name="株式会社テスト")
    contact = ContactFactory(organization=organization)
    ConsentFactory(contact=contact)
    ConsentFactory(contact=contact, wording_version="v2")
    return organization, account, contact


@pytest.mark.django_db
def test_optout_service_revokes_consents_audits_and_confirms_once(person, django_capture_on_commit_callbacks):
    organization, account, contact = person
    with django_capture_on_commit_callbacks(execute=False):
        assert contact_opt_out(contact, OptOutMethod.KEYWORD, "停止", official_account=account) is True
        assert contact_opt_out(contact, OptOutMethod.KEYWORD, "停止", official_account=account) is False
    contact.refresh_from_db()
    assert contact.opted_out_at is not None and contact.opt_out_method == "keyword"
    assert not Consent.objects.filter(contact=contact, revoked_at__isnull=True).exists()
    assert set(Consent.objects.filter(contact=contact).values_list("revoke_method", flat=True)) == {"keyword"}
    confirmations = Delivery.objects.filter(contact=contact, client_reference=f"optout:{contact.pk}")
    assert confirmations.count() == 1
    confirmation = confirmations.get()
    assert confirmation.classification == Classification.TRANSACTION
    assert "配信停止" in confirmation.sms_text and len(confirmation.sms_text) <= 70
    event = AuditEvent.objects.get(action="contact.opted_out")
    assert event.organization_id == organization.pk and event.details["consents_revoked"] == 2
    thread = ConversationMessage.objects.filter(conversation__contact=contact, direction="out")
    assert thread.count() == 1 and thread.get().delivery_id == confirmation.pk
    assert Conversation.objects.filter(contact=contact, official_account=account).exists()


@pytest.mark.django_db
def test_optout_refuses_later_promotions_and_resubscribing_needs_new_consent(person):
    from django.core.exceptions import ValidationError

    from messaging.services import message_send

    organization, account, contact = person
    contact_opt_out(contact, OptOutMethod.CONSOLE, "test", confirm=False)
    with pytest.raises(ValidationError):
        message_send(organization=organization, official_account=account, phone=contact.phone,
                     content={"text": "セール"}, sms_text="セール", classification=Classification.PROMOTION)
    consent_grant(contact, method="web_form", source="https://example.jp/form", wording_version="v3")
    contact.refresh_from_db()
    assert contact.opted_out_at is None
    assert AuditEvent.objects.filter(action="consent.granted", details__resubscribed=True).exists()


@pytest.mark.django_db
def test_optout_link_page_confirms_on_post_without_login(person, django_capture_on_commit_callbacks):
    organization, account, contact = person
    client = Client(enforce_csrf_checks=True)
    url = f"/o/{opt_out_token(organization.pk, contact.pk)}/"
    assert opt_out_url(organization.pk, contact.pk).endswith(url)
    page = client.get(url)
    assert page.status_code == 200
    assert "confirm-opt-out" in page.content.decode()
    contact.refresh_from_db()
    assert contact.opted_out_at is None  # GET never opts out (link scanners open links)
    assert client.post(url).status_code == 403  # CSRF
    token = page.cookies["csrftoken"].value
    with django_capture_on_commit_callbacks(execute=False):
        done = client.post(url, {"csrfmiddlewaretoken": token})
    assert done.status_code == 200
    contact.refresh_from_db()
    assert contact.opted_out_at is not None and contact.opt_out_method == "link"
    assert Delivery.objects.filter(contact=contact, client_reference=f"optout:{contact.pk}").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["nonsense", "1.2.AAAAAAAAAAAAAA", "", "a.b.c.d"])
def test_optout_link_with_a_bad_token_is_404(client, token, person):
    organization, account, contact = person
    forged = f"{opt_out_token(organization.pk, contact.pk)[:-2]}xx"
    for value in (token, forged):
        if value:
            assert client.get(f"/o/{value}/").status_code == 404


@pytest.mark.django_db
def test_optout_link_of_another_organization_contact_is_404(client, person):
    organization, account, contact = person
    other = OrganizationFactory()
    assert client.get(f"/o/{opt_out_token(other.pk, contact.pk)}/").status_code == 404


@pytest.mark.django_db
def test_optout_by_an_operator_from_the_contact_page(client, person):
    from accounts.models import Role
    from tests.accounts.factories import member

    organization, account, contact = person
    client.force_login(member(organization, Role.MARKETER))
    assert client.post(reverse_lazy("consent_opt_out", args=[contact.pk])).status_code == 403
    client.force_login(member(organization, Role.OPERATOR))
    assert client.post(reverse_lazy("consent_opt_out", args=[contact.pk])).status_code == 302
    contact.refresh_from_db()
    assert contact.opt_out_method == "console"
    event = AuditEvent.objects.get(action="contact.opted_out")
    assert event.actor_label and event.details["method"] == "console"


@pytest.mark.django_db
def test_optout_signal_is_sent_once_by_the_call_that_opts_out(person):
    from campaigns.signals import contact_opted_out

    organization, account, contact = person
    received = []

    def listener(sender, contact, official_account, confirm, **kwargs):
        received.append((contact.pk, official_account, confirm))

    contact_opted_out.connect(listener, dispatch_uid="test_optout_signal")
    try:
        assert contact_opt_out(contact, OptOutMethod.CONSOLE, "test", confirm=False) is True
        assert contact_opt_out(contact, OptOutMethod.CONSOLE, "test", confirm=False) is False
    finally:
        contact_opted_out.disconnect(dispatch_uid="test_optout_signal")
    assert received == [(contact.pk, None, False)]
    assert not Delivery.objects.filter(contact=contact, client_reference=f"optout:{contact.pk}").exists()
