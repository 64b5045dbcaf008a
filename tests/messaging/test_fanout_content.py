"""What each person's message looks like when it leaves: personalized, with the signed opt-out link,
and with campaign links going through click tracking."""

import pytest

from core.signed_links import parse_opt_out_token
from messaging.engine.context import Row, SendContext, content_for
from messaging.engine.dispatch import dispatch_batch
from messaging.links import tracked_link_target
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
