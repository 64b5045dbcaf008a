"""Campaigns through the API: draft, update while draft, submit, approve (role), launch, pause, resume,
cancel, stats — all through campaigns.services and messaging.runs."""

import pytest

from campaigns.models import Campaign, CampaignStatus
from tests.campaigns.factories import ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db

CONTENT = {"text": "ご予約ありがとうございます。"}


def draft_body(tenant, audience):
    return {
        "name": "予約確認", "official_account": tenant.account.pk, "classification": "transaction",
        "content": CONTENT, "sms_text": "ご予約ありがとうございます。", "audience_lists": [audience.pk],
        "ttl_seconds": 600,
    }


@pytest.fixture
def audience(tenant):
    contact_list = ContactListFactory(organization=tenant.organization, purpose="transaction")
    contact_list.contacts.add(ContactFactory(organization=tenant.organization))
    return contact_list


def test_full_lifecycle(api, tenant, audience):
    created = api.post("/api/v1/campaigns/", draft_body(tenant, audience), format="json")
    assert created.status_code == 201, created.json()
    campaign_id = created.json()["id"]
    assert created.json()["status"] == "draft"
    assert Campaign.objects.get(pk=campaign_id).created_by == tenant.owner
    assert api.patch(f"/api/v1/campaigns/{campaign_id}/", {"name": "予約確認（改）"}, format="json").status_code == 200
    for verb, expected in [("submit", "pending_approval"), ("approve", "approved"), ("launch", "running"),
                           ("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")]:
        response = api.post(f"/api/v1/campaigns/{campaign_id}/{verb}/", {}, format="json")
        assert response.status_code == 200, (verb, response.json())
        assert response.json()["status"] == expected
    stats = api.get(f"/api/v1/campaigns/{campaign_id}/stats/").json()
    assert stats["finished"] is True and "targeted" in stats and stats["skipped_frequency_cap"] == 0
    again = api.post(f"/api/v1/campaigns/{campaign_id}/launch/", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"


def test_update_only_while_draft(api, tenant, audience):
    campaign_id = api.post("/api/v1/campaigns/", draft_body(tenant, audience), format="json").json()["id"]
    api.post(f"/api/v1/campaigns/{campaign_id}/submit/", {}, format="json")
    response = api.patch(f"/api/v1/campaigns/{campaign_id}/", {"name": "x"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "not_draft"


def test_submit_checks_what_must_hold_before_sending(api, tenant):
    body = {"name": "空", "official_account": tenant.account.pk}
    campaign_id = api.post("/api/v1/campaigns/", body, format="json").json()["id"]
    response = api.post(f"/api/v1/campaigns/{campaign_id}/submit/", {}, format="json")
    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert "audience_lists" in fields and "sms_text" in fields


def test_bad_campaign_input(api, tenant, other):
    foreign_list = ContactListFactory(organization=other.organization)
    for body, field in [
        ({"name": "x", "official_account": other.account.pk}, "official_account"),
        ({"name": "x", "official_account": tenant.account.pk, "audience_lists": [foreign_list.pk]}, "audience_lists"),
        ({"name": "x", "official_account": tenant.account.pk, "content": {"text": ""}}, "content"),
        ({"name": "x", "official_account": tenant.account.pk, "recurrence": "every day"}, "recurrence"),
        ({"name": "x", "official_account": tenant.account.pk, "ttl_seconds": 5}, "ttl_seconds"),
        ({"official_account": tenant.account.pk}, "name"),
    ]:
        response = api.post("/api/v1/campaigns/", body, format="json")
        assert response.status_code == 400, body
        assert response.json()["field"] == field, (body, response.json())


def test_approval_needs_an_owner_or_admin_key(tenant, audience):
    marketer = tenant.client(user=tenant.marketer)
    campaign_id = marketer.post("/api/v1/campaigns/", draft_body(tenant, audience), format="json").json()["id"]
    assert marketer.post(f"/api/v1/campaigns/{campaign_id}/submit/", {}, format="json").status_code == 200
    refused = marketer.post(f"/api/v1/campaigns/{campaign_id}/approve/", {}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    owner = tenant.client()
    assert owner.post(f"/api/v1/campaigns/{campaign_id}/approve/", {}, format="json").json()["status"] == "approved"
    assert Campaign.objects.get(pk=campaign_id).approved_by == tenant.owner


def test_list_and_filter(api, tenant, audience):
    api.post("/api/v1/campaigns/", draft_body(tenant, audience), format="json")
    assert len(api.get("/api/v1/campaigns/?status=draft").json()["results"]) == 1
    assert api.get("/api/v1/campaigns/?status=running").json()["results"] == []
    assert api.get("/api/v1/campaigns/?status=bogus").status_code == 400
    assert CampaignStatus.DRAFT


def test_sms_links_are_checked_and_counted_as_sent_through_the_api(api, tenant, audience):
    """The API goes through the same validate_sms_text as the composer (core.short_links)."""
    long_link = "{{link:https://shop.example.jp/" + "winter/" * 20 + "coupon}}"
    text = "【テスト】" + "あ" * 590 + long_link  # over 670 as typed, well under 660 as sent
    assert len(text) > 670
    response = api.post("/api/v1/campaigns/", {**draft_body(tenant, audience), "sms_text": text}, format="json")
    assert response.status_code == 201, response.json()
    assert Campaign.objects.get(pk=response.json()["id"]).sms_text == text
    refused = api.post("/api/v1/campaigns/", {**draft_body(tenant, audience),
                                              "sms_text": "クーポン {{link:http://192.168.1.1/}}"}, format="json")
    assert refused.status_code == 400
    assert "public website" in str(refused.json())
