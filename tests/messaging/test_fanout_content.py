"""What each person's message looks like when it leaves: personalized, with the signed opt-out link,
with campaign links going through click tracking, and with the SMS text's tracked links as the
person's own short URLs (the last test sends through the sandbox carrier over HTTP, in-process)."""

import re
from datetime import time as dtime

import pytest
from django.utils import timezone

from accounts.models import GatewayAccount, GatewayKind
from campaigns.models import CampaignStatus, Classification, ContactList, ContactListMembership
from core import throttle
from core.short_links import short_link_length
from core.signed_links import parse_opt_out_token, parse_short_link_token
from messaging.engine.context import Row, SendContext, content_for, sms_text_for
from messaging.engine.dispatch import dispatch_batch
from messaging.engine.freeze import audience_freeze
from messaging.links import tracked_link_target
from messaging.models import Delivery
from messaging.stats import campaign_stats
from tests.accounts.factories import OrganizationFactory, UserFactory, approved_account
from tests.campaigns.factories import CampaignFactory, ContactFactory


def context(campaign_id, content):
    return SendContext(
        campaign_id=campaign_id, organization_id=7, content=content, sms_text="", sms_sender="SHOP",
        classification="promotion", ttl_seconds=600, rcs_gateway=None, sms_gateway=None,
    )


def row(contact_id=42):
    return Row(id=1, uuid="0" * 32, contact_id=contact_id, phone="+819012345678", name="山田", attributes={"rank": "gold"},
               opted_out=False, channel="", pending_fallback=False)


CONTENT = {
    "card": {
        "title": "{{name}}様（{{rank}}会員）",
        "description": "配信停止: {{opt_out_url}}",
        "buttons": [{"type": "open_url", "label": "見る", "url": "https://shop.example.jp/sale"}],
    }
}


@pytest.mark.django_db
def test_campaign_links_are_tracked_and_lead_back_to_the_original_url():
    campaign = CampaignFactory(content=CONTENT)
    contact = ContactFactory(organization=campaign.organization)
    sent = content_for(context(campaign.pk, campaign.content), row(contact.pk))
    assert sent["card"]["title"] == "山田様（gold会員）"
    tracked = sent["card"]["buttons"][0]["url"]
    assert "/messaging/r/" in tracked and tracked != "https://shop.example.jp/sale"
    token = tracked.split("/messaging/r/")[1].split("/")[0]
    target = tracked_link_target(token, "https://shop.example.jp/sale")
    assert target is not None and target[1] == contact.pk and target[2] == "https://shop.example.jp/sale"
    assert tracked_link_target(token, "https://evil.example.com/") is None  # no open redirect
    assert CONTENT["card"]["buttons"][0]["url"] == "https://shop.example.jp/sale"  # the campaign is untouched


def test_opt_out_link_names_the_contact_and_single_messages_keep_their_links():
    sent = content_for(context(None, CONTENT), row(contact_id=99))
    link = sent["card"]["description"].split("配信停止: ")[1]
    assert parse_opt_out_token(link.rstrip("/").rsplit("/", 1)[1]) == (7, 99)
    assert sent["card"]["buttons"][0]["url"] == "https://shop.example.jp/sale"


def test_content_without_placeholders_goes_out_as_written():
    plain = {"text": "本日のご案内です。", "chips": [{"type": "reply", "label": "はい", "postback": "yes"}]}
    ctx = context(None, plain)
    assert not ctx.personalized and not ctx.uses_opt_out_link
    assert content_for(ctx, row()) == plain


def test_the_opt_out_link_is_made_when_the_sms_text_asks_for_it():
    ctx = SendContext(
        campaign_id=None, organization_id=7, content={"text": "こんにちは"}, sms_text="停止 {{opt_out_url}}",
        sms_sender="SHOP", classification="promotion", ttl_seconds=600, rcs_gateway=None, sms_gateway=None,
    )
    assert ctx.uses_opt_out_link and not ctx.personalized


@pytest.mark.django_db
def test_a_chain_of_a_deleted_campaign_stops_quietly():
    campaign = CampaignFactory()
    campaign_id = campaign.pk
    campaign.delete()
    assert dispatch_batch(campaign_id) == "stopped"


