"""The short-link redirect (/s/<token>): a click on a link in an SMS text goes to the URL written in
the campaign's text and nowhere else, and counts once per person for the campaign."""

import pytest

from campaigns.models import Classification
from core.short_links import fill_short_links, short_link_base
from core.signed_links import short_link_token
from messaging.models import CampaignEngagement, Channel, Delivery, EngagementKind
from messaging.stats import campaign_stats
from tests.accounts.factories import OfficialAccountFactory
from tests.campaigns.factories import CampaignFactory, ContactFactory
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

SMS = "【デモ商店】冬のクーポン {{link:https://shop.example.jp/coupon}} 店舗 {{link:https://shop.example.jp/map}} 停止は「停止」と返信"


@pytest.fixture
def campaign():
    return CampaignFactory(sms_text=SMS, classification=Classification.TRANSACTION)


def delivery_for(campaign, channel=Channel.SMS, **kwargs):
    contact = ContactFactory(organization=campaign.organization)
    return DeliveryFactory(campaign=campaign, contact=contact, channel=channel, **kwargs)


def path(delivery_id, index):
    return f"/s/{short_link_token(delivery_id, index)}"


def test_a_click_redirects_to_the_link_at_its_index_and_counts_once_per_person(client, campaign):
    first, second = delivery_for(campaign), delivery_for(campaign)
    response = client.get(path(first.pk, 0))
    assert response.status_code == 302 and response["Location"] == "https://shop.example.jp/coupon"
    assert response["Referrer-Policy"] == "no-referrer" and "no-store" in response["Cache-Control"]
    assert client.get(path(first.pk, 1))["Location"] == "https://shop.example.jp/map"
    assert client.get(path(first.pk, 0)).status_code == 302  # again: still redirects
    assert client.get(path(second.pk, 1)).status_code == 302

    clicks = CampaignEngagement.objects.filter(campaign=campaign, kind=EngagementKind.CLICKED)
    assert sorted(clicks.values_list("contact_id", flat=True)) == sorted([first.contact_id, second.contact_id])
    assert clicks.first().variant is None  # the place A/B variants will fill
    stats = campaign_stats(campaign)
    assert stats["clicked"] == 2 and stats["by_channel"]["sms"]["clicked"] == 2


def test_the_url_a_person_got_in_the_sms_body_is_the_one_that_works(client, campaign, settings):
    settings.PUBLIC_BASE_URL = "https://pm.example.jp"
    delivery = delivery_for(campaign)
    body = fill_short_links(campaign.sms_text, short_link_base(""), delivery.pk)
    url = body.split("冬のクーポン ")[1].split(" ")[0]
    assert url.startswith("https://pm.example.jp/s/")
    assert client.get(url.removeprefix("https://pm.example.jp"))["Location"] == "https://shop.example.jp/coupon"


@pytest.mark.parametrize(
    "token",
    ["", "x", "0" * 18, "zzzzzzzzzzzzzzzzzz", "k7x2p9q40m3z8c5w1r"],
)
def test_unknown_tokens_answer_404(client, token):
    assert client.get(f"/s/{token}").status_code == 404


def test_no_open_redirect_and_nothing_beyond_the_texts_own_links(client, campaign):
    delivery = delivery_for(campaign)
    assert client.get(path(delivery.pk, 2)).status_code == 404  # the text has two links
    response = client.get(path(delivery.pk, 0) + "?u=https://evil.example.com/&next=https://evil.example.com/")
    assert response["Location"] == "https://shop.example.jp/coupon"  # the query string is ignored
    forged = short_link_token(delivery.pk, 0)[:-1] + ("a" if short_link_token(delivery.pk, 0)[-1] != "a" else "b")
    assert client.get(f"/s/{forged}").status_code == 404
    assert client.get(path(delivery.pk + 1000, 0)).status_code == 404  # a signed token of no delivery
    assert not CampaignEngagement.objects.filter(campaign=campaign, contact_id=delivery.contact_id).count() > 1


def test_a_text_erased_by_retention_leads_nowhere(client, campaign):
    delivery = delivery_for(campaign)
    type(campaign).objects.filter(pk=campaign.pk).update(sms_text="")
    assert client.get(path(delivery.pk, 0)).status_code == 404


def test_link_previews_and_head_requests_redirect_without_counting(client, campaign):
    delivery = delivery_for(campaign)
    assert client.head(path(delivery.pk, 0)).status_code == 302
    preview = "Mozilla/5.0 (Macintosh) AppleWebKit/601.2.4 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"
    assert client.get(path(delivery.pk, 0), HTTP_USER_AGENT=preview).status_code == 302
    assert client.post(path(delivery.pk, 0)).status_code == 405
    assert not CampaignEngagement.objects.filter(campaign=campaign).exists()
    client.get(path(delivery.pk, 0), HTTP_USER_AGENT="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)")
    assert CampaignEngagement.objects.filter(campaign=campaign).count() == 1


def test_a_single_messages_link_redirects_to_its_own_text_without_a_campaign_to_count(client):
    contact = ContactFactory()
    account = OfficialAccountFactory(organization=contact.organization)
    single = Delivery.objects.create(
        organization=contact.organization, official_account=account, contact=contact, channel=Channel.SMS,
        sms_text="ご予約の確認: {{link:https://reserve.example.jp/r/1}}",
    )
    assert client.get(path(single.pk, 0))["Location"] == "https://reserve.example.jp/r/1"
    assert not CampaignEngagement.objects.exists()
