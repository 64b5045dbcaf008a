"""Issue 14, item 6: API keys stop with their creator, a second person approves, one shared throttle.

- A key works only while its creator is an active member of the key's organization; the check is
  in the key's own query on every request, so a key used a moment ago stops at once.
- Under the organization's second-approver setting (on by default with two or more owners and
  admins) nobody approves a campaign they submitted, in the console or through an API key.
- The per-key throttle is counted in Redis: another process spends the same budget.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiKey, Membership, Organization, Role, SecondApprover
from accounts.services import membership_remove
from audit.models import AuditEvent
from campaigns.models import Campaign, CampaignStatus, Contact
from core.throttle import redis_client
from tests.accounts.factories import UserFactory, member
from tests.api.conftest import Tenant, message_body
from tests.campaigns.factories import ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tenant(db, monkeypatch):
    from messaging import tasks

    monkeypatch.setattr(tasks.send_message, "delay", lambda *args, **kwargs: None)
    return Tenant("keys")


def bearer(secret, language="en"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_ACCEPT_LANGUAGE=language)
    return client


# --- keys stop with their creator ---------------------------------------------------------------


def test_keys_and_approvals_used_key_stops_at_once_when_its_creator_is_deactivated(tenant):
    admin = member(tenant.organization, Role.ADMIN)
    _key, secret = tenant.key(user=admin)
    client = bearer(secret)
    assert client.get("/api/v1/contacts/").status_code == 200  # found, used, last use recorded
    type(admin).objects.filter(pk=admin.pk).update(is_active=False)
    refused = client.get("/api/v1/contacts/")
    assert refused.status_code == 401
    assert refused.json()["code"] == "key_creator_inactive"
    assert "left the organization" in refused.json()["message"]
    japanese = bearer(secret, "ja").post("/api/v1/messages/", message_body(tenant), format="json")
    assert japanese.status_code == 401 and japanese.json()["code"] == "key_creator_inactive"
    assert "組織" in japanese.json()["message"]
    type(admin).objects.filter(pk=admin.pk).update(is_active=True)
    assert client.get("/api/v1/contacts/").status_code == 200


def test_keys_and_approvals_used_key_stops_at_once_when_its_creator_leaves(tenant):
    admin = member(tenant.organization, Role.ADMIN)
    _key, secret = tenant.key(user=admin)
    client = bearer(secret)
    assert client.post("/api/v1/contacts/", {"phone": "09011112222"}, format="json").status_code == 201
    membership_remove(Membership.objects.get(user=admin, organization=tenant.organization), acting_role=Role.OWNER)
    response = client.post("/api/v1/contacts/", {"phone": "09011113333"}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "key_creator_inactive"
    assert Contact.objects.filter(organization=tenant.organization).count() == 1
    # A membership elsewhere does not keep a key of this organization alive.
    Membership.objects.create(organization=Organization.objects.create(name="別会社", slug="other-co"), user=admin)
    assert client.get("/api/v1/contacts/").status_code == 401


def test_keys_and_approvals_key_without_creator_is_refused_and_superuser_key_works(tenant):
    key, secret = tenant.key(user=tenant.owner)
    ApiKey.objects.filter(pk=key.pk).update(created_by=None)
    assert bearer(secret).get("/api/v1/contacts/").json()["code"] == "key_creator_inactive"
    staff = UserFactory(is_superuser=True, is_staff=True)
    _key, secret = tenant.key(user=staff)
    assert bearer(secret).get("/api/v1/contacts/").status_code == 200


def test_keys_and_approvals_key_page_shows_a_stopped_key(client, tenant):
    admin = member(tenant.organization, Role.ADMIN, username="leaver")
    tenant.key(user=admin, name="stopped key")
    tenant.key(user=tenant.owner, name="working key")
    client.force_login(tenant.owner)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "no longer an active member" not in client.get(reverse("accounts:api_keys")).content.decode()
    Membership.objects.filter(user=admin).delete()
    body = client.get(reverse("accounts:api_keys")).content.decode()
    rows = {("stopped" if "stopped key" in row else "working"): row for row in body.split("<tr>")[1:]}
    assert "Stopped: its creator is no longer an active member" in rows["stopped"]
    assert "Stopped: its creator" not in rows["working"]


# --- a second person approves -------------------------------------------------------------------


@pytest.fixture
def audience(tenant):
    contact_list = ContactListFactory(organization=tenant.organization, purpose="transaction")
    contact_list.contacts.add(ContactFactory(organization=tenant.organization))
    return contact_list


def submitted_campaign(tenant, audience, client):
    body = {
        "name": "予約確認", "official_account": tenant.account.pk, "classification": "transaction",
        "content": {"text": "ご予約ありがとうございます。"}, "sms_text": "ご予約ありがとうございます。",
        "audience_lists": [audience.pk],
    }
    campaign_id = client.post("/api/v1/campaigns/", body, format="json").json()["id"]
    assert client.post(f"/api/v1/campaigns/{campaign_id}/submit/", {}, format="json").status_code == 200
    return Campaign.objects.get(pk=campaign_id)


def test_keys_and_approvals_api_submitter_cannot_approve_with_two_approvers(tenant, audience):
    admin = member(tenant.organization, Role.ADMIN)
    owner_key = tenant.client()
    campaign = submitted_campaign(tenant, audience, owner_key)
    assert campaign.submitted_by == tenant.owner
    refused = owner_key.post(f"/api/v1/campaigns/{campaign.pk}/approve/", {}, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "second_approver_required"
    assert "second person" in refused.json()["message"]
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PENDING_APPROVAL and campaign.approved_by is None
    japanese = tenant.client(language="ja").post(f"/api/v1/campaigns/{campaign.pk}/approve/", {}, format="json")
    assert japanese.status_code == 403 and "承認" in japanese.json()["message"]
    approved = tenant.client(user=admin).post(f"/api/v1/campaigns/{campaign.pk}/approve/", {}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    campaign.refresh_from_db()
    assert campaign.approved_by == admin


def test_keys_and_approvals_console_submitter_cannot_approve(client, tenant, audience):
    admin = member(tenant.organization, Role.ADMIN)
    campaign = submitted_campaign(tenant, audience, tenant.client(user=admin))
    client.force_login(admin)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert 'id="second-approver-note"' in page
    assert reverse("campaigns:approve", args=[campaign.pk]) not in page
    response = client.post(reverse("campaigns:approve", args=[campaign.pk]), follow=True)
    assert "A second person must approve this campaign" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PENDING_APPROVAL
    client.force_login(tenant.owner)
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert 'id="second-approver-note"' not in page and reverse("campaigns:approve", args=[campaign.pk]) in page
    assert "Submitted by" in page
    client.post(reverse("campaigns:approve", args=[campaign.pk]))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.APPROVED and campaign.approved_by == tenant.owner


def test_keys_and_approvals_setting_decides_who_may_approve_their_own(tenant, audience):
    owner_key = tenant.client()
    # Default ("auto") with one owner and no admin: the only approver may approve their own.
    assert tenant.organization.second_approver == SecondApprover.AUTO
    campaign = submitted_campaign(tenant, audience, owner_key)
    assert owner_key.post(f"/api/v1/campaigns/{campaign.pk}/approve/", {}, format="json").status_code == 200
    # A deactivated admin does not count as a second approver.
    admin = member(tenant.organization, Role.ADMIN)
    type(admin).objects.filter(pk=admin.pk).update(is_active=False)
    campaign = submitted_campaign(tenant, audience, owner_key)
    assert owner_key.post(f"/api/v1/campaigns/{campaign.pk}/approve/", {}, format="json").status_code == 200
    # "Always": refused even with a single approver.
    Organization.objects.filter(pk=tenant.organization.pk).update(second_approver=SecondApprover.ALWAYS)
    campaign = submitted_campaign(tenant, audience, owner_key)
    assert owner_key.post(f"/api/v1/campaigns/{campaign.pk}/approve/", {}, format="json").status_code == 403
    # "Never": allowed even with two active approvers.
    type(admin).objects.filter(pk=admin.pk).update(is_active=True)
    Organization.objects.filter(pk=tenant.organization.pk).update(second_approver=SecondApprover.NEVER)
    assert owner_key.post(f"/api/v1/campaigns/{campaign.pk}/approve/", {}, format="json").status_code == 200


def test_keys_and_approvals_campaign_submitted_before_the_submitter_was_recorded_counts_its_author(tenant, audience):
    member(tenant.organization, Role.ADMIN)
    owner_key = tenant.client()
    campaign = submitted_campaign(tenant, audience, owner_key)
    Campaign.objects.filter(pk=campaign.pk).update(submitted_by=None)
    assert owner_key.post(f"/api/v1/campaigns/{campaign.pk}/approve/", {}, format="json").status_code == 403


def test_keys_and_approvals_members_page_sets_the_rule(client, tenant):
    client.force_login(tenant.owner)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("accounts:members")).content.decode()
    assert 'id="second-approver-form"' in page and "may also approve it" in page
    bad = client.post(reverse("accounts:second_approver"), {"second_approver": "sometimes"})
    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()
    tenant.organization.refresh_from_db()
    assert tenant.organization.second_approver == SecondApprover.AUTO
    client.post(reverse("accounts:second_approver"), {"second_approver": SecondApprover.ALWAYS})
    tenant.organization.refresh_from_db()
    assert tenant.organization.second_approver == SecondApprover.ALWAYS
    event = AuditEvent.objects.get(action="settings.second_approver")
    assert event.details == {"before": "auto", "after": "always"}
    assert "a second person must approve each campaign" in client.get(reverse("accounts:members")).content.decode()
    client.force_login(tenant.marketer)
    assert client.post(reverse("accounts:second_approver"), {"second_approver": "never"}).status_code == 403


# --- one throttle for every process --------------------------------------------------------------

SPEND_IN_ANOTHER_PROCESS = """
import json, sys
import django
django.setup()
from django.conf import settings
settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "3/day"}}
from accounts.models import ApiKey
from api.auth import ApiKeyRateThrottle