def test_each_persons_sms_text_carries_their_own_short_url_then_is_personalized():
    ctx = SendContext(
        campaign_id=5, organization_id=7, content={"text": "x"},
        sms_text="{{name}}様 クーポン {{link:https://shop.example.jp/c}}", sms_sender="SHOP",
        classification="transaction", ttl_seconds=600, rcs_gateway=None, sms_gateway=None,
        short_link_base="https://s.shop.jp/s/",
    )
    first = sms_text_for(ctx, Row(**{**row(1).__dict__, "id": 101}))
    second = sms_text_for(ctx, Row(**{**row(2).__dict__, "id": 102}))
    assert first.startswith("山田様 クーポン https://s.shop.jp/s/") and first != second
    assert parse_short_link_token(first.rsplit("/", 1)[1]) == (101, 0)
    assert parse_short_link_token(second.rsplit("/", 1)[1]) == (102, 0)


SHORT_URL = re.compile(r"https://s\.shop\.jp/s/([0-9a-z]+)")


@pytest.mark.django_db(transaction=True)
def test_the_sms_body_sent_to_the_gateway_carries_each_persons_short_url(sandbox, webhook_sink, client):
    organization = OrganizationFactory(quiet_hours_start=dtime(0, 0), quiet_hours_end=dtime(0, 0),
                                       short_link_base="https://s.shop.jp/s/")
    cm = GatewayAccount.objects.create(
        organization=organization, name="cm", kind=GatewayKind.CM, base_url=sandbox.url, rate_per_second=1000,
        credentials={"product_token": f"product-{organization.pk}", "callback_secret": "cb"},
    )
    sandbox.register_cm(product_token=cm.credentials["product_token"], callback_secret="cb", gateway_id=cm.pk,
                        webhook_url=f"{webhook_sink.url}/cm/{cm.pk}/cb/")
    sandbox.configure(profile_mix={"rakuten_sms_only": 1})
    throttle.reset(cm.pk)
    account = approved_account(organization, rcs_gateway=None, sms_gateway=cm)
    audience = ContactList.objects.create(organization=organization, name="audience")
    contacts = [ContactFactory(organization=organization, name=f"客{n}", phone=f"+8190{44000000 + n:08d}") for n in range(3)]
    ContactListMembership.objects.bulk_create(ContactListMembership(contact_list=audience, contact=c) for c in contacts)
    user = UserFactory()
    campaign = CampaignFactory(
        organization=organization, official_account=account, classification=Classification.TRANSACTION,
        sms_text="{{name}}様 ご予約の確認はこちら {{link:https://reserve.example.jp/r}}", status=CampaignStatus.RUNNING,
        approved_by=user, approved_at=timezone.now(), created_by=user,
    )
    campaign.audience_lists.add(audience)
    audience_freeze(campaign)

    assert dispatch_batch(campaign.pk) == "more"
    tokens = {}
    for contact in contacts:
        received = sandbox.wait_for(lambda c=contact: sandbox.inbox(c.phone), timeout=10)
        assert [m["channel"] for m in received] == ["sms"]
        text = received[0]["text"]
        assert text.startswith(f"{contact.name}様 ご予約の確認はこちら https://s.shop.jp/s/") and "{{" not in text
        url = SHORT_URL.search(text).group(0)
        assert len(url) == short_link_length("https://s.shop.jp/s/")
        delivery = Delivery.objects.get(campaign=campaign, contact=contact)
        assert parse_short_link_token(url.rsplit("/", 1)[1]) == (delivery.pk, 0)
        tokens[contact.pk] = url.rsplit("/", 1)[1]
    assert len(set(tokens.values())) == 3  # one per person

    # The organization's base reaches this console's /s/: a tap redirects and counts as an SMS click.
    response = client.get(f"/s/{tokens[contacts[0].pk]}")
    assert response.status_code == 302 and response["Location"] == "https://reserve.example.jp/r"
    client.get(f"/s/{tokens[contacts[0].pk]}")
    stats = campaign_stats(campaign)
    assert stats["clicked"] == 1 and stats["by_channel"]["sms"]["clicked"] == 1