class Request:
    auth = ApiKey(pk=int(sys.argv[1]))

throttle = ApiKeyRateThrottle()
print(json.dumps([throttle.allow_request(Request(), None) for _ in range(int(sys.argv[2]))]))
"""


def test_keys_and_approvals_throttle_budget_is_shared_with_another_process(tenant, settings):
    """Another process (its own Python, its own memory) spends the key's budget in the same Redis;
    this process then finds it spent. The window is a day, and the run is repeated if it crossed
    midnight UTC, so no timing is assumed."""
    client = redis_client()
    assert client is not None, "the tests run with REDIS_URL"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "3/day"}}
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "REDIS_URL": django_settings.REDIS_URL}
    for _attempt in range(3):
        key, secret = tenant.key()
        for name in client.scan_iter(f"api-throttle:{key.pk}:*"):
            client.delete(name)
        day = int(time.time() // 86400)
        spent = subprocess.run([sys.executable, "-c", SPEND_IN_ANOTHER_PROCESS, str(key.pk), "3"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=120, check=True)
        response = bearer(secret).get("/api/v1/contacts/")
        if int(time.time() // 86400) == day:
            break
    assert json.loads(spent.stdout.strip().splitlines()[-1]) == [True, True, True]
    assert response.status_code == 429 and response.json()["code"] == "throttled"
    assert tenant.client().get("/api/v1/contacts/").status_code == 200  # another key, its own budget
